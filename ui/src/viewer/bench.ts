// Measurements the viewer benchmark (tests/e2e/bench-viewer.mjs) runs inside the webview.

import { cache, cornerstoneStreamingImageVolumeLoader, imageLoader, Enums, setVolumesForViewports, utilities, volumeLoader, type Types } from "@cornerstonejs/core";
import { cornerstone, cpuRendering, CPU_RENDERING_KEY, fetchSlice } from "./cornerstone";
import { loadStack, sharedMemory as bulkMap, type BulkStack, type BulkStats } from "./bulk";
import { imageId } from "./imageId";
import type { ViewportHandle } from "./Viewport";

export interface Throughput {
  slices: number;
  bytes: number;
  seconds: number;
}

/** Fetches every slice of a stack from the shell, `inFlight` requests at a time. */
export async function fetchAll(generation: number, series: number, stack: number, slices: number, inFlight: number): Promise<Throughput> {
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < slices) {
      const slice = next++;
      const buffer = await fetchSlice(imageId({ generation, series, stack, slice }));
      bytes += buffer.byteLength;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { slices, bytes, seconds: (performance.now() - started) / 1000 };
}

/**
 * The shared-memory transport as the viewer uses it (bulk.ts, the web-process extension in
 * src-tauri/webext): the image cache emptied, then the whole stack loaded into it in pieces.
 * `same` says whether cached slice `check` equals the slice the scheme serves.
 */
export async function sharedMemory(stack: BulkStack, check: number): Promise<Throughput & { same: boolean; pieces: number; parts: BulkStats["parts"] }> {
  const map = bulkMap();
  if (!map) throw new Error("the web-process extension is not loaded (DOKUEI_WEB_EXTENSIONS=none, or it could not be written)");
  cache.purgeCache();
  const loaded = await loadStack(stack, 0, () => true, map);
  const id = imageId({ generation: stack.generation, series: stack.series, stack: stack.stack, slice: check });
  const image = await cache.getImageLoadObject(id)?.promise;
  const cached = image?.getPixelData();
  const one = new Uint8Array(await fetchSlice(id));
  const same = cached !== undefined && cached.byteLength === one.length && new Uint8Array(cached.buffer, cached.byteOffset, cached.byteLength).every((v, i) => one[i] === v);
  return { slices: loaded.slices, bytes: loaded.bytes, seconds: loaded.seconds, pieces: loaded.pieces, parts: loaded.parts, same };
}

/**
 * The viewer's stack load without the extension, for comparison with `sharedMemory`: the image
 * cache emptied, then every slice loaded into it through the image loader (one fetch each),
 * `inFlight` at a time.
 */
export async function sliceBySlice(stack: BulkStack, inFlight: number): Promise<Throughput> {
  cache.purgeCache();
  const started = performance.now();
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < stack.slices) {
      const slice = next++;
      const image = await imageLoader.loadAndCacheImage(imageId({ generation: stack.generation, series: stack.series, stack: stack.stack, slice }));
      bytes += image.sizeInBytes;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { slices: stack.slices, bytes, seconds: (performance.now() - started) / 1000 };
}

function rendered(): Promise<void> {
  return new Promise((resolve) => {
    document.addEventListener(
      "CORNERSTONE_IMAGE_RENDERED",
      () => {
        resolve();
      },
      { capture: true, once: true },
    );
  });
}

/** Steps a viewport through all its slices; milliseconds from each step to the animation
 * frame after its rendering (when it is on screen). */
export async function scrollAll(handle: ViewportHandle, slices: number): Promise<number[]> {
  const times: number[] = [];
  await handle.goTo(0);
  for (let i = 1; i < slices; i++) {
    const started = performance.now();
    const shown = rendered();
    const before = handle.slice();
    let timer = 0;
    const stuck = new Promise<never>((_, reject) => {
      timer = window.setTimeout(() => {
        reject(new Error(`step to slice ${String(i)} (from ${String(before)}): nothing rendered in 5 s; the viewport is at ${String(handle.slice())}`));
      }, 5000);
    });
    await Promise.race([handle.goTo(i).then(() => shown), stuck]).finally(() => {
      window.clearTimeout(timer);
    });
    // On screen: the frame after the one it was drawn in (as the floor's `frame` counts).
    await new Promise((r) => requestAnimationFrame(r));
    times.push(performance.now() - started);
  }
  return times;
}

