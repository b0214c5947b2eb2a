// Plane maths for MPR, reference lines and slabs, in DICOM patient coordinates (LPS, mm).
//
// An image plane is DICOM's: the centre of its top-left pixel (`origin`, Image Position), the
// direction of increasing column index (`row`, the first three values of Image Orientation),
// the direction of increasing row index (`column`), and the spacing between rows and between
// columns (`spacing`, Pixel Spacing's order). Pixel (i, j) is column i, row j:
//   P = origin + row · spacing[1] · i + column · spacing[0] · j
// Everything here is pure and unit-free beyond mm, so that the viewer, the reformatter's
// callers and the tests agree on one convention.

export type Vec3 = [number, number, number];

export interface Plane {
  origin: Vec3;
  row: Vec3;
  column: Vec3;
  /** Between rows, between columns (mm). */
  spacing: [number, number];
  rows: number;
  columns: number;
}

export const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const scale = (a: Vec3, s: number): Vec3 => [a[0] * s, a[1] * s, a[2] * s];
export const cross = (a: Vec3, b: Vec3): Vec3 => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];
export const norm = (a: Vec3): number => Math.sqrt(dot(a, a));
export const unit = (a: Vec3): Vec3 => scale(a, 1 / norm(a));

/** The plane's normal: row × column (for an axial slice of a head-first supine patient, +S). */
export function normal(p: Plane): Vec3 {
  return unit(cross(p.row, p.column));
}

/** The patient point of pixel (i, j) (column i, row j; fractional allowed). */
export function planeToPatient(p: Plane, i: number, j: number): Vec3 {
  return add(p.origin, add(scale(p.row, p.spacing[1] * i), scale(p.column, p.spacing[0] * j)));
}

/** A patient point in the plane's pixels: column `i`, row `j`, and its signed distance from
 * the plane along the normal (`depth`, mm). Row and column directions need not be orthogonal
 * only if the caller accepts the projection; DICOM's are. */
export function patientToPlane(p: Plane, point: Vec3): { i: number; j: number; depth: number } {
  const d = sub(point, p.origin);
  return {
    i: dot(d, p.row) / p.spacing[1],
    j: dot(d, p.column) / p.spacing[0],
    depth: dot(d, normal(p)),
  };
}

/** Where plane `a` cuts image `b`: a segment in `b`'s pixel coordinates, clipped to `b`'s
 * image (pixel edges: −0.5 … columns − 0.5), or null when they are parallel or the line misses
 * the image. This is the reference line of `a` drawn on `b`. */
