// The hanging rule against hand-made trees: current left, prior right, matching series.

import { describe, expect, it } from "vitest";
import type { SeriesNode, StudyNode, StudyTree } from "../bindings";
import { hang, likeness } from "./hanging";

let keys = 0;
function series(modality: string, description: string, images: number, uid = `uid-${keys}`): SeriesNode {
  keys += 1;
  return { key: keys - 1, uid, number: keys, modality, description, images, stacks: images > 0 ? [{ index: 0, label: "", rows: 512, columns: 512, slices: images, warnings: [] }] : [] };
}
function study(date: string, list: SeriesNode[], patient = "P1"): StudyNode {
  return { patient_name: "Test^Patient", patient_id: patient, uid: `2.25.${date}`, date, description: "", accession_number: "", series: list };
}
const tree = (studies: StudyNode[]): StudyTree => ({ studies, problems: [], files_scanned: 0, skipped: 0 });

describe("hanging a prior", () => {
  it("puts the latest study left and the matching series of the one before it right", () => {
    keys = 0;
    const prior = study("20250601", [series("CT", "Chest 5mm", 60), series("CT", "Chest lung 1mm", 300), series("SR", "Dose report", 0)]);
    const current = study("20260101", [series("CT", "Scout", 2), series("CT", "Chest lung 1.25mm", 280, "now")]);
    const older = study("20240101", [series("CT", "Chest lung 1mm", 300)]);
    const h = hang(tree([prior, current, older]), "now");
    expect(h).toEqual({ currentStudy: 1, priorStudy: 0, current: { series: 4, stack: 0 }, prior: { series: 1, stack: 0 } });
  });

  it("keeps the series on screen on a tie of dates, and works with one study", () => {
    keys = 0;
    const a = study("20260101", [series("CT", "A", 10, "a")]);
    const b = study("20260101", [series("CT", "A", 10, "b")]);
    expect(hang(tree([a, b]), "b")).toMatchObject({ currentStudy: 1, priorStudy: 0 });
    expect(hang(tree([a]), null)).toEqual({ currentStudy: 0, priorStudy: null, current: { series: 0, stack: 0 }, prior: null });
  });

  it("refuses studies of different patients, and prefers the same modality", () => {
    keys = 0;
    const a = study("20260101", [series("CT", "Chest", 100)]);
    const b = study("20250101", [series("CT", "Chest", 100)], "P2");
    expect(hang(tree([a, b]), null)).toEqual({ error: expect.stringMatching(/different patients/) as unknown });
    // Without patient IDs nobody can tell: refused too.
    const blank = study("20250101", [series("CT", "Chest", 100)], "");
    expect(hang(tree([a, blank]), null)).toEqual({ error: expect.stringMatching(/without a patient ID/) as unknown });
    const ct = series("CT", "Chest", 100);
    expect(likeness(ct, series("MR", "Chest", 100))).toBe(-1);
    expect(likeness(ct, series("CT", "Chest", 100))).toBe(3);
    expect(likeness(ct, series("CT", "Abdomen", 50))).toBe(0.5);
  });
});