/** Empties Cornerstone's image cache, so the next stack shown starts cold. */
export function purgeImages(): void {
  cache.purgeCache();
}

/** Frame times (ms) of the smallest WebGL2 renderer that shows these slices. */
export interface GlFloor {
  /** Upload the slice, draw it with window/level in the shader, wait for the GPU (readPixels). */
  draw: number[];
  /** The same, then until the next animation frame (the compositor has the frame). */
  frame: number[];
  /**
   * As `frame`, but drawn on a canvas that is not on screen and copied (`drawImage`) to a 2D
   * canvas that is: how Cornerstone3D's rendering engines present a viewport.
   */
  copied: number[];
  /** Intervals between animation frames with nothing changing on screen. */
  idle: number[];
}

const VERTEX = `#version 300 es
in vec2 p; out vec2 uv;
void main() { uv = vec2(p.x * 0.5 + 0.5, 0.5 - p.y * 0.5); gl_Position = vec4(p, 0.0, 1.0); }`;
const FRAGMENT = `#version 300 es
precision highp float; precision highp isampler2D;
uniform isampler2D image; uniform float center; uniform float width;
in vec2 uv; out vec4 colour;
void main() {
  ivec2 size = textureSize(image, 0);
  float v = float(texelFetch(image, ivec2(uv * vec2(size)), 0).r);
  float g = clamp((v - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0);
  colour = vec4(g, g, g, 1.0);
}`;

/**
 * The floor under the viewer's scroll times: steps through 16-bit slices with a hand-written
 * WebGL2 renderer (an R16I texture, window/level in the fragment shader) on a canvas of
 * `size` CSS pixels, in the same webview. Only for the benchmark: it tells how much of a
 * scroll step is Cornerstone3D and how much is the (software) GL underneath.
 */
export async function glFloor(slices: ArrayBuffer[], rows: number, columns: number, size: [number, number]): Promise<GlFloor> {
  const canvas = document.createElement("canvas");
  canvas.style.cssText = `position:fixed;left:0;top:0;width:${size[0]}px;height:${size[1]}px;z-index:9999`;
  canvas.width = Math.round(size[0] * devicePixelRatio);
  canvas.height = Math.round(size[1] * devicePixelRatio);
  document.body.appendChild(canvas);
  try {
    const gl = canvas.getContext("webgl2");
    if (!gl) throw new Error("no WebGL2");
    const shader = (kind: number, source: string) => {
      const s = gl.createShader(kind);
      if (!s) throw new Error("createShader failed");
      gl.shaderSource(s, source);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s) ?? "shader");
      return s;
    };
    const program = gl.createProgram();
    gl.attachShader(program, shader(gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, shader(gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program) ?? "link");
    gl.useProgram(program);
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const p = gl.getAttribLocation(program, "p");
    gl.enableVertexAttribArray(p);
    gl.vertexAttribPointer(p, 2, gl.FLOAT, false, 0, 0);
    gl.uniform1f(gl.getUniformLocation(program, "center"), -600);
    gl.uniform1f(gl.getUniformLocation(program, "width"), 1500);
    const texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.pixelStorei(gl.UNPACK_ALIGNMENT, 2);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.R16I, columns, rows);
    gl.viewport(0, 0, canvas.width, canvas.height);
    const pixel = new Uint8Array(4);
    const draw = (slice: ArrayBuffer) => {
      gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, columns, rows, gl.RED_INTEGER, gl.SHORT, new Int16Array(slice));
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel);
    };
    const nextFrame = () => new Promise((r) => requestAnimationFrame(r));
    const result: GlFloor = { draw: [], frame: [], copied: [], idle: [] };
    let last = await nextFrame().then(() => performance.now());
    for (let i = 0; i < 60; i++) {
      await nextFrame();
      const now = performance.now();
      result.idle.push(now - last);
      last = now;
    }
    for (const slice of slices) {
      const t = performance.now();
      draw(slice);
      result.draw.push(performance.now() - t);
    }
    await nextFrame();
    for (const slice of slices) {
      const t = performance.now();
      draw(slice);
      await nextFrame();
      result.frame.push(performance.now() - t);
    }
    // The same GL canvas taken off screen; a 2D canvas of the same size shows its copies.
    canvas.remove();
    const onScreen = document.createElement("canvas");
    onScreen.style.cssText = canvas.style.cssText;
    onScreen.width = canvas.width;
    onScreen.height = canvas.height;
    document.body.appendChild(onScreen);
    try {
      const context = onScreen.getContext("2d");
      if (!context) throw new Error("no 2D context");
      await nextFrame();
      for (const slice of slices) {
        const t = performance.now();
        draw(slice);
        context.drawImage(canvas, 0, 0);
        await nextFrame();
        result.copied.push(performance.now() - t);
      }
    } finally {
      onScreen.remove();
    }
    return result;
  } finally {
    canvas.remove();
  }
}

