import { getCurrentWebview } from "@tauri-apps/api/webview";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Backend } from "./backend";
import type { AppError, OpenedStudy, RecentStudy } from "./bindings";
import { PacsView, type Comparison } from "./pacs/PacsView";
import { firstImageMs } from "./pacs/timing";
import { KeyImagesPanel } from "./review/KeyImagesPanel";
import { QaView } from "./review/QaView";
import { ReaderBar, ReviewPanel } from "./review/ReviewPanel";
import { useReview, type ReviewState, type Target } from "./review/useReview";
import { SystemPanel } from "./SystemPanel";
import { actionForKey, KEY_BINDINGS, MOUSE_BINDINGS, type PrimaryTool, TOOL } from "./viewer/bindings";
import { fetchAll, glFloor, type GlFloor, heldKey, lastDrawProbe, purgeImages, removeProbe, scrollAll, setCpuRendering, sharedMemory, sliceBySlice, type Throughput, volumeMpr, type VolumeMpr } from "./viewer/bench";
import { imageId } from "./viewer/imageId";
import { bulk, sharedMemory as bulkMap, type BulkStats } from "./viewer/bulk";
import { applyMouseBindings, cpuRendering, fetchSlice, loopbackBase, setLoopback, transfer } from "./viewer/cornerstone";
import { dicomDate, lengthText, personName } from "./viewer/overlay";
import { StudyBrowser, type Selection } from "./viewer/StudyBrowser";
import { toView, type View } from "./viewer/view";
import { hang } from "./viewer/hanging";
import { Viewport, type Measurement, type ViewportHandle } from "./viewer/Viewport";
import { mprRefusal } from "./viewer/mpr";
import { MprView, type MprHandle } from "./viewer/MprView";
import { Followers, crosses, follow, link, linkRefusal, paneReferenceLines, type Link } from "./viewer/sync";
import type { OverlaySpec } from "./review/draw";

/** The colour of reference lines between panes. */
const REFERENCE_COLOUR: [number, number, number, number] = [127, 209, 255, 255];

interface Pane {
  selection: Selection;
  view: View;
}

/** What automation (the end-to-end tests, the benchmark) may call: the same paths as the UI. */
export interface DokueiHooks {
  openPaths(paths: string[]): Promise<string | null>;
  /** Opens a prior study beside the current one (the Open prior button, without its dialog). */
  openPrior(paths: string[]): Promise<string | null>;
  select(series: number, stack: number, pane?: number): Promise<string | null>;
  viewport(pane: number): ViewportHandle | null;
  /** The MPR view, while it is shown. */
  mpr(): MprHandle | null;
  /** Shows (or leaves) MPR of the active pane's stack. */
  setMpr(on: boolean): void;
  measurements(): Measurement[];
  /** The review workflow's state (findings, decisions, timings). */
  review(): ReviewState;
  /** Milliseconds from the last Retrieve click to the first image on screen. */
  retrieveFirstImageMs(): number | null;
  /** Where the QA view's next exports go instead of asking with the save dialog (null: ask). */
  setExportPath(path: string | null): void;
  /** Which pixel transport is in use (default: the scheme); switching is for the benchmark. */
  transport(use?: "scheme" | "loopback"): Promise<"scheme" | "loopback">;
  transfer: typeof transfer;
  /** What the shared-memory transport moved (bulk.ts); null when the extension is not loaded. */
  bulk(): typeof bulk | null;
  bench: {
    reset(): Promise<void>;
    fetchAll(series: number, stack: number, inFlight: number): Promise<Throughput>;
    scrollAll(pane: number): Promise<number[]>;
    /** Steps MPR view `view` (0 axial, 1 coronal, 2 sagittal) through its first `count` planes. */
    scrollMpr(view: number, count: number): Promise<number[]>;
    /** Pane `pane`'s stack by shared memory, as the viewer loads it (see bench.ts). */
    sharedMemory(pane: number): Promise<Throughput & { same: boolean; pieces: number; parts: BulkStats["parts"] }>;
    /** Pane `pane`'s stack into the image cache one fetch per slice (see bench.ts). */
    sliceBySlice(pane: number, inFlight: number): Promise<Throughput>;
    /** Cornerstone3D's volume-viewport MPR of pane `pane`'s stack (see bench.ts). */
    volumeMpr(pane: number, count: number): Promise<VolumeMpr>;
    /** The same steps through a bare WebGL2 renderer on a canvas of the pane's size. */
    glFloor(pane: number): Promise<GlFloor>;
    /** Leaves a red-then-blue WebGL canvas on screen (see bench.ts); `removeProbe` takes it away. */
    lastDrawProbe(antialias: boolean): Promise<void>;
    removeProbe(): void;
    /** A held arrow key on pane `pane` for `ms` (see bench.ts). */
    heldKey(pane: number, ms: number): Promise<{ stepsPerSecond: number; framesPerSecond: number; idleFramesPerSecond: number }>;
    /** Cornerstone3D on the CPU (or WebGL) from the next page load; null: the shell's choice. */
    setCpuRendering(on: boolean | null): void;
    /** Whether Cornerstone3D renders on the CPU now. */
    cpuRendering(): boolean;
  };
}

