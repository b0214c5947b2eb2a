// MPR: axial, coronal and sagittal viewports (1×3) of one volume, each a virtual stack of
// planes the shell reformats (mpr.ts), linked by crosshairs: scrolling one view moves the
// others' reference lines, a click or drag with the crosshairs tool moves all three planes
// through that point, and dragging another plane's line round the centre (or `[` and `]`)
// turns the other two planes about the view's normal (oblique MPR). Window/level is shared; a
// slab (MIP, MinIP, average) applies to all three; AI findings of the source stack are
// resampled onto every plane in their colours, and its heatmap is reformatted by the shell onto
// each plane.

import { useEffect, useImperativeHandle, useMemo, useRef, useState, type Ref } from "react";
import type { OverlayFinding, OverlayLine, OverlaySpec } from "../review/draw";
import { css, type Rgba } from "../review/logic";
import type { ViewerAction } from "./bindings";
import { commitMprStack, registerMprStack, syncWindow, unregisterMprStack } from "./cornerstone";
import { findingOnStack, indexAt, MPR_AXES, MPR_VIEWS, mprStack, parallelView, mprView, ontoSourceSlice, planeAt, planeSpec, pointOn, sourceSliceOf, volumeOf, voxelToPatient, type MprStack, type SlabMode } from "./mpr";
import { add, crosshairGrab, dot, patientToPlane, referenceLine, rotateAbout, scale, sub, turnAngle, type MprView as MprName, type Vec3 } from "./planes";
import { schemeUrl } from "./imageId";
import type { View } from "./view";
import { Viewport, type DrawEvent, type Measurement, type ViewportHandle } from "./Viewport";


/** Each plane's colour, on its reference lines in the other views and its viewport's label. */
export const PLANE_COLOUR: Record<MprName, Rgba> = { axial: [255, 80, 80, 255], coronal: [80, 220, 80, 255], sagittal: [255, 220, 60, 255] };

export interface MprHandle {
  act(action: ViewerAction): void;
  viewport(index: number): ViewportHandle | null;
  center(): Vec3;
  setCenter(p: Vec3): void;
  setSlab(mm: number, mode: SlabMode): void;
  /** Turns the other two planes about the active view's normal. */
  rotate(degrees: number): void;
  /** Where a patient point falls on view `index`'s current plane: image coordinates as
   * `ViewportHandle.canvasPoint` takes them (pixel centres at +0.5), and its distance from the
   * plane (mm). */
  imagePoint(index: number, p: Vec3): { row: number; column: number; depth: number } | null;
  slices(): number[];
  /** Each view's plane normal (they turn with the crosshairs). */
  normals(): Vec3[];
  /** The source image the active view shows as it is (a key image can be marked on it), or why
   * it shows none. */
  sourceSlice(): number | { why: string } | null;
  /** Moves the centre onto source image `j` (the view parallel to the slices shows it). */
  showSourceSlice(j: number): void;
}

interface Props {
  generation: number;
  view: View;
  header: string[];
  showText: boolean;
  /** The AI overlay of the source stack (its findings are resampled onto each plane). */
  overlay: OverlaySpec | null;
  onMeasurements: (m: Measurement[]) => void;
  ref?: Ref<MprHandle>;
}

const SLABS = [0, 5, 10, 20, 40];
const SLAB_NAME: Record<SlabMode, string> = { mip: "MIP", minip: "MinIP", average: "Average" };
/** A press this close to a plane's line (image pixels) takes hold of it… */
const GRIP_PIXELS = 8;
/** …when it is farther than this share of the image's shorter side from the centre. */
const REACH = 0.1;

interface Registration {
  key: string;
  source: View;
  view: View;
  prefix: string;
  ids: (k: number) => string;
}

const registrationKey = (generation: number, s: MprStack, slab: { mm: number; mode: SlabMode }) => JSON.stringify([generation, s, slab]);

/** The other views' directions turned by `degrees` about `axis` (view `fixed`'s normal). */
function turnOthers(d: Record<MprName, [Vec3, Vec3]>, fixed: number, axis: Vec3, degrees: number): Record<MprName, [Vec3, Vec3]> {
  const next = { ...d };
  MPR_VIEWS.forEach((name, j) => {
    if (j === fixed) return;
    const turned = rotateAbout({ origin: [0, 0, 0], row: d[name][0], column: d[name][1], spacing: [1, 1], rows: 1, columns: 1 }, axis, degrees, [0, 0, 0]);
    next[name] = [turned.row, turned.column];
  });
  return next;
}

