// A simple hanging rule for comparison with a prior: the current study (the latest) on the
// left, its prior (the latest before it) on the right, each showing the series that match —
// the series the reader had on screen, and the prior's series of the same modality whose
// description and size are closest to it.

import type { SeriesNode, StudyTree } from "../bindings";

export interface Place {
  series: number;
  stack: number;
}

export interface Hanging {
  /** Index into `tree.studies`. */
  currentStudy: number;
  priorStudy: number | null;
  current: Place;
  prior: Place | null;
}

const words = (s: string): Set<string> => new Set(s.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 0));

/** How alike two series look to a reader: same modality first, then the description's words
 * in common, then the image count. */
export function likeness(a: SeriesNode, b: SeriesNode): number {
  if (a.modality !== b.modality) return -1;
  const [x, y] = [words(a.description), words(b.description)];
  const common = [...x].filter((w) => y.has(w)).length;
  const union = new Set([...x, ...y]).size;
  const text = union === 0 ? 1 : common / union;
  const size = Math.min(a.images, b.images) / Math.max(a.images, b.images, 1);
  return 2 * text + size;
}

/**
 * Hangs the tree's studies; an error when they are not all of one patient (a prior must be
 * the same patient's) or nothing has images. `keepSeriesUid`: the series on screen before,
 * which stays on the left when its study is among the latest.
 */
export function hang(tree: StudyTree, keepSeriesUid: string | null): Hanging | { error: string } {
  const shown = tree.studies.map((s, i) => ({ s, i })).filter(({ s }) => s.series.some((se) => se.stacks.length > 0));
  if (shown.length === 0) return { error: "no study with images is open" };
  const patients = new Set(shown.map(({ s }) => s.patient_id.trim()));
  if (shown.length > 1 && patients.has("")) return { error: "a study without a patient ID cannot be compared: it is not known to be the same patient's" };
  if (patients.size > 1) return { error: "these studies are of different patients (their patient IDs differ): a prior must be the same patient's" };
  const holds = (i: number) => tree.studies[i]?.series.some((se) => se.uid === keepSeriesUid) ?? false;
  const order = [...shown].sort((a, b) => (a.s.date === b.s.date ? Number(holds(b.i)) - Number(holds(a.i)) : a.s.date < b.s.date ? 1 : -1));
  const [first, second] = order;
  if (!first) return { error: "no study with images is open" };
  const withImages = (list: SeriesNode[]) => list.filter((se) => se.stacks.length > 0);
  const currentSeries = withImages(first.s.series).find((se) => se.uid === keepSeriesUid) ?? withImages(first.s.series)[0];
  if (!currentSeries) return { error: "no study with images is open" };
  let prior: Place | null = null;
  if (second) {
    const best = withImages(second.s.series).reduce<SeriesNode | null>((b, se) => (b === null || likeness(currentSeries, se) > likeness(currentSeries, b) ? se : b), null);
    if (best) prior = { series: best.key, stack: 0 };
  }
  return { currentStudy: first.i, priorStudy: second?.i ?? null, current: { series: currentSeries.key, stack: 0 }, prior };
}
