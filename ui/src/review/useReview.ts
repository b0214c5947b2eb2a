// The review workflow's state for the open study: the reader, the models, the running analysis,
// the study's findings and decisions as recorded in the ledger, and the region being drawn.
// Every decision goes to Rust (and the ledger) at once; the screen shows what Rust returns.

import { Channel } from "@tauri-apps/api/core";
import { open } from "@tauri-apps/plugin-dialog";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Backend } from "../backend";
import {
  type Action,
  type AnalyseProgress,
  type AnalyseResult,
  type AppError,
  type DeidExport,
  type DeidProgress,
  type DeidSettings,
  type ImportedResults,
  type MapInfo,
  type ModelSummary,
  type Reader,
  type RejectReason,
  type Role,
  type Settings_Serialize as Settings,
  type StudyReview,
} from "../bindings";
import { schemeUrl } from "../viewer/imageId";
import type { DrawEvent, ViewportHandle } from "../viewer/Viewport";
import type { OverlayFinding, OverlaySpec } from "./draw";
import {
  ADDED_COLOUR,
  aiVisible,
  bitmaps,
  brush,
  findingKey,
  findingSlice,
  labelColour,
  phase as phaseOf,
  shownGeometry,
  stepFinding,
  toMaskSlices,
  type FindingView,
  type Palette,
  type Review,
  type Rgba,
} from "./logic";

/** What the review needs of the backend (the one interface to Rust; a test may pass its own). */
export type ReviewApi = Backend;

export interface Target {
  /** Series key in the open study, its stack, and its Series Instance UID. */
  series: number;
  stack: number;
  seriesUid: string;
  rows: number;
  columns: number;
  slices: number;
}

interface Editing {
  /** The finding being edited, or null for a new one. */
  finding: FindingView | null;
  label: string;
  bitmaps: Map<number, Uint8Array>;
  version: number;
  radius: number;
}

interface AnalysisShown {
  id: number;
  series: number;
  stack: number;
  maps: MapInfo[];
  imageScores: number[][];
  engineSeconds: number;
  /** Click on Analyse → overlays on screen (ms), measured by the screen. */
  uiMs: number | null;
  clickedAt: number;
  provider: string;
}

export type ReviewState = ReturnType<typeof useReview>;

/** What a de-identified export did, in one line. */
export function deidSummary(d: DeidExport): string {
  const parts = [`${String(d.written)} file(s) written to ${d.folder}`];
  if (d.refused) parts.push(`${String(d.refused)} refused`);
  if (d.failed) parts.push(`${String(d.failed)} failed`);
  if (d.skipped) parts.push(`${String(d.skipped)} skipped`);
  if (d.pixels_cleaned) parts.push(`burned-in text blanked in ${String(d.pixels_cleaned)} by the region table ${d.region_table ?? ""}`);
  return `${d.cancelled ? "Cancelled: " : ""}${parts.join(", ")}.`;
}

const asReview = (r: StudyReview): Review => r as Review;

/** An error's message; Tauri itself answers some failures (e.g. a command not allowed) with a
 * bare string rather than Dokuei's `{code, message}`. */
function message(e: AppError | string): string {
  return typeof e === "string" ? e : e.message;
}

