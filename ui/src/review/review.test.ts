import { describe, expect, it } from "vitest";
import type { ExportedDecision, Geometry } from "../bindings";
import {
  aiVisible,
  allowedActions,
  brush,
  canAnalyse,
  findingKey,
  heatColour,
  labelColour,
  OKABE_ITO,
  outline,
  percentile,
  phase,
  signOffGate,
  sliceBitmap,
  stepFinding,
  toMaskSlices,
  toRuns,
  type FindingView,
  type Review,
} from "./logic";
import { drawOverlay, type OverlaySpec, overlayOnSlice } from "./draw";
import type { Rgba } from "./logic";
import { effective, ratesByVersion, rejectReasons, trainingSummary } from "./qa";
import { interval, points } from "./WatchPanel";

const geometry: Geometry = {
  box: [1, 1, 2, 2],
  slices: [3, 5],
  mask: [{ slice: 4, runs: [[5, 2], [9, 2]] }],
  centroid_lps_mm: [0, 0, 0],
  longest_diameter_mm: 2,
  area_mm2: 4,
  volume_mm3: 10,
};

function finding(id: number | null, decided: "confirm" | "reject" | "add" | null = null, score = 0.9): FindingView {
  return {
    finding_id: id,
    analysis_id: 1,
    series_uid: "1.2",
    model_id: "m",
    label: "nodule",
    score: id === null ? null : score,
    image_score: null,
    color: null,
    geometry,
    decision: decided
      ? { id: 100 + (id ?? 0), action: decided, reject_reason: decided === "reject" ? "artefact" : null, reason_text: "", geometry: null, reader_id: 1, recorded_at: "" }
      : null,
  };
}

function review(over: Partial<Review> = {}): Review {
  return {
    study_uid: "1",
    analyses: [{ id: 1, series_uid: "1.2", model_id: "m", model_version: "1", model_sha256: "ab", execution_provider: "CPU", finished_at: "", imported_from: null }],
    findings: [finding(1), finding(2)],
    undecided: 2,
    sign_off: null,
    impression_before_ai: null,
    ai_revealed: false,
    ...over,
  };
}

describe("the decision state machine", () => {
  it("offers decisions only to a radiologist or clinician, before sign-off", () => {
    const f = finding(1);
    expect(allowedActions(f, phase({ role: "radiologist", review: review(), commitThenReveal: false }))).toEqual(["confirm", "edit", "reject"]);
    expect(allowedActions(f, phase({ role: "qa", review: review(), commitThenReveal: false }))).toEqual([]);
    expect(allowedActions(f, phase({ role: null, review: review(), commitThenReveal: false }))).toEqual([]);
    const signed = review({ sign_off: { reader_id: 1, confirmed: 2, edited: 0, rejected: 0, added: 0, impression: "", recorded_at: "" } });
    expect(phase({ role: "radiologist", review: signed, commitThenReveal: false })).toBe("signed-off");
    expect(allowedActions(f, "signed-off")).toEqual([]);
    // An added finding can only be redrawn (a new "add" superseding it).
    expect(allowedActions(finding(null, "add"), "reviewing")).toEqual(["add"]);
  });

  it("gates sign-off on a decision for every AI finding", () => {
    expect(signOffGate(review(), "reviewing")).toEqual({ allowed: false, reason: "2 AI findings still need a decision." });
    expect(signOffGate(review({ undecided: 1 }), "reviewing").reason).toBe("1 AI finding still needs a decision.");
    expect(signOffGate(review({ undecided: 0 }), "reviewing").allowed).toBe(true);
    expect(signOffGate(review({ undecided: 0, analyses: [] }), "reviewing").allowed).toBe(false);
    expect(signOffGate(review({ undecided: 0 }), "qa").allowed).toBe(false);
  });

  it("commit-then-reveal: impression first, then analysis, then the reveal shows the AI", () => {
    const empty = review({ analyses: [], findings: [], undecided: 0 });
    const first = phase({ role: "clinician", review: empty, commitThenReveal: true });
    expect(first).toBe("impression-needed");
    expect(canAnalyse(first)).toBe(false);
    const committed = phase({ role: "clinician", review: { ...empty, impression_before_ai: "yes" }, commitThenReveal: true });
    expect(committed).toBe("awaiting-reveal");
    expect(canAnalyse(committed)).toBe(true);
    expect(aiVisible(committed)).toBe(false);
    const analysed = phase({ role: "clinician", review: review({ impression_before_ai: "yes" }), commitThenReveal: true });
    expect(analysed).toBe("awaiting-reveal");
    expect(allowedActions(finding(1), analysed)).toEqual([]);
    const revealed = phase({ role: "clinician", review: review({ impression_before_ai: "yes", ai_revealed: true }), commitThenReveal: true });
    expect(revealed).toBe("reviewing");
    expect(aiVisible(revealed)).toBe(true);
    // Without the setting nothing waits.
    expect(phase({ role: "clinician", review: empty, commitThenReveal: false })).toBe("reviewing");
  });

  it("steps through findings in list order, wrapping", () => {
    const list = [finding(1), finding(2), finding(null, "add")];
    expect(findingKey(list[2] as FindingView)).toBe("a100");
    expect(stepFinding(list, null, 1)?.finding_id).toBe(1);
    expect(stepFinding(list, "f1", 1)?.finding_id).toBe(2);
    expect(stepFinding(list, "f1", -1)?.finding_id).toBeNull();
    expect(stepFinding([], null, 1)).toBeUndefined();
  });
});

