// Cornerstone3D, fed by the Rust shell: a `dokuei:` image loader that fetches modality values
// decoded in Rust (no DICOM parsing in JavaScript), a metadata provider built from the
// shell's View, and one rendering engine with a tool group shared by all viewports.

import {
  Enums,
  RenderingEngine,
  cache,
  imageLoader,
  init as csInit,
  metaData,
  utilities,
  type Types,
} from "@cornerstonejs/core";
import {
  Enums as ToolsEnums,
  LengthTool,
  PanTool,
  StackScrollTool,
  ToolGroupManager,
  WindowLevelTool,
  synchronizers,
  type Synchronizer,
  ZoomTool,
  addTool,
  init as csToolsInit,
} from "@cornerstonejs/tools";
import { MOUSE_BINDINGS, TOOL, type PrimaryTool } from "./bindings";
import { imageId, parseImageId, schemeUrl, sliceUrl, stackKey, type SliceRef } from "./imageId";
import type { View } from "./view";

const ENGINE_ID = "dokuei";
const TOOL_GROUP_ID = "dokuei-tools";

/** The stacks the loader and the metadata provider know, by `stackKey`. */
const stacks = new Map<string, View>();

/** Transfer statistics, for the benchmark and the status line. */
export const transfer = { bytes: 0, seconds: 0, slices: 0 };

export function registerStack(generation: number, view: View): void {
  stacks.set(stackKey({ generation, series: view.series, stack: view.stack }), view);
}

/** MPR stacks (see mpr.ts), by token: image `dokuei-mpr:{token}/{k}` is plane k, fetched from
 * the shell's `plane/…` resource. */
interface MprEntry {
  view: View;
  /** The URL path of plane k (without the transport's base). */
  path: (k: number) => string;
  /** When it was registered (ms since the epoch); null once `commitMprStack` says it is used. */
  tentative: number | null;
}
const mprStacks = new Map<string, MprEntry>();
let mprTokens = 0;
/** How long a registration may wait for its commit before it counts as thrown away. */
export const MPR_TENTATIVE_MS = 60000;

const tokenOf = (prefix: string) => prefix.replace(/^dokuei-mpr:/, "").replace(/\/$/, "");

/** Forgets an MPR stack (its planes' ids stop loading). */
export function unregisterMprStack(prefix: string): void {
  mprStacks.delete(tokenOf(prefix));
}

/**
 * Registers an MPR stack; returns its image ids' prefix (`dokuei-mpr:{token}/`). MprView
 * registers while it renders (its viewports need the ids in the same render), so the
 * registration is tentative until `commitMprStack`: one from a render React threw away
 * (StrictMode's second render, an interrupted render) is forgotten at a later registration
 * once `MPR_TENTATIVE_MS` have passed.
 */
export function registerMprStack(view: View, path: (k: number) => string): string {
  const now = Date.now();
  for (const [token, entry] of mprStacks) if (entry.tentative !== null && now - entry.tentative > MPR_TENTATIVE_MS) mprStacks.delete(token);
  mprTokens += 1;
  const token = String(mprTokens);
  mprStacks.set(token, { view, path, tentative: now });
  return `dokuei-mpr:${token}/`;
}

/** The stack of `prefix` is on screen (until `unregisterMprStack`). */
export function commitMprStack(prefix: string): void {
  const entry = mprStacks.get(tokenOf(prefix));
  if (entry) entry.tentative = null;
}

/** Whether an MPR stack's ids still load (for tests). */
export function isMprStackRegistered(prefix: string): boolean {
  return mprStacks.has(tokenOf(prefix));
}

/**
 * The window the images of the MPR stack of image `id` carry as their own: the one on screen when a
 * slab or plane change replaces the stack. Cornerstone3D's CPU path shows a new stack's first
 * image in the image's own window, and could leave it there while the corners already named
 * the window kept (an MPR slab change, seen in the software mode); with the kept window as
 * the images' own, that reset shows the right window.
 */