export function MprView({ generation, view, header, showText, overlay, onMeasurements, ref }: Props) {
  const volume = useMemo(() => volumeOf(view), [view]);
  const [dirs, setDirs] = useState<Record<MprName, [Vec3, Vec3]>>(MPR_AXES);
  const [slab, setSlab] = useState<{ mm: number; mode: SlabMode }>({ mm: 0, mode: "mip" });
  // The view showing the study's own images is active first: scrolling it is scrolling the
  // stack, and Mark marks its images (sourceSliceOf).
  const [active, setActive] = useState(() => (volume ? parallelView(volume) : 0));
  const [crosshairs, setCrosshairs] = useState(false);
  const [center, setCenter] = useState<Vec3>(() =>
    volume ? voxelToPatient(volume, (volume.columns - 1) / 2, (volume.rows - 1) / 2, (volume.slices - 1) / 2) : [0, 0, 0],
  );
  const centerRef = useRef(center);
  useEffect(() => {
    centerRef.current = center;
  }, [center]);
  const handles = useRef<(ViewportHandle | null)[]>([null, null, null]);

  const stacks: MprStack[] = useMemo(
    () => (volume ? MPR_VIEWS.map((name) => mprStack(volume, name, dirs[name][0], dirs[name][1])) : []),
    [volume, dirs],
  );
  // One registration per stack and slab: the viewports' image ids. A view whose planes did not
  // change (the one whose crosshairs are turned) keeps its registration, so it is not reloaded.
  // (Derived during render from the previous registrations, React's pattern for state that
  // follows props.)
  const [registered, setRegistered] = useState<Registration[]>([]);
  let shown = registered;
  const holds = (r: Registration | undefined, s: MprStack): r is Registration => r?.key === registrationKey(generation, s, slab) && r.source === view;
  if (stacks.length !== registered.length || stacks.some((s, i) => !holds(registered[i], s))) {
    shown = stacks.map((s, i) => {
      const key = registrationKey(generation, s, slab);
      const kept = registered[i];
      if (holds(kept, s)) return kept;
      const v = mprView(view, s, slab.mm);
      const prefix = registerMprStack(
        v,
        (k) => `plane/${generation}/${view.series}/${view.stack}/${planeSpec(planeAt(s, k), slab.mm, slab.mode)}`,
      );
      return { key, source: view, view: v, prefix, ids: (k: number) => `${prefix}${k}` };
    });
    setRegistered(shown);
  }
  const unmounted = useRef(false);
  useEffect(() => {
    // (Set again on mount: StrictMode unmounts and mounts once more in development.)
    unmounted.current = false;
    return () => {
      unmounted.current = true;
    };
  }, []);
  // Stacks replaced (a slab change, a turn) are forgotten once their last requests are done.
  const current = useRef<Registration[]>([]);
  useEffect(() => {
    current.current = registered;
    for (const r of registered) commitMprStack(r.prefix);
    return () => {
      const prefixes = registered.map((r) => r.prefix);
      window.setTimeout(() => {
        for (const p of prefixes) if (unmounted.current || !current.current.some((r) => r.prefix === p)) unregisterMprStack(p);
      }, 10000);
    };
  }, [registered]);
  const indices = stacks.map((s) => indexAt(s, center));

  // The other viewports follow the crosshair centre. The view whose scrolling moved it is left
  // alone: it may have scrolled on since, and sending it back would undo the reader's steps.
  const centerSource = useRef<number | null>(null);
  const moveCenter = (p: Vec3) => {
    centerSource.current = null;
    setCenter(p);
  };
  useEffect(() => {
    stacks.forEach((s, i) => {
      if (i === centerSource.current) return;
      const h = handles.current[i];
      const k = indexAt(s, center);
      if (h && h.slice() !== k) void h.goTo(k);
    });
  }, [center, stacks]);

  // Window/level shared by the three.
  useEffect(() => {
    const ids = MPR_VIEWS.map((_, i) => `mpr-${i}`);
    for (const id of ids) syncWindow(id, true);
    return () => {
      for (const id of ids) {
        try {
          syncWindow(id, false);
        } catch {
          // The viewport went first.
        }
      }
    };
  }, []);

  // Findings resampled onto each stack (recomputed when the findings or the planes change).
  const findings: OverlayFinding[][] = useMemo(() => {
    if (!volume || !overlay) return stacks.map(() => []);
    return stacks.map((s) =>
      overlay.findings.flatMap((f) => {
        const g = findingOnStack(f.geometry, volume, s, f.box);
        return g ? [{ ...f, geometry: g }] : [];
      }),
    );
  }, [overlay, stacks, volume]);

  // The heatmap, if the analysis has one, reformatted by the shell onto each plane shown. Slab
  // planes show its maximum through the slab whatever the slab mode (so the mode is not part
  // of the request). The planes last asked for are kept (about 50 MB at most); a plane the
  // shell refuses is not asked for again, and the first refusal is logged with its reason.
  const heat = useRef(new Map<string, Uint8Array | "loading" | "failed">());
  const heatWarned = useRef(false);
  const [heatArrived, setHeatArrived] = useState(0);
  const source = overlay?.heatmapSource ?? null;
  const heatmapOf = (s: MprStack) =>
    source
      ? (k: number): Uint8Array | undefined => {
          const path = `mapplane/${generation}/${view.series}/${view.stack}/${source.analysis}/${source.index}/${planeSpec(planeAt(s, k), slab.mm, "mip")}`;
          const have = heat.current.get(path);
          if (have instanceof Uint8Array) {
            // Most recently used last: the oldest go first.
            heat.current.delete(path);
            heat.current.set(path, have);
            return have;
          }
          if (have === undefined) {
            while (heat.current.size >= 96) {
              const oldest = heat.current.keys().next().value;
              if (oldest === undefined) break;
              heat.current.delete(oldest);
            }
            heat.current.set(path, "loading");
            void fetch(schemeUrl(path))
              .then(async (r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(await r.text()))))
              .then((b) => {
                heat.current.set(path, new Uint8Array(b));
                setHeatArrived((n) => n + 1);
              })
              .catch((e: unknown) => {
                heat.current.set(path, "failed");
                if (!heatWarned.current) console.warn(`dokuei: the heatmap cannot be shown on this plane: ${String(e)}`);
                heatWarned.current = true;
              });
          }
          return undefined;
        }
      : null;

  const overlays: OverlaySpec[] = stacks.map((s, i) => ({
    visible: overlay?.visible ?? false,
    opacity: overlay?.opacity ?? 0.5,
    findings: findings[i] ?? [],
    heatmap: heatmapOf(s),
    revision: (overlay?.revision ?? 0) + heatArrived,
    editing: null,
    lines: (k: number) =>
      stacks.flatMap((other, j): OverlayLine[] => {
        if (j === i) return [];
        const line = referenceLine(planeAt(other, indexAt(other, center)), planeAt(s, k));
        const name = MPR_VIEWS[j];
        return line && name ? [{ ...line, colour: PLANE_COLOUR[name] }] : [];
      }),
  }));

  /** Viewport `i` scrolled to plane k: the centre moves along its normal. */
  const onSlice = (i: number, k: number) => {
    const s = stacks[i];
    if (!s) return;
    centerSource.current = i;
    setCenter((c) => {
      if (indexAt(s, c) === k) return c;
      const depth = dot(sub(c, s.origin), s.normal);
      return add(c, scale(s.normal, k * s.step - depth));
    });
  };

  const rotate = (degrees: number) => {
    const axis = stacks[active]?.normal;
    if (!axis) return;
    setDirs((d) => turnOthers(d, active, axis, degrees));
  };

  // The crosshairs tool: a press on another plane's line, away from the centre, turns the other
  // two planes about this view's normal as the line is dragged round (whole degrees, each
  // turn from the planes as they were at the press); a press anywhere else moves the centre.
  const turning = useRef<{ view: number; from: Vec3; axis: Vec3; dirs: Record<MprName, [Vec3, Vec3]>; degrees: number; turned: boolean } | null>(null);
  const crosshairDraw = (i: number, s: MprStack) => (e: DrawEvent) => {
    const point = pointOn(s, e.slice, e.column - 0.5, e.row - 0.5);
    if (e.phase === "down") {
      const others = stacks.flatMap((o, j) => (j === i ? [] : [planeAt(o, indexAt(o, centerRef.current))]));
      const grip = GRIP_PIXELS * Math.min(...s.spacing);
      const reach = REACH * Math.min(s.rows * s.spacing[0], s.columns * s.spacing[1]);
      turning.current =
        crosshairGrab(planeAt(s, e.slice), centerRef.current, others, point, grip, reach) === "turn"
          ? { view: i, from: point, axis: s.normal, dirs, degrees: 0, turned: false }
          : null;
    }
    const turn = turning.current;
    if (!turn) {
      moveCenter(point);
      return;
    }
    const degrees = Math.round(turnAngle(turn.axis, centerRef.current, turn.from, point));
    if (degrees !== turn.degrees) {
      turn.degrees = degrees;
      turn.turned = true;
      setDirs(turnOthers(turn.dirs, turn.view, turn.axis, degrees));
    }
    if (e.phase === "up") {
      // A click on a line that turned nothing moves the centre there, as anywhere else.
      if (!turn.turned) moveCenter(turn.from);
      turning.current = null;
    }
  };

  useImperativeHandle(ref, () => ({
    act(action) {
      handles.current[active]?.act(action);
    },
    viewport: (i) => handles.current[i] ?? null,
    center: () => centerRef.current,
    setCenter: moveCenter,
    setSlab: (mm, mode) => {
      setSlab({ mm, mode });
    },
    rotate,
    imagePoint(i, p) {
      const s = stacks[i];
      const h = handles.current[i];
      if (!s || !h) return null;
      const q = patientToPlane(planeAt(s, h.slice()), p);
      return { row: q.j + 0.5, column: q.i + 0.5, depth: q.depth };
    },
    slices: () => handles.current.map((h) => h?.slice() ?? -1),
    normals: () => stacks.map((s) => s.normal),
    sourceSlice() {
      const s = stacks[active];
      const k = handles.current[active]?.slice();
      if (!volume || !s || k === undefined) return null;
      return sourceSliceOf(volume, s, k, slab.mm);
    },
    showSourceSlice(j) {
      if (volume) moveCenter(ontoSourceSlice(volume, centerRef.current, j));
    },
  }));

  // `[` and `]` turn the planes; `x` toggles the crosshairs tool.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement) return;
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "[" || e.key === "]") rotate(e.key === "[" ? -5 : 5);
      else if (e.key === "x") setCrosshairs((c) => !c);
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
    };
  });

  if (!volume) return <p className="error">This stack cannot be reformatted.</p>;
  return (
    <div className="mpr">
      <div className="mpr-tools" role="toolbar" aria-label="MPR">
        <button type="button" aria-pressed={crosshairs} onClick={() => { setCrosshairs((c) => !c); }} data-testid="mpr-crosshairs" title="Click or drag to move the three planes through a point; drag another plane's line, away from the centre, round it to turn the planes (X)">
          Crosshairs
        </button>
        <label>
          Slab{" "}
          <select value={slab.mm} onChange={(e) => { setSlab((s) => ({ ...s, mm: Number(e.target.value) })); }} data-testid="mpr-slab">
            {SLABS.map((mm) => (
              <option key={mm} value={mm}>
                {mm === 0 ? "none" : `${mm} mm`}
              </option>
            ))}
          </select>
        </label>
        <select value={slab.mode} onChange={(e) => { setSlab((s) => ({ ...s, mode: e.target.value as SlabMode })); }} data-testid="mpr-slab-mode" aria-label="Slab mode">
          {Object.entries(SLAB_NAME).map(([value, name]) => (
            <option key={value} value={value}>
              {name}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => { setDirs(MPR_AXES); }} data-testid="mpr-reset-planes" title="Back to axial, coronal and sagittal">
          Reset planes
        </button>
        <span className="muted">Crosshairs: drag a line round the centre, or [ ], to turn the other planes about this one</span>
      </div>
      <div className="viewports panes-3">
        {shown.map((s, i) => {
          const name = MPR_VIEWS[i] ?? "axial";
          const stack = stacks[i];
          return (
            <div key={name} className="mpr-pane" style={{ borderTopColor: css(PLANE_COLOUR[name]) }} data-testid={`mpr-${name}`}>
              <Viewport
                ref={(h) => {
                  handles.current[i] = h;
                }}
                viewportId={`mpr-${i}`}
                generation={generation}
                view={s.view}
                ids={s.ids}
                startSlice={indices[i] ?? 0}
                keepWindow
                onSlice={(k) => {
                  onSlice(i, k);
                }}
                header={header}
                seriesText={[s.view.plane, ...(slab.mm > 0 ? [`${SLAB_NAME[slab.mode]} ${slab.mm} mm`] : [])]}
                showText={showText && i === 0}
                active={i === active}
                onActivate={() => {
                  setActive(i);
                }}
                onMeasurements={onMeasurements}
                overlay={overlays[i] ?? null}
                onDraw={crosshairs && stack ? crosshairDraw(i, stack) : null}
              />
            </div>
          );
        })}
      </div>
    </div>
  );
}