declare global {
  interface Window {
    __dokuei?: DokueiHooks;
  }
}

export function App({ backend }: { backend: Backend }) {
  const [study, setStudy] = useState<OpenedStudy | null>(null);
  const [error, setError] = useState<AppError | null>(null);
  const [opening, setOpening] = useState(false);
  const [recent, setRecent] = useState<RecentStudy[]>([]);
  const [panes, setPanes] = useState<(Pane | null)[]>([null]);
  const [activePane, setActivePane] = useState(0);
  const [showText, setShowText] = useState(true);
  const [primary, setPrimary] = useState<PrimaryTool>(TOOL.windowLevel);
  const [measurements, setMeasurements] = useState<Measurement[]>([]);
  const [about, setAbout] = useState(false);
  const [qa, setQa] = useState(false);
  const [pacs, setPacs] = useState(false);
  // Prior from PACS: the PACS screen opens searching the open study's patient.
  const [priorSearch, setPriorSearch] = useState(false);
  const [mpr, setMpr] = useState(false);
  const mprRef = useRef<MprHandle | null>(null);
  const mprRoute = useRef(false);
  // Synchronised scrolling of the two panes, and the panes now following the other.
  // Each pane's slice, and a copy in state while some pane draws another's reference line
  // (then each step re-renders).
  const paneSlices = useRef<number[]>([0, 0, 0, 0]);
  const [shownSlices, setShownSlices] = useState<number[]>([0, 0, 0, 0]);
  const [linked, setLinked] = useState<{ link: Link; views: [View, View] } | null>(null);
  const following = useRef(new Followers());
  const exportPathRef = useRef<string | null>(null);
  // The paths of the study open (a prior is opened together with them).
  const openedPaths = useRef<string[]>([]);
  const handles = useRef<(ViewportHandle | null)[]>([null, null, null, null]);
  const measurementsRef = useRef<Measurement[]>([]);
  const panesRef = useRef(panes);
  useEffect(() => {
    panesRef.current = panes;
  }, [panes]);

  useEffect(() => {
    void backend.recentStudies().then(setRecent);
  }, [backend, study]);

  // The series under review: the one in the active pane.
  const activeView = panes[activePane]?.view ?? null;
  const seriesUid = study?.tree.studies.flatMap((s) => s.series).find((s) => s.key === activeView?.series)?.uid ?? null;
  const target: Target | null = useMemo(
    () =>
      activeView && seriesUid
        ? { series: activeView.series, stack: activeView.stack, seriesUid, rows: activeView.rows, columns: activeView.columns, slices: activeView.slices }
        : null,
    [activeView, seriesUid],
  );
  const activeHandle = useCallback(() => handles.current[activePane] ?? null, [activePane]);
  const review = useReview(backend, study?.generation ?? null, target, activeHandle);
  const reviewRef = useRef(review);
  const seriesUidRef = useRef(seriesUid);
  useEffect(() => {
    seriesUidRef.current = seriesUid;
  }, [seriesUid]);
  useEffect(() => {
    reviewRef.current = review;
  }, [review]);

  const select = useCallback(
    async (selection: Selection, pane = activePane): Promise<string | null> => {
      const shown = panesRef.current[pane]?.selection;
      if (shown && shown.series === selection.series && shown.stack === selection.stack) return null;
      const result = await backend.stackView(selection.series, selection.stack);
      if (result.status === "error") {
        setError(result.error);
        return result.error.message;
      }
      const view = toView(result.data);
      // A new stack opens at its first slice.
      paneSlices.current = paneSlices.current.map((x, i) => (i === pane ? 0 : x));
      setShownSlices(paneSlices.current);
      setPanes((old) => old.map((p, i) => (i === pane ? { selection, view } : p)));
      return null;
    },
    [backend, activePane],
  );

  const openPaths = useCallback(
    async (paths: string[]): Promise<string | null> => {
      setOpening(true);
      setError(null);
      try {
        const result = await backend.openStudy(paths);
        if (result.status === "error") {
          setError(result.error);
          return result.error.message;
        }
        setStudy(result.data);
        openedPaths.current = paths;
        paneSlices.current = [0, 0, 0, 0];
        setAbout(false);
        setPacs(false);
        setPanes((old) => old.map(() => null));
        setActivePane(0);
        // Show the first series with images at once.
        const first = result.data.tree.studies.flatMap((s) => s.series).find((s) => s.stacks.length > 0);
        if (first) {
          const view = await backend.stackView(first.key, 0);
          if (view.status === "ok") setPanes((old) => old.map((p, i) => (i === 0 ? { selection: { series: first.key, stack: 0 }, view: toView(view.data) } : p)));
        }
        return null;
      } finally {
        setOpening(false);
      }
    },
    [backend],
  );

  /** Opens a prior study beside the current one (the same patient's): current left, prior
   * right, matching series (see hanging.ts). */
  const openPrior = useCallback(
    async (paths: string[]): Promise<string | null> => {
      const before = openedPaths.current;
      if (before.length === 0) return "open the current study first";
      const keep = seriesUidRef.current;
      setOpening(true);
      setError(null);
      try {
        // The shell holds one study: refusing the prior means opening the current one again
        // (the same paths give the same series keys, so the panes stay as they were).
        const refuse = async (e: AppError): Promise<string> => {
          const again = await backend.openStudy(before);
          if (again.status === "ok") setStudy(again.data);
          setError(again.status === "ok" ? e : again.error);
          return e.message;
        };
        const both = [...new Set([...before, ...paths])];
        const result = await backend.openStudy(both);
        if (result.status === "error") return await refuse(result.error);
        const hung = hang(result.data.tree, keep);
        if ("error" in hung) return await refuse({ code: "invalid_argument", message: hung.error });
        if (hung.prior === null) return await refuse({ code: "not_found", message: "no other study of this patient was found there" });
        const places = [hung.current, hung.prior];
        const views = await Promise.all(places.map((p) => backend.stackView(p.series, p.stack)));
        const failed = views.find((v) => v.status === "error");
        if (failed?.status === "error") return await refuse(failed.error);
        setStudy(result.data);
        openedPaths.current = both;
        setMpr(false);
        paneSlices.current = [0, 0, 0, 0];
        setPanes(places.map((selection, i) => {
          const v = views[i];
          return v?.status === "ok" ? { selection, view: toView(v.data) } : null;
        }));
        setActivePane(0);
        return null;
      } finally {
        setOpening(false);
      }
    },
    [backend],
  );

  // A study named on the command line opens at start (`bash scripts/run.sh` names the sample).
  useEffect(() => {
    void backend.startupPaths().then((paths) => {
      if (paths.length > 0) void openPaths(paths);
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps -- once, at start
  }, []);

  // Drag and drop of folders or files onto the window.
  useEffect(() => {
    let unlisten: (() => void) | undefined;
    let live = true;
    if (!("__TAURI_INTERNALS__" in window)) return;
    void getCurrentWebview()
      .onDragDropEvent((event) => {
        if (event.payload.type === "drop" && event.payload.paths.length > 0) void openPaths(event.payload.paths);
      })
      .then((f) => {
        if (live) unlisten = f;
        else f();
      });
    return () => {
      live = false;
      unlisten?.();
    };
  }, [openPaths]);

  const onMeasurements = useCallback((m: Measurement[]) => {
    measurementsRef.current = m;
    setMeasurements(m);
  }, []);

  // Automation hooks: the same functions the buttons call.
  useEffect(() => {
    window.__dokuei = {
      openPaths,
      openPrior,
      select: (series, stack, pane = 0) => select({ series, stack }, pane),
      viewport: (pane) => handles.current[pane] ?? null,
      mpr: () => mprRef.current,
      setMpr,
      measurements: () => measurementsRef.current,
      review: () => reviewRef.current,
      retrieveFirstImageMs: firstImageMs,
      setExportPath: (path) => {
        exportPathRef.current = path;
      },
      transport: async (use) => {
        if (use === "scheme") setLoopback(null);
        if (use === "loopback") setLoopback(await backend.pixelServer());
        return loopbackBase() ? "loopback" : "scheme";
      },
      transfer,
      bulk: () => (bulkMap() ? bulk : null),
      bench: {
        reset: async () => {
          setPanes((old) => old.map(() => null));
          await new Promise((r) => setTimeout(r, 100));
          purgeImages();
        },
        fetchAll: (series, stack, inFlight) => {
          const node = study?.tree.studies.flatMap((s) => s.series).find((s) => s.key === series);
          const slices = node?.stacks[stack]?.slices ?? 0;
          return fetchAll(study?.generation ?? 0, series, stack, slices, inFlight);
        },
        scrollAll: (pane) => {
          const handle = handles.current[pane];
          const slices = panesRef.current[pane]?.view.slices ?? 0;
          return handle ? scrollAll(handle, slices) : Promise.resolve([]);
        },
        lastDrawProbe,
        removeProbe,
        heldKey: (pane, ms) => {
          const handle = handles.current[pane];
          return handle ? heldKey(handle, ms) : Promise.reject(new Error("no series on screen"));
        },
        setCpuRendering,
        cpuRendering,
        scrollMpr: (view, count) => {
          const handle = mprRef.current?.viewport(view);
          return handle ? scrollAll(handle, count) : Promise.reject(new Error("MPR is not shown"));
        },
        sharedMemory: (pane) => {
          const view = panesRef.current[pane]?.view;
          if (!view || !study) return Promise.reject(new Error("no series on screen"));
          const { series, stack, slices, rows, columns, format } = view;
          return sharedMemory({ generation: study.generation, series, stack, slices, rows, columns, format }, Math.floor(slices / 2));
        },
        sliceBySlice: (pane, inFlight) => {
          const view = panesRef.current[pane]?.view;
          if (!view || !study) return Promise.reject(new Error("no series on screen"));
          const { series, stack, slices, rows, columns, format } = view;
          return sliceBySlice({ generation: study.generation, series, stack, slices, rows, columns, format }, inFlight);
        },
        volumeMpr: (pane, count) => {
          const view = panesRef.current[pane]?.view;
          const el = document.querySelector(".viewport-canvas");
          if (!view || !el || !study) return Promise.reject(new Error("no series on screen"));
          const generation = study.generation;
          const ids = Array.from({ length: view.slices }, (_, slice) => imageId({ generation, series: view.series, stack: view.stack, slice }));
          return volumeMpr(ids, [el.clientWidth, el.clientHeight], count);
        },
        glFloor: async (pane) => {
          const view = panesRef.current[pane]?.view;
          const el = document.querySelector(".viewport-canvas");
          if (!view || !el || !study) throw new Error("no series on screen");
          if (view.format !== "i16") throw new Error(`the floor renderer takes 16-bit signed slices, not ${view.format}`);
          const generation = study.generation;
          const buffers: ArrayBuffer[] = [];
          for (let slice = 0; slice < view.slices; slice++) {
            buffers.push(await fetchSlice(imageId({ generation, series: view.series, stack: view.stack, slice })));
          }
          return glFloor(buffers, view.rows, view.columns, [el.clientWidth, el.clientHeight]);
        },
      },
    };
  }, [backend, openPaths, openPrior, select, study]);

  // Keyboard: reading actions go to the active viewport.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLSelectElement) return;
      if (!e.ctrlKey && !e.metaKey && !e.altKey) {
        const r = reviewRef.current;
        if (e.key === "a") {
          r.setVisible((v) => !v);
          return;
        }
        if (e.key === "n" || e.key === "p") {
          r.step(e.key === "n" ? 1 : -1);
          return;
        }
        if (e.key === "Escape" && r.editing) {
          r.setEditing(null);
          return;
        }
      }
      const action = actionForKey(e);
      if (!action) return;
      e.preventDefault();
      switch (action.kind) {
        case "toggleText":
          setShowText((s) => !s);
          return;
        case "primary":
          setPrimary(action.tool);
          return;
        case "layout":
          return;
        default:
          if (mprRoute.current) mprRef.current?.act(action);
          else handles.current[activePane]?.act(action);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
    };
  }, [activePane]);

  useEffect(() => {
    if (study) applyMouseBindings(primary);
  }, [primary, study]);

  const refusal = activeView ? mprRefusal(activeView) : "choose a series first";
  const mprShown = mpr && activeView !== null && refusal === null;
  useEffect(() => {
    mprRoute.current = mprShown;
  }, [mprShown]);

  const pair = panes.length === 2 ? [panes[0]?.view ?? null, panes[1]?.view ?? null] : [];
  const [first, second] = pair;
  const syncRefusal = first && second ? linkRefusal(first, second) : "show a series in each of two panes first";
  // A link holds for the two stacks it was made for.
  const sync = linked && linked.views[0] === first && linked.views[1] === second ? linked.link : null;

  const toggleSync = () => {
    if (sync || !first || !second || syncRefusal) {
      setLinked(null);
      return;
    }
    setLinked({ link: link(first, handles.current[0]?.slice() ?? 0, second, handles.current[1]?.slice() ?? 0), views: [first, second] });
  };

  /** Pane `i` moved to slice `k`: the other follows while the panes are linked. */
  const onPaneSlice = (i: number, k: number) => {
    paneSlices.current = paneSlices.current.map((x, j) => (j === i ? k : x));
    const here = panesRef.current[i]?.view;
    if (here && panesRef.current.some((p, j) => j !== i && p && crosses(here, p.view))) {
      setShownSlices(paneSlices.current);
    }
    if (!following.current.leads(i, k)) return;
    const j = 1 - i;
    const from = panesRef.current[i]?.view;
    const to = panesRef.current[j]?.view;
    const other = handles.current[j];
    if (!sync || !from || !to || !other) return;
    const target = follow(sync, from, k, to, i === 0);
    if (other.slice() === target) return;
    following.current.send(j, target);
    void other.goTo(target);
  };

  const setLayout = (count: 1 | 2 | 4) => {
    setMpr(false);
    setPanes((old) => Array.from({ length: count }, (_, i) => old[i] ?? null));
    setActivePane((a) => (a < count ? a : 0));
  };

  const pick = async (kind: "folder" | "files") => {
    const paths = await backend.pick(kind);
    if (paths) await openPaths(paths);
  };

  const pickPrior = async () => {
    const paths = await backend.pick("folder");
    if (paths) await openPrior(paths);
  };

  // The open study's patient (one patient ID across the studies open) for the PACS screen.
  const comparison = useMemo((): Comparison | null => {
    const studies = study?.tree.studies ?? [];
    const ids = new Set(studies.map((s) => s.patient_id.trim()));
    const [only] = [...ids];
    if (ids.size !== 1 || !only) return null;
    return { patientId: only, studyUids: studies.map((s) => s.uid), searchNow: priorSearch };
  }, [study, priorSearch]);
  const openPriorFromPacs = useCallback(
    async (paths: string[]) => {
      const refused = await openPrior(paths);
      if (refused === null) setPacs(false);
      return refused;
    },
    [openPrior],
  );

  /** Patient and study text of the study a series belongs to. */
  const headerFor = (seriesKey: number): string[] => {
    const node = study?.tree.studies.find((s) => s.series.some((se) => se.key === seriesKey)) ?? study?.tree.studies[0];
    return node ? [personName(node.patient_name), node.patient_id, `${dicomDate(node.date)} ${node.description}`] : [];
  };

  // Reference lines between panes whose stacks cross in one frame of reference.
  const views = panes.map((p) => p?.view ?? null);
  const overlayFor = (i: number): OverlaySpec | null => {
    const base = i === activePane ? review.overlay : null;
    const here = views[i];
    if (!here || !views.some((v, j) => j !== i && v && crosses(here, v))) return base;
    return {
      ...(base ?? { visible: false, opacity: 0.5, findings: [], heatmap: null, revision: 0, editing: null }),
      lines: (k) => paneReferenceLines(views, shownSlices, i, k).map((l) => ({ ...l, colour: REFERENCE_COLOUR })),
    };
  };

  return (
    <div className="app">
      <header className="topbar">
        <h1>Dokuei</h1>
        <span className="subtitle">AI-assisted image reading</span>
        <div className="toolbar" role="toolbar" aria-label="Viewer">
          <button type="button" onClick={() => void pick("folder")} data-testid="open-folder">
            Open folder…
          </button>
          <button type="button" onClick={() => void pick("files")}>
            Open files…
          </button>
          {study && (
            <>
              <button type="button" onClick={() => void pickPrior()} data-testid="open-prior" title="Open an earlier study of this patient beside this one (current left, prior right)">
                Open prior…
              </button>
              <button
                type="button"
                disabled={comparison === null}
                onClick={() => { setPriorSearch(true); setPacs(true); setQa(false); setAbout(false); }}
                data-testid="prior-pacs"
                title={comparison === null ? "The study open has no patient ID to look for" : "Find this patient's other studies on the PACS; one retrieved opens beside this one"}
              >
                Prior from PACS…
              </button>
              <span className="sep" />
              <button type="button" aria-pressed={!mprShown && panes.length === 1} onClick={() => { setLayout(1); }}>
                1×1
              </button>
              <button type="button" aria-pressed={!mprShown && panes.length === 2} onClick={() => { setLayout(2); }} data-testid="layout-2">
                1×2
              </button>
              <button type="button" aria-pressed={!mprShown && panes.length === 4} onClick={() => { setLayout(4); }} data-testid="layout-4">
                2×2
              </button>
              {panes.length === 2 && !mprShown && (
                <button
                  type="button"
                  aria-pressed={sync !== null}
                  disabled={syncRefusal !== null}
                  title={
                    syncRefusal ??
                    (sync
                      ? sync.sameFrame
                        ? "Scrolling together by patient position"
                        : `Scrolling together, ${sync.offset.toFixed(1)} mm apart (different frames of reference)`
                      : "Scroll the two panes together: by patient position when they share a frame of reference, else keeping the offset on screen now")
                  }
                  onClick={toggleSync}
                  data-testid="sync-scroll"
                >
                  {sync ? (sync.sameFrame ? "Synced" : `Synced ${sync.offset >= 0 ? "+" : ""}${sync.offset.toFixed(1)} mm`) : "Sync"}
                </button>
              )}
              <button
                type="button"
                aria-pressed={mprShown}
                disabled={refusal !== null}
                title={refusal ?? "Axial, coronal and sagittal planes of this stack (1×3)"}
                onClick={() => { setMpr((m) => !m); }}
                data-testid="layout-mpr"
              >
                MPR
              </button>
              <span className="sep" />
              <button type="button" aria-pressed={primary === TOOL.windowLevel} onClick={() => { setPrimary(TOOL.windowLevel); }} data-testid="tool-wl">
                W/L
              </button>
              <button type="button" aria-pressed={primary === TOOL.length} onClick={() => { setPrimary(TOOL.length); }} data-testid="tool-length">
                Length
              </button>
            </>
          )}
          <span className="sep" />
          <button type="button" aria-pressed={pacs} onClick={() => { setPacs((x) => !x); setPriorSearch(false); setQa(false); setAbout(false); }} data-testid="pacs-toggle">
            PACS
          </button>
          <button type="button" aria-pressed={qa} onClick={() => { setQa((q) => !q); setAbout(false); setPacs(false); }} data-testid="qa-toggle">
            QA
          </button>
          <label className="muted" title="Record your own impression before AI results are shown">
            <input
              type="checkbox"
              checked={review.settings.commit_then_reveal}
              onChange={(e) => void review.saveSettings({ ...review.settings, commit_then_reveal: e.target.checked })}
              data-testid="commit-then-reveal"
            />{" "}
            Commit-then-reveal
          </label>
          <button type="button" aria-pressed={about} onClick={() => { setAbout((a) => !a); setQa(false); setPacs(false); }}>
            About
          </button>
        </div>
        <ReaderBar r={review} />
      </header>
      <div className="banner" role="note" data-testid="clinical-use-banner">
        Research software. Bundled models are demonstrations trained on synthetic data: not for clinical use.
      </div>
      {error && (
        <div className="error" role="alert" data-testid="open-error" data-code={error.code}>
          {error.message}
        </div>
      )}
      {opening && <div className="progress indeterminate" role="progressbar" aria-label="Opening study" />}
      {pacs ? (
        <PacsView api={backend} onOpen={openPaths} comparison={comparison} onOpenPrior={openPriorFromPacs} />
      ) : qa ? (
        <QaView api={backend} exportPath={() => Promise.resolve(exportPathRef.current)} />
      ) : study && !about ? (
        <div className="workspace">
          <StudyBrowser
            generation={study.generation}
            tree={study.tree}
            selected={panes[activePane]?.selection ?? null}
            onSelect={(s) => void select(s)}
          />
          {mprShown ? (
            <MprView
              key={`${study.generation}/${activeView.series}/${activeView.stack}`}
              ref={mprRef}
              generation={study.generation}
              view={activeView}
              header={headerFor(activeView.series)}
              showText={showText}
              overlay={review.overlay}
              onMeasurements={onMeasurements}
            />
          ) : (
          <div className={`viewports panes-${panes.length}`}>
            {panes.map((pane, i) =>
              pane ? (
                <Viewport
                  key={i}
                  ref={(h) => {
                    handles.current[i] = h;
                  }}
                  viewportId={`pane-${i}`}
                  generation={study.generation}
                  view={pane.view}
                  header={headerFor(pane.view.series)}
                  seriesText={seriesText(study, pane)}
                  showText={showText}
                  active={i === activePane}
                  onActivate={() => {
                    setActivePane(i);
                  }}
                  onMeasurements={onMeasurements}
                  overlay={overlayFor(i)}
                  onDraw={i === activePane ? review.onDraw : null}
                  onSlice={(k) => {
                    onPaneSlice(i, k);
                  }}
                />
              ) : (
                <div key={i} className={`viewport empty${i === activePane ? " active" : ""}`} onMouseDown={() => { setActivePane(i); }}>
                  <p className="muted">Choose a series on the left.</p>
                </div>
              ),
            )}
          </div>
          )}
          <aside className="sidebar">
            <ReviewPanel r={review} slices={activeView?.slices ?? 0} />
            <KeyImagesPanel
              api={backend}
              target={activeView ? { series: activeView.series, stack: activeView.stack } : null}
              readerId={review.settings.reader_id ?? null}
              signedOff={Boolean(review.review?.sign_off)}
              blocked={null}
              revision={`${study.generation}/${review.review?.sign_off?.recorded_at ?? ""}`}
              currentSlice={() => (mprShown ? (mprRef.current?.sourceSlice() ?? null) : (handles.current[activePane]?.slice() ?? null))}
              goTo={(slice) => {
                if (mprShown) mprRef.current?.showSourceSlice(slice);
                else void handles.current[activePane]?.goTo(slice);
              }}
            />
            <h3>Measurements</h3>
            {measurements.length === 0 ? (
              <p className="muted">Press L (or Length) and drag on the image.</p>
            ) : (
              <ol data-testid="measurements">
                {measurements.map((m) => (
                  <li key={m.uid}>{lengthText(m.length, m.unit)}</li>
                ))}
              </ol>
            )}
            <h3>Keys and mouse</h3>
            <dl className="keys">
              {MOUSE_BINDINGS.map((b) => (
                <div key={b.button}>
                  <dd>{b.help}</dd>
                </div>
              ))}
              {KEY_BINDINGS.filter((b) => !/^[2-9]$/.test(b.key)).map((b) => (
                <div key={b.key}>
                  <dt>{b.key === "1" ? "1–9" : b.key}</dt>
                  <dd>{b.key === "1" ? "window presets" : b.help}</dd>
                </div>
              ))}
            </dl>
            {panes[activePane]?.view.presets.length ? (
              <>
                <h3>Presets</h3>
                <ol className="presets">
                  {panes[activePane].view.presets.map((p) => (
                    <li key={p.name}>
                      {p.name} <span className="muted">W {p.width} L {p.center}</span>
                    </li>
                  ))}
                </ol>
              </>
            ) : null}
          </aside>
        </div>
      ) : (
        <main className="start">
          {!study && (
            <section className="panel">
              <h2>Open a study</h2>
              <p className="muted">
                A folder, a DICOMDIR or a zip archive — or drop it onto this window. Unreadable files are listed, never
                silently skipped.
              </p>
              {recent.length > 0 && (
                <>
                  <h3>Recent studies</h3>
                  <ul className="recent" data-testid="recent">
                    {recent.map((r) => (
                      <li key={r.paths.join("|")}>
                        <button type="button" className="link" onClick={() => void openPaths(r.paths)}>
                          {r.label || r.paths.join(", ")}
                        </button>
                        <span className="muted"> {r.paths.join(", ")}</span>
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </section>
          )}
          <SystemPanel backend={backend} />
        </main>
      )}
    </div>
  );
}

function seriesText(study: OpenedStudy, pane: Pane): string[] {
  const studies = study.tree.studies;
  const home = studies.find((s) => s.series.some((se) => se.key === pane.selection.series));
  const series = home?.series.find((s) => s.key === pane.selection.series);
  if (!home || !series) return [];
  const lines = [`${series.modality} ${series.number ?? ""} ${series.description}`.trim(), pane.view.plane];
  // With a prior open: which study this is.
  if (studies.length > 1) {
    const latest = studies.reduce((d, s) => (s.date > d ? s.date : d), "");
    lines.push(`${home.date === latest ? "Current" : "Prior"} ${dicomDate(home.date)}`);
  }
  return lines;
}
