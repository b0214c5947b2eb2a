// Measurements the viewer benchmark (tests/e2e/bench-viewer.mjs) runs inside the webview.

import { cache } from "@cornerstonejs/core";
import { fetchSlice } from "./cornerstone";
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

/** Steps a viewport through all its slices; milliseconds from each step to its rendering. */
export async function scrollAll(handle: ViewportHandle, slices: number): Promise<number[]> {
  const times: number[] = [];
  await handle.goTo(0);
  for (let i = 1; i < slices; i++) {
    const started = performance.now();
    const shown = rendered();
    await handle.goTo(i);
    await shown;
    times.push(performance.now() - started);
  }
  return times;
}

/** Empties Cornerstone's image cache, so the next stack shown starts cold. */
export function purgeImages(): void {
  cache.purgeCache();
}
