// The QA view: filter the decision log, read it, export it (CSV / JSON Lines, de-identified
// unless asked), verify the ledger's hash chain, follow agreement per model version, and export
// or send the access audit.

import { save } from "@tauri-apps/plugin-dialog";
import { Chart } from "chart.js";
import { useEffect, useState } from "react";
import type { DecisionFilter, ExportedDecision, VerifyResult } from "../bindings";
import { AuditPanel } from "./AuditPanel";
import { useChart } from "./charts";
import { TrainingPanel } from "./TrainingPanel";
import { WatchPanel } from "./WatchPanel";
import { OKABE_ITO, css } from "./logic";
import { ratesByVersion, rejectReasons } from "./qa";
import type { ReviewApi } from "./useReview";


const EMPTY: DecisionFilter = { from: null, to: null, reader: null, model_id: null, model_version: null, label: null, action: null, study_uid: null };

export function QaView({ api, exportPath }: { api: ReviewApi; exportPath?: (format: string) => Promise<string | null> }) {
  const [filter, setFilter] = useState<DecisionFilter>(EMPTY);
  const [rows, setRows] = useState<ExportedDecision[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [verify, setVerify] = useState<VerifyResult | null>(null);
  const [exporting, setExporting] = useState(false);
  const [exported, setExported] = useState<string | null>(null);
  const [identified, setIdentified] = useState(false);

  useEffect(() => {
    let live = true;
    void api.qaDecisions(filter).then((r) => {
      if (!live) return;
      if (r.status === "ok") setRows(r.data);
      else setError(r.error.message);
    });
    return () => {
      live = false;
    };
  }, [api, filter]);

  const series = ratesByVersion(rows);
  const reasons = rejectReasons(rows);
  const ratesRef = useChart(
    (canvas) => {
      const days = [...new Set(series.flatMap((s) => s.points.map((p) => p.day)))].sort();
      return new Chart(canvas, {
        type: "line",
        data: {
          labels: days,
          datasets: series.flatMap((s, i) =>
            (["confirmed", "edited", "rejected"] as const).map((k, j) => ({
              label: `${s.model} ${k}`,
              data: days.map((d) => {
                const p = s.points.find((x) => x.day === d);
                return p && p.decided > 0 ? p[k] / p.decided : null;
              }),
              borderColor: css(OKABE_ITO[(i * 3 + j) % OKABE_ITO.length] ?? [255, 255, 255, 255]),
              borderDash: j === 0 ? [] : j === 1 ? [6, 3] : [2, 2],
              spanGaps: true,
            })),
          ),
        },
        options: { animation: false, maintainAspectRatio: false, scales: { y: { min: 0, max: 1, title: { display: true, text: "rate" } } } },
      });
    },
    [JSON.stringify(series)],
  );
  const reasonsRef = useChart(
    (canvas) =>
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: reasons.map(([r]) => r.replaceAll("_", " ")),
          datasets: [{ label: "rejections", data: reasons.map(([, n]) => n), backgroundColor: css(OKABE_ITO[5] ?? [213, 94, 0, 255]) }],
        },
        options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } } },
      }),
    [JSON.stringify(reasons)],
  );

  const set = (k: keyof DecisionFilter) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => {
    setFilter((f) => ({ ...f, [k]: e.target.value === "" ? null : e.target.value }));
  };

  const doExport = async (format: "csv" | "jsonl") => {
    const path =
      (await exportPath?.(format)) ??
      (await save({
        title: "Export decisions",
        defaultPath: `dokuei-decisions.${format}`,
        filters: [{ name: format === "csv" ? "CSV" : "JSON Lines", extensions: [format] }],
      }));
    if (!path) return;
    setExporting(true);
    setExported(null);
    const r = await api.qaExport(filter, format, identified, path);
    setExporting(false);
    if (r.status === "ok") setExported(`${String(r.data)} decisions written to ${path}${identified ? " (identified)" : " (de-identified)"}`);
    else setError(r.error.message);
  };

  return (
    <main className="qa" data-testid="qa-view">
      <h2>Decision log (QA)</h2>
      {error && (
        <div className="error" role="alert">
          {error}
        </div>
      )}
      <div className="filters">
        <label>
          From (UTC)
          <input type="date" onChange={set("from")} data-testid="qa-from" />
        </label>
        <label>
          To (UTC, exclusive)
          <input type="date" onChange={set("to")} data-testid="qa-to" />
        </label>
        <label>
          Reader
          <input type="text" onChange={set("reader")} data-testid="qa-reader" />
        </label>
        <label>
          Model id
          <input type="text" onChange={set("model_id")} data-testid="qa-model" />
        </label>
        <label>
          Version
          <input type="text" onChange={set("model_version")} data-testid="qa-version" />
        </label>
        <label>
          Label
          <input type="text" onChange={set("label")} data-testid="qa-label" />
        </label>
        <label>
          Action
          <select onChange={set("action")} data-testid="qa-action">
            <option value="">any</option>
            <option value="confirm">confirm</option>
            <option value="edit">edit</option>
            <option value="reject">reject</option>
            <option value="add">add</option>
          </select>
        </label>
        <label>
          <span>
            <input type="checkbox" checked={identified} onChange={(e) => { setIdentified(e.target.checked); }} /> identified export
          </span>
        </label>
        <button type="button" disabled={exporting} onClick={() => void doExport("csv")} data-testid="qa-export-csv">
          Export CSV…
        </button>
        <button type="button" disabled={exporting} onClick={() => void doExport("jsonl")} data-testid="qa-export-jsonl">
          Export JSON Lines…
        </button>
        <button
          type="button"
          onClick={() =>
            void api.qaVerify().then((r) => {
              if (r.status === "ok") setVerify(r.data);
              else setError(r.error.message);
            })
          }
          data-testid="qa-verify"
        >
          Verify ledger
        </button>
      </div>
      {exporting && <div className="progress indeterminate" role="progressbar" aria-label="Exporting" />}
      {exported && <p data-testid="qa-exported">{exported}</p>}
      {verify && (
        <p className={`verify ${verify.intact ? "ok" : "bad"}`} data-testid="qa-verify-result">
          {verify.intact
            ? `PASS — ${verify.ledger} is ${verify.summary}`
            : `FAIL — ${verify.problem ?? "the chain does not match"} (${String(verify.rows_checked)} entries checked, ${verify.ledger})`}
        </p>
      )}
      {verify?.witness_error && (
        <p className="verify bad" data-testid="qa-witness-error">
          {verify.witness_error}
        </p>
      )}
      <AuditPanel api={api} exportPath={exportPath} />
      <WatchPanel api={api} exportPath={exportPath} />
      <TrainingPanel api={api} exportPath={exportPath} />
      <div className="charts">
        <div>
          <canvas ref={ratesRef} aria-label="Confirm, edit and reject rates per model version per day" />
        </div>
        <div>
          <canvas ref={reasonsRef} aria-label="Reject reasons" />
        </div>
      </div>
      <p className="muted" data-testid="qa-count">
        {rows.length} decision{rows.length === 1 ? "" : "s"}
      </p>
      <table data-testid="qa-table">
        <thead>
          <tr>
            <th>#</th>
            <th>When (UTC)</th>
            <th>Reader</th>
            <th>Action</th>
            <th>Label</th>
            <th>Reason</th>
            <th>AI score</th>
            <th>Model</th>
            <th>Provider</th>
            <th>Supersedes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.decision_id}>
              <td>{d.decision_id}</td>
              <td>{d.recorded_at.replace("T", " ").slice(0, 19)}</td>
              <td>
                {d.reader} <span className="muted">{d.reader_role}</span>
              </td>
              <td>{d.action}</td>
              <td>{d.label}</td>
              <td>
                {d.reject_reason.replaceAll("_", " ")}
                {d.reason_text ? `: ${d.reason_text}` : ""}
              </td>
              <td>{d.ai_score != null ? d.ai_score.toFixed(2) : ""}</td>
              <td>
                {d.model_id} {d.model_version} <span className="muted">{d.model_sha256.slice(0, 8)}</span>
              </td>
              <td>{d.execution_provider}</td>
              <td>{d.supersedes_id ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </main>
  );
}
