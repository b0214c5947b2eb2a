// One Cornerstone3D stack viewport showing a stack decoded in Rust, with the corner texts,
// orientation markers, the value under the cursor, and the reading actions.

import { Enums, cache, eventTarget, imageLoader, type Types } from "@cornerstonejs/core";
import { Enums as ToolsEnums, annotation, utilities as toolsUtilities, type Types as ToolsTypes } from "@cornerstonejs/tools";
import { useEffect, useImperativeHandle, useRef, useState, type Ref } from "react";
import { clampSlice, TOOL, type ViewerAction } from "./bindings";
import { bulk, loadStack, loadWhole, sharedMemory } from "./bulk";
import { addViewportToTools, cornerstone, imageToWorld, registerStack, removeViewportFromTools, renderNow, setMprWindow, sliceBytes, worldToImage } from "./cornerstone";
import { imageId } from "./imageId";
import { probeText, sliceText, windowText, zoomText } from "./overlay";
import type { View } from "./view";
import { imageRendered } from "../pacs/timing";
import { drawOverlay, type OverlaySpec } from "../review/draw";

export interface ViewportHandle {
  act(action: ViewerAction): void;
  /** Canvas coordinates (CSS pixels, relative to the viewport element) of an image pixel. */
  canvasPoint(row: number, column: number): [number, number] | undefined;
  slice(): number;
  goTo(slice: number): Promise<void>;
  /** Pans so that image pixel (row, column) is at the centre of the viewport. */
  centreOn(row: number, column: number): void;
}

/** A pointer event on the image while a region is being drawn, in image pixels. */
export interface DrawEvent {
  row: number;
  column: number;
  slice: number;
  phase: "down" | "move" | "up";
  /** Right button or Shift: erase instead of paint. */
  erase: boolean;
}

export interface Measurement {
  uid: string;
  length: number;
  unit: string;
}

interface Props {
  viewportId: string;
  generation: number;
  view: View;
  /** Patient and study text for the top-left corner. */
  header: string[];
  seriesText: string[];
  showText: boolean;
  active: boolean;
  onActivate: () => void;
  onMeasurements: (m: Measurement[]) => void;
  /** The AI overlay (findings, heatmap, the region being drawn). */
  overlay?: OverlaySpec | null;
  /** Set while a region is being drawn: the overlay takes the mouse. */
  onDraw?: ((e: DrawEvent) => void) | null;
  /** The image ids of the stack's slices (default: the source stack's `dokuei:` ids; MPR
   * stacks are registered by their owner). */
  ids?: ((slice: number) => string) | null;
  /** Called when the slice shown changes. */
  onSlice?: ((slice: number) => void) | null;
  /** The slice a new stack opens at. */
  startSlice?: number;
  /** A new stack keeps the window and inversion on screen (else it opens at its own). */
  keepWindow?: boolean;
  ref?: Ref<ViewportHandle>;
}

interface Shown {
  slice: number;
  center: number;
  width: number;
  presetName?: string;
  zoom?: number;
  invert: boolean;
}

