// The QA view's model-version watch: per model and version, the score distribution and the
// confirm / edit / reject rates with 95% intervals; each version against the one before it
// (PSI, Kolmogorov–Smirnov, kept-rate difference) with an alert past QA's thresholds; and the
// report for a QA committee (HTML with plots).

import { save } from "@tauri-apps/plugin-dialog";
import { Chart } from "chart.js";
import { useEffect, useState } from "react";
import type { Interval, Watch, WatchThresholds } from "../bindings";
import { useChart } from "./charts";
import { OKABE_ITO, css } from "./logic";
import type { ReviewApi } from "./useReview";

const DEFAULTS = { psi: 0.2, ks_p: 0.01, agreement_drop: 0.05, min_findings: 20 } satisfies WatchThresholds;

/** A percentage with its interval, e.g. `80% (72–86)`. */
export function interval(i: Interval): string {
  const p = (v: number | null) => (100 * (v ?? 0)).toFixed(0);
  return `${p(i.value)}% (${p(i.low)}–${p(i.high)})`;
}

/** A difference in points with its interval, e.g. `-12.0 points (-20.1 to -3.9)`. */
export function points(i: Interval): string {
  const p = (v: number | null) => (100 * (v ?? 0)).toFixed(1);
  return `${p(i.value)} points (${p(i.low)} to ${p(i.high)})`;
}

