// MPR as virtual stacks: each view (axial, coronal, sagittal, or oblique after rotating the
// crosshairs) is a stack of parallel planes through the loaded volume, one finest voxel step
// apart along its normal, that the shell reformats on request (`plane/…`). The stack's planes
// are DICOM image planes (see planes.ts), so Cornerstone's tools measure on them in mm and
// findings of the source stack are resampled onto them here.

import type { Geometry, MaskSlice } from "../bindings";
import { bitmaps, toRuns } from "../review/logic";
import { add, cross, directions, dot, edgeLabels, norm, planeToPatient, scale, sub, unit, type MprView, type Plane, type Vec3 } from "./planes";
import type { View } from "./view";

/** The source stack as a volume: voxel (column i, row j, slice k) is at
 * `origin + row·spacing[1]·i + column·spacing[0]·j + sliceStep·k`. */
export interface Volume {
  origin: Vec3;
  row: Vec3;
  column: Vec3;
  spacing: [number, number];
  sliceStep: Vec3;
  slices: number;
  rows: number;
  columns: number;
}

/** Why a stack cannot be reformatted, or null when it can. */
export function mprRefusal(view: View): string | null {
  if (view.format === "rgb8") return "MPR needs a greyscale stack";
  if (view.slices < 3) return "MPR needs a stack of at least 3 slices";
  if (!view.spacingKnown) return "MPR needs the pixel spacing, which this series does not give";
  if (view.positions.some((p) => p.some((x) => !Number.isFinite(x)))) return "MPR needs each slice's position";
  return volumeOf(view) ? null : "the slices of this stack do not span a volume";
}

export function volumeOf(view: View): Volume | null {
  const first = view.positions[0];
  const last = view.positions[view.slices - 1];
  if (!first || !last || view.slices < 2) return null;
  const [row, column] = directions(view.orientation);
  const v: Volume = {
    origin: first,
    row,
    column,
    spacing: view.pixelSpacing,
    sliceStep: scale(sub(last, first), 1 / (view.slices - 1)),
    slices: view.slices,
    rows: view.rows,
    columns: view.columns,
  };
  return Math.abs(determinant(axes(v))) > 1e-9 ? v : null;
}

/** The volume's three voxel steps (mm vectors): along i, j and k. */
function axes(v: Volume): [Vec3, Vec3, Vec3] {
  return [scale(v.row, v.spacing[1]), scale(v.column, v.spacing[0]), v.sliceStep];
}

function determinant([a, b, c]: [Vec3, Vec3, Vec3]): number {
  return dot(a, cross(b, c));
}

export function voxelToPatient(v: Volume, i: number, j: number, k: number): Vec3 {
  const [a, b, c] = axes(v);
  return add(v.origin, add(scale(a, i), add(scale(b, j), scale(c, k))));
}

/** Continuous voxel coordinates (i, j, k) of a patient point (Cramer's rule: the slice step
 * need not be along the normal). */
export function patientToVoxel(v: Volume, p: Vec3): Vec3 {
  const [a, b, c] = axes(v);
  const d = sub(p, v.origin);
  const det = determinant([a, b, c]);
  return [dot(d, cross(b, c)) / det, dot(d, cross(c, a)) / det, dot(d, cross(a, b)) / det];
}

/** The centres of the volume's eight corner voxels. */
export function corners(v: Volume): Vec3[] {
  const out: Vec3[] = [];
  for (const k of [0, v.slices - 1]) for (const j of [0, v.rows - 1]) for (const i of [0, v.columns - 1]) out.push(voxelToPatient(v, i, j, k));
  return out;
}

/** How far along unit direction `d` one voxel step is taken by the fastest-changing index. */
export function stepAlong(v: Volume, d: Vec3): number {
  const [a, b, c] = axes(v);
  const det = determinant([a, b, c]);
  const per = [dot(d, cross(b, c)) / det, dot(d, cross(c, a)) / det, dot(d, cross(a, b)) / det];
  return 1 / Math.max(...per.map(Math.abs));
}