export function Viewport({
  viewportId,
  generation,
  view,
  header,
  seriesText,
  showText,
  active,
  onActivate,
  onMeasurements,
  overlay = null,
  onDraw = null,
  ids = null,
  onSlice = null,
  startSlice = 0,
  keepWindow = false,
  ref,
}: Props) {
  const idOf = (slice: number): string => (ids ? ids(slice) : imageId({ generation, series: view.series, stack: view.stack, slice }));
  const onSliceRef = useRef(onSlice);
  const reported = useRef<number | null>(null);
  // Where the keyboard is taking the stack: key presses faster than images load still count.
  const target = useRef<number | null>(null);
  // A step overtaken by the next is settled then: on Cornerstone3D's CPU path the promise of
  // an image that is no longer wanted never settles, and callers awaiting it would hang.
  const overtake = useRef<(() => void) | null>(null);
  /** The step on its way is over (overtaken, or its stack replaced): it settles, and the next
   * step counts from the slice shown. */
  const endStep = () => {
    overtake.current?.();
    overtake.current = null;
    target.current = null;
  };
  // The image ids of a virtual stack (MPR), for its look-ahead; and its length.
  const lookAhead = useRef(ids);
  const viewSlices = useRef(view.slices);
  useEffect(() => {
    lookAhead.current = ids;
    viewSlices.current = view.slices;
  }, [ids, view.slices]);
  const loading = useRef(false);
  // The slice the owner wants a new stack to open at, as it is when the stack has loaded.
  const startRef = useRef(startSlice);
  useEffect(() => {
    startRef.current = startSlice;
  }, [startSlice]);
  useEffect(() => {
    onSliceRef.current = onSlice;
  }, [onSlice]);
  const element = useRef<HTMLDivElement>(null);
  const overlayCanvas = useRef<HTMLCanvasElement>(null);
  const overlayRef = useRef(overlay);
  const [shown, setShown] = useState<Shown>({
    slice: 0,
    center: view.window.center,
    width: view.window.width,
    presetName: undefined,
    invert: false,
  });
  const [probe, setProbe] = useState("");
  const windowRef = useRef<{ center: number; width: number; invert: boolean } | null>(null);
  useEffect(() => {
    windowRef.current = { center: shown.center, width: shown.width, invert: shown.invert };
  }, [shown]);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [cine, setCine] = useState(false);
  // How many slices of the stack have arrived from Rust (the progress bar).
  const [arrived, setArrived] = useState<{ prefix: string; count: number }>({ prefix: "", count: 0 });
  const prefix = idOf(0).replace(/\/0$/, "/");
  const loaded = arrived.prefix === prefix ? arrived.count : 0;

  const viewport = (): Types.IStackViewport | undefined => {
    try {
      return cornerstone().getViewport<Types.IStackViewport>(viewportId);
    } catch {
      return undefined;
    }
  };

  // Enable the element once; show the stack whenever it changes.
  useEffect(() => {
    const el = element.current;
    if (!el) return;
    const engine = cornerstone();
    engine.enableElement({
      viewportId,
      type: Enums.ViewportType.STACK,
      element: el,
      defaultOptions: { background: [0, 0, 0] },
    });
    addViewportToTools(viewportId);
    // A layout change or a window resize changes the element's size: the canvas follows at
    // the next frame, keeping zoom and pan (else the image is stretched).
    let frame = 0;
    const resized = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        engine.resize(true, true);
      });
    });
    resized.observe(el);
    return () => {
      resized.disconnect();
      cancelAnimationFrame(frame);
      toolsUtilities.stackPrefetch.disable(el);
      removeViewportFromTools(viewportId);
      engine.disableElement(viewportId);
    };
  }, [viewportId]);

  useEffect(() => {
    const el = element.current;
    const vp = viewport();
    if (!el || !vp) return;
    if (!ids) registerStack(generation, view);
    const list = Array.from({ length: view.slices }, (_, slice) => idOf(slice));
    let live = true;
    setLoadError(null);
    const start = Math.max(0, Math.min(view.slices - 1, startSlice));
    // The window and inversion on screen (as the corners show them: the CPU rendering path
    // does not keep them across stacks), when a new stack of the same series replaces the
    // last (an MPR slab or plane change) and keeps them.
    const onScreen = keepWindow ? windowRef.current : null;
    if (onScreen && ids) setMprWindow(idOf(0), onScreen);
    // Opening at the start slice is not a scroll: it is not reported, nor is anything the
    // viewport shows while the stack is being set (it may pass through other slices).
    reported.current = start;
    loading.current = true;
    // Steps asked for in the last stack are over: their images will never come.
    endStep();
    // The stack is set once its first image is shown. On the CPU path `setStack`'s promise
    // never settles when another slice is asked for before that image arrives (the crosshairs
    // moving an MPR view), so the first new image of this stack counts as well (its event comes
    // before it is drawn; the handlers below run after).
    const mine = new Set(list);
    let onFirst: ((e: Event) => void) | null = null;
    const firstImage = new Promise<void>((resolve) => {
      onFirst = (e: Event) => {
        if (mine.has((e as CustomEvent<{ imageId?: string }>).detail.imageId ?? "")) resolve();
      };
      el.addEventListener(Enums.Events.STACK_NEW_IMAGE, onFirst);
    });
    const stopWaiting = () => {
      if (onFirst) el.removeEventListener(Enums.Events.STACK_NEW_IMAGE, onFirst);
      onFirst = null;
    };
    Promise.race([vp.setStack(list, start), firstImage])
      .then(() => {
        stopWaiting();
        if (!live) return;
        loading.current = false;
        // The owner may have moved on while the stack loaded (MPR planes following the
        // crosshairs): go where it wants now.
        const wanted = Math.max(0, Math.min(view.slices - 1, startRef.current));
        if (wanted !== start) {
          reported.current = wanted;
          void vp.setImageIdIndex(wanted);
        }
        // Prefetch the rest once the first slice is on screen, so that it does not compete with it.
        el.addEventListener(
          Enums.Events.IMAGE_RENDERED,
          () => {
            // MPR planes are reformatted on request: prefetching every plane of three views
            // (again after each slab change or turn) would keep the shell busy for nothing.
            if (!live || ids) return;
            // The whole stack by shared memory when the web-process extension is there (see
            // bulk.ts), else slice by slice; slices it could not bring come slice by slice.
            const map = sharedMemory();
            const { rows, columns, format, series, stack, slices } = view;
            if (!map || !loadWhole(sliceBytes(view) * slices, cache.getMaxCacheSize())) {
              toolsUtilities.stackPrefetch.enable(el);
              return;
            }
            // The error shown is the latest load's.
            bulk.lastError = null;
            loadStack({ generation, series, stack, slices, rows, columns, format }, vp.getCurrentImageIdIndex(), () => live, map).catch((e: unknown) => {
              // After the stack was left the shell says "no longer open": nothing failed.
              if (!live) return;
              bulk.lastError = String(e);
              console.warn(`dokuei: shared-memory load failed (${String(e)}); prefetching slice by slice`);
              toolsUtilities.stackPrefetch.enable(el);
            });
          },
          { once: true },
        );
        // The window to keep is the one on screen now: a preset pressed while the stack loaded
        // counts (the CPU path lost it, showing the new stack in its images' own window).
        const latest = () => {
          const w = keepWindow ? windowRef.current : null;
          return w ? { voiRange: windowRange(w.center, w.width), invert: w.invert } : undefined;
        };
        const keep = latest();
        const range = keep?.voiRange ?? windowRange(view.window.center, view.window.width);
        const invert = keep?.invert ?? view.inverted;
        vp.setProperties({ voiRange: range, invert });
        vp.render();
        if (keep) {
          // The CPU rendering path may put the image's own window back when it first draws
          // the new stack (while its properties already name the kept one): the kept window
          // goes back on after that draw.
          el.addEventListener(
            Enums.Events.IMAGE_RENDERED,
            () => {
              const again = latest();
              if (!live || !again) return;
              vp.setProperties(again);
              vp.render();
            },
            { once: true },
          );
        }
        setShown({ slice: vp.getCurrentImageIdIndex(), center: (range.lower + range.upper) / 2, width: range.upper - range.lower, invert });
      })
      .catch((e: unknown) => {
        stopWaiting();
        if (!live) return;
        loading.current = false;
        setLoadError(e instanceof Error ? e.message : String(e));
      });
    return () => {
      live = false;
      stopWaiting();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `viewport` reads the engine
  }, [generation, view]);

  // Count this stack's slices as they arrive.
  useEffect(() => {
    const seen = new Set<string>();
    const onLoaded = (e: Event) => {
      const id = (e as CustomEvent<{ image?: { imageId?: string } }>).detail.image?.imageId;
      if (id?.startsWith(prefix) && !seen.has(id)) {
        seen.add(id);
        setArrived({ prefix, count: seen.size });
      }
    };
    eventTarget.addEventListener(Enums.Events.IMAGE_LOADED, onLoaded);
    return () => {
      eventTarget.removeEventListener(Enums.Events.IMAGE_LOADED, onLoaded);
    };
  }, [prefix]);

  // Follow the viewport: slice, window, zoom.
  useEffect(() => {
    const el = element.current;
    if (!el) return;
    const onImage = () => {
      const vp = viewport();
      if (!vp) return;
      const props = vp.getProperties();
      const range = props.voiRange;
      const slice = vp.getCurrentImageIdIndex();
      // Another way of scrolling (the wheel, cine) overtook a step: it is over.
      if (target.current !== null && slice !== target.current) endStep();
      // Window and camera changes come here too: report slice changes only.
      if (slice !== reported.current && !loading.current) {
        // MPR planes are reformatted on request (no prefetch of whole stacks): the next two
        // in the direction of travel are asked for now, so a scroll finds them ready.
        if (lookAhead.current && reported.current !== null) {
          const by = Math.sign(slice - reported.current);
          for (const d of [1, 2]) {
            const next = slice + by * d;
            if (next >= 0 && next < viewSlices.current) void imageLoader.loadAndCacheImage(lookAhead.current(next)).catch(() => undefined);
          }
        }
        reported.current = slice;
        onSliceRef.current?.(slice);
      }
      setShown((s) => ({
        ...s,
        slice,
        center: range ? (range.lower + range.upper) / 2 : s.center,
        width: range ? range.upper - range.lower : s.width,
        zoom: vp.getZoom(),
        invert: props.invert ?? s.invert,
        presetName: range && near(range, s) ? s.presetName : undefined,
      }));
    };
    el.addEventListener(Enums.Events.STACK_NEW_IMAGE, onImage);
    el.addEventListener(Enums.Events.VOI_MODIFIED, onImage);
    el.addEventListener(Enums.Events.CAMERA_MODIFIED, onImage);
    return () => {
      el.removeEventListener(Enums.Events.STACK_NEW_IMAGE, onImage);
      el.removeEventListener(Enums.Events.VOI_MODIFIED, onImage);
      el.removeEventListener(Enums.Events.CAMERA_MODIFIED, onImage);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `viewport` reads the engine
  }, [viewportId]);

  // The AI overlay: redrawn whenever the image is (scroll, zoom, pan, window) or the overlay changes.
  const redraw = () => {
    const canvas = overlayCanvas.current;
    const vp = viewport();
    if (!canvas || !vp) return;
    const id = vp.getCurrentImageId();
    if (!id) return;
    drawOverlay(canvas, overlayRef.current, vp.getCurrentImageIdIndex(), view.rows, view.columns, (column, row) => {
      try {
        const world = imageToWorld(id, [column, row]);
        if (!world) return undefined;
        const [x, y] = vp.worldToCanvas(world);
        return [x, y];
      } catch {
        return undefined;
      }
    });
  };
  useEffect(() => {
    overlayRef.current = overlay;
    redraw();
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `redraw` reads refs and the engine
  }, [overlay]);
  useEffect(() => {
    const el = element.current;
    if (!el) return;
    const onRendered = () => {
      imageRendered();
      redraw();
    };
    el.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    return () => {
      el.removeEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `redraw` reads refs and the engine
  }, [viewportId, view]);

  const drawEvent = (e: React.PointerEvent<HTMLCanvasElement>, phase: DrawEvent["phase"]) => {
    const vp = viewport();
    const el = element.current;
    if (!vp || !el || !onDraw) return;
    const rect = el.getBoundingClientRect();
    const world = vp.canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]);
    const ij = worldToImage(vp.getCurrentImageId(), world);
    if (!ij) return;
    onDraw({ row: ij[1], column: ij[0], slice: vp.getCurrentImageIdIndex(), phase, erase: e.button === 2 || (e.buttons & 2) !== 0 || e.shiftKey });
  };

  // Length measurements (mm when the spacing is known).
  useEffect(() => {
    const el = element.current;
    if (!el) return;
    const update = () => {
      const list = annotation.state.getAnnotations(TOOL.length, el);
      onMeasurements(
        list.flatMap((a) => {
          const stats = (a as ToolsTypes.ToolSpecificAnnotationTypes.LengthAnnotation).data.cachedStats;
          return Object.values(stats).map((st) => ({ uid: a.annotationUID ?? "", length: st.length, unit: st.unit }));
        }),
      );
    };
    eventTarget.addEventListener(ToolsEnums.Events.ANNOTATION_COMPLETED, update);
    eventTarget.addEventListener(ToolsEnums.Events.ANNOTATION_MODIFIED, update);
    eventTarget.addEventListener(ToolsEnums.Events.ANNOTATION_REMOVED, update);
    return () => {
      eventTarget.removeEventListener(ToolsEnums.Events.ANNOTATION_COMPLETED, update);
      eventTarget.removeEventListener(ToolsEnums.Events.ANNOTATION_MODIFIED, update);
      eventTarget.removeEventListener(ToolsEnums.Events.ANNOTATION_REMOVED, update);
    };
  }, [onMeasurements]);

  // Cine: step through the stack, looping, at 15 images per second.
  useEffect(() => {
    if (!cine) return;
    const timer = window.setInterval(() => {
      viewport()?.scroll(1, false, true);
    }, 1000 / 15);
    return () => {
      window.clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `viewport` reads the engine
  }, [cine]);

  const goTo = async (slice: number) => {
    const vp = viewport();
    if (!vp) return;
    const wanted = clampSlice(slice, view.slices);
    target.current = wanted;
    overtake.current?.();
    let settle = (): void => undefined;
    const overtaken = new Promise<void>((resolve) => {
      settle = resolve;
    });
    overtake.current = settle;
    await Promise.race([vp.setImageIdIndex(wanted), overtaken]);
    if (overtake.current === settle) {
      overtake.current = null;
      renderNow();
    }
    if (target.current === wanted) target.current = null;
  };

  useImperativeHandle(ref, () => ({
    act(action: ViewerAction) {
      const vp = viewport();
      if (!vp) return;
      switch (action.kind) {
        case "step":
          void goTo((target.current ?? vp.getCurrentImageIdIndex()) + action.by);
          break;
        case "first":
          void goTo(0);
          break;
        case "last":
          void goTo(view.slices - 1);
          break;
        case "preset": {
          const p = view.presets.at(action.index);
          if (!p) return;
          vp.setProperties({ voiRange: windowRange(p.center, p.width) });
          vp.render();
          setShown((s) => ({ ...s, center: p.center, width: p.width, presetName: p.name }));
          break;
        }
        case "invert":
          vp.setProperties({ invert: !(vp.getProperties().invert ?? false) });
          vp.render();
          break;
        case "reset":
          vp.resetProperties();
          vp.setProperties({ voiRange: windowRange(view.window.center, view.window.width), invert: view.inverted });
          vp.resetCamera();
          vp.render();
          break;
        case "fit":
          vp.resetCamera();
          vp.render();
          break;
        case "cine":
          setCine((c) => !c);
          break;
        default:
          break;
      }
    },
    canvasPoint(row: number, column: number) {
      const vp = viewport();
      if (!vp) return undefined;
      const id = vp.getCurrentImageId();
      const world = imageToWorld(id, [column, row]);
      if (!world) return undefined;
      const [x, y] = vp.worldToCanvas(world);
      return [x, y];
    },
    slice: () => viewport()?.getCurrentImageIdIndex() ?? 0,
    goTo,
    centreOn(row: number, column: number) {
      const vp = viewport();
      if (!vp) return;
      const id = vp.getCurrentImageId();
      const el = element.current;
      if (!id || !el) return;
      const target = imageToWorld(id, [column, row]);
      const centre = vp.canvasToWorld([el.clientWidth / 2, el.clientHeight / 2]);
      if (!target) return;
      const camera = vp.getCamera();
      const { focalPoint, position } = camera;
      if (!focalPoint || !position) return;
      const d = [0, 1, 2].map((k) => (target[k] ?? 0) - (centre[k] ?? 0));
      vp.setCamera({
        focalPoint: [focalPoint[0] + (d[0] ?? 0), focalPoint[1] + (d[1] ?? 0), focalPoint[2] + (d[2] ?? 0)],
        position: [position[0] + (d[0] ?? 0), position[1] + (d[1] ?? 0), position[2] + (d[2] ?? 0)],
      });
      vp.render();
    },
  }));

  const onMove = (e: React.MouseEvent<HTMLDivElement>) => {
    const vp = viewport();
    const el = element.current;
    if (!vp || !el) return;
    const rect = el.getBoundingClientRect();
    const world = vp.canvasToWorld([e.clientX - rect.left, e.clientY - rect.top]);
    const id = vp.getCurrentImageId();
    const ij = worldToImage(id, world);
    const image = cache.getImage(id);
    if (!ij) {
      setProbe("");
      return;
    }
    const [column, row] = [Math.floor(ij[0]), Math.floor(ij[1])];
    if (!image || row < 0 || column < 0 || row >= view.rows || column >= view.columns || image.color) {
      setProbe("");
      return;
    }
    const value = image.getPixelData()[row * view.columns + column];
    setProbe(probeText(view.modality, value, row, column));
  };

  const m = view.markers;
  const location = view.locations[shown.slice];
  return (
    <div
      className={`viewport${active ? " active" : ""}`}
      data-testid={`viewport-${viewportId}`}
      onMouseDown={onActivate}
      onContextMenu={(e) => {
        e.preventDefault();
      }}
    >
      <div className="viewport-canvas" ref={element} onMouseMove={onMove} onMouseLeave={() => {
        setProbe("");
      }} />
      <canvas
        ref={overlayCanvas}
        className={`ai-overlay${onDraw ? " drawing" : ""}`}
        data-testid={`ai-overlay-${viewportId}`}
        onPointerDown={(e) => {
          e.currentTarget.setPointerCapture(e.pointerId);
          drawEvent(e, "down");
        }}
        onPointerMove={(e) => {
          if (e.buttons !== 0) drawEvent(e, "move");
        }}
        onPointerUp={(e) => {
          drawEvent(e, "up");
        }}
        onWheel={(e) => {
          // Scrolling still changes slice while drawing.
          viewport()?.scroll(e.deltaY > 0 ? 1 : -1);
        }}
      />
      {!ids && loaded < view.slices && (
        <div
          className="load-progress"
          role="progressbar"
          aria-label="Slices loaded"
          aria-valuemin={0}
          aria-valuemax={view.slices}
          aria-valuenow={loaded}
          data-testid="load-progress"
        >
          <div style={{ width: `${(100 * loaded) / view.slices}%` }} />
        </div>
      )}
      {loadError && (
        <div className="error viewport-error" role="alert">
          {loadError}
        </div>
      )}
      {m && (
        <>
          <span className="marker left">{m.left}</span>
          <span className="marker right">{m.right}</span>
          <span className="marker top">{m.top}</span>
          <span className="marker bottom">{m.bottom}</span>
        </>
      )}
      {showText && (
        <div className="corner top-left" data-testid="overlay-patient">
          {header.map((line, i) => (
            <div key={i}>{line}</div>
          ))}
        </div>
      )}
      <div className="corner top-right">
        {seriesText.map((line, i) => (
          <div key={i}>{line}</div>
        ))}
      </div>
      <div className="corner bottom-left" data-testid="overlay-slice">
        <div>{sliceText({ ...shown, slices: view.slices, location, thickness: view.sliceThickness, modality: view.modality })}</div>
        <div data-testid="probe">{probe}</div>
      </div>
      <div className="corner bottom-right" data-testid="overlay-window">
        <div>{windowText(shown)}</div>
        <div>
          {zoomText(shown.zoom)}
          {shown.invert ? "  inverted" : ""}
          {cine ? "  cine" : ""}
        </div>
        {view.spacingAtDetector && <div>spacing at detector</div>}
        {!view.spacingKnown && <div>no pixel spacing: lengths in pixels</div>}
      </div>
    </div>
  );
}

function windowRange(center: number, width: number): Types.VOIRange {
  return { lower: center - width / 2, upper: center + width / 2 };
}

function near(range: Types.VOIRange, s: { center: number; width: number }): boolean {
  const c = (range.lower + range.upper) / 2;
  const w = range.upper - range.lower;
  return Math.abs(c - s.center) < 0.5 && Math.abs(w - s.width) < 0.5;
}

