// The review workflow's rules as the screen applies them (the same rules are enforced again in
// Rust, which refuses anything out of order): which actions a finding offers when, sign-off
// gating, commit-then-reveal ordering, colours and masks. No window needed: unit-tested.

import type {
  Action,
  DeidSettings,
  DecisionView_Serialize,
  FindingView_Serialize,
  Geometry,
  LabelInfo,
  MaskSlice,
  RejectReason,
  Role,
  StudyReview_Serialize,
} from "../bindings";

export type Review = StudyReview_Serialize;
export type FindingView = FindingView_Serialize;
export type DecisionView = DecisionView_Serialize;

export const REJECT_REASONS: { value: RejectReason; label: string }[] = [
  { value: "anatomical_structure", label: "Anatomical structure" },
  { value: "artefact", label: "Artefact" },
  { value: "benign_or_known", label: "Benign / known" },
  { value: "outside_intended_use", label: "Outside intended use" },
  { value: "other", label: "Other (say why)" },
];

export const ACTION_TEXT: Record<Action, string> = {
  confirm: "Confirmed",
  edit: "Edited",
  reject: "Rejected",
  add: "Added",
};

/** Where the reading of the open study stands. */
export type Phase =
  /** No reader profile chosen: nothing can be decided. */
  | "no-reader"
  /** QA readers review decisions; they do not make them. */
  | "qa"
  /** Signed off: read-only. */
  | "signed-off"
  /** Commit-then-reveal: the reader's own impression comes first. */
  | "impression-needed"
  /** Commit-then-reveal: impression recorded, results (once analysed) wait for the reveal. */
  | "awaiting-reveal"
  | "reviewing";

export interface PhaseInput {
  role: Role | null;
  review: Review | null;
  commitThenReveal: boolean;
}

export function phase({ role, review, commitThenReveal }: PhaseInput): Phase {
  if (review?.sign_off) return "signed-off";
  if (role === null) return "no-reader";
  if (role === "qa") return "qa";
  if (review?.impression_before_ai != null && !review.ai_revealed) return "awaiting-reveal";
  if (commitThenReveal && review?.impression_before_ai == null && !review?.ai_revealed && (review?.findings.length ?? 0) === 0)
    return "impression-needed";
  return "reviewing";
}

/** AI overlays and findings are on screen only once any commit-then-reveal step is done. */
export function aiVisible(p: Phase): boolean {
  return p === "reviewing" || p === "signed-off" || p === "qa" || p === "no-reader";
}

/** Whether Analyse may run now. */
export function canAnalyse(p: Phase): boolean {
  return p === "reviewing" || p === "awaiting-reveal";
}

/** The actions a finding offers in this phase. */
export function allowedActions(f: FindingView, p: Phase): Action[] {
  if (p !== "reviewing") return [];
  if (f.finding_id === null) return ["add"]; // an added finding can be redrawn
  return ["confirm", "edit", "reject"];
}

/** Sign-off needs a decision on every AI finding and at least one analysis. */
export function signOffGate(review: Review | null, p: Phase): { allowed: boolean; reason: string } {
  if (p === "signed-off") return { allowed: false, reason: "Signed off: read-only." };
  if (p !== "reviewing") return { allowed: false, reason: "Choose a radiologist or clinician profile, and reveal the AI results." };
  if (!review || review.analyses.length === 0) return { allowed: false, reason: "Run a model on the study first." };
  if (review.undecided > 0)
    return {
      allowed: false,
      reason: `${review.undecided} AI finding${review.undecided === 1 ? "" : "s"} still need${review.undecided === 1 ? "s" : ""} a decision.`,
    };
  return { allowed: true, reason: "" };
}

/** The geometry on screen: the edited one when a finding was edited. */
export function shownGeometry(f: FindingView): Geometry {
  return f.decision?.geometry ?? f.geometry;
}

/** A stable key for a finding row. */
export function findingKey(f: FindingView): string {
  return f.finding_id !== null ? `f${f.finding_id}` : `a${f.decision?.id ?? 0}`;
}

/** The slice to jump to for a finding: the middle of its slice range. */
export function findingSlice(f: FindingView): number {
  const [a, b] = shownGeometry(f).slices;
  return Math.round((a + b) / 2);
}

/** The next (or previous) finding in list order, wrapping; the first when none is current. */
export function stepFinding(list: FindingView[], current: string | null, by: 1 | -1): FindingView | undefined {
  if (list.length === 0) return undefined;
  const i = list.findIndex((f) => findingKey(f) === current);
  if (i < 0) return by === 1 ? list[0] : list[list.length - 1];
  return list[(i + by + list.length) % list.length];
}

