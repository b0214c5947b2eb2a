// The QA view's "Export training data…": the findings physicians decided, for a filter, as
// de-identified DICOM (images + SEG of the final labels), an nnU-Net v2 dataset, a MONAI
// datalist, findings.jsonl, patient-level splits and provenance. Studies come from the open
// and recently opened ones; only signed-off studies leave.

import { Channel } from "@tauri-apps/api/core";
import { open } from "@tauri-apps/plugin-dialog";
import { useState } from "react";
import type { DeidSettings, TrainingExport, TrainingProgress, TrainingSettings } from "../bindings";
import { BASIC_PROFILE } from "./logic";
import { trainingSummary } from "./qa";
import type { ReviewApi } from "./useReview";

const DEFAULT: TrainingSettings = {
  filter: { model_id: null, model_version: null, from: null, to: null, label: null },
  deid: { ...BASIC_PROFILE },
  identified: false,
  validation: 0.15,
  test: 0.15,
};

export function TrainingPanel({ api, exportPath }: { api: ReviewApi; exportPath?: (format: string) => Promise<string | null> }) {
  const [settings, setSettings] = useState<TrainingSettings>(DEFAULT);
  const [progress, setProgress] = useState<TrainingProgress | null>(null);
  const [done, setDone] = useState<TrainingExport | null>(null);
  const [error, setError] = useState<string | null>(null);

  const setFilter = (k: keyof TrainingSettings["filter"]) => (e: React.ChangeEvent<HTMLInputElement>) => {
    setSettings((s) => ({ ...s, filter: { ...s.filter, [k]: e.target.value === "" ? null : e.target.value } }));
  };
  const setShare = (k: "validation" | "test") => (e: React.ChangeEvent<HTMLInputElement>) => {
    const v = Number(e.target.value) / 100;
    if (Number.isFinite(v)) setSettings((s) => ({ ...s, [k]: v }));
  };

  const run = async () => {
    if (settings.identified && !window.confirm("An identified export keeps names, IDs, dates and readers' text. It is recorded in the access audit as identified. Continue?")) return;
    const dir =
      (await exportPath?.("training")) ?? (await open({ directory: true, multiple: false, title: "Folder for the training data (new or empty)" }));
    if (typeof dir !== "string") return;
    const channel = new Channel<TrainingProgress>();
    channel.onmessage = (p) => {
      setProgress(p);
    };
    setDone(null);
    setError(null);
    setProgress({ phase: "planning", done: 0, total: 0 });
    const r = await api.exportTraining(dir, settings, channel);
    setProgress(null);
    if (r.status === "ok") setDone(r.data);
    else setError(r.error.message);
  };

  const running = progress !== null;
  return (
    <details className="training-export" data-testid="training-box">
      <summary>Export training data…</summary>
      <p className="muted">
        Signed-off studies among the open and recent ones: images with the final labels (confirmed, edited, added) and, apart, what the AI said; rejected
        findings stay as negatives. De-identified by DICOM PS3.15 unless you choose otherwise; every export is in the access audit.
      </p>
      <div className="filters">
        <label>
          Model id
          <input type="text" onChange={setFilter("model_id")} data-testid="training-model" />
        </label>
        <label>
          Version
          <input type="text" onChange={setFilter("model_version")} data-testid="training-version" />
        </label>
        <label>
          Analysed from
          <input type="date" onChange={setFilter("from")} data-testid="training-from" />
        </label>
        <label>
          to
          <input type="date" onChange={setFilter("to")} data-testid="training-to" />
        </label>
        <label>
          Label
          <input type="text" onChange={setFilter("label")} data-testid="training-label" />
        </label>
        <label>
          Validation %
          <input type="number" min={0} max={90} defaultValue={15} onChange={setShare("validation")} data-testid="training-validation" />
        </label>
        <label>
          Test %
          <input type="number" min={0} max={90} defaultValue={15} onChange={setShare("test")} data-testid="training-test" />
        </label>
        <label>
          Dates in DICOM{" "}
          <select
            value={settings.deid.dates}
            onChange={(e) => {
              const dates = e.target.value as DeidSettings["dates"];
              setSettings((s) => ({ ...s, deid: { ...s.deid, dates } }));
            }}
            data-testid="training-dates"
          >
            <option value="removed">removed</option>
            <option value="modified">shifted per patient</option>
            <option value="full">kept</option>
          </select>
        </label>
        <label>
          <span>
            <input
              type="checkbox"
              checked={settings.deid.clean_recognizable_visual_features}
              onChange={(e) => {
                const on = e.target.checked;
                setSettings((s) => ({ ...s, deid: { ...s.deid, clean_recognizable_visual_features: on } }));
              }}
              data-testid="training-deface"
            />{" "}
            remove faces (deface head CT and MR)
          </span>
        </label>
        <label>
          <span>
            <input
              type="checkbox"
              checked={settings.identified}
              onChange={(e) => {
                const identified = e.target.checked;
                setSettings((s) => ({ ...s, identified }));
              }}
              data-testid="training-identified"
            />{" "}
            identified export
          </span>
        </label>
        <button type="button" disabled={running} onClick={() => void run()} data-testid="training-export">
          Choose folder and export…
        </button>
      </div>
      {running && (
        <p data-testid="training-progress">
          <progress max={progress.total || 1} value={progress.done} /> {progress.phase} {String(progress.done)} / {String(progress.total)}{" "}
          <button type="button" className="link" onClick={() => void api.cancelAnalysis()} data-testid="training-cancel">
            Cancel
          </button>
        </p>
      )}
      {error && (
        <div className="error" role="alert" data-testid="training-error">
          {error}
        </div>
      )}
      {done && (
        <div data-testid="training-done">
          <p className="muted">{trainingSummary(done)}</p>
          {done.notes.length > 0 && (
            <ul className="muted" data-testid="training-notes">
              {done.notes.map((n) => (
                <li key={n}>{n}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </details>
  );
}
