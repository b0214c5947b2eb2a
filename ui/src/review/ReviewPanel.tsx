// The review side panel: reader, model, Analyse (progress, cancel), legend and overlay controls,
// the findings list with a decision on each, drawing, sign-off, and commit-then-reveal.

import { useState } from "react";
import type { DeidSettings, RejectReason, Role } from "../bindings";
import { ACTION_TEXT, allowedActions, BASIC_PROFILE, canAnalyse, css, findingKey, REJECT_REASONS, shownGeometry, signOffGate, sizeText } from "./logic";
import { deidSummary, type ReviewState } from "./useReview";

export function ReaderBar({ r }: { r: ReviewState }) {
  const [creating, setCreating] = useState(false);
  const [changing, setChanging] = useState(false);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("radiologist");
  // Passphrases live only as long as their form: cleared on submit and on cancel.
  const [passphrase, setPassphrase] = useState("");
  const [again, setAgain] = useState("");
  const [current, setCurrent] = useState("");
  const clearPassphrases = () => {
    setPassphrase("");
    setAgain("");
    setCurrent("");
  };
  const mismatch = passphrase !== again ? "the two passphrases differ" : null;
  if (changing && r.reader) {
    return (
      <form
        className="reader-bar"
        data-testid="passphrase-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (mismatch) return;
          void r.setPassphrase(current === "" ? null : current, passphrase).then((err) => {
            clearPassphrases();
            if (!err) setChanging(false);
          });
        }}
      >
        <span className="muted">Passphrase of {r.reader.display_name}:</span>
        <input type="password" placeholder="Current (if it has one)" value={current} onChange={(e) => { setCurrent(e.target.value); }} data-testid="passphrase-current" />
        <input type="password" placeholder="New passphrase (8+ characters)" value={passphrase} onChange={(e) => { setPassphrase(e.target.value); }} data-testid="passphrase-new" />
        <input type="password" placeholder="Again" value={again} onChange={(e) => { setAgain(e.target.value); }} data-testid="passphrase-again" />
        <button type="submit" aria-disabled={mismatch !== null} title={mismatch ?? undefined} data-testid="passphrase-save">Save</button>
        <button type="button" onClick={() => { clearPassphrases(); setChanging(false); }}>
          Cancel
        </button>
        {mismatch && again !== "" && <span className="muted" data-testid="passphrase-mismatch">{mismatch}</span>}
      </form>
    );
  }
  if (creating || r.readers.length === 0) {
    return (
      <form
        className="reader-bar"
        data-testid="reader-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (mismatch) return;
          void r.createReader(name, role, passphrase).then((err) => {
            clearPassphrases();
            if (!err) {
              setCreating(false);
              setName("");
            }
          });
        }}
      >
        <span className="muted">{r.readers.length === 0 ? "Create your reader profile:" : "New reader:"}</span>
        <input type="text" placeholder="Display name" value={name} onChange={(e) => { setName(e.target.value); }} data-testid="reader-name" />
        <select value={role} onChange={(e) => { setRole(e.target.value as Role); }} data-testid="reader-role">
          <option value="radiologist">Radiologist</option>
          <option value="clinician">Clinician</option>
          <option value="qa">QA</option>
        </select>
        <input
          type="password"
          placeholder="Passphrase (8+ characters; signs your sign-offs)"
          value={passphrase}
          onChange={(e) => { setPassphrase(e.target.value); }}
          data-testid="reader-passphrase"
        />
        <input type="password" placeholder="Again" value={again} onChange={(e) => { setAgain(e.target.value); }} data-testid="reader-passphrase-again" />
        <button type="submit" aria-disabled={mismatch !== null} title={mismatch ?? undefined} data-testid="reader-create">
          Create
        </button>
        {r.readers.length > 0 && (
          <button type="button" onClick={() => { clearPassphrases(); setCreating(false); }}>
            Cancel
          </button>
        )}
        {mismatch && again !== "" && <span className="muted" data-testid="reader-passphrase-mismatch">{mismatch}</span>}
      </form>
    );
  }
  return (
    <div className="reader-bar">
      <span className="muted">Reader</span>
      <select
        value={r.reader?.id ?? ""}
        data-testid="reader-select"
        onChange={(e) => void r.saveSettings({ ...r.settings, reader_id: e.target.value === "" ? null : Number(e.target.value) })}
      >
        <option value="">(none)</option>
        {r.readers.map((x) => (
          <option key={x.id} value={x.id}>
            {x.display_name} ({x.role})
          </option>
        ))}
      </select>
      <button type="button" onClick={() => { clearPassphrases(); setCreating(true); }}>
        New…
      </button>
      {r.reader && (
        <button type="button" onClick={() => { clearPassphrases(); setChanging(true); }} data-testid="passphrase-change">
          Passphrase…
        </button>
      )}
    </div>
  );
}