export function sizeText(g: Geometry, slices: number): string {
  const d = g.longest_diameter_mm ?? 0;
  const parts = [`${d.toFixed(1)} mm`];
  if (g.slices[0] === g.slices[1]) parts.push(`${(g.area_mm2 ?? 0).toFixed(0)} mm²`);
  else parts.push(`${(g.volume_mm3 ?? 0).toFixed(0)} mm³`);
  const range = g.slices[0] === g.slices[1] ? `Im ${g.slices[0] + 1}` : `Im ${g.slices[0] + 1}–${g.slices[1] + 1}`;
  return `${parts.join(", ")} · ${range}${slices ? `/${slices}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// Colours

export type Palette = "standard" | "cvd";
export type Rgba = [number, number, number, number];

/**
 * Okabe–Ito: eight colours that stay distinct for protanopia, deuteranopia and tritanopia
 * (Okabe & Ito, "Color Universal Design", 2002). Used by label order in the "cvd" palette.
 */
export const OKABE_ITO: Rgba[] = [
  [230, 159, 0, 255],
  [86, 180, 233, 255],
  [0, 158, 115, 255],
  [240, 228, 66, 255],
  [0, 114, 178, 255],
  [213, 94, 0, 255],
  [204, 121, 167, 255],
  [255, 255, 255, 255],
];

/** Colour of reader-added findings (not a model label): white in both palettes. */
export const ADDED_COLOUR: Rgba = [255, 255, 255, 255];

export function labelColour(label: string, labels: LabelInfo[], palette: Palette): Rgba {
  const i = labels.findIndex((l) => l.name === label);
  if (i < 0) return ADDED_COLOUR;
  if (palette === "cvd") return OKABE_ITO[i % (OKABE_ITO.length - 1)] ?? ADDED_COLOUR;
  const c = labels[i]?.color;
  return c ? [c[0], c[1], c[2], c[3]] : ADDED_COLOUR;
}

export function css([r, g, b]: Rgba, alpha = 1): string {
  return `rgba(${String(r)}, ${String(g)}, ${String(b)}, ${String(alpha)})`;
}

/**
 * Heatmap colours: transparent below 0.2, then blue → cyan → yellow → red with rising opacity
 * (a "jet"-like ramp, as radiology AI heatmaps are usually shown).
 */
export function heatColour(value: number): Rgba {
  const v = value / 255;
  if (v < 0.2) return [0, 0, 0, 0];
  const t = (v - 0.2) / 0.8;
  const stops: [number, number, number][] = [
    [0, 0, 255],
    [0, 255, 255],
    [255, 255, 0],
    [255, 0, 0],
  ];
  const x = t * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const a = stops[i] ?? [0, 0, 0];
  const b = stops[i + 1] ?? [0, 0, 0];
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
    Math.round(80 + 175 * t),
  ];
}

// ---------------------------------------------------------------------------------------------
// Masks

/** Sets `value` on the pixels of one slice's runs. */
export function paintRuns(runs: [number, number][], target: Uint8Array, value = 1): void {
  for (const [start, len] of runs) target.fill(value, start, Math.min(start + len, target.length));
}

/** Runs `[start, length]` of the set pixels of a bitmap. */
export function toRuns(bitmap: Uint8Array): [number, number][] {
  const runs: [number, number][] = [];
  let start = -1;
  for (let i = 0; i <= bitmap.length; i++) {
    const on = i < bitmap.length && bitmap[i] !== 0;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      runs.push([start, i - start]);
      start = -1;
    }
  }
  return runs;
}

/** The slice's mask of a geometry as a bitmap (rows × columns), or null if it has none there. */
export function sliceBitmap(g: Geometry, slice: number, rows: number, columns: number): Uint8Array | null {
  const m = g.mask.find((s) => s.slice === slice);
  if (!m) return null;
  const bitmap = new Uint8Array(rows * columns);
  paintRuns(m.runs, bitmap);
  return bitmap;
}

/** Pixels of the mask with a 4-neighbour outside it: the crisp outline. */
export function outline(mask: Uint8Array, rows: number, columns: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) {
      const i = r * columns + c;
      if (!mask[i]) continue;
      if (r === 0 || c === 0 || r === rows - 1 || c === columns - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - columns] || !mask[i + columns])
        out[i] = 1;
    }
  }
  return out;
}

/** Paints (or erases) a disc of `radius` pixels at (row, column). */
export function brush(mask: Uint8Array, rows: number, columns: number, row: number, column: number, radius: number, value: 0 | 1): void {
  const r2 = radius * radius;
  for (let r = Math.max(0, Math.floor(row - radius)); r <= Math.min(rows - 1, Math.ceil(row + radius)); r++) {
    for (let c = Math.max(0, Math.floor(column - radius)); c <= Math.min(columns - 1, Math.ceil(column + radius)); c++) {
      if ((r - row) ** 2 + (c - column) ** 2 <= r2) mask[r * columns + c] = value;
    }
  }
}

/** An edited mask (slice → bitmap) as the decision's mask, empty slices left out. */
export function toMaskSlices(edited: Map<number, Uint8Array>): MaskSlice[] {
  return [...edited.entries()]
    .sort(([a], [b]) => a - b)
    .map(([slice, bitmap]) => ({ slice, runs: toRuns(bitmap) }))
    .filter((m) => m.runs.length > 0);
}

/** The bitmaps of every slice of a geometry, for editing. */
export function bitmaps(g: Geometry, rows: number, columns: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (const m of g.mask) {
    const b = new Uint8Array(rows * columns);
    paintRuns(m.runs, b);
    out.set(m.slice, b);
  }
  return out;
}

/** Percentile (0–100) of a list of numbers (nearest rank); NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

/** De-identification by PS3.15's Basic Profile alone: dates removed, no option. */
export const BASIC_PROFILE: DeidSettings = {
  dates: "removed",
  retain_uids: false,
  retain_device: false,
  retain_institution: false,
  retain_patient_characteristics: false,
  clean_descriptors: false,
  clean_structured_content: false,
  clean_recognizable_visual_features: false,
};
