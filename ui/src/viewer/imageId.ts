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

/**
 * Where a slice's bytes are fetched: from the loopback pixel server at `loopback`
 * (`http://127.0.0.1:{port}/{secret}`) when it runs, else through the `dokuei` URI scheme.
 */
export function sliceUrl(r: SliceRef, loopback?: string | null, userAgent?: string): string {
  const path = `slice/${r.generation}/${r.series}/${r.stack}/${r.slice}`;
  return loopback ? `${loopback.replace(/\/+$/, "")}/${path}` : schemeUrl(path, userAgent);
}

/** The base URL of the loopback pixel server the shell started. */
export function loopbackUrl(server: { port: number; secret: string }): string {
  return `http://127.0.0.1:${server.port}/${server.secret}`;
}

export function thumbUrl(generation: number, series: number, userAgent?: string): string {
  return schemeUrl(`thumb/${generation}/${series}`, userAgent);
}