export function WatchPanel({ api, exportPath }: { api: ReviewApi; exportPath?: (format: string) => Promise<string | null> }) {
  const [thresholds, setThresholds] = useState<WatchThresholds>({ ...DEFAULTS });
  const [watch, setWatch] = useState<Watch | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reported, setReported] = useState<string | null>(null);
  const [shadowFolders, setShadowFolders] = useState("");
  const [shadowSaved, setShadowSaved] = useState<string | null>(null);

  useEffect(() => {
    void api.shadowSettings().then((r) => {
      if (r.status === "ok") setShadowFolders(r.data.model_folders.join("\n"));
    });
  }, [api]);

  const saveShadow = async () => {
    const folders = shadowFolders
      .split("\n")
      .map((f) => f.trim())
      .filter((f) => f !== "");
    const r = await api.saveShadowSettings({ model_folders: folders });
    if (r.status === "ok")
      setShadowSaved(folders.length === 0 ? "No shadow run." : `Shadow run: ${folders.join(", ")} (runs after the model of the same id; never shown).`);
    else setError(r.error.message);
  };

  useEffect(() => {
    let live = true;
    void api.modelWatch(thresholds).then((r) => {
      if (!live) return;
      if (r.status === "ok") {
        setWatch(r.data);
        setError(null);
      } else setError(r.error.message);
    });
    return () => {
      live = false;
    };
  }, [api, thresholds]);

  const versions = watch?.versions ?? [];
  const histogramRef = useChart(
    (canvas) =>
      new Chart(canvas, {
        type: "line",
        data: {
          labels: Array.from({ length: 20 }, (_, i) => (i * 0.05).toFixed(2)),
          datasets: versions.map((v, i) => {
            const n = Math.max(1, v.histogram.reduce((a, b) => a + b, 0));
            return {
              label: `${v.model_id} ${v.model_version}`,
              data: v.histogram.map((c) => c / n),
              borderColor: css(OKABE_ITO[i % OKABE_ITO.length] ?? [255, 255, 255, 255]),
              stepped: true,
            };
          }),
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { x: { title: { display: true, text: "score" } }, y: { min: 0, title: { display: true, text: "share of findings" } } },
        },
      }),
    [JSON.stringify(versions.map((v) => [v.model_id, v.model_version, v.histogram]))],
  );

  const set = (k: keyof WatchThresholds, scale = 1) => (e: React.ChangeEvent<HTMLInputElement>) => {
    const v = Number(e.target.value);
    if (e.target.value !== "" && Number.isFinite(v)) setThresholds((t) => ({ ...t, [k]: v / scale }));
  };

  const report = async () => {
    const path = (await exportPath?.("html")) ?? (await save({ title: "Model-version watch report", defaultPath: "dokuei-model-watch.html", filters: [{ name: "HTML", extensions: ["html"] }] }));
    if (!path) return;
    const r = await api.modelWatchReport(thresholds, path);
    if (r.status === "ok") setReported(`Report written to ${path}`);
    else setError(r.error.message);
  };

  const alerts = watch?.comparisons.filter((c) => c.alert) ?? [];
  return (
    <details className="model-watch" open data-testid="watch-box">
      <summary>
        Model versions{" "}
        {alerts.length > 0 && (
          <span className="alert-badge" data-testid="watch-alert-count">
            {alerts.length} alert{alerts.length === 1 ? "" : "s"}
          </span>
        )}
      </summary>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <div className="filters">
        <label>
          PSI alert above
          <input type="number" step="0.05" defaultValue={DEFAULTS.psi} onChange={set("psi")} data-testid="watch-psi" />
        </label>
        <label>
          KS p below
          <input type="number" step="0.001" defaultValue={DEFAULTS.ks_p} onChange={set("ks_p")} data-testid="watch-ks" />
        </label>
        <label>
          Kept drop (points)
          <input type="number" step="1" defaultValue={100 * DEFAULTS.agreement_drop} onChange={set("agreement_drop", 100)} data-testid="watch-drop" />
        </label>
        <label>
          Min. findings
          <input type="number" step="1" defaultValue={DEFAULTS.min_findings} onChange={set("min_findings")} data-testid="watch-min" />
        </label>
        <button type="button" onClick={() => void report()} data-testid="watch-report">
          Write report…
        </button>
      </div>
      {reported && <p data-testid="watch-reported">{reported}</p>}
      <table data-testid="watch-table">
        <thead>
          <tr>
            <th>Model</th>
            <th>Version</th>
            <th>First run</th>
            <th>Findings</th>
            <th>Median score</th>
            <th>Confirmed</th>
            <th>Edited</th>
            <th>Rejected</th>
            <th>Kept (95% CI)</th>
            <th>Undecided</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={`${v.model_id} ${v.model_version}`}>
              <td>{v.model_id}</td>
              <td>
                {v.model_version}
                {v.shadow && <span className="muted"> (shadow of {v.shadowed_version ?? "?"})</span>}
              </td>
              <td>{v.first_seen.slice(0, 10)}</td>
              <td>{v.findings}</td>
              <td>{v.score_median != null ? v.score_median.toFixed(3) : "–"}</td>
              <td>{interval(v.confirm_rate)}</td>
              <td>{interval(v.edit_rate)}</td>
              <td>{interval(v.reject_rate)}</td>
              <td>{interval(v.kept_rate)}</td>
              <td>{v.undecided}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {versions.length === 0 && <p className="muted">No AI findings yet.</p>}
      {watch?.comparisons.map((c) => (
        <div key={`${c.model_id} ${c.current}`} className={c.alert ? "watch-compare alert" : "watch-compare"} data-testid="watch-comparison">
          <strong>
            {c.model_id} {c.previous} → {c.current}
          </strong>
          : PSI {c.psi != null ? c.psi.toFixed(3) : "–"}, KS D {c.ks_d != null ? c.ks_d.toFixed(3) : "–"} (p {c.ks_p != null ? c.ks_p.toExponential(1) : "–"}), {c.shadow ? "" : `kept ${points(c.kept_difference)}`}{" "}
          {c.alert && <span className="alert-badge">ALERT</span>}
          {c.shadow && (
            <div data-testid="watch-shadow">
              In shadow on {c.shadow.runs} signed-off run(s): readers would likely keep {interval(c.shadow.shadow_precision)} of its {c.shadow.shadow_findings} finding(s)
              (the version they saw: {interval(c.shadow.current_precision)}); it finds {interval(c.shadow.shadow_sensitivity)} of the {c.shadow.kept_findings} finding(s) readers
              kept (the version they saw: {interval(c.shadow.current_sensitivity)}).
            </div>
          )}
          {c.reasons.length > 0 && <div className="muted">{c.reasons.join("; ")}</div>}
        </div>
      ))}
      <div className="filters">
        <label>
          Shadow run: candidate model folders (one per line)
          <textarea
            rows={2}
            cols={60}
            value={shadowFolders}
            onChange={(e) => {
              setShadowFolders(e.target.value);
            }}
            data-testid="watch-shadow-folders"
          />
        </label>
        <button type="button" onClick={() => void saveShadow()} data-testid="watch-shadow-save">
          Save
        </button>
      </div>
      {shadowSaved && <p className="muted">{shadowSaved}</p>}
      <div className="charts">
        <div>
          <canvas ref={histogramRef} aria-label="Score distribution per model version" />
        </div>
      </div>
    </details>
  );
}
