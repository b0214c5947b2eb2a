// What the QA charts show, computed from the decisions table: agreement rates per model version
// per day, and reject reasons. Only effective decisions count (a decision superseded by a later
// one is replaced by it), as in `dokuei ledger stats`.

import type { ExportedDecision, TrainingExport } from "../bindings";

export interface RatePoint {
  day: string;
  confirmed: number;
  edited: number;
  rejected: number;
  /** AI findings decided that day. */
  decided: number;
}

export interface VersionSeries {
  model: string;
  points: RatePoint[];
}

export function effective(rows: ExportedDecision[]): ExportedDecision[] {
  const superseded = new Set(rows.map((r) => r.supersedes_id).filter((id): id is number => id !== null));
  return rows.filter((r) => !superseded.has(r.decision_id));
}

/** Confirm / edit / reject rates of each model version per UTC day, days in order. */
export function ratesByVersion(rows: ExportedDecision[]): VersionSeries[] {
  const groups = new Map<string, Map<string, RatePoint>>();
  for (const r of effective(rows)) {
    if (r.action === "add" || r.model_id === "") continue;
    const model = `${r.model_id} ${r.model_version}`;
    const day = r.recorded_at.slice(0, 10);
    const days = groups.get(model) ?? new Map<string, RatePoint>();
    groups.set(model, days);
    const p = days.get(day) ?? { day, confirmed: 0, edited: 0, rejected: 0, decided: 0 };
    days.set(day, p);
    p.decided += 1;
    if (r.action === "confirm") p.confirmed += 1;
    if (r.action === "edit") p.edited += 1;
    if (r.action === "reject") p.rejected += 1;
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([model, days]) => ({ model, points: [...days.values()].sort((a, b) => a.day.localeCompare(b.day)) }));
}

/** How often each reject reason was given (effective rejections). */
export function rejectReasons(rows: ExportedDecision[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const r of effective(rows)) {
    if (r.action !== "reject") continue;
    counts.set(r.reject_reason, (counts.get(r.reject_reason) ?? 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** One line on what a training-data export wrote. */
export function trainingSummary(e: TrainingExport): string {
  const [train, val, test] = e.splits;
  const head = e.cancelled ? "Cancelled: " : "";
  if (e.cases === 0 && !e.cancelled) return `Nothing exported to ${e.folder}.`;
  return (
    `${head}${String(e.cases)} case(s) of ${String(e.patients)} patient(s) written to ${e.folder}` +
    ` (${String(train)} training, ${String(val)} validation, ${String(test)} test):` +
    ` ${String(e.ai_findings)} AI finding(s), ${String(e.rejected)} rejected kept as negatives, ${String(e.added_findings)} added;` +
    ` ${String(e.files)} file(s), ${((e.bytes ?? 0) / 1e6).toFixed(1)} MB${e.identified ? " — IDENTIFIED" : ", de-identified"}.`
  );
}