export function useReview(api: ReviewApi, generation: number | null, target: Target | null, handle: () => ViewportHandle | null) {
  const [settings, setSettings] = useState<Settings>({ reader_id: null, commit_then_reveal: false, palette: "standard", model_folders: [] });
  const [readers, setReaders] = useState<Reader[]>([]);
  const [models, setModels] = useState<ModelSummary[]>([]);
  const [modelDir, setModelDir] = useState<string>("");
  const [review, setReview] = useState<Review | null>(null);
  const [progress, setProgress] = useState<AnalyseProgress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [analysis, setAnalysis] = useState<AnalysisShown | null>(null);
  const [opacity, setOpacity] = useState(0.6);
  const [visible, setVisible] = useState(true);
  const [selected, setSelected] = useState<string | null>(null);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [exported, setExported] = useState<string | null>(null);
  const [deidProgress, setDeidProgress] = useState<DeidProgress | null>(null);
  const [deidDone, setDeidDone] = useState<DeidExport | null>(null);
  const [sent, setSent] = useState<string | null>(null);
  /** PACS nodes results can be sent to (from the PACS settings). */
  const [nodes, setNodes] = useState<string[]>([]);
  const [imported, setImported] = useState<ImportedResults | null>(null);
  const [heatVersion, setHeatVersion] = useState(0);
  // The installation's policy: the reader's passphrase with every decision (kept only until
  // the next decision is sent).
  const [decisionPassphraseRequired, setDecisionPassphraseRequired] = useState(false);
  const [typed, setTyped] = useState<{ owner: string; value: string }>({ owner: "", value: "" });
  const heat = useRef(new Map<string, Uint8Array | "loading">());
  const decisionMs = useRef<number[]>([]);
  const commitMs = useRef<number[]>([]);
  const drawing = useRef(false);

  useEffect(() => {
    void api.decisionPassphraseRequired().then((r) => {
      if (r.status === "ok") setDecisionPassphraseRequired(r.data);
    });
  }, [api, generation]);

  useEffect(() => {
    void api.pacsSettings().then((r) => {
      if (r.status === "ok") setNodes(r.data.nodes.map((n) => n.name));
    });
  }, [api, generation]);

  useEffect(() => {
    void api.settings().then(setSettings);
    void api.readers().then((r) => {
      if (r.status === "ok") setReaders(r.data);
      else setError(message(r.error));
    });
  }, [api]);

  useEffect(() => {
    void api.models().then((r) => {
      if (r.status === "ok") {
        setModels(r.data);
        setModelDir((d) => d || (r.data.find((m) => m.integrity_ok)?.dir ?? ""));
      } else setError(message(r.error));
    });
  }, [api, settings.model_folders]);

  const reader = readers.find((r) => r.id === settings.reader_id) ?? null;
  // A passphrase typed but not sent belongs to its reader and study only: it reads as empty
  // once either changes.
  const passphraseOwner = `${String(reader?.id)}/${String(target?.series)}/${String(generation)}`;
  const decisionPassphrase = typed.owner === passphraseOwner ? typed.value : "";
  const setDecisionPassphrase = useCallback((value: string) => {
    setTyped({ owner: passphraseOwner, value });
  }, [passphraseOwner]);
  const current = useMemo(() => phaseOf({ role: reader?.role ?? null, review, commitThenReveal: settings.commit_then_reveal }), [reader, review, settings.commit_then_reveal]);

  // The study's review as recorded, whenever the series on screen changes.
  const seriesKey = target?.series ?? null;
  useEffect(() => {
    if (seriesKey === null || generation === null) return;
    let live = true;
    void api.studyReview(seriesKey).then((r) => {
      if (!live) return;
      if (r.status === "ok") setReview(asReview(r.data));
      else setError(message(r.error));
    });
    return () => {
      live = false;
    };
  }, [api, seriesKey, generation]);

  // Results other AI products (or an earlier export) left among the study's files.
  useEffect(() => {
    if (generation === null) return;
    let live = true;
    void api.importedResults().then((r) => {
      if (live) setImported(r.status === "ok" ? r.data : null);
    });
    return () => {
      live = false;
    };
  }, [api, generation]);

  /** Lists the imported results as findings to decide on (recorded in the ledger once). */
  const reviewImported = useCallback(async (): Promise<string | null> => {
    if (!target) return "no series is open";
    const r = await api.reviewImportedResults(target.series);
    if (r.status === "error") {
      setError(message(r.error));
      return r.error.message;
    }
    setError(null);
    setReview(asReview(r.data));
    return null;
  }, [api, target]);

  const saveSettings = useCallback(
    async (next: Settings) => {
      const r = await api.saveSettings(next);
      if (r.status === "ok") setSettings(r.data);
      else setError(message(r.error));
    },
    [api],
  );

  const createReader = useCallback(
    async (name: string, role: Role, passphrase: string): Promise<string | null> => {
      const r = await api.createReader(name, role, passphrase);
      if (r.status === "error") {
        setError(message(r.error));
        return r.error.message;
      }
      // The new profile becomes the current reader in the same render that lists it, so the
      // reader bar never shows it unselected.
      const saved = await api.saveSettings({ ...settings, reader_id: r.data.id });
      setReaders((old) => [...old, r.data]);
      if (saved.status === "ok") setSettings(saved.data);
      else setError(message(saved.error));
      return null;
    },
    [api, settings],
  );

  const addModelFolder = useCallback(async () => {
    const dir = await open({ directory: true, multiple: false, title: "A folder of models (each in its own folder with a manifest.toml)" });
    if (typeof dir !== "string") return;
    if (settings.model_folders.includes(dir)) return;
    await saveSettings({ ...settings, model_folders: [...settings.model_folders, dir] });
  }, [settings, saveSettings]);

  const model = models.find((m) => m.dir === modelDir) ?? null;
  const modelOf = useCallback((id: string) => models.find((m) => m.id === id) ?? null, [models]);

  // Findings of the series on screen, in list order (AI by score, then added).
  const findings = useMemo(
    () => (review && target ? review.findings.filter((f) => f.series_uid === target.seriesUid || f.finding_id === null) : []),
    [review, target],
  );

  const colourOf = useCallback(
    (f: FindingView): Rgba => {
      // Imported results carry the colour their object asks for.
      if (f.color) return [f.color[0], f.color[1], f.color[2], 160];
      const m = modelOf(f.model_id) ?? model;
      if (f.finding_id === null) {
        return m ? labelColour(f.label, m.labels, settings.palette as Palette) : ADDED_COLOUR;
      }
      return labelColour(f.label, m?.labels ?? [], settings.palette as Palette);
    },
    [modelOf, model, settings.palette],
  );

  const analyse = useCallback(async (): Promise<string | null> => {
    if (!target || !modelDir) return "choose a series and a model";
    setError(null);
    const clickedAt = performance.now();
    setProgress({ done: 0, total: 0, eta_seconds: -1 });
    const channel = new Channel<AnalyseProgress>();
    channel.onmessage = (p) => {
      setProgress(p);
    };
    const r = await api.analyse(target.series, target.stack, modelDir, channel);
    setProgress(null);
    if (r.status === "error") {
      setError(message(r.error));
      return r.error.message;
    }
    const data: AnalyseResult = r.data;
    heat.current.clear();
    setReview(asReview(data.review));
    setSelected(null);
    setAnalysis({
      id: data.analysis_id,
      series: target.series,
      stack: target.stack,
      maps: data.maps,
      imageScores: data.image_scores.map((row) => row.map((x) => x ?? 0)),
      engineSeconds: data.engine_seconds ?? 0,
      uiMs: null,
      clickedAt,
      provider: data.execution_provider,
    });
    return null;
  }, [api, target, modelDir]);

  const cancel = useCallback(async () => {
    await api.cancelAnalysis();
  }, [api]);

  const jumpTo = useCallback(
    (f: FindingView) => {
      setSelected(findingKey(f));
      const h = handle();
      if (!h) return;
      const g = shownGeometry(f);
      void h.goTo(findingSlice(f)).then(() => {
        h.centreOn((g.box[1] + g.box[3] + 1) / 2, (g.box[0] + g.box[2] + 1) / 2);
      });
    },
    [handle],
  );

  const step = useCallback(
    (by: 1 | -1) => {
      const f = stepFinding(findings, selected, by);
      if (f) jumpTo(f);
    },
    [findings, selected, jumpTo],
  );

  const decide = useCallback(
    async (
      f: FindingView | null,
      action: Action,
      extra: { reason?: RejectReason; text?: string; mask?: Editing["bitmaps"]; label?: string } = {},
    ): Promise<string | null> => {
      if (!target || !reader) return "choose a reader profile first";
      const started = performance.now();
      const passphrase = decisionPassphraseRequired ? decisionPassphrase : null;
      setDecisionPassphrase("");
      const r = await api.decide(
        target.series,
        target.stack,
        reader.id,
        {
          finding_id: f?.finding_id ?? null,
          replaces_added: f && f.finding_id === null ? (f.decision?.id ?? null) : null,
          action,
          label: extra.label ?? f?.label ?? "",
          reject_reason: extra.reason ?? null,
          reason_text: extra.text ?? "",
          mask: extra.mask ? toMaskSlices(extra.mask) : [],
        },
        passphrase,
      );
      if (r.status === "error") {
        setError(message(r.error));
        // The policy may have changed since the study opened (an administrator, elsewhere).
        void api.decisionPassphraseRequired().then((p) => {
          if (p.status === "ok") setDecisionPassphraseRequired(p.data);
        });
        return r.error.message;
      }
      decisionMs.current.push(performance.now() - started);
      commitMs.current.push(r.data.commit_ms ?? NaN);
      setError(null);
      setReview(asReview(r.data.review));
      return null;
    },
    [api, target, reader, decisionPassphraseRequired, decisionPassphrase, setDecisionPassphrase],
  );

  const startEdit = useCallback(
    (f: FindingView | null, label: string) => {
      if (!target) return;
      setEditing({
        finding: f,
        label,
        bitmaps: f ? bitmaps(shownGeometry(f), target.rows, target.columns) : new Map<number, Uint8Array>(),
        version: 0,
        radius: Math.max(2, Math.round(target.columns / 100)),
      });
      if (f) jumpTo(f);
    },
    [target, jumpTo],
  );

  const onDraw = useCallback(
    (e: DrawEvent) => {
      if (!target) return;
      if (e.phase === "down") drawing.current = true;
      if (e.phase === "up") {
        drawing.current = false;
        return;
      }
      if (!drawing.current) return;
      setEditing((ed) => {
        if (!ed) return ed;
        const b = ed.bitmaps.get(e.slice) ?? new Uint8Array(target.rows * target.columns);
        brush(b, target.rows, target.columns, e.row - 0.5, e.column - 0.5, ed.radius, e.erase ? 0 : 1);
        ed.bitmaps.set(e.slice, b);
        return { ...ed, version: ed.version + 1 };
      });
    },
    [target],
  );

  const saveEdit = useCallback(async (): Promise<string | null> => {
    if (!editing) return null;
    const f = editing.finding;
    const action: Action = f && f.finding_id !== null ? "edit" : "add";
    const err = await decide(f, action, { mask: editing.bitmaps, label: editing.label });
    if (!err) setEditing(null);
    return err;
  }, [editing, decide]);

  /**
   * Writes the study's results as DICOM (SEG, SR) into `folder`, else one the reader chooses.
   * Returns what was written, or the error.
   */
  const exportResults = useCallback(
    async (folder?: string): Promise<string> => {
      if (!target) return "no series is open";
      const dir = folder ?? (await open({ directory: true, multiple: false, title: "Folder for the DICOM results (SEG, SR)" }));
      if (typeof dir !== "string") return "no folder chosen";
      const r = await api.exportResults(target.series, dir);
      if (r.status === "error") {
        setError(message(r.error));
        return message(r.error);
      }
      setError(null);
      const notes = r.data.notes.length ? ` ${r.data.notes.join(" ")}` : "";
      const done = `Wrote ${r.data.objects.length} DICOM object(s) to ${r.data.folder}: ${r.data.objects.map((o) => o.kind).join(", ")}.${notes}`;
      setExported(done);
      return done;
    },
    [api, target],
  );

  /**
   * Writes a de-identified copy of the open study (PS3.15 Basic Profile and the chosen options)
   * into `folder`, else one the reader chooses, with progress; `cancelAnalysis` stops it between
   * files. Returns a one-line summary, or the error.
   */
  const exportDeidentified = useCallback(
    async (settings: DeidSettings, folder?: string): Promise<string> => {
      if (!target) return "no series is open";
      const dir = folder ?? (await open({ directory: true, multiple: false, title: "Folder for the de-identified study" }));
      if (typeof dir !== "string") return "no folder chosen";
      const channel = new Channel<DeidProgress>();
      channel.onmessage = (p) => {
        setDeidProgress(p);
      };
      setDeidDone(null);
      setDeidProgress({ done: 0, total: 0 });
      const r = await api.exportDeidentified(target.series, dir, settings, channel);
      setDeidProgress(null);
      if (r.status === "error") {
        setError(message(r.error));
        return message(r.error);
      }
      setError(null);
      setDeidDone(r.data);
      return deidSummary(r.data);
    },
    [api, target],
  );

  /**
   * Exports the study's results and sends them to PACS node `node` (C-STORE or STOW-RS); each
   * instance sent and its outcome is in the ledger. Returns what happened, or the error.
   */
  const sendResults = useCallback(
    async (node: string): Promise<string> => {
      if (!target) return "no series is open";
      setSent(`Sending to ${node}…`);
      const r = await api.sendResults(target.series, node);
      if (r.status === "error") {
        setSent(null);
        setError(message(r.error));
        return message(r.error);
      }
      setError(null);
      const stored = r.data.filter((o) => o.stored).length;
      const failed = r.data.filter((o) => !o.stored).map((o) => `${o.sop_class_uid}: ${o.detail}`);
      const done = `Sent ${stored} of ${r.data.length} object(s) to ${node}.${failed.length ? ` Not stored: ${failed.join("; ")}` : ""}`;
      setSent(done);
      return done;
    },
    [api, target],
  );

  const setPassphrase = useCallback(
    async (current: string | null, next: string): Promise<string | null> => {
      if (!reader) return "choose a reader profile first";
      const r = await api.setPassphrase(reader.id, current, next);
      if (r.status === "error") {
        setError(message(r.error));
        return r.error.message;
      }
      setError(null);
      return null;
    },
    [api, reader],
  );

  const signOff = useCallback(
    async (impression: string, passphrase: string): Promise<string | null> => {
      if (!target || !reader) return "choose a reader profile first";
      const r = await api.signOff(target.series, reader.id, impression, passphrase);
      if (r.status === "error") {
        setError(message(r.error));
        return r.error.message;
      }
      setError(null);
      setReview(asReview(r.data));
      return null;
    },
    [api, target, reader],
  );

  const recordImpression = useCallback(
    async (text: string): Promise<string | null> => {
      if (!target || !reader) return "choose a reader profile first";
      const r = await api.recordImpression(target.series, reader.id, text);
      if (r.status === "error") {
        setError(message(r.error));
        return r.error.message;
      }
      setError(null);
      setReview(asReview(r.data));
      return null;
    },
    [api, target, reader],
  );

  const reveal = useCallback(async (): Promise<string | null> => {
    if (!target || !reader) return "choose a reader profile first";
    const r = await api.revealAi(target.series, reader.id);
    if (r.status === "error") {
      setError(message(r.error));
      return r.error.message;
    }
    setReview(asReview(r.data));
    return null;
  }, [api, target, reader]);

  // The heatmap of the analysis on screen, fetched slice by slice as they are shown.
  const heatmapFor = useMemo(() => {
    const map = analysis?.maps[0];
    if (!analysis || !map || !target || analysis.series !== target.series || analysis.stack !== target.stack) return null;
    const id = analysis.id;
    return (slice: number): Uint8Array | undefined => {
      const key = `${String(id)}/${String(map.index)}/${String(slice)}`;
      const have = heat.current.get(key);
      if (have instanceof Uint8Array) return have;
      if (have === undefined) {
        heat.current.set(key, "loading");
        void fetch(schemeUrl(`map/${key}`))
          .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(String(r.status)))))
          .then((b) => {
            heat.current.set(key, new Uint8Array(b));
            setHeatVersion((v) => v + 1);
          })
          .catch(() => heat.current.delete(key));
      }
      return undefined;
    };
  }, [analysis, target]);

  const heatmapSource = useMemo(() => {
    const map = analysis?.maps[0];
    if (!analysis || !map || !target || analysis.series !== target.series || analysis.stack !== target.stack) return null;
    return { analysis: analysis.id, index: map.index };
  }, [analysis, target]);

  const showAi = aiVisible(current);
  const overlay: OverlaySpec | null = useMemo(() => {
    if (!target) return null;
    const kindOf = (f: FindingView) => modelOf(f.model_id)?.kind ?? "segmentation";
    const list: OverlayFinding[] = showAi
      ? findings
          .filter((f) => f.decision?.action !== "reject")
          .filter((f) => !(editing?.finding && findingKey(editing.finding) === findingKey(f)))
          .map((f) => ({
            key: findingKey(f),
            geometry: shownGeometry(f),
            colour: colourOf(f),
            caption: `${f.label}${f.score !== null ? ` ${f.score.toFixed(2)}` : " (added)"}`,
            box: kindOf(f) === "detection" && f.decision?.action !== "edit",
            selected: selected === findingKey(f),
          }))
      : [];
    return {
      visible: visible && showAi,
      opacity,
      findings: list,
      heatmap: showAi ? heatmapFor : null,
      heatmapSource: showAi ? heatmapSource : null,
      revision: heatVersion,
      editing: editing
        ? { bitmaps: editing.bitmaps, colour: editing.finding ? colourOf(editing.finding) : ADDED_COLOUR, version: editing.version }
        : null,
    };
  }, [target, showAi, findings, editing, colourOf, selected, visible, opacity, heatmapFor, heatmapSource, modelOf, heatVersion]);

  // Click on Analyse → overlays on screen: measured once the overlay with the new findings has
  // been handed to the viewport and a frame has been drawn.
  useEffect(() => {
    if (!analysis || analysis.uiMs !== null) return;
    const id = requestAnimationFrame(() => {
      setAnalysis((a) => (a && a.uiMs === null ? { ...a, uiMs: performance.now() - a.clickedAt } : a));
    });
    return () => {
      cancelAnimationFrame(id);
    };
  }, [analysis, overlay]);

  return {
    settings,
    saveSettings,
    readers,
    reader,
    createReader,
    models,
    model,
    addModelFolder,
    modelDir,
    setModelDir,
    review,
    phase: current,
    findings,
    colourOf,
    progress,
    error,
    setError,
    analysis,
    analyse,
    cancel,
    opacity,
    setOpacity,
    visible,
    setVisible,
    selected,
    jumpTo,
    step,
    decide,
    decisionPassphraseRequired,
    decisionPassphrase,
    setDecisionPassphrase,
    editing,
    setEditing,
    startEdit,
    onDraw: editing ? onDraw : null,
    saveEdit,
    signOff,
    setPassphrase,
    exportResults,
    exported,
    exportDeidentified,
    deidProgress,
    deidDone,
    sendResults,
    sent,
    nodes,
    imported,
    reviewImported,
    recordImpression,
    reveal,
    overlay,
    decisionMs,
    commitMs,
    modelOf,
  };
}