export function setMprWindow(id: string, window: { center: number; width: number }): void {
  const entry = mprStacks.get(/^dokuei-mpr:(\d+)\//.exec(id)?.[1] ?? "");
  if (entry) entry.view = { ...entry.view, window: { ...entry.view.window, center: window.center, width: window.width } };
}

const MPR_PATTERN = /^dokuei-mpr:(\d+)\/(\d+)$/;

function mprOf(id: string): [MprEntry, number] | undefined {
  const m = MPR_PATTERN.exec(id);
  const entry = m ? mprStacks.get(m[1] ?? "") : undefined;
  return entry && m ? [entry, Number(m[2])] : undefined;
}

function viewOf(id: string): [View, number] | undefined {
  const mpr = mprOf(id);
  if (mpr) return [mpr[0].view, mpr[1]];
  const ref = parseImageId(id);
  if (!ref) return undefined;
  const view = stacks.get(stackKey(ref));
  return view ? [view, ref.slice] : undefined;
}

type Samples = Uint8Array | Int16Array | Uint16Array | Float32Array;

/** Bytes per sample of a stack's `format` (rgb8: per pixel). */
function sampleBytes(format: string): number {
  switch (format) {
    case "u8":
      return 1;
    case "rgb8":
      return 3;
    case "i16":
    case "u16":
      return 2;
    default:
      return 4;
  }
}

/** The bytes of one slice of a stack (as the shell serves it). */
export function sliceBytes(v: { rows: number; columns: number; format: string }): number {
  return v.rows * v.columns * sampleBytes(v.format);
}

function typed(format: string, buffer: ArrayBuffer): Samples {
  switch (format) {
    case "u8":
    case "rgb8":
      return new Uint8Array(buffer);
    case "i16":
      return new Int16Array(buffer);
    case "u16":
      return new Uint16Array(buffer);
    default:
      return new Float32Array(buffer);
  }
}

/** The loopback pixel server (`http://127.0.0.1:{port}/{secret}`), when it is used. */
let loopback: string | null = null;

/** Slices come from the loopback server at `base` (null: the `dokuei://` scheme). */
export function setLoopback(base: string | null): void {
  loopback = base;
}

export function loopbackBase(): string | null {
  return loopback;
}

/** Fetches one slice's bytes (or an MPR plane's); the shell names the file at fault in its
 * error body. */
export async function fetchSlice(id: string): Promise<ArrayBuffer> {
  const mpr = mprOf(id);
  const ref = parseImageId(id);
  const url = (base: string | null): string => {
    if (mpr) return base ? `${base.replace(/\/+$/, "")}/${mpr[0].path(mpr[1])}` : schemeUrl(mpr[0].path(mpr[1]));
    if (ref) return sliceUrl(ref, base);
    throw new Error(`not a Dokuei image id: ${id}`);
  };
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url(loopback));
  } catch (e) {
    // A network failure of the loopback server (not an error answer): the URI scheme serves
    // the same bytes, so switch to it for good rather than leave the viewer blank.
    if (!loopback) throw e;
    console.warn(`dokuei: loopback pixel server failed (${String(e)}); using the dokuei: scheme`);
    loopback = null;
    response = await fetch(url(null));
  }
  if (!response.ok) throw new Error(await response.text());
  const buffer = await response.arrayBuffer();
  transfer.bytes += buffer.byteLength;
  transfer.seconds += (performance.now() - started) / 1000;
  transfer.slices += 1;
  return buffer;
}