/** The three views, in the MPR layout's order. */
export const MPR_VIEWS: readonly MprView[] = ["axial", "coronal", "sagittal"];

/** The row and column directions of the standard views (planes.ts's convention). */
export const MPR_AXES: Record<MprView, [Vec3, Vec3]> = {
  axial: [
    [1, 0, 0],
    [0, 1, 0],
  ],
  coronal: [
    [1, 0, 0],
    [0, 0, -1],
  ],
  sagittal: [
    [0, 1, 0],
    [0, 0, -1],
  ],
};

/** The standard view (index into `MPR_VIEWS`) nearest parallel to the source's slices: the one
 * whose images are the study's own (axial for an axial CT, sagittal for a sagittal MR). */
export function parallelView(v: Volume): number {
  const n = unit(cross(v.row, v.column));
  const along = MPR_VIEWS.map((name) => {
    const [r, c] = MPR_AXES[name];
    return Math.abs(dot(n, cross(r, c)));
  });
  // A degenerate orientation (NaN throughout) has no nearest view: the first.
  return Math.max(0, along.indexOf(Math.max(...along)));
}

/** A view's planes: image k is the plane through `origin + normal·step·k`. */
export interface MprStack {
  view: MprView;
  oblique: boolean;
  row: Vec3;
  column: Vec3;
  normal: Vec3;
  origin: Vec3;
  /** Between rows, between columns (mm; Pixel Spacing's order). Not always square: see
   * `mprStack`. */
  spacing: [number, number];
  rows: number;
  columns: number;
  count: number;
  /** From one plane to the next along the normal (mm): negative for a view parallel to the
   * source's slices when those run against its normal, so that its image k is the source's. */
  step: number;
}

const MAX_SIDE = 4096;

/** The planes of a view with these directions that cover the volume, one finest voxel step
 * apart along the normal. In the plane, a direction along the source's slice normal (the
 * column of a coronal or sagittal view of an axial series, turned about the axial or not) is
 * sampled as the source is, at its slice spacing, and the viewer stretches those pixels; any
 * other direction at the source's finest in-plane spacing. Sampling the slice direction finer
 * added no information (the planes interpolate linearly between slices either way) and made
 * those planes 3–4 times the pixels to reformat, send and draw. */
export function mprStack(v: Volume, view: MprView, row: Vec3, column: Vec3): MprStack {
  const [r, c] = [unit(row), unit(column)];
  const n = unit(cross(r, c));
  const cs = corners(v);
  const range = (d: Vec3): [number, number] => {
    const at = cs.map((p) => dot(p, d));
    return [Math.min(...at), Math.max(...at)];
  };
  const [r0, r1] = range(r);
  const [c0, c1] = range(c);
  const [n0, n1] = range(n);
  const slices = unit(cross(v.row, v.column));
  const fine = Math.min(v.spacing[0], v.spacing[1]);
  const along = (d: Vec3, extent: number) =>
    Math.max(Math.abs(dot(d, slices)) > 1 - 1e-6 ? stepAlong(v, d) : fine, extent / (MAX_SIDE - 1));
  const across = along(r, r1 - r0);
  const down = along(c, c1 - c0);
  // A view parallel to the source's slices steps from slice to slice in their order (its image k
  // is the source's image k, as the stack viewer and the key images number them, gantry tilt
  // or not); any other view one finest voxel step apart.
  const parallel = Math.abs(dot(n, slices)) > 1 - 1e-6;
  const order = parallel && dot(v.sliceStep, n) < 0 ? -1 : 1;
  const step = order * (parallel ? Math.abs(dot(v.sliceStep, n)) : stepAlong(v, n));
  const count = (lo: number, hi: number, s: number) => Math.max(0, Math.ceil((hi - lo) / s - 1e-6)) + 1;
  const [a, b] = MPR_AXES[view];
  return {
    view,
    oblique: norm(sub(r, a)) > 1e-6 || norm(sub(c, b)) > 1e-6,
    row: r,
    column: c,
    normal: n,
    origin: add(add(scale(r, r0), scale(c, c0)), scale(n, order > 0 ? n0 : n1)),
    spacing: [down, across],
    rows: count(c0, c1, down),
    columns: count(r0, r1, across),
    count: count(n0, n1, Math.abs(step)),
    step,
  };
}