export function ReviewPanel({ r, slices }: { r: ReviewState; slices: number }) {
  const [rejecting, setRejecting] = useState<string | null>(null);
  const [reason, setReason] = useState<RejectReason>("anatomical_structure");
  const [reasonText, setReasonText] = useState("");
  const [impression, setImpression] = useState("");
  const [signPassphrase, setSignPassphrase] = useState("");
  const [before, setBefore] = useState("");
  const [showCard, setShowCard] = useState(false);
  const [addLabel, setAddLabel] = useState("");
  const p = r.phase;
  const gate = signOffGate(r.review, p);
  const labels = r.model?.labels ?? [];
  const demo = r.review?.analyses.some((a) => r.modelOf(a.model_id)?.demonstration ?? true) ?? false;

  return (
    <div className="review" data-testid="review-panel" data-phase={p}>
      <h3>AI review</h3>
      {r.error && (
        <div className="error" role="alert" data-testid="review-error">
          {r.error}
        </div>
      )}
      {p === "signed-off" && r.review?.sign_off && (
        <p data-testid="signed-off">
          Signed off {r.review.sign_off.recorded_at.slice(0, 16).replace("T", " ")} UTC (final read) — read-only. Confirmed {r.review.sign_off.confirmed}, edited{" "}
          {r.review.sign_off.edited}, rejected {r.review.sign_off.rejected}, added {r.review.sign_off.added}.
          {r.review.sign_off.impression && <><br />Impression: {r.review.sign_off.impression}</>}
        </p>
      )}
      {p === "signed-off" && (
        <div className="export-results">
          <button type="button" onClick={() => void r.exportResults()} data-testid="export-results">
            Export results (DICOM SEG + SR)…
          </button>
          {r.exported && <p className="muted" data-testid="export-results-done">{r.exported}</p>}
          {r.nodes.length > 0 && <SendResults r={r} />}
        </div>
      )}
      <DeidBox r={r} />
      {r.imported && (r.imported.findings.length > 0 || r.imported.problems.length > 0) && (
        <ImportedBox r={r} phase={p} />
      )}
      {p === "no-reader" && <p className="muted">Create or choose a reader profile (top bar) to record decisions.</p>}
      {p === "qa" && <p className="muted">QA readers see decisions; they do not make them. Use the QA view.</p>}

      <label>
        Model
        <select value={r.modelDir} onChange={(e) => { r.setModelDir(e.target.value); }} data-testid="model-select">
          {r.models.map((m) => (
            <option key={m.dir} value={m.dir} disabled={!m.integrity_ok}>
              {m.name || m.id} {m.version} {m.integrity_ok ? "" : "— refused"}
            </option>
          ))}
        </select>
      </label>
      <button type="button" className="link" onClick={() => void r.addModelFolder()} data-testid="add-model-folder">
        Add a models folder…
      </button>
      {r.models.filter((m) => m.problem).map((m) => (
        <div key={m.dir} className="error" data-testid="model-problem">
          {m.dir}: {m.problem}
        </div>
      ))}
      {r.model && (
        <div className="muted" data-testid="model-info">
          {r.model.intended_use} · {r.model.kind} · runs on {r.model.execution_provider} · SHA-256 {r.model.integrity_ok ? "verified" : "MISMATCH"} ({r.model.sha256.slice(0, 12)}…)
          {r.model.demonstration && <div className="demo-tag">Demonstration model — not for clinical use</div>}
          <button type="button" className="link" onClick={() => { setShowCard((s) => !s); }}>
            {showCard ? "Hide model card" : "Model card"}
          </button>
          {showCard && <div className="model-card">{r.model.model_card || "(no model card)"}</div>}
        </div>
      )}

      {p === "impression-needed" && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void r.recordImpression(before);
          }}
        >
          <p className="muted">Commit-then-reveal: record your own impression before the AI results.</p>
          <textarea rows={2} value={before} onChange={(e) => { setBefore(e.target.value); }} placeholder="e.g. nodule present: yes — right upper lobe" data-testid="impression-before" />
          <button type="submit" data-testid="impression-record">Record impression</button>
        </form>
      )}
      {p === "awaiting-reveal" && (
        <p>
          Impression recorded. {r.review?.analyses.length ? "AI results are ready." : "Run the model; results stay hidden until you reveal them."}{" "}
          {r.review?.analyses.length ? (
            <button type="button" onClick={() => void r.reveal()} data-testid="reveal">
              Reveal AI results
            </button>
          ) : null}
        </p>
      )}

      <div className="row">
        <button type="button" disabled={!canAnalyse(p) || r.progress !== null || !r.model?.integrity_ok} onClick={() => void r.analyse()} data-testid="analyse">
          Analyse
        </button>
        {r.progress && (
          <button type="button" onClick={() => void r.cancel()} data-testid="cancel-analysis">
            Cancel
          </button>
        )}
      </div>
      {r.progress && (
        <div data-testid="analysis-progress">
          <div
            className="bar"
            role="progressbar"
            aria-label="Analysis"
            aria-valuemin={0}
            aria-valuemax={r.progress.total}
            aria-valuenow={r.progress.done}
          >
            <div style={{ width: `${String(r.progress.total ? (100 * r.progress.done) / r.progress.total : 0)}%` }} />
          </div>
          <span className="muted">
            {r.progress.total ? `${String(r.progress.done)}/${String(r.progress.total)}` : "loading…"}
            {(r.progress.eta_seconds ?? -1) >= 0 ? ` · about ${(r.progress.eta_seconds ?? 0).toFixed(0)} s left` : ""}
          </span>
        </div>
      )}
      {r.analysis && (
        <div className="muted" data-testid="analysis-info">
          {r.review?.analyses.find((a) => a.id === r.analysis?.id)?.model_id} on {r.analysis.provider} in {r.analysis.engineSeconds.toFixed(2)} s
        </div>
      )}

      {(p === "reviewing" || p === "signed-off" || p === "qa" || p === "no-reader") && r.review && r.review.analyses.length > 0 && (
        <>
          {demo && <div className="demo-banner" data-testid="demo-banner">Demonstration model — not for clinical use</div>}
          <h3>Legend</h3>
          <div className="legend" data-testid="legend">
            {labels.map((l) => (
              <span key={l.name}>
                <span className="swatch" style={{ background: css(r.colourOf({ ...dummy, label: l.name, model_id: r.model?.id ?? "" })) }} />
                {l.name} (≥ {(l.threshold ?? 0).toFixed(2)})
              </span>
            ))}
            {importedLegend(r).map(([label, color]) => (
              <span key={`${label}-${color}`} data-testid="legend-imported">
                <span className="swatch" style={{ background: color }} />
                {label} (imported)
              </span>
            ))}
            <span>
              <span className="swatch" style={{ background: "#fff" }} />
              added by a reader
            </span>
            {r.analysis?.maps.length ? (
              <span>
                heatmap (probability 0.2 → 1)
                <div className="colourbar" />
                {r.analysis.imageScores.length > 0 && <span data-testid="image-score">image score {Math.max(...r.analysis.imageScores.map((s) => s[0] ?? 0)).toFixed(2)}</span>}
              </span>
            ) : null}
          </div>
          <div className="row">
            <label>
              <input type="checkbox" checked={r.visible} onChange={(e) => { r.setVisible(e.target.checked); }} data-testid="overlay-visible" /> Show AI (A)
            </label>
            <label>
              Opacity <input type="range" min={0} max={1} step={0.05} value={r.opacity} onChange={(e) => { r.setOpacity(Number(e.target.value)); }} data-testid="opacity" />
            </label>
            <label>
              <input
                type="checkbox"
                checked={r.settings.palette === "cvd"}
                onChange={(e) => void r.saveSettings({ ...r.settings, palette: e.target.checked ? "cvd" : "standard" })}
                data-testid="palette-cvd"
              />{" "}
              Colour-blind-safe palette
            </label>
          </div>

          <h3>
            Findings <span className="muted">(N / P)</span>
          </h3>
          {r.findings.length === 0 && <p className="muted">No findings above threshold.</p>}
          {r.decisionPassphraseRequired && (
            <label className="row" data-testid="decision-passphrase-row">
              <span className="muted">This installation asks for your passphrase with every decision:</span>
              <input
                type="password"
                placeholder="Your passphrase"
                autoComplete="off"
                value={r.decisionPassphrase}
                onChange={(e) => { r.setDecisionPassphrase(e.target.value); }}
                data-testid="decision-passphrase"
              />
            </label>
          )}
          <ol className="findings" data-testid="findings">
            {r.findings.map((f) => {
              const key = findingKey(f);
              const actions = allowedActions(f, p);
              const d = f.decision;
              return (
                <li
                  key={key}
                  className={r.selected === key ? "selected" : ""}
                  style={{ ["--swatch" as string]: css(r.colourOf(f)) }}
                  data-testid={`finding-${key}`}
                  data-decision={d?.action ?? "none"}
                  onClick={() => { r.jumpTo(f); }}
                >
                  <div>
                    <strong>{f.label}</strong> {f.score !== null ? f.score.toFixed(2) : f.finding_id === null ? "(added)" : ""} <span className="muted">{sizeText(shownGeometry(f), slices)}</span>
                  </div>
                  {importedFrom(r, f.analysis_id) && (
                    <div className="muted" data-testid={`imported-${key}`}>
                      imported · {importedFrom(r, f.analysis_id)}
                    </div>
                  )}
                  <div className={`state${d ? "" : " undecided"}`}>
                    {d ? `${ACTION_TEXT[d.action]}${d.reject_reason ? ` — ${REJECT_REASONS.find((x) => x.value === d.reject_reason)?.label ?? ""}` : ""}${d.reason_text ? `: ${d.reason_text}` : ""}` : "No decision yet"}
                  </div>
                  {actions.length > 0 && (
                    <div className="row" onClick={(e) => { e.stopPropagation(); }}>
                      {actions.includes("confirm") && (
                        <button type="button" onClick={() => void r.decide(f, "confirm")} data-testid={`confirm-${key}`}>
                          Confirm
                        </button>
                      )}
                      {(actions.includes("edit") || actions.includes("add")) && (
                        <button type="button" onClick={() => { r.startEdit(f, f.label); }} data-testid={`edit-${key}`}>
                          Edit
                        </button>
                      )}
                      {actions.includes("reject") && (
                        <button type="button" onClick={() => { setRejecting(key); }} data-testid={`reject-${key}`}>
                          Reject…
                        </button>
                      )}
                    </div>
                  )}
                  {rejecting === key && (
                    <form
                      className="row"
                      onClick={(e) => { e.stopPropagation(); }}
                      onSubmit={(e) => {
                        e.preventDefault();
                        void r.decide(f, "reject", { reason, text: reasonText }).then((err) => {
                          if (!err) {
                            setRejecting(null);
                            setReasonText("");
                          }
                        });
                      }}
                    >
                      <select value={reason} onChange={(e) => { setReason(e.target.value as RejectReason); }} data-testid="reject-reason">
                        {REJECT_REASONS.map((x) => (
                          <option key={x.value} value={x.value}>
                            {x.label}
                          </option>
                        ))}
                      </select>
                      <input type="text" value={reasonText} placeholder="Reason (required for Other)" onChange={(e) => { setReasonText(e.target.value); }} data-testid="reject-text" />
                      <button type="submit" data-testid="reject-submit">Reject</button>
                      <button type="button" onClick={() => { setRejecting(null); }}>
                        Cancel
                      </button>
                    </form>
                  )}
                </li>
              );
            })}
          </ol>
        </>
      )}

      {p === "reviewing" && r.review && r.review.analyses.length > 0 && (
        <>
          {r.editing ? (
            <div data-testid="drawing">
              <p className="muted">
                {r.editing.finding ? "Editing" : "Drawing a new"} {r.editing.label}: drag to paint, Shift- or right-drag to erase; scroll to other slices.
              </p>
              <div className="row">
                <label>
                  Brush {r.editing.radius} px
                  <input
                    type="range"
                    min={1}
                    max={30}
                    value={r.editing.radius}
                    onChange={(e) => { r.setEditing((ed) => (ed ? { ...ed, radius: Number(e.target.value) } : ed)); }}
                  />
                </label>
                <button type="button" onClick={() => void r.saveEdit()} data-testid="drawing-save">
                  Save
                </button>
                <button type="button" onClick={() => { r.setEditing(null); }}>
                  Cancel
                </button>
              </div>
            </div>
          ) : (
            <div className="row">
              <select value={addLabel || labels[0]?.name || ""} onChange={(e) => { setAddLabel(e.target.value); }} data-testid="add-label">
                {labels.map((l) => (
                  <option key={l.name}>{l.name}</option>
                ))}
              </select>
              <button type="button" onClick={() => { r.startEdit(null, addLabel || labels[0]?.name || "finding"); }} data-testid="add-finding">
                Add a missed finding
              </button>
            </div>
          )}
          <h3>Sign-off</h3>
          <textarea rows={2} value={impression} onChange={(e) => { setImpression(e.target.value); }} placeholder="Impression (optional)" data-testid="impression" />
          <p className="muted" data-testid="sign-off-meaning">
            Signing as {r.reader?.display_name ?? "(no reader)"} — meaning: final read. The date and time are recorded when you sign; your
            passphrase opens the key that signs.
          </p>
          <input
            type="password"
            placeholder="Your passphrase"
            value={signPassphrase}
            onChange={(e) => { setSignPassphrase(e.target.value); }}
            data-testid="sign-off-passphrase"
          />
          <button
            type="button"
            aria-disabled={!gate.allowed}
            title={gate.reason}
            onClick={() => {
              // Used once, then cleared: a wrong guess is never carried to another attempt.
              const typed = signPassphrase;
              setSignPassphrase("");
              void r.signOff(impression, typed);
            }}
            data-testid="sign-off"
          >
            Sign off study
          </button>
          {!gate.allowed && <div className="muted" data-testid="sign-off-gate">{gate.reason}</div>}
        </>
      )}
    </div>
  );
}

