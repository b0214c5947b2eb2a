// The access audit in the QA view: export the trail as DICOM PS3.15 audit messages (IHE ATNA,
// one XML file each) and configure the audit record repository it is sent to over syslog-TLS.

import { open } from "@tauri-apps/plugin-dialog";
import { useEffect, useState } from "react";
import type { AuditSettings_Serialize } from "../bindings";
import type { ReviewApi } from "./useReview";

export function AuditPanel({ api, exportPath }: { api: ReviewApi; exportPath?: (format: string) => Promise<string | null> }) {
  const [settings, setSettings] = useState<AuditSettings_Serialize | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    void api.auditSettings().then((r) => {
      if (!live) return;
      if (r.status === "ok") setSettings(r.data);
      else setError(r.error.message);
    });
    return () => {
      live = false;
    };
  }, [api]);

  const exportTrail = async () => {
    const folder: string | null =
      (await exportPath?.("atna")) ?? (await open({ directory: true, multiple: false, title: "Folder for the audit messages" }));
    if (!folder) return;
    setBusy(true);
    setError(null);
    setMessage(null);
    const r = await api.exportAudit(folder);
    setBusy(false);
    if (r.status === "ok") setMessage(`${String(r.data.messages)} audit messages (DICOM PS3.15) written to ${r.data.folder}`);
    else setError(r.error.message);
  };

  const save = async () => {
    if (!settings) return;
    setBusy(true);
    setError(null);
    setMessage(null);
    const r = await api.saveAuditSettings(settings);
    setBusy(false);
    if (r.status === "ok") {
      setSettings(r.data);
      setMessage(r.data.send ? `Audit events go to ${r.data.repository.host}:${String(r.data.repository.port)} over TLS` : "Audit repository settings saved (sending is off)");
    } else setError(r.error.message);
  };

  const text = (value: string, change: (s: AuditSettings_Serialize, v: string) => AuditSettings_Serialize) => ({
    value,
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => {
      setSettings((s) => (s ? change(s, e.target.value) : s));
    },
  });
  const tls = (s: AuditSettings_Serialize, k: "ca_file" | "certificate_file" | "key_file", v: string) => ({
    ...s,
    repository: { ...s.repository, tls: { ...s.repository.tls, [k]: v } },
  });

  return (
    <section className="audit" data-testid="audit-panel">
      <h3>Access audit</h3>
      <p className="muted">
        Who opened which study, ran which model, exported, sent or received what, and changed which setting: recorded in the ledger and
        chained like decisions.
      </p>
      <button type="button" disabled={busy} onClick={() => void exportTrail()} data-testid="audit-export">
        Export audit trail (DICOM ATNA XML)…
      </button>
      {settings && (
        <form
          className="filters"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
          data-testid="audit-settings"
        >
          <label>
            <span>
              <input
                type="checkbox"
                checked={settings.send}
                onChange={(e) => {
                  setSettings({ ...settings, send: e.target.checked });
                }}
                data-testid="audit-send"
              />{" "}
              send to an audit repository (syslog over TLS)
            </span>
          </label>
          <label>
            Host
            <input type="text" {...text(settings.repository.host, (s, v) => ({ ...s, repository: { ...s.repository, host: v } }))} data-testid="audit-host" />
          </label>
          <label>
            Port
            <input
              type="number"
              min={1}
              max={65535}
              value={settings.repository.port || ""}
              placeholder="6514"
              onChange={(e) => {
                setSettings({ ...settings, repository: { ...settings.repository, port: Number(e.target.value) || 0 } });
              }}
              data-testid="audit-port"
            />
          </label>
          <label>
            CA certificate (PEM)
            <input type="text" {...text(settings.repository.tls.ca_file, (s, v) => tls(s, "ca_file", v))} data-testid="audit-ca" />
          </label>
          <label>
            Dokuei&apos;s certificate (PEM, optional)
            <input type="text" {...text(settings.repository.tls.certificate_file, (s, v) => tls(s, "certificate_file", v))} data-testid="audit-certificate" />
          </label>
          <label>
            Dokuei&apos;s key (PEM, optional)
            <input type="text" {...text(settings.repository.tls.key_file, (s, v) => tls(s, "key_file", v))} data-testid="audit-key" />
          </label>
          <label>
            Audit source ID
            <input type="text" placeholder="this machine's name" {...text(settings.source_id, (s, v) => ({ ...s, source_id: v }))} data-testid="audit-source" />
          </label>
          <label>
            Site ID
            <input type="text" {...text(settings.site_id, (s, v) => ({ ...s, site_id: v }))} data-testid="audit-site" />
          </label>
          <button type="submit" disabled={busy} data-testid="audit-save">
            Save audit settings
          </button>
        </form>
      )}
      {message && <p data-testid="audit-message">{message}</p>}
      {error && (
        <div className="error" role="alert" data-testid="audit-error">
          {error}
        </div>
      )}
    </section>
  );
}