export function planeAt(s: MprStack, k: number): Plane {
  return {
    origin: add(s.origin, scale(s.normal, s.step * k)),
    row: s.row,
    column: s.column,
    spacing: s.spacing,
    rows: s.rows,
    columns: s.columns,
  };
}

/** The plane of the stack nearest a patient point. */
export function indexAt(s: MprStack, p: Vec3): number {
  const k = Math.round(dot(sub(p, s.origin), s.normal) / s.step);
  return Math.max(0, Math.min(s.count - 1, k));
}

/** The plane's position as radiologists read it: along the patient axis nearest its normal
 * (z for axial, y for coronal, x for sagittal), in that axis's own sign. */
export function locationOf(s: MprStack, k: number): number {
  const n = s.normal;
  const major = [0, 1, 2].reduce((m, a) => (Math.abs(n[a] ?? 0) > Math.abs(n[m] ?? 0) ? a : m), 0);
  return dot(planeAt(s, k).origin, n) * Math.sign(n[major] ?? 1);
}

export type SlabMode = "mip" | "minip" | "average";
const MODE_CODE: Record<SlabMode, number> = { mip: 0, minip: 1, average: 2 };

/** The last part of a `plane/…` URL (see the shell's `parse_plane_request`). */
export function planeSpec(p: Plane, slabMm: number, mode: SlabMode): string {
  return [...p.origin, ...p.row, ...p.column, p.spacing[0], p.spacing[1], p.rows, p.columns, slabMm, MODE_CODE[mode]]
    .map((x) => String(Object.is(x, -0) ? 0 : x))
    .join(",");
}

const VIEW_NAME: Record<MprView, string> = { axial: "Axial", coronal: "Coronal", sagittal: "Sagittal" };

/** The View the viewport shows for an MPR stack: the source's window and presets on the
 * stack's planes. */
export function mprView(source: View, s: MprStack, slabMm: number): View {
  const planes = Array.from({ length: s.count }, (_, k) => planeAt(s, k));
  const first = planes[0] ?? planeAt(s, 0);
  return {
    ...source,
    rows: s.rows,
    columns: s.columns,
    slices: s.count,
    pixelSpacing: s.spacing,
    spacingAtDetector: false,
    spacingKnown: true,
    sliceSpacing: Math.abs(s.step),
    sliceThickness: slabMm > 0 ? slabMm : null,
    positions: planes.map((p) => p.origin),
    orientation: [...s.row, ...s.column],
    locations: planes.map((_, k) => locationOf(s, k)),
    markers: edgeLabels(first),
    plane: s.oblique ? `Oblique (from ${VIEW_NAME[s.view].toLowerCase()})` : VIEW_NAME[s.view],
    warnings: [],
  };
}

/**
 * A finding of the source stack resampled onto an MPR stack (nearest voxel): its mask on each
 * plane it crosses, as a Geometry in the plane's pixels. A detection's box is the 3D box of
 * its slices. Null when the finding misses the volume's planes.
 */
