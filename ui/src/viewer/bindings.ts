// Mouse and keyboard habits of a reading room, in one table each. The viewport reads these;
// the help overlay lists them.

/** Cornerstone3D tool names (the classes declare them as `any`; strings keep lint strict). */
export const TOOL = {
  windowLevel: "WindowLevel",
  pan: "Pan",
  zoom: "Zoom",
  scroll: "StackScroll",
  length: "Length",
} as const;
export type ToolName = (typeof TOOL)[keyof typeof TOOL];

export type MouseButton = "Primary" | "Secondary" | "Auxiliary" | "Wheel";

export interface MouseBinding {
  tool: ToolName;
  button: MouseButton;
  help: string;
}

/** What each mouse button does while the window/level tool is the primary tool. */
export const MOUSE_BINDINGS: readonly MouseBinding[] = [
  { tool: TOOL.windowLevel, button: "Primary", help: "left-drag: window (horizontal) and level (vertical)" },
  { tool: TOOL.zoom, button: "Secondary", help: "right-drag: zoom" },
  { tool: TOOL.pan, button: "Auxiliary", help: "middle-drag: pan" },
  { tool: TOOL.scroll, button: "Wheel", help: "wheel: previous / next slice" },
];

/** Which tool the left button drives: window/level, or length measurement. */
export type PrimaryTool = typeof TOOL.windowLevel | typeof TOOL.length;

export type ViewerAction =
  | { kind: "step"; by: number }
  | { kind: "first" }
  | { kind: "last" }
  | { kind: "preset"; index: number }
  | { kind: "invert" }
  | { kind: "reset" }
  | { kind: "fit" }
  | { kind: "primary"; tool: PrimaryTool }
  | { kind: "toggleText" }
  | { kind: "cine" }
  | { kind: "layout"; panes: 1 | 2 };

export interface KeyBinding {
  key: string;
  action: ViewerAction;
  help: string;
}

export const KEY_BINDINGS: readonly KeyBinding[] = [
  { key: "ArrowUp", action: { kind: "step", by: -1 }, help: "previous slice" },
  { key: "ArrowDown", action: { kind: "step", by: 1 }, help: "next slice" },
  { key: "ArrowLeft", action: { kind: "step", by: -1 }, help: "previous slice" },
  { key: "ArrowRight", action: { kind: "step", by: 1 }, help: "next slice" },
  { key: "PageUp", action: { kind: "step", by: -10 }, help: "10 slices back" },
  { key: "PageDown", action: { kind: "step", by: 10 }, help: "10 slices on" },
  { key: "Home", action: { kind: "first" }, help: "first slice" },
  { key: "End", action: { kind: "last" }, help: "last slice" },
  { key: "i", action: { kind: "invert" }, help: "invert grey scale" },
  { key: "r", action: { kind: "reset" }, help: "reset window, zoom and pan" },
  { key: "f", action: { kind: "fit" }, help: "fit the image to the viewport" },
  { key: "l", action: { kind: "primary", tool: TOOL.length }, help: "left button measures length (mm)" },
  { key: "w", action: { kind: "primary", tool: TOOL.windowLevel }, help: "left button sets window/level" },
  { key: "t", action: { kind: "toggleText" }, help: "show / hide patient and study text" },
  { key: "c", action: { kind: "cine" }, help: "play / stop cine" },
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map(
    (n): KeyBinding => ({ key: String(n), action: { kind: "preset", index: n - 1 }, help: `window preset ${n}` }),
  ),
];

/** The action for a key press, if any (modifier combinations are left to the system). */
export function actionForKey(event: { key: string; ctrlKey?: boolean; metaKey?: boolean; altKey?: boolean }):
  | ViewerAction
  | undefined {
  if (event.ctrlKey || event.metaKey || event.altKey) return undefined;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return KEY_BINDINGS.find((b) => b.key === key)?.action;
}

/** Clamps a slice index into a stack of `count` slices. */
export function clampSlice(index: number, count: number): number {
  return Math.max(0, Math.min(count - 1, index));
}