export function referenceLine(
  a: Plane,
  b: Plane,
): { from: [number, number]; to: [number, number] } | null {
  const n = normal(a);
  // n · (P(i, j) − a.origin) = 0  ⇔  ci · i + cj · j + c0 = 0
  const ci = dot(n, b.row) * b.spacing[1];
  const cj = dot(n, b.column) * b.spacing[0];
  const c0 = dot(n, sub(b.origin, a.origin));
  const size = Math.hypot(ci, cj);
  if (size < 1e-9 * Math.max(b.spacing[0], b.spacing[1], 1)) return null;
  const [x0, x1, y0, y1] = [-0.5, b.columns - 0.5, -0.5, b.rows - 0.5];
  // A point on the line and its direction, then Liang–Barsky against the rectangle.
  const p: [number, number] = [(-c0 * ci) / (size * size), (-c0 * cj) / (size * size)];
  const d: [number, number] = [-cj / size, ci / size];
  let t0 = -Infinity;
  let t1 = Infinity;
  const clip = (q: number, r: number): boolean => {
    // Keep t with q + r·t ≥ 0.
    if (Math.abs(r) < 1e-12) return q >= 0;
    const t = -q / r;
    if (r > 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    return true;
  };
  if (
    !clip(p[0] - x0, d[0]) ||
    !clip(x1 - p[0], -d[0]) ||
    !clip(p[1] - y0, d[1]) ||
    !clip(y1 - p[1], -d[1]) ||
    t0 > t1
  ) {
    return null;
  }
  return {
    from: [p[0] + d[0] * t0, p[1] + d[1] * t0],
    to: [p[0] + d[0] * t1, p[1] + d[1] * t1],
  };
}

/** Image Orientation (Patient)'s six numbers as the row and column directions. */
export function directions(o: readonly [number, number, number, number, number, number]): [Vec3, Vec3] {
  return [
    [o[0], o[1], o[2]],
    [o[3], o[4], o[5]],
  ];
}

/** The slices of a stack (their positions) that a slab `thickness` mm thick, centred on
 * slice `center`, takes in: every slice whose plane lies within half the thickness of the
 * centre's along the stack's normal (a slab thinner than one slice takes the centre only).
 * Returns the first and last index, inclusive, in stack order. */
export function slabSlices(
  positions: Vec3[],
  orientation: [number, number, number, number, number, number],
  center: number,
  thickness: number,
): [number, number] {
  const n = unit(cross(...directions(orientation)));
  const at = positions.map((p) => dot(p, n));
  const half = thickness / 2 + 1e-6;
  const mid = at[center] ?? Number.NaN;
  const near = (k: number): boolean => Math.abs((at[k] ?? Number.NaN) - mid) <= half;
  let first = center;
  let last = center;
  while (first > 0 && near(first - 1)) first -= 1;
  while (last < positions.length - 1 && near(last + 1)) last += 1;
  return [first, last];
}

/** The sample offsets (mm along the normal) of a slab `thickness` mm thick sampled every
 * `step` mm, centred on 0: one sample for a slab up to one step, else ⌈thickness/step⌉
 * samples spread evenly over it. */
export function slabOffsets(thickness: number, step: number): number[] {
  const n = thickness <= step ? 1 : Math.ceil(thickness / step - 1e-9);
  if (n === 1) return [0];
  const gap = thickness / n;
  return Array.from({ length: n }, (_, k) => (k - (n - 1) / 2) * gap);
}

/** Patient direction letters of a vector, strongest first, up to two (as the Rust side labels
 * stacks): L/R, P/A, S/I; a component under 0.25 of the unit vector is not named. */
export function directionLabel(v: Vec3): string {
  const u = unit(v);
  const axes: [number, string][] = [
    [u[0], u[0] > 0 ? "L" : "R"],
    [u[1], u[1] > 0 ? "P" : "A"],
    [u[2], u[2] > 0 ? "S" : "I"],
  ];
  return axes
    .sort((a, b) => Math.abs(b[0]) - Math.abs(a[0]))
    .slice(0, 2)
    .filter(([c]) => Math.abs(c) > 0.25)
    .map(([, letter]) => letter)
    .join("");
}

/** The letters at the four edges of a plane's image. */
export function edgeLabels(p: Plane): { left: string; right: string; top: string; bottom: string } {
  return {
    left: directionLabel(scale(p.row, -1)),
    right: directionLabel(p.row),
    top: directionLabel(scale(p.column, -1)),
    bottom: directionLabel(p.column),
  };
}

export type MprView = "axial" | "coronal" | "sagittal";

/** The three orthogonal planes through `center` as radiologists view them: axial seen from the
 * feet (patient's right on screen left, anterior up), coronal from the front (right on the
 * left, superior up), sagittal from the patient's left (anterior on the left, superior up).
 * Each is `size` mm square, sampled every `step` mm, centred on `center`. */
export function mprPlane(view: MprView, center: Vec3, size: number, step: number): Plane {
  const dirs: Record<MprView, [Vec3, Vec3]> = {
    axial: [[1, 0, 0], [0, 1, 0]],
    coronal: [[1, 0, 0], [0, 0, -1]],
    sagittal: [[0, 1, 0], [0, 0, -1]],
  };
  const [row, column] = dirs[view];
  const n = Math.max(1, Math.round(size / step));
  const half = ((n - 1) / 2) * step;
  return {
    origin: sub(center, add(scale(row, half), scale(column, half))),
    row,
    column,
    spacing: [step, step],
    rows: n,
    columns: n,
  };
}

/** A plane turned by `degrees` about the axis through pixel (ci, cj) along its normal (an
 * oblique plane from rotating the crosshairs): the image keeps its size and spacing; the
 * point at (ci, cj) stays where it was. Positive turns the row direction towards the column
 * direction. */
export function rotateInPlane(p: Plane, degrees: number, ci: number, cj: number): Plane {
  const a = (degrees * Math.PI) / 180;
  const [c, s] = [Math.cos(a), Math.sin(a)];
  const row = add(scale(p.row, c), scale(p.column, s));
  const column = add(scale(p.row, -s), scale(p.column, c));
  const pivot = planeToPatient(p, ci, cj);
  const turned = { ...p, row, column };
  const moved = planeToPatient({ ...turned, origin: [0, 0, 0] }, ci, cj);
  return { ...turned, origin: sub(pivot, moved) };
}

/** A plane turned by `degrees` about an axis through `pivot` along `axis` (unit): the other
 * MPR planes when the crosshairs in one view are rotated about that view's normal. Rodrigues'
 * rotation of the directions and the origin about the pivot. */
export function rotateAbout(p: Plane, axis: Vec3, degrees: number, pivot: Vec3): Plane {
  const k = unit(axis);
  const a = (degrees * Math.PI) / 180;
  const [c, s] = [Math.cos(a), Math.sin(a)];
  const turn = (v: Vec3): Vec3 =>
    add(add(scale(v, c), scale(cross(k, v), s)), scale(k, dot(k, v) * (1 - c)));
  return {
    ...p,
    origin: add(pivot, turn(sub(p.origin, pivot))),
    row: turn(p.row),
    column: turn(p.column),
  };
}

/** The distance in mm between two pixels of a plane (a length drawn on it): non-square
 * pixels count each axis at its own spacing. */
export function lengthMm(p: Plane, a: [number, number], b: [number, number]): number {
  return norm(sub(planeToPatient(p, b[0], b[1]), planeToPatient(p, a[0], a[1])));
}

/** The distance in mm, measured within plane `p`, from a point of `p` to the line where plane
 * `q` cuts it (infinity when they are parallel). */
export function distanceToCut(p: Plane, q: Plane, point: Vec3): number {
  const n = normal(q);
  const along = dot(n, normal(p));
  const within = Math.sqrt(Math.max(0, 1 - along * along));
  return within < 1e-6 ? Infinity : Math.abs(dot(n, sub(point, q.origin))) / within;
}

/** What a press at `point` on plane `p` takes hold of with the crosshairs tool, given the
 * crosshair centre and the other planes: one of their lines, when the press is on it (within
 * `grip` mm) and well away from the centre (beyond `reach` mm), turns the planes about `p`'s
 * normal; anywhere else the press moves the centre. */
export function crosshairGrab(p: Plane, center: Vec3, others: Plane[], point: Vec3, grip: number, reach: number): "turn" | "move" {
  const n = normal(p);
  const offset = sub(point, center);
  if (norm(sub(offset, scale(n, dot(offset, n)))) <= reach) return "move";
  return others.some((q) => distanceToCut(p, q, point) <= grip) ? "turn" : "move";
}

/** The turn in degrees about `axis` (unit), through `center`, that carries the direction of
 * `from` to that of `to` (both seen along the axis): the right-hand rotation `rotateAbout`
 * takes. */
export function turnAngle(axis: Vec3, center: Vec3, from: Vec3, to: Vec3): number {
  const flat = (v: Vec3): Vec3 => sub(v, scale(axis, dot(v, axis)));
  const [a, b] = [flat(sub(from, center)), flat(sub(to, center))];
  return (Math.atan2(dot(axis, cross(a, b)), dot(a, b)) * 180) / Math.PI;
}