export function findingOnStack(g: Geometry, v: Volume, s: MprStack, box: boolean): Geometry | null {
  const [x0, y0, x1, y1] = g.box;
  const [k0, k1] = g.slices;
  const masks = box ? null : bitmaps(g, v.rows, v.columns);
  const inside = (i: number, j: number, k: number): boolean => {
    if (k < k0 || k > k1 || i < x0 || i > x1 || j < y0 || j > y1) return false;
    if (!masks) return true;
    return (masks.get(k)?.[j * v.columns + i] ?? 0) !== 0;
  };
  // The finding's extent on the stack: its voxel box's corners projected.
  const cornersOf: Vec3[] = [];
  for (const k of [k0 - 0.5, k1 + 0.5]) for (const j of [y0 - 0.5, y1 + 0.5]) for (const i of [x0 - 0.5, x1 + 0.5]) cornersOf.push(voxelToPatient(v, i, j, k));
  const span = (f: (p: Vec3) => number, lo: number, hi: number): [number, number] => {
    const at = cornersOf.map(f);
    return [Math.max(lo, Math.floor(Math.min(...at))), Math.min(hi, Math.ceil(Math.max(...at)))];
  };
  const [ka, kb] = span((p) => dot(sub(p, s.origin), s.normal) / s.step, 0, s.count - 1);
  const [ia, ib] = span((p) => dot(sub(p, s.origin), s.row) / s.spacing[1], 0, s.columns - 1);
  const [ja, jb] = span((p) => dot(sub(p, s.origin), s.column) / s.spacing[0], 0, s.rows - 1);
  const mask: MaskSlice[] = [];
  const bound = [Infinity, Infinity, -Infinity, -Infinity];
  for (let k = ka; k <= kb; k++) {
    const plane = planeAt(s, k);
    const bitmap = new Uint8Array(s.rows * s.columns);
    let any = false;
    for (let j = ja; j <= jb; j++) {
      for (let i = ia; i <= ib; i++) {
        const [vi, vj, vk] = patientToVoxel(v, planeToPatient(plane, i, j));
        if (!inside(Math.round(vi), Math.round(vj), Math.round(vk))) continue;
        bitmap[j * s.columns + i] = 1;
        any = true;
        bound[0] = Math.min(bound[0] ?? i, i);
        bound[1] = Math.min(bound[1] ?? j, j);
        bound[2] = Math.max(bound[2] ?? i, i);
        bound[3] = Math.max(bound[3] ?? j, j);
      }
    }
    if (any) mask.push({ slice: k, runs: toRuns(bitmap) });
  }
  const first = mask[0];
  const last = mask.at(-1);
  if (!first || !last) return null;
  return {
    ...g,
    box: [bound[0] ?? 0, bound[1] ?? 0, bound[2] ?? 0, bound[3] ?? 0],
    slices: [first.slice, last.slice],
    mask,
  };
}

/** The patient point under pixel (i, j) of plane k. */
export function pointOn(s: MprStack, k: number, i: number, j: number): Vec3 {
  return planeToPatient(planeAt(s, k), i, j);
}

/**
 * The image of the source stack an MPR plane shows as it is (its slice index), or why it shows
 * none: key images are images of the study, so only a plane parallel to the source slices,
 * through one of them and without a slab, is one.
 */
export function sourceSliceOf(v: Volume, s: MprStack, k: number, slabMm: number): number | { why: string } {
  if (slabMm > 0) return { why: "a slab is not an image of the study: set the slab to none to mark this plane" };
  const n = unit(cross(v.row, v.column));
  if (Math.abs(dot(n, s.normal)) < 1 - 1e-6)
    return { why: "this plane is reformatted, not an image of the study: mark key images in the view parallel to the slices" };
  const at = patientToVoxel(v, planeAt(s, k).origin)[2];
  const j = Math.round(at) + 0; // not -0
  if (Math.abs(at - j) > 0.05 || j < 0 || j >= v.slices) return { why: "this plane lies between the study's slices" };
  return j;
}

/** The point `p` moved along the source slices' normal onto slice `j` (to show that image in MPR). */
export function ontoSourceSlice(v: Volume, p: Vec3, j: number): Vec3 {
  const n = unit(cross(v.row, v.column));
  return add(p, scale(n, dot(sub(voxelToPatient(v, 0, 0, j), p), n)));
}