// A finding shape for colour lookups of legend entries.
const dummy = {
  finding_id: 0,
  analysis_id: 0,
  series_uid: "",
  model_id: "",
  label: "",
  score: null,
  image_score: null,
  color: null,
  geometry: { box: [0, 0, 0, 0] as [number, number, number, number], slices: [0, 0] as [number, number], mask: [], centroid_lps_mm: [0, 0, 0] as [number, number, number], longest_diameter_mm: 0, area_mm2: 0, volume_mm3: 0 },
  decision: null,
};

/** "algorithm version (manufacturer)" of an imported analysis, or null for Dokuei's own. */
function importedFrom(r: ReviewState, analysisId: number): string | null {
  const from = r.review?.analyses.find((a) => a.id === analysisId)?.imported_from;
  if (!from) return null;
  const name = [from.algorithm_name || from.manufacturer || "unnamed", from.algorithm_version].filter(Boolean).join(" ");
  return from.manufacturer && from.algorithm_name ? `${name} (${from.manufacturer})` : name;
}

/** Labels and colours of the imported findings listed, for the legend. */
function importedLegend(r: ReviewState): [string, string][] {
  const seen = new Map<string, string>();
  for (const f of r.review?.findings ?? []) {
    if (!f.color) continue;
    const color = `rgb(${String(f.color[0])}, ${String(f.color[1])}, ${String(f.color[2])})`;
    seen.set(`${f.label}\u0001${color}`, color);
  }
  return [...seen.entries()].map(([k, c]) => [k.split("\u0001")[0] ?? "", c]);
}

