// Retrieve start → first image on screen, measured by the screen: armed when Retrieve is
// clicked, stopped by the first image the viewer renders after that.

const timing = { clickedAt: 0, firstImageMs: null as number | null, armed: false };

export function armRetrieveTiming(): void {
  timing.clickedAt = performance.now();
  timing.firstImageMs = null;
  timing.armed = true;
}

/** Called by the viewer on every rendered image. */
export function imageRendered(): void {
  if (!timing.armed) return;
  timing.firstImageMs = performance.now() - timing.clickedAt;
  timing.armed = false;
}

/** Milliseconds from the last Retrieve click to the first image on screen (null until then). */
export function firstImageMs(): number | null {
  return timing.firstImageMs;
}
