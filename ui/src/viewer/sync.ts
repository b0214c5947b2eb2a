// Synchronised scrolling of two stacks: by patient position when they share a frame of
// reference, else keeping the offset between them that was on screen when the link was made
// (the reader lines them up by hand first, as in every PACS viewer).

import { cross, directions, dot, referenceLine, unit, type Plane, type Vec3 } from "./planes";
import type { View } from "./view";

export interface Link {
  /** The axis both stacks are scrolled along (the first stack's normal). */
  normal: Vec3;
  /** Position of the second stack minus the first's, along `normal` (mm). */
  offset: number;
  sameFrame: boolean;
}

export function stackNormal(v: View): Vec3 {
  return unit(cross(...directions(v.orientation)));
}

/** Where slice `slice` lies along `n` (mm). */
export function positionAlong(v: View, slice: number, n: Vec3): number {
  const p = v.positions[slice];
  return p ? dot(p, n) : Number.NaN;
}

/** The slice of `v` nearest position `at` along `n`. */
export function nearestSlice(v: View, at: number, n: Vec3): number {
  let best = 0;
  let gap = Infinity;
  v.positions.forEach((p, k) => {
    const d = Math.abs(dot(p, n) - at);
    if (d < gap) {
      gap = d;
      best = k;
    }
  });
  return best;
}

/** Why two stacks cannot scroll together, or null when they can. */
export function linkRefusal(a: View, b: View): string | null {
  for (const v of [a, b]) {
    if (v.slices < 2) return "one of the two is a single image";
    if (!v.spacingKnown || v.positions.some((p) => p.some((x) => !Number.isFinite(x)))) return "one of the two has no patient positions";
  }
  if (Math.abs(dot(stackNormal(a), stackNormal(b))) < 0.99) return "the two stacks' planes are not parallel";
  return null;
}

/** Links stack `a` at slice `ka` with stack `b` at slice `kb` (see `linkRefusal` first). */
export function link(a: View, ka: number, b: View, kb: number): Link {
  const normal = stackNormal(a);
  const sameFrame = a.frameOfReference !== "" && a.frameOfReference === b.frameOfReference;
  return { normal, sameFrame, offset: sameFrame ? 0 : positionAlong(b, kb, normal) - positionAlong(a, ka, normal) };
}

/** The slice of `to` that goes with slice `k` of `from`; `fromFirst` when `from` is the
 * link's first stack. */
export function follow(l: Link, from: View, k: number, to: View, fromFirst: boolean): number {
  const at = positionAlong(from, k, l.normal) + (fromFirst ? l.offset : -l.offset);
  return nearestSlice(to, at, l.normal);
}

/**
 * Which pane leads: a pane the link sent to a slice follows (and does not lead) until it gets
 * there, or for `patienceMs` when it never does (its move was overtaken by a newer one), so that
 * two stacks of different spacing do not pull each other back and forth.
 */
export class Followers {
  private sent = new Map<number, { slice: number; at: number }>();
  constructor(
    private readonly patienceMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Pane `pane` was sent to `slice`. */
  send(pane: number, slice: number): void {
    this.sent.set(pane, { slice, at: this.now() });
  }

  /** Pane `pane` showed `slice`: whether that move leads (the other pane should follow). */
  leads(pane: number, slice: number): boolean {
    const s = this.sent.get(pane);
    if (s && this.now() - s.at < this.patienceMs) {
      if (s.slice === slice) this.sent.delete(pane);
      return false;
    }
    this.sent.delete(pane);
    return true;
  }
}

/** The image plane of slice `k` of a stack (null without geometry). */
export function slicePlane(v: View, k: number): Plane | null {
  const p = v.positions[k];
  if (!p || !v.spacingKnown) return null;
  const [row, column] = directions(v.orientation);
  return { origin: p, row, column, spacing: v.pixelSpacing, rows: v.rows, columns: v.columns };
}

/** Whether stack `b`'s planes can be drawn as reference lines on stack `a`: the same frame of
 * reference (so the same patient coordinates) and planes that cross. */
export function crosses(a: View, b: View): boolean {
  return a.frameOfReference !== "" && a.frameOfReference === b.frameOfReference && Math.abs(dot(stackNormal(a), stackNormal(b))) < 0.99;
}

/** The reference lines on pane `i` (at slice `k`): the current plane of every other pane whose
 * stack crosses it, in pane `i`'s pixels. */
export function paneReferenceLines(views: (View | null)[], slices: number[], i: number, k: number): { from: [number, number]; to: [number, number] }[] {
  const here = views[i];
  const plane = here ? slicePlane(here, k) : null;
  if (!here || !plane) return [];
  return views.flatMap((v, j) => {
    if (j === i || !v || !crosses(here, v)) return [];
    const other = slicePlane(v, slices[j] ?? 0);
    const line = other ? referenceLine(other, plane) : null;
    return line ? [line] : [];
  });
}