function range(a: Samples): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  // Indexed, not for…of: in JavaScriptCore about ten times faster (measured making a stack's
  // images, bulk.ts), and they are made by the hundred.
  for (let i = 0, n = a.length; i < n; i++) {
    const v = a[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

function toImage(id: string, view: View, buffer: ArrayBuffer): Types.IImage {
  const expected = sliceBytes(view);
  if (buffer.byteLength !== expected) {
    throw new Error(`${id} came as ${String(buffer.byteLength)} bytes, not the ${String(expected)} of ${String(view.columns)} × ${String(view.rows)} ${view.format}`);
  }
  const pixels = typed(view.format, buffer);
  const colour = view.format === "rgb8";
  const components = colour ? 3 : 1;
  const [lo, hi] = colour ? [0, 255] : range(pixels);
  const voxelManager = utilities.VoxelManager.createImageVoxelManager({
    width: view.columns,
    height: view.rows,
    scalarData: pixels,
    numberOfComponents: components,
    id,
  });
  return {
    imageId: id,
    rows: view.rows,
    columns: view.columns,
    height: view.rows,
    width: view.columns,
    color: colour,
    rgba: false,
    numberOfComponents: components,
    minPixelValue: lo,
    maxPixelValue: hi,
    slope: 1,
    intercept: 0,
    windowCenter: colour ? 127.5 : view.window.center,
    windowWidth: colour ? 256 : Math.max(1, view.window.width),
    voiLUTFunction: Enums.VOILUTFunctionType.LINEAR,
    invert: view.inverted,
    photometricInterpretation: colour ? "RGB" : view.inverted ? "MONOCHROME1" : "MONOCHROME2",
    columnPixelSpacing: view.pixelSpacing[1],
    rowPixelSpacing: view.pixelSpacing[0],
    sizeInBytes: pixels.byteLength,
    dataType: pixels.constructor.name as Types.PixelDataTypedArrayString,
    getPixelData: () => voxelManager.getScalarData(),
    getCanvas: () => {
      throw new Error("Dokuei images have no canvas");
    },
    voxelManager,
  };
}

/** Whether the slice is in (or on its way into) the image cache. */
export function cachedSlice(ref: SliceRef): boolean {
  return cache.getImageLoadObject(imageId(ref)) !== undefined;
}

/**
 * Puts slice `slice` of a registered stack into Cornerstone3D's image cache from `bytes` bytes
 * of `buffer` at `offset`. The bytes are copied into the image's own buffer: a view of a large
 * piece would keep the whole piece alive while the cache counts only the slice. False when the
 * slice is cached (or being loaded) already, or its stack is not registered.
 */
export function cacheSlice(ref: SliceRef, buffer: ArrayBuffer, offset: number, bytes: number): boolean {
  const id = imageId(ref);
  const found = viewOf(id);
  if (!found || cache.getImageLoadObject(id)) return false;
  void cache.putImageLoadObject(id, { promise: Promise.resolve(toImage(id, found[0], buffer.slice(offset, offset + bytes))) }).catch((e: unknown) => {
    // A full cache: the slice is fetched by itself when it is shown.
    console.warn(`dokuei: slice ${String(ref.slice + 1)} not cached (${String(e)})`);
  });
  return true;
}

const loader: Types.ImageLoaderFn = (id) => {
  const found = viewOf(id);
  const promise = found
    ? fetchSlice(id).then((buffer) => toImage(id, found[0], buffer))
    : Promise.reject(new Error(`no stack is registered for ${id}`));
  return { promise };
};

function provider(type: string, id: string): unknown {
  const found = viewOf(id);
  if (!found) return undefined;
  const [view, slice] = found;
  const colour = view.format === "rgb8";
  const bits = view.format === "u8" || colour ? 8 : view.format === "f32" ? 32 : 16;
  const o = view.orientation;
  switch (type) {
    case "imagePlaneModule":
      return {
        frameOfReferenceUID: `dokuei-${view.series}`,
        rows: view.rows,
        columns: view.columns,
        imageOrientationPatient: [...o],
        rowCosines: [o[0], o[1], o[2]],
        columnCosines: [o[3], o[4], o[5]],
        imagePositionPatient: view.positions[slice] ?? [0, 0, slice],
        pixelSpacing: [...view.pixelSpacing],
        rowPixelSpacing: view.spacingKnown ? view.pixelSpacing[0] : undefined,
        columnPixelSpacing: view.spacingKnown ? view.pixelSpacing[1] : undefined,
        sliceThickness: view.sliceThickness ?? undefined,
      };
    case "imagePixelModule":
      return {
        samplesPerPixel: colour ? 3 : 1,
        photometricInterpretation: colour ? "RGB" : view.inverted ? "MONOCHROME1" : "MONOCHROME2",
        rows: view.rows,
        columns: view.columns,
        bitsAllocated: bits,
        bitsStored: bits,
        highBit: bits - 1,
        pixelRepresentation: view.format === "i16" ? 1 : 0,
      };
    case "generalSeriesModule":
      return { modality: view.modality, seriesNumber: view.series };
    case "voiLutModule":
      return { windowCenter: [view.window.center], windowWidth: [view.window.width] };
    case "modalityLutModule":
      return { rescaleSlope: 1, rescaleIntercept: 0 };
    default:
      return undefined;
  }
}

let engine: RenderingEngine | undefined;
/** Where the viewer benchmark asks for one rendering path or the other (bench.ts). */
export const CPU_RENDERING_KEY = "dokuei.cpuRendering";
let cpuDefault = false;
let cpuInUse = false;

/** Whether Cornerstone3D renders on the CPU by default (the shell's choice); before `cornerstone()`. */
export function setCpuRenderingDefault(on: boolean): void {
  cpuDefault = on;
}

/**
 * Draws the viewports waiting for the next animation frame now. Cornerstone3D renders a new
 * image at the animation frame after the one it was asked for in, so a step asked for at
 * every frame (a held arrow key) was drawn only every other frame: the steps between were
 * overtaken before their frame came. Drawn at once, each step reaches the screen at the next
 * frame. (The engine's own scheduler, not part of its typed interface; absent, the next
 * frame draws as before. `RenderingEngine` delegates to its implementation.)
 */
export function renderNow(): void {
  const impl = (engine as unknown as { _implementation?: { _renderFlaggedViewports?: () => void; _animationFrameHandle?: number | null } } | undefined)?._implementation;
  if (!impl?._renderFlaggedViewports) return;
  // The frame it asked for has nothing left to draw; cancelled, so that it can ask again.
  if (typeof impl._animationFrameHandle === "number") cancelAnimationFrame(impl._animationFrameHandle);
  impl._renderFlaggedViewports();
}

/** Whether Cornerstone3D renders on the CPU now. */
export function cpuRendering(): boolean {
  return cpuInUse;
}
let voiSync: Synchronizer | undefined;

/** Shares window/level (and inversion) across the MPR viewports. */
export function syncWindow(viewportId: string, on: boolean): void {
  const target = { renderingEngineId: ENGINE_ID, viewportId };
  if (on) voiSync?.add(target);
  else voiSync?.remove(target);
}

/** Starts Cornerstone3D once: loader, metadata, tools, and the shared tool group. */
export function cornerstone(): RenderingEngine {
  if (engine) return engine;
  // On the CPU when the shell chose software rendering for this machine (no GPU render node),
  // unless the viewer benchmark asks for the other path (bench.ts).
  const asked = localStorage.getItem(CPU_RENDERING_KEY);
  cpuInUse = asked === null ? cpuDefault : asked === "1";
  csInit({ rendering: { useCPURendering: cpuInUse, webGlContextCount: 1 }, debug: {} });
  csToolsInit();
  imageLoader.registerImageLoader("dokuei", loader);
  imageLoader.registerImageLoader("dokuei-mpr", loader);
  metaData.addProvider(provider, 10000);
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool]) addTool(tool);
  voiSync = synchronizers.createVOISynchronizer("dokuei-mpr-voi", { syncInvertState: true, syncColormap: false });
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
  if (!group) throw new Error("the Cornerstone3D tool group exists already");
  for (const name of Object.values(TOOL)) group.addTool(name);
  group.setToolPassive(TOOL.length);
  applyMouseBindings(TOOL.windowLevel);
  engine = new RenderingEngine(ENGINE_ID);
  return engine;
}