describe("colours", () => {
  const labels = [
    { name: "nodule", color: [255, 64, 64, 255] as [number, number, number, number], threshold: 0.5 },
    { name: "mass", color: [64, 255, 64, 255] as [number, number, number, number], threshold: 0.5 },
  ];
  it("uses the manifest's colours, or Okabe–Ito by label order for colour-vision deficiency", () => {
    expect(labelColour("nodule", labels, "standard")).toEqual([255, 64, 64, 255]);
    expect(labelColour("mass", labels, "cvd")).toEqual(OKABE_ITO[1]);
    expect(labelColour("unknown", labels, "standard")).toEqual([255, 255, 255, 255]);
  });
  it("makes low heatmap values transparent and high ones red and opaque", () => {
    expect(heatColour(20)[3]).toBe(0);
    expect(heatColour(255)).toEqual([255, 0, 0, 255]);
    const mid = heatColour(128);
    expect(mid[3]).toBeGreaterThan(0);
    expect(mid[3]).toBeLessThan(255);
  });
});

describe("masks", () => {
  it("round-trips runs and bitmaps, and paints and erases with the brush", () => {
    const bitmap = sliceBitmap(geometry, 4, 4, 4);
    expect(bitmap && Array.from(bitmap)).toEqual([0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    expect(sliceBitmap(geometry, 3, 4, 4)).toBeNull();
    expect(bitmap && toRuns(bitmap)).toEqual([[5, 2], [9, 2]]);
    const edge = bitmap ? outline(bitmap, 4, 4) : null;
    // A 2×2 square is all edge.
    expect(edge && Array.from(edge).filter(Boolean).length).toBe(4);
    const b = new Uint8Array(25);
    brush(b, 5, 5, 2, 2, 1, 1);
    expect(toRuns(b)).toEqual([[7, 1], [11, 3], [17, 1]]);
    brush(b, 5, 5, 2, 2, 0, 0);
    expect(b[12]).toBe(0);
    expect(toMaskSlices(new Map([[2, b], [1, new Uint8Array(25)]]))).toEqual([{ slice: 2, runs: [[7, 1], [11, 1], [13, 1], [17, 1]] }]);
  });
  it("computes nearest-rank percentiles", () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBe(10);
    expect(percentile([], 95)).toBeNaN();
  });
});

describe("QA charts", () => {
  const row = (id: number, action: string, day: string, over: Partial<ExportedDecision> = {}): ExportedDecision => ({
    schema_version: 1,
    decision_id: id,
    recorded_at: `${day}T10:00:00.000Z`,
    utc_offset_minutes: 0,
    study: "s",
    accession: "",
    modality: "CT",
    patient_key: "",
    reader: "r",
    reader_role: "radiologist",
    action,
    label: "nodule",
    reject_reason: action === "reject" ? "artefact" : "",
    reason_text: "",
    supersedes_id: null,
    finding_id: id,
    ai_label: "nodule",
    ai_score: 0.9,
    model_id: "m",
    model_version: "1",
    model_sha256: "",
    execution_provider: "CPU",
    geometry_json: "",
    app_version: "",
    ...over,
  });
  it("counts effective decisions per model version and day, and reject reasons", () => {
    const rows = [
      row(1, "confirm", "2026-11-01"),
      row(2, "reject", "2026-11-01"),
      row(3, "edit", "2026-11-01", { supersedes_id: 1, finding_id: 1 }),
      row(4, "confirm", "2026-11-02", { model_version: "2" }),
      row(5, "add", "2026-11-02", { finding_id: null }),
    ];
    expect(effective(rows).map((r) => r.decision_id)).toEqual([2, 3, 4, 5]);
    expect(ratesByVersion(rows)).toEqual([
      { model: "m 1", points: [{ day: "2026-11-01", confirmed: 0, edited: 1, rejected: 1, decided: 2 }] },
      { model: "m 2", points: [{ day: "2026-11-02", confirmed: 1, edited: 0, rejected: 0, decided: 1 }] },
    ]);
    expect(rejectReasons(rows)).toEqual([["artefact", 1]]);
  });
});

describe("the overlay canvas", () => {
  const spec = (over: Partial<OverlaySpec> = {}): OverlaySpec => ({
    visible: true,
    opacity: 0.5,
    findings: [{ key: "1", geometry, colour: [255, 0, 0, 255], caption: "nodule 0.90", box: false, selected: false }],
    heatmap: null,
    revision: 0,
    editing: null,
    ...over,
  });

  it("knows the slices it draws on", () => {
    expect(overlayOnSlice(null, 4)).toBe(false);
    expect(overlayOnSlice(spec(), 4)).toBe(true);
    expect(overlayOnSlice(spec(), 6)).toBe(false); // the finding spans slices 3–5
    expect(overlayOnSlice(spec({ visible: false }), 4)).toBe(false); // `A` hid the AI overlays
    const editing = { bitmaps: new Map([[6, new Uint8Array(4)]]), colour: [0, 0, 255, 255] as Rgba, version: 1 };
    expect(overlayOnSlice(spec({ visible: false, editing }), 6)).toBe(true);
    expect(overlayOnSlice(spec({ heatmap: () => undefined }), 9)).toBe(true);
  });

  it("is not touched while it stays empty, and is cleared when it stops being drawn on", () => {
    const canvas = document.createElement("canvas");
    // Count the resets (each one clears the canvas and makes WebKit composite it again).
    let resets = 0;
    Object.defineProperty(canvas, "width", {
      get: () => 0,
      set: () => {
        resets += 1;
      },
    });
    const toCanvas = () => undefined;
    drawOverlay(canvas, null, 0, 8, 8, toCanvas);
    expect(resets).toBe(1);
    drawOverlay(canvas, null, 1, 8, 8, toCanvas);
    drawOverlay(canvas, spec(), 6, 8, 8, toCanvas); // nothing on slice 6
    expect(resets).toBe(1);
    drawOverlay(canvas, spec(), 4, 8, 8, toCanvas); // the finding's slice: drawn
    expect(resets).toBe(2);
    expect(canvas.dataset.empty).toBe("no");
    drawOverlay(canvas, spec(), 6, 8, 8, toCanvas); // off it again: cleared once
    drawOverlay(canvas, spec(), 7, 8, 8, toCanvas);
    expect(resets).toBe(3);
    expect(canvas.dataset.empty).toBe("yes");
  });
});

describe("the training-data export summary", () => {
  const base = {
    folder: "/x",
    cases: 3,
    patients: 2,
    ai_findings: 5,
    added_findings: 1,
    rejected: 2,
    splits: [2, 1, 0] as [number, number, number],
    files: 40,
    bytes: 2_500_000,
    identified: false,
    cancelled: false,
    notes: [],
  };
  it("says what was written, the splits, and whether it is identified", () => {
    expect(trainingSummary(base)).toBe(
      "3 case(s) of 2 patient(s) written to /x (2 training, 1 validation, 0 test): 5 AI finding(s), 2 rejected kept as negatives, 1 added; 40 file(s), 2.5 MB, de-identified.",
    );
    expect(trainingSummary({ ...base, identified: true })).toMatch(/IDENTIFIED\.$/);
    expect(trainingSummary({ ...base, cancelled: true })).toMatch(/^Cancelled: /);
    expect(trainingSummary({ ...base, cases: 0 })).toBe("Nothing exported to /x.");
  });
});

describe("the model-version watch's numbers", () => {
  it("shows rates and differences with their intervals", () => {
    expect(interval({ value: 0.8, low: 0.7196, high: 0.8618 })).toBe("80% (72–86)");
    expect(points({ value: -0.193, low: -0.296, high: -0.084 })).toBe("-19.3 points (-29.6 to -8.4)");
    expect(interval({ value: null, low: null, high: null })).toBe("0% (0–0)");
  });
});
