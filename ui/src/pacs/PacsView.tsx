// The PACS screen: nodes (DIMSE or DICOMweb) with Test connection, query with paging, retrieve
// with progress per series and cancel (the first series opens while the rest arrives), the
// receiver (off by default), the cache, and what was received. With a study open in the
// viewer, its patient's other studies can be found and one retrieved straight into the viewer
// as the prior (current left, prior right).

import { Channel } from "@tauri-apps/api/core";
import { useCallback, useEffect, useRef, useState } from "react";
import type {
  AppError,
  Node_Serialize as Node,
  PacsSettings_Serialize as PacsSettings,
  PacsStatus_Serialize as PacsStatus,
  Progress_Deserialize as Progress,
  QueryRow_Serialize as QueryRow,
  Retrieved_Serialize as Retrieved,
  commands,
} from "../bindings";
import { personName } from "../viewer/overlay";
import { armRetrieveTiming } from "./timing";

export type PacsApi = Pick<
  typeof commands,
  "pacsSettings" | "savePacsSettings" | "pacsStatus" | "pacsTest" | "pacsFind" | "pacsRetrieve" | "pacsCancel" | "pacsClearCache"
>;

const PAGE = 25;

function message(e: AppError | string): string {
  return typeof e === "string" ? e : e.message;
}

function address(n: Node): string {
  return n.protocol === "dimse" ? `${n.called_ae_title}@${n.host}:${n.port}${n.tls ? " (TLS)" : ""}` : n.base_url;
}

function mb(bytes: number | null | undefined): string {
  return `${((bytes ?? 0) / 1048576).toFixed(1)} MiB`;
}

export interface Draft {
  protocol: "dimse" | "dicomweb";
  name: string;
  host: string;
  port: string;
  called: string;
  calling: string;
  ca: string;
  cert: string;
  key: string;
  url: string;
  auth: "none" | "basic" | "bearer";
  user: string;
  password: string;
  token: string;
}

export const EMPTY: Draft = {
  protocol: "dicomweb",
  name: "",
  host: "127.0.0.1",
  port: "104",
  called: "",
  calling: "DOKUEI",
  ca: "",
  cert: "",
  key: "",
  url: "",
  auth: "none",
  user: "",
  password: "",
  token: "",
};

export function toNode(d: Draft): Node {
  if (d.protocol === "dimse")
    return {
      protocol: "dimse",
      name: d.name.trim(),
      host: d.host.trim(),
      port: Number(d.port),
      called_ae_title: d.called.trim(),
      calling_ae_title: d.calling.trim(),
      tls: d.ca ? { ca_file: d.ca, certificate_file: d.cert, key_file: d.key } : null,
    };
  const auth =
    d.auth === "basic" ? { kind: "basic" as const, user: d.user, password: d.password } : d.auth === "bearer" ? { kind: "bearer" as const, token: d.token } : { kind: "none" as const };
  return { protocol: "dicomweb", name: d.name.trim(), base_url: d.url.trim(), auth };
}

/** The study open in the viewer, for finding its priors on the PACS. */
export interface Comparison {
  patientId: string;
  /** The studies open now (a row of one of these is not offered as a prior). */
  studyUids: string[];
  /** Search this patient's studies as soon as the screen opens (the viewer's Prior from PACS). */
  searchNow: boolean;
}

/** The rows another study of the open study's patient (a prior to offer). */
export function priorRows(rows: QueryRow[], c: Comparison | null): Set<string> {
  const id = c?.patientId.trim() ?? "";
  if (!c || id === "") return new Set();
  return new Set(rows.filter((r) => r.patient_id.trim() === id && !c.studyUids.includes(r.study_uid)).map((r) => r.study_uid));
}

const NO_QUERY = { patient_name: "", patient_id: "", accession_number: "", date_from: "", date_to: "", modality: "" };

