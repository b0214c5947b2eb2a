// Draws the AI overlay of one slice on a 2D canvas laid over the Cornerstone viewport, in the
// image's own pixel grid: the canvas transform is the image → screen mapping Cornerstone uses, so
// the overlay follows zoom, pan and scroll exactly.

import type { Geometry } from "../bindings";
import { css, heatColour, outline, sliceBitmap, type Rgba } from "./logic";

export interface OverlayFinding {
  key: string;
  geometry: Geometry;
  colour: Rgba;
  /** e.g. "nodule 0.93" */
  caption: string;
  /** Detection models: a box, not a filled region. */
  box: boolean;
  selected: boolean;
}

export interface OverlaySpec {
  visible: boolean;
  /** Fill opacity, 0–1 (outlines stay opaque). */
  opacity: number;
  findings: OverlayFinding[];
  /** A heatmap slice (u8, rows × columns) for the current slice, when the model has one. */
  heatmap: ((slice: number) => Uint8Array | undefined) | null;
  /** The kept heatmap behind `heatmap` (analysis id and map index), so other views of the
   * same volume (MPR) can ask for it reformatted onto their planes. */
  heatmapSource?: { analysis: number; index: number } | null;
  /** Changes when a heatmap slice arrives (so the viewport redraws). */
  revision: number;
  /** The region being drawn or edited. */
  editing: { bitmaps: Map<number, Uint8Array>; colour: Rgba; version: number } | null;
  /** Lines over the image on a slice (the other MPR planes' reference lines, the crosshairs),
   * drawn whether or not AI results are shown. */
  lines?: ((slice: number) => OverlayLine[]) | null;
}

/** A segment between pixel centres (column, row), e.g. from `referenceLine`. */
export interface OverlayLine {
  from: [number, number];
  to: [number, number];
  colour: Rgba;
}

/**
 * Whether the overlay may draw anything on `slice`: any heatmap, a finding whose slices
 * include it, or a region being edited there. (False means the canvas can stay empty.)
 */
export function overlayOnSlice(spec: OverlaySpec | null, slice: number): boolean {
  if (!spec) return false;
  if (spec.editing?.bitmaps.has(slice)) return true;
  if ((spec.lines?.(slice).length ?? 0) > 0) return true;
  if (!spec.visible) return false;
  return spec.heatmap !== null || spec.findings.some((f) => slice >= f.geometry.slices[0] && slice <= f.geometry.slices[1]);
}

/** Maps image (column, row) — (0, 0) being the top-left corner of the first pixel — to canvas CSS pixels. */
export type ImageToCanvas = (column: number, row: number) => [number, number] | undefined;

function layer(rows: number, columns: number, paint: (data: Uint8ClampedArray) => void): HTMLCanvasElement {
  const c = document.createElement("canvas");
  c.width = columns;
  c.height = rows;
  const ctx = c.getContext("2d");
  if (!ctx) return c;
  const image = ctx.createImageData(columns, rows);
  paint(image.data);
  ctx.putImageData(image, 0, 0);
  return c;
}

function regionLayer(mask: Uint8Array, rows: number, columns: number, colour: Rgba, fillAlpha: number): HTMLCanvasElement {
  const edge = outline(mask, rows, columns);
  const fill = Math.round(255 * fillAlpha);
  return layer(rows, columns, (data) => {
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const o = i * 4;
      data[o] = colour[0];
      data[o + 1] = colour[1];
      data[o + 2] = colour[2];
      data[o + 3] = edge[i] ? 255 : fill;
    }
  });
}