/** Activates the mouse table, with `primary` on the left button. */
export function applyMouseBindings(primary: PrimaryTool): void {
  const group = ToolGroupManager.getToolGroup(TOOL_GROUP_ID);
  if (!group) return;
  const MB = ToolsEnums.MouseBindings;
  const button = { Primary: MB.Primary, Secondary: MB.Secondary, Auxiliary: MB.Auxiliary, Wheel: MB.Wheel };
  for (const b of MOUSE_BINDINGS) {
    const tool = b.button === "Primary" ? primary : b.tool;
    group.setToolActive(tool, { bindings: [{ mouseButton: button[b.button] }] });
  }
  const other = primary === TOOL.length ? TOOL.windowLevel : TOOL.length;
  group.setToolPassive(other);
}

export function addViewportToTools(viewportId: string): void {
  ToolGroupManager.getToolGroup(TOOL_GROUP_ID)?.addViewport(viewportId, ENGINE_ID);
}

export function removeViewportFromTools(viewportId: string): void {
  ToolGroupManager.getToolGroup(TOOL_GROUP_ID)?.removeViewports(ENGINE_ID, viewportId);
}

interface PlaneModule {
  imagePositionPatient: number[];
  rowCosines: number[];
  columnCosines: number[];
  rowPixelSpacing?: number;
  columnPixelSpacing?: number;
}

function planeModule(id: string): PlaneModule | undefined {
  return metaData.get("imagePlaneModule", id) as PlaneModule | undefined;
}

/**
 * Image coordinates (x along a row, y down a column; pixel centres at +0.5, as Cornerstone's)
 * to patient mm. Cornerstone3D's `imageToWorldCoords` scales the row direction by
 * `rowPixelSpacing`, the spacing between rows, while its stack viewport draws x at
 * `columnPixelSpacing`: for non-square pixels (MPR planes one row per source slice) the two
 * disagree and overlays land off the image. Here x goes with `columnPixelSpacing`.
 */
export function imageToWorld(id: string, [x, y]: [number, number]): Types.Point3 | undefined {
  const m = planeModule(id);
  if (!m) return undefined;
  const across = m.columnPixelSpacing || 1;
  const down = m.rowPixelSpacing || 1;
  return [0, 1, 2].map(
    (a) => (m.imagePositionPatient[a] ?? 0) + (m.rowCosines[a] ?? 0) * across * (x - 0.5) + (m.columnCosines[a] ?? 0) * down * (y - 0.5),
  ) as Types.Point3;
}

/** Patient mm to image coordinates, the inverse of `imageToWorld`. */
export function worldToImage(id: string, world: Types.Point3 | number[]): [number, number] | undefined {
  const m = planeModule(id);
  if (!m) return undefined;
  const across = m.columnPixelSpacing || 1;
  const down = m.rowPixelSpacing || 1;
  const d = [0, 1, 2].map((a) => (world[a] ?? 0) - (m.imagePositionPatient[a] ?? 0));
  const along = (v: number[]) => d.reduce((s, x, a) => s + x * (v[a] ?? 0), 0);
  return [along(m.rowCosines) / across + 0.5, along(m.columnCosines) / down + 0.5];
}