export function PacsView({
  api,
  onOpen,
  comparison = null,
  onOpenPrior,
}: {
  api: PacsApi;
  onOpen: (paths: string[]) => Promise<string | null>;
  comparison?: Comparison | null;
  /** Opens retrieved paths as the prior of the study open (null when it opened, else why not). */
  onOpenPrior?: (paths: string[]) => Promise<string | null>;
}) {
  const [settings, setSettings] = useState<PacsSettings | null>(null);
  const [status, setStatus] = useState<PacsStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tests, setTests] = useState<Record<string, string>>({});
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [node, setNode] = useState("");
  const [query, setQuery] = useState(NO_QUERY);
  const [rows, setRows] = useState<QueryRow[] | null>(null);
  const [offset, setOffset] = useState(0);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [retrieved, setRetrieved] = useState<(Retrieved & { asPrior: boolean }) | null>(null);
  const [byMove, setByMove] = useState(false);

  useEffect(() => {
    let live = true;
    void api.pacsSettings().then((s) => {
      if (!live) return;
      if (s.status === "ok") {
        setSettings(s.data);
        setNode((n) => n || s.data.nodes[0]?.name || "");
      } else setError(message(s.error));
    });
    void api.pacsStatus().then((st) => {
      if (live && st.status === "ok") setStatus(st.data);
    });
    return () => {
      live = false;
    };
  }, [api]);

  const save = useCallback(
    async (next: PacsSettings) => {
      const r = await api.savePacsSettings(next);
      if (r.status === "error") {
        setError(message(r.error));
        return;
      }
      setError(null);
      setSettings(next);
      setStatus(r.data);
      setNode((n) => (next.nodes.some((x) => x.name === n) ? n : next.nodes[0]?.name ?? ""));
    },
    [api],
  );

  const test = useCallback(
    async (name: string) => {
      setTests((t) => ({ ...t, [name]: "testing…" }));
      const r = await api.pacsTest(name);
      setTests((t) => ({ ...t, [name]: r.status === "ok" ? r.data : `failed: ${message(r.error)}` }));
    },
    [api],
  );

  const search = useCallback(
    async (at: number, q: typeof NO_QUERY = query) => {
      setBusy(true);
      const r = await api.pacsFind(node, { ...q, level: "study", limit: PAGE, offset: at });
      setBusy(false);
      if (r.status === "error") {
        setError(message(r.error));
        setRows(null);
        return;
      }
      setError(null);
      setRows(r.data);
      setOffset(at);
    },
    [api, node, query],
  );

  /** The open study's patient's studies, newest first as the PACS answers. */
  const findPriors = useCallback(
    (c: Comparison) => {
      const q = { ...NO_QUERY, patient_id: c.patientId.trim() };
      setQuery(q);
      void search(0, q);
    },
    [search],
  );
  // The viewer's Prior from PACS: search at once, on the first node, when the settings are in.
  // Once per patient and set of studies open (not again when the study object is rebuilt, e.g.
  // when a refused prior reopens the current study).
  const searchedFor = useRef("");
  useEffect(() => {
    const key = comparison ? `${comparison.patientId}\n${comparison.studyUids.join("\n")}` : "";
    if (comparison?.searchNow && node && searchedFor.current !== key) {
      searchedFor.current = key;
      findPriors(comparison);
    }
  }, [comparison, node, findPriors]);

  const retrieve = useCallback(
    async (studyUid: string, series: string[] = [], asPrior = false) => {
      setBusy(true);
      setRetrieved(null);
      setError(null);
      armRetrieveTiming();
      const root = status?.cache.root ?? "";
      const dir = `${root}/${studyUid}`;
      let openedFirst = false;
      const channel = new Channel<Progress>();
      channel.onmessage = (p) => {
        setProgress(p);
        // The first series opens while the rest arrives (a prior opens whole, beside the study).
        if (!asPrior && p.series_complete && p.series_count > 1 && !openedFirst && root) {
          openedFirst = true;
          void onOpen([dir]);
        }
      };
      const r = await api.pacsRetrieve(node, { study_uid: studyUid, series_uids: series }, byMove, channel);
      setBusy(false);
      if (r.status === "error") {
        setError(message(r.error));
        return;
      }
      setRetrieved({ ...r.data, asPrior });
      if (r.data.report.instances.length > 0) {
        // A prior refused (another patient's, after all) is named by the viewer's error line.
        if (asPrior && onOpenPrior) await onOpenPrior([r.data.study_dir]);
        else await onOpen([r.data.study_dir]);
      }
      const st = await api.pacsStatus();
      if (st.status === "ok") setStatus(st.data);
    },
    [api, node, byMove, status, onOpen, onOpenPrior],
  );

  if (!settings) return <main className="pacs">{error ? <div className="error">{error}</div> : <p className="muted">Loading…</p>}</main>;
  const incomplete = retrieved?.report.series.filter((s) => !s.complete) ?? [];
  const priors = priorRows(rows ?? [], comparison);
  const set = (k: keyof Draft) => (e: { target: { value: string } }) => { setDraft({ ...draft, [k]: e.target.value }); };
  const rx = settings.receiver;

  return (
    <main className="pacs" data-testid="pacs-view">
      {error && (
        <div className="error" role="alert" data-testid="pacs-error">
          {error}
        </div>
      )}
      {status?.settings_error && <div className="error">The PACS settings file could not be read: {status.settings_error}</div>}

      <section className="panel">
        <h2>Query</h2>
        <div className="form-row">
          <select value={node} onChange={(e) => { setNode(e.target.value); }} data-testid="pacs-node">
            {settings.nodes.map((n) => (
              <option key={n.name} value={n.name}>
                {n.name}
              </option>
            ))}
          </select>
          <input placeholder="Patient name (* ?)" value={query.patient_name} onChange={(e) => { setQuery({ ...query, patient_name: e.target.value }); }} data-testid="q-name" />
          <input placeholder="Patient ID" value={query.patient_id} onChange={(e) => { setQuery({ ...query, patient_id: e.target.value }); }} />
          <input placeholder="Accession" value={query.accession_number} onChange={(e) => { setQuery({ ...query, accession_number: e.target.value }); }} />
          <input placeholder="From YYYYMMDD" size={10} value={query.date_from} onChange={(e) => { setQuery({ ...query, date_from: e.target.value }); }} />
          <input placeholder="To YYYYMMDD" size={10} value={query.date_to} onChange={(e) => { setQuery({ ...query, date_to: e.target.value }); }} />
          <input placeholder="Modality" size={4} value={query.modality} onChange={(e) => { setQuery({ ...query, modality: e.target.value }); }} />
          <button type="button" disabled={!node || busy} onClick={() => void search(0)} data-testid="q-search">
            Search
          </button>
          <label className="muted">
            <input type="checkbox" checked={byMove} onChange={(e) => { setByMove(e.target.checked); }} /> C-MOVE to the receiver
          </label>
        </div>
        {comparison && comparison.patientId.trim() !== "" && (
          <p className="muted">
            <button type="button" className="link" disabled={!node || busy} onClick={() => { findPriors(comparison); }} data-testid="q-priors">
              This patient&apos;s studies
            </button>{" "}
            (the patient of the study open): <em>Retrieve as prior</em> opens one beside it, current left, prior right.
          </p>
        )}
        {rows && (
          <>
            <table className="results" data-testid="q-results">
              <thead>
                <tr>
                  <th>Date</th>
                  <th>Patient</th>
                  <th>ID</th>
                  <th>Accession</th>
                  <th>Modalities</th>
                  <th>Description</th>
                  <th>Series / instances</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.study_uid} data-study={r.study_uid}>
                    <td>{r.study_date}</td>
                    <td>{personName(r.patient_name)}</td>
                    <td>{r.patient_id}</td>
                    <td>{r.accession_number}</td>
                    <td>{r.modalities}</td>
                    <td>{r.study_description}</td>
                    <td>
                      {r.series_count ?? "?"} / {r.instance_count ?? "?"}
                    </td>
                    <td>
                      <button type="button" disabled={busy} onClick={() => void retrieve(r.study_uid)} data-testid="q-retrieve">
                        Retrieve
                      </button>
                      {priors.has(r.study_uid) && onOpenPrior && (
                        <>
                          {" "}
                          <button type="button" disabled={busy} onClick={() => void retrieve(r.study_uid, [], true)} data-testid="q-prior" title="Retrieve this study and open it beside the study open (current left, prior right)">
                            Retrieve as prior
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted">
              {rows.length === 0 ? "No match." : `${offset + 1}–${offset + rows.length}`}{" "}
              <button type="button" className="link" disabled={offset === 0 || busy} onClick={() => void search(Math.max(0, offset - PAGE))}>
                Previous
              </button>{" "}
              <button type="button" className="link" disabled={rows.length < PAGE || busy} onClick={() => void search(offset + PAGE)}>
                Next
              </button>
            </p>
          </>
        )}
        {busy && progress && (
          <div data-testid="pacs-progress">
            <progress max={progress.instances_total ?? undefined} value={progress.instances_done} /> Series {progress.series_index + 1}/{progress.series_count}:{" "}
            {progress.series_instances_done}
            {progress.series_instances_total != null ? `/${progress.series_instances_total}` : ""} instances · {mb(progress.bytes)}
            {progress.seconds_left != null ? ` · about ${Math.ceil(progress.seconds_left)} s left` : ""}{" "}
            <button type="button" onClick={() => void api.pacsCancel()} data-testid="pacs-cancel">
              Cancel
            </button>
          </div>
        )}
        {retrieved && (
          <p data-testid="pacs-retrieved" data-complete={incomplete.length === 0 && !retrieved.report.cancelled}>
            {retrieved.report.instances.length} instances ({mb(retrieved.report.bytes)}) in {(retrieved.report.seconds ?? 0).toFixed(1)} s.
            {retrieved.report.cancelled && " Cancelled; what arrived is kept."}
            {retrieved.cache_note && ` Note: ${retrieved.cache_note}.`}
          </p>
        )}
        {incomplete.length > 0 && retrieved && (
          <div className="error" data-testid="pacs-incomplete">
            Not complete:
            <ul>
              {incomplete.map((s) => (
                <li key={s.series_uid}>
                  {s.series_uid}: {s.status}
                </li>
              ))}
            </ul>
            <button type="button" disabled={busy} onClick={() => void retrieve(retrieved.report.study_uid, incomplete.map((s) => s.series_uid), retrieved.asPrior)}>
              Retry these series
            </button>
          </div>
        )}
      </section>

      <section className="panel">
        <h2>Nodes</h2>
        <ul className="nodes" data-testid="pacs-nodes">
          {settings.nodes.map((n) => (
            <li key={n.name}>
              <strong>{n.name}</strong> <span className="muted">{n.protocol === "dimse" ? "DIMSE" : "DICOMweb"} {address(n)}</span>{" "}
              <button type="button" onClick={() => void test(n.name)} data-testid={`pacs-test-${n.name}`}>
                Test connection
              </button>{" "}
              <button type="button" className="link" onClick={() => void save({ ...settings, nodes: settings.nodes.filter((x) => x.name !== n.name) })}>
                Remove
              </button>
              {tests[n.name] && (
                <span className="muted" data-testid={`pacs-test-result-${n.name}`}>
                  {" "}
                  {tests[n.name]}
                </span>
              )}
            </li>
          ))}
        </ul>
        <div className="form-row" data-testid="pacs-add-node">
          <input placeholder="Name" value={draft.name} onChange={set("name")} data-testid="node-name" />
          <select value={draft.protocol} onChange={(e) => { setDraft({ ...draft, protocol: e.target.value as Draft["protocol"] }); }} data-testid="node-protocol">
            <option value="dicomweb">DICOMweb</option>
            <option value="dimse">DIMSE</option>
          </select>
          {draft.protocol === "dicomweb" ? (
            <>
              <input placeholder="Base URL (…/dicom-web)" size={36} value={draft.url} onChange={set("url")} data-testid="node-url" />
              <select value={draft.auth} onChange={(e) => { setDraft({ ...draft, auth: e.target.value as Draft["auth"] }); }} data-testid="node-auth">
                <option value="none">No authentication</option>
                <option value="basic">HTTP Basic</option>
                <option value="bearer">Bearer token</option>
              </select>
              {draft.auth === "basic" && (
                <>
                  <input placeholder="User" value={draft.user} onChange={set("user")} data-testid="node-user" />
                  <input placeholder="Password" type="password" value={draft.password} onChange={set("password")} data-testid="node-password" />
                </>
              )}
              {draft.auth === "bearer" && <input placeholder="Token" type="password" value={draft.token} onChange={set("token")} />}
            </>
          ) : (
            <>
              <input placeholder="Host" value={draft.host} onChange={set("host")} data-testid="node-host" />
              <input placeholder="Port" size={6} value={draft.port} onChange={set("port")} data-testid="node-port" />
              <input placeholder="Called AE" size={12} value={draft.called} onChange={set("called")} data-testid="node-called" />
              <input placeholder="Calling AE" size={12} value={draft.calling} onChange={set("calling")} />
              <input placeholder="TLS CA file (optional)" value={draft.ca} onChange={set("ca")} />
              {draft.ca && (
                <>
                  <input placeholder="Certificate file" value={draft.cert} onChange={set("cert")} />
                  <input placeholder="Key file" value={draft.key} onChange={set("key")} />
                </>
              )}
            </>
          )}
          <button
            type="button"
            disabled={!draft.name.trim()}
            onClick={() => {
              void save({ ...settings, nodes: [...settings.nodes.filter((n) => n.name !== draft.name.trim()), toNode(draft)] }).then(() => {
                setDraft(EMPTY);
              });
            }}
            data-testid="node-add"
          >
            Save node
          </button>
        </div>
      </section>

      <section className="panel">
        <h2>Receive (C-STORE SCP)</h2>
        <div className="form-row">
          <label>
            <input
              type="checkbox"
              checked={rx.enabled}
              onChange={(e) => void save({ ...settings, receiver: { ...rx, enabled: e.target.checked } })}
              data-testid="rx-enabled"
            />{" "}
            On
          </label>
          <input value={rx.address} size={12} onChange={(e) => { setSettings({ ...settings, receiver: { ...rx, address: e.target.value } }); }} aria-label="Address" />
          <input value={rx.port} size={6} onChange={(e) => { setSettings({ ...settings, receiver: { ...rx, port: Number(e.target.value) || 0 } }); }} aria-label="Port" />
          <input value={rx.ae_title} size={12} onChange={(e) => { setSettings({ ...settings, receiver: { ...rx, ae_title: e.target.value } }); }} aria-label="AE title" />
          <input
            placeholder="Allowed calling AE titles, comma-separated"
            size={32}
            value={rx.allowed_calling_ae_titles.join(", ")}
            onChange={(e) => { setSettings({ ...settings, receiver: { ...rx, allowed_calling_ae_titles: e.target.value.split(",").map((s) => s.trim()).filter(Boolean) } }); }}
          />
          <button type="button" onClick={() => void save(settings)}>
            Apply
          </button>
        </div>
        <p className="muted" data-testid="rx-status">
          {status?.listening ? `Listening on ${status.listening} as ${rx.ae_title}.` : "Off: no listening socket."} {status?.receiver_error}
        </p>
        {status && status.received.length > 0 && (
          <ul data-testid="rx-received">
            {status.received.map((s) => (
              <li key={s.study_uid}>
                {s.study_uid}: {s.instances} instances from {s.calling_ae_titles.join(", ")}{" "}
                <button type="button" className="link" onClick={() => void onOpen([s.path])}>
                  Open
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section className="panel">
        <h2>Cache</h2>
        {status && (
          <p className="muted" data-testid="cache-usage">
            {status.cache.studies.length} studies, {mb(status.cache.bytes)} of {mb(status.cache.limit_bytes)} in {status.cache.root} (least recently used
            studies leave first).{" "}
            <button
              type="button"
              className="link"
              disabled={busy}
              title={busy ? "Not while a retrieve is writing into the cache" : undefined}
              onClick={() => void api.pacsClearCache(null).then((r) => { if (r.status === "ok") setStatus(r.data); else setError(message(r.error)); })}
              data-testid="cache-clear"
            >
              Clear the cache
            </button>
          </p>
        )}
        <label>
          Limit (MiB){" "}
          <input
            size={8}
            value={settings.cache_limit_mib ?? 0}
            onChange={(e) => { setSettings({ ...settings, cache_limit_mib: Number(e.target.value) || 0 }); }}
            onBlur={() => void save(settings)}
          />
        </label>
        {status && (
          <ul>
            {status.cache.studies.map((s) => (
              <li key={s.study_uid}>
                {s.study_uid}: {s.instances} instances, {mb(s.bytes)}{" "}
                <button type="button" className="link" onClick={() => void onOpen([s.path])}>
                  Open
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