export function drawOverlay(
  canvas: HTMLCanvasElement,
  spec: OverlaySpec | null,
  slice: number,
  rows: number,
  columns: number,
  toCanvas: ImageToCanvas,
): void {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * ratio);
  const height = Math.round(canvas.clientHeight * ratio);
  // A canvas that is empty at this size and stays empty is left alone: touching it makes
  // WebKit composite its layer again on every scroll step, which costs milliseconds under
  // software rendering.
  const empty = !overlayOnSlice(spec, slice);
  if (empty && canvas.dataset.empty === "yes" && canvas.width === width && canvas.height === height) return;
  // Setting the size clears the canvas and resets its state. (clearRect alone left the last
  // frame's regions on screen in WebKitGTK's accelerated canvas, seen in the e2e test.)
  canvas.width = width;
  canvas.height = height;
  canvas.dataset.empty = empty ? "yes" : "no";
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  if (!spec) return;
  const p00 = toCanvas(0, 0);
  const p10 = toCanvas(1, 0);
  const p01 = toCanvas(0, 1);
  if (!p00 || !p10 || !p01) return;
  const imageTransform = (): void => {
    ctx.setTransform(
      (p10[0] - p00[0]) * ratio,
      (p10[1] - p00[1]) * ratio,
      (p01[0] - p00[0]) * ratio,
      (p01[1] - p00[1]) * ratio,
      p00[0] * ratio,
      p00[1] * ratio,
    );
    ctx.imageSmoothingEnabled = false;
  };
  const captions: { at: [number, number]; text: string; colour: Rgba }[] = [];
  if (spec.visible) {
    const heat = spec.heatmap?.(slice);
    if (heat && heat.length === rows * columns) {
      imageTransform();
      ctx.globalAlpha = spec.opacity;
      ctx.drawImage(
        layer(rows, columns, (data) => {
          for (let i = 0; i < heat.length; i++) {
            const c = heatColour(heat[i] ?? 0);
            data.set(c, i * 4);
          }
        }),
        0,
        0,
      );
      ctx.globalAlpha = 1;
    }
    for (const f of spec.findings) {
      const g = f.geometry;
      if (slice < g.slices[0] || slice > g.slices[1]) continue;
      const [x0, y0, x1, y1] = g.box;
      if (f.box) {
        imageTransform();
        ctx.strokeStyle = css(f.colour);
        // One screen pixel wide (two when selected), whatever the zoom.
        const scale = Math.hypot(p10[0] - p00[0], p10[1] - p00[1]) || 1;
        ctx.lineWidth = (f.selected ? 3 : 1.5) / scale;
        ctx.strokeRect(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
      } else {
        const bitmap = sliceBitmap(g, slice, rows, columns);
        if (!bitmap) continue;
        imageTransform();
        ctx.drawImage(regionLayer(bitmap, rows, columns, f.colour, spec.opacity * (f.selected ? 0.8 : 0.5)), 0, 0);
      }
      const at = toCanvas(x0, y0);
      if (at) captions.push({ at, text: f.caption, colour: f.colour });
    }
  }
  const edit = spec.editing?.bitmaps.get(slice);
  if (edit && spec.editing) {
    imageTransform();
    ctx.drawImage(regionLayer(edit, rows, columns, spec.editing.colour, 0.45), 0, 0);
  }
  const lines = spec.lines?.(slice) ?? [];
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.lineWidth = 1;
  for (const l of lines) {
    // Pixel centres are at +0.5 in the image → canvas mapping.
    const a = toCanvas(l.from[0] + 0.5, l.from[1] + 0.5);
    const b = toCanvas(l.to[0] + 0.5, l.to[1] + 0.5);
    if (!a || !b) continue;
    ctx.strokeStyle = css(l.colour);
    ctx.beginPath();
    ctx.moveTo(a[0], a[1]);
    ctx.lineTo(b[0], b[1]);
    ctx.stroke();
  }
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  for (const c of captions) {
    const [x, y] = c.at;
    const w = ctx.measureText(c.text).width + 6;
    ctx.fillStyle = "rgba(0, 0, 0, 0.6)";
    ctx.fillRect(x, y - 16, w, 15);
    ctx.fillStyle = css(c.colour);
    ctx.fillText(c.text, x + 3, y - 2);
  }
}