let probe: HTMLCanvasElement | null = null;

/**
 * Whether the screen shows a WebGL canvas's last draw or the one before (WebKit bug 324549: a
 * canvas made with `antialias: false` shown one draw late without compositing): fills a
 * whole-page canvas red, then blue, then stops drawing and leaves it on screen for the caller
 * to photograph the X display (blue: the last draw is shown; red: one draw late).
 */
export async function lastDrawProbe(antialias: boolean): Promise<void> {
  removeProbe();
  const canvas = document.createElement("canvas");
  canvas.style.cssText = "position:fixed;left:0;top:0;width:100vw;height:100vh;z-index:10000";
  canvas.width = Math.round(innerWidth * devicePixelRatio);
  canvas.height = Math.round(innerHeight * devicePixelRatio);
  document.body.appendChild(canvas);
  probe = canvas;
  const gl = canvas.getContext("webgl2", { antialias });
  if (!gl) throw new Error("no WebGL2");
  const fill = (r: number, g: number, b: number) => {
    gl.clearColor(r, g, b, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
  };
  const settle = async () => {
    await new Promise((r) => requestAnimationFrame(r));
    await new Promise((r) => setTimeout(r, 500));
  };
  fill(1, 0, 0);
  await settle();
  fill(0, 0, 1);
  await settle();
}

export function removeProbe(): void {
  probe?.remove();
  probe = null;
}

/** Whether Cornerstone3D renders on the CPU (no WebGL) from the next start of the page; null
 * goes back to the shell's choice. */
export function setCpuRendering(on: boolean | null): void {
  if (on === null) localStorage.removeItem(CPU_RENDERING_KEY);
  else localStorage.setItem(CPU_RENDERING_KEY, on ? "1" : "0");
}

/**
 * A held arrow key: one step asked for at every animation frame (a key repeating at the display's
 * rate, the fastest a reader can ask) for `ms`; counts the slices rendered. Returns rendered
 * steps per second, animation frames per second while stepping, and with nothing changing
 * (the display's rate).
 */
export async function heldKey(handle: ViewportHandle, ms: number): Promise<{ stepsPerSecond: number; framesPerSecond: number; idleFramesPerSecond: number }> {
  await handle.goTo(0);
  // The display's rate: animation frames with nothing changing.
  const idleStart = await new Promise<number>((r) => requestAnimationFrame(r));
  let idleEnd = idleStart;
  for (let i = 0; i < 60; i++) idleEnd = await new Promise<number>((r) => requestAnimationFrame(r));
  const idleFramesPerSecond = 60000 / (idleEnd - idleStart);
  let rendered = 0;
  const count = () => {
    rendered += 1;
  };
  document.addEventListener("CORNERSTONE_IMAGE_RENDERED", count, { capture: true });
  let frames = 0;
  const started = performance.now();
  try {
    await new Promise<void>((resolve) => {
      const tick = () => {
        if (performance.now() - started >= ms) {
          resolve();
          return;
        }
        frames += 1;
        handle.act({ kind: "step", by: 1 });
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
  } finally {
    document.removeEventListener("CORNERSTONE_IMAGE_RENDERED", count, { capture: true });
  }
  const seconds = (performance.now() - started) / 1000;
  return { stepsPerSecond: rendered / seconds, framesPerSecond: frames / seconds, idleFramesPerSecond };
}

/** Cornerstone3D's own MPR, timed: a volume viewport fed by the same `dokuei:` slices. */
export interface VolumeMpr {
  /** From asking for the volume to every slice loaded into it (ms). */
  loadMs: number;
  /** From then to the first coronal image on screen (the volume's texture built; ms). */
  firstMs: number;
  /** Each step of the coronal, then the sagittal view to its rendering (ms). */
  coronal: number[];
  sagittal: number[];
}

/**
 * Cornerstone3D's volume-viewport MPR on a stack (its slice ids, cold: the cache is emptied
 * first): loads the volume through the `dokuei:` loader, shows it coronal on an element of
 * `size` CSS pixels, steps `count` planes, turns it sagittal and steps again. Only on the
 * WebGL path: Cornerstone3D's CPU rendering draws stacks only.
 */
export async function volumeMpr(ids: string[], size: [number, number], count: number): Promise<VolumeMpr> {
  if (cpuRendering()) throw new Error("Cornerstone3D renders on the CPU here, and its CPU path has no volume viewports");
  volumeLoader.registerVolumeLoader("cornerstoneStreamingImageVolume", cornerstoneStreamingImageVolumeLoader as unknown as Types.VolumeLoaderFn);
  cache.purgeCache();
  const element = document.createElement("div");
  element.style.cssText = `position:fixed;left:0;top:0;width:${size[0]}px;height:${size[1]}px;z-index:9999;background:black`;
  document.body.appendChild(element);
  const engine = cornerstone();
  const viewportId = "dokuei-bench-volume";
  const volumeId = `cornerstoneStreamingImageVolume:dokuei-bench-${String(Date.now())}`;
  const rendered = () =>
    new Promise<void>((resolve) => {
      element.addEventListener(Enums.Events.IMAGE_RENDERED, () => { resolve(); }, { once: true });
    });
  try {
    engine.enableElement({
      viewportId,
      type: Enums.ViewportType.ORTHOGRAPHIC,
      element,
      defaultOptions: { orientation: Enums.OrientationAxis.CORONAL, background: [0, 0, 0] },
    });
    const viewport = engine.getViewport<Types.IVolumeViewport>(viewportId);
    const started = performance.now();
    const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds: ids });
    await new Promise<void>((resolve, reject) => {
      (volume as unknown as { load(callback: (e: { success?: boolean }) => void): void }).load((e) => {
        if (e.success === false) reject(new Error("the volume did not load"));
        else resolve();
      });
    });
    const loadMs = performance.now() - started;
    const first = rendered();
    const shown = performance.now();
    await setVolumesForViewports(engine, [{ volumeId }], [viewportId]);
    viewport.setProperties({ voiRange: { lower: -1350, upper: 150 } });
    viewport.render();
    await first;
    const firstMs = performance.now() - shown;
    const steps = async (): Promise<number[]> => {
      const times: number[] = [];
      for (let i = 0; i < count; i++) {
        const t = performance.now();
        const done = rendered();
        utilities.scroll(viewport as unknown as Parameters<typeof utilities.scroll>[0], { delta: 1 });
        let timer = 0;
        const stuck = new Promise<never>((_, reject) => {
          timer = window.setTimeout(() => {
            reject(new Error(`volume step ${String(i + 1)}: nothing rendered in 5 s (the end of the volume?)`));
          }, 5000);
        });
        await Promise.race([done, stuck]).finally(() => {
          window.clearTimeout(timer);
        });
        times.push(performance.now() - t);
      }
      return times;
    };
    const coronal = await steps();
    const turned = rendered();
    viewport.setOrientation(Enums.OrientationAxis.SAGITTAL);
    viewport.render();
    await turned;
    const sagittal = await steps();
    return { loadMs, firstMs, coronal, sagittal };
  } finally {
    try {
      engine.disableElement(viewportId);
    } catch {
      // Never enabled.
    }
    element.remove();
    try {
      cache.removeVolumeLoadObject(volumeId);
    } catch {
      // Never made (the error above is the one to report).
    }
    cache.purgeCache();
  }
}