/** Results other AI products (or an earlier export) left among the study's files. */
function ImportedBox({ r, phase }: { r: ReviewState; phase: string }) {
  const imported = r.imported;
  if (!imported) return null;
  const recorded = new Set((r.review?.analyses ?? []).flatMap((a) => (a.imported_from ? [a.imported_from.sop_instance_uid] : [])));
  const pending = imported.findings.filter((f) => !recorded.has(f.seg_sop_instance_uid));
  const producers = [...new Set(imported.findings.map((f) => [f.algorithm_name || f.manufacturer || "unnamed", f.algorithm_version].filter(Boolean).join(" ")))];
  const canRecord = phase !== "signed-off" && phase !== "qa" && phase !== "no-reader";
  return (
    <div className="imported" data-testid="imported-results" data-count={imported.findings.length}>
      <p>
        Imported results in these files: {imported.findings.length} finding(s) from {producers.join(", ") || "—"}.
        {pending.length === 0 && imported.findings.length > 0 && " Listed below for review."}
      </p>
      {imported.problems.map((msg) => (
        <p className="error" key={msg} data-testid="imported-problem">
          {msg}
        </p>
      ))}
      {canRecord && pending.length > 0 && (
        <button type="button" onClick={() => void r.reviewImported()} data-testid="review-imported">
          Review the {pending.length} imported finding(s)
        </button>
      )}
    </div>
  );
}

