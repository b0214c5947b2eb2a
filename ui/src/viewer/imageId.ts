// Image ids for Cornerstone3D's `dokuei:` loader, and the URLs the Rust shell serves pixels on.

export interface SliceRef {
  generation: number;
  series: number;
  stack: number;
  slice: number;
}

const PATTERN = /^dokuei:(\d+)\/(\d+)\/(\d+)\/(\d+)$/;

export function imageId(r: SliceRef): string {
  return `dokuei:${r.generation}/${r.series}/${r.stack}/${r.slice}`;
}

export function parseImageId(id: string): SliceRef | undefined {
  const m = PATTERN.exec(id);
  if (!m) return undefined;
  return { generation: Number(m[1]), series: Number(m[2]), stack: Number(m[3]), slice: Number(m[4]) };
}

/** The key of a stack across its slices. */
export function stackKey(r: Omit<SliceRef, "slice">): string {
  return `${r.generation}/${r.series}/${r.stack}`;
}

/**
 * Where the shell serves a resource of its `dokuei` URI scheme: `dokuei://localhost/…` on Linux
 * and macOS, `http://dokuei.localhost/…` where WebView2 or Android WebView need it.
 */
export function schemeUrl(path: string, userAgent: string = navigator.userAgent): string {
  const http = /Windows|Android/.test(userAgent);
  const p = path.replace(/^\/+/, "");
  return http ? `http://dokuei.localhost/${p}` : `dokuei://localhost/${p}`;
}

export function sliceUrl(r: SliceRef, userAgent?: string): string {
  return schemeUrl(`slice/${r.generation}/${r.series}/${r.stack}/${r.slice}`, userAgent);
}

export function thumbUrl(generation: number, series: number, userAgent?: string): string {
  return schemeUrl(`thumb/${generation}/${series}`, userAgent);
}