/** Sends the signed-off study's results to a PACS node. */
function SendResults({ r }: { r: ReviewState }) {
  const [node, setNode] = useState(r.nodes[0] ?? "");
  return (
    <div className="form-row">
      <select value={node} onChange={(e) => { setNode(e.target.value); }} data-testid="send-node">
        {r.nodes.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
      <button type="button" disabled={!node} onClick={() => void r.sendResults(node)} data-testid="send-results">
        Send results to PACS
      </button>
      {r.sent && <p className="muted" data-testid="send-results-done">{r.sent}</p>}
    </div>
  );
}

/** "Export de-identified…": a copy of the open study by DICOM PS3.15 (Basic Profile and the
 * options ticked), with progress and cancel; refusals (pixels that may show text) are listed. */
function DeidBox({ r }: { r: ReviewState }) {
  const [settings, setSettings] = useState<DeidSettings>({ ...BASIC_PROFILE });
  const flag = (key: Exclude<keyof DeidSettings, "dates">, label: string) => (
    <label key={key}>
      <input
        type="checkbox"
        checked={settings[key]}
        onChange={(e) => { setSettings({ ...settings, [key]: e.target.checked }); }}
        data-testid={`deid-${key}`}
      />{" "}
      {label}
    </label>
  );
  const running = r.deidProgress !== null;
  return (
    <details className="deid-export" data-testid="deid-box">
      <summary>Export de-identified…</summary>
      <p className="muted">A copy of the whole study by DICOM PS3.15 2023b (Basic Profile); patients get the site&apos;s pseudonyms. Exports are recorded in the access audit. Images that may show burned-in text (ultrasound, screen captures, radiographs without Burned In Annotation NO) are refused unless the site&apos;s region table (<code>deid/pixel-regions.script</code> beside the ledger) blanks it.</p>
      <label>
        Dates{" "}
        <select
          value={settings.dates}
          onChange={(e) => { setSettings({ ...settings, dates: e.target.value as DeidSettings["dates"] }); }}
          data-testid="deid-dates"
        >
          <option value="removed">removed</option>
          <option value="modified">shifted per patient</option>
          <option value="full">kept</option>
        </select>
      </label>
      {flag("retain_patient_characteristics", "Keep sex, age, size, weight")}
      {flag("retain_device", "Keep device identity")}
      {flag("retain_institution", "Keep institution")}
      {flag("retain_uids", "Keep UIDs")}
      {flag("clean_descriptors", "Keep descriptions without identifiers")}
      {flag("clean_structured_content", "Keep report text without identifiers")}
      {flag("clean_recognizable_visual_features", "Remove faces (deface head CT; leave out what cannot be defaced)")}
      <button type="button" disabled={running} onClick={() => void r.exportDeidentified(settings)} data-testid="deid-export">
        Choose folder and export…
      </button>
      {running && (
        <p data-testid="deid-progress">
          <progress max={r.deidProgress?.total || 1} value={r.deidProgress?.done ?? 0} />{" "}
          {String(r.deidProgress?.done ?? 0)} / {String(r.deidProgress?.total ?? 0)}{" "}
          <button type="button" className="link" onClick={() => void r.cancel()} data-testid="deid-cancel">
            Cancel
          </button>
        </p>
      )}
      {r.deidDone && (
        <div data-testid="deid-done">
          <p className="muted">{deidSummary(r.deidDone)}</p>
          {r.deidDone.notes.length > 0 && (
            <ul className="muted" data-testid="deid-notes">
              {r.deidDone.notes.map((n) => <li key={n}>{n}</li>)}
            </ul>
          )}
        </div>
      )}
    </details>
  );
}
