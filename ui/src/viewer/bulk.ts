// A stack's slices from the shell in a few large pieces through shared memory, instead of one
// fetch per slice through WebKit's network process.
//
// The shell writes slices `from..from+count` of a stack into a file in /dev/shm
// (`shm/{generation}/{series}/{stack}/{from}/{count}`, answered with the file's name); the
// web-process extension (src-tauri/webext) gives the page `dokueiShm(name)`, which copies the
// file into a new ArrayBuffer once and unlinks it. Each slice is copied out of it into
// Cornerstone3D's image cache, so scrolling finds them there. Without the extension (another
// platform, DOKUEI_WEB_EXTENSIONS=none) the viewer prefetches slice by slice as before.

import { cachedSlice, cacheSlice, sliceBytes as bytesOf } from "./cornerstone";
import { schemeUrl } from "./imageId";

type MapShared = (name: string) => ArrayBuffer;

/** The extension's `dokueiShm`, when it is loaded into this page. */
export function sharedMemory(): MapShared | null {
  const f = (window as unknown as { dokueiShm?: MapShared }).dokueiShm;
  return typeof f === "function" ? f : null;
}

/** Bytes in one piece: large enough that per-request costs vanish, small enough that the first
 * piece arrives soon and one piece's buffer stays small. */
export const PIECE_BYTES = 16 * 1024 * 1024;
/** The most slices the shell serves in one piece (`viewer::SHARED_MEMORY_MAX_SLICES`). */
export const PIECE_MAX_SLICES = 256;

/**
 * The pieces `[from, count]` of a stack of `slices` slices of `sliceBytes` bytes: the piece
 * holding slice `around` first, then the others alternately after and before it, nearest first
 * (a reader scrolls from where they are).
 */
export function pieces(slices: number, sliceBytes: number, around: number): [number, number][] {
  const per = Math.max(1, Math.min(PIECE_MAX_SLICES, Math.floor(PIECE_BYTES / Math.max(1, sliceBytes))));
  const all: [number, number][] = [];
  for (let from = 0; from < slices; from += per) all.push([from, Math.min(per, slices - from)]);
  const start = Number.isFinite(around) ? Math.max(0, around) : 0;
  const at = Math.max(0, Math.min(all.length - 1, Math.floor(start / per)));
  const order: [number, number][] = [];
  for (let d = 0; order.length < all.length; d++) {
    const after = all[at + d];
    if (after) order.push(after);
    const before = d > 0 ? all[at - d] : undefined;
    if (before) order.push(before);
  }
  return order;
}

/**
 * Whether a whole stack of `bytes` is loaded at once into an image cache of `cacheBytes`: only
 * when it takes at most half. A larger stack would push its own earlier slices out as it
 * arrives; it is prefetched slice by slice around the reader instead.
 */
export function loadWhole(bytes: number, cacheBytes: number): boolean {
  return bytes <= cacheBytes / 2;
}

export interface BulkStats {
  /** Slices put into the cache (slices cached already are skipped). */
  slices: number;
  bytes: number;
  /** Seconds from the first request to the last piece in the cache. */
  seconds: number;
  pieces: number;
  /** Summed over pieces: waiting for the shell to write them, copying them in
   * (`dokueiShm`), and making the cached images. */
  parts: { shell: number; map: number; cache: number };
}

/** What the shared-memory transport has moved in this session (for the status line, the e2e
 * tests and the benchmark). */
export const bulk: BulkStats & { stacks: number; lastError: string | null } = { slices: 0, bytes: 0, seconds: 0, pieces: 0, parts: { shell: 0, map: 0, cache: 0 }, stacks: 0, lastError: null };

export interface BulkStack {
  generation: number;
  series: number;
  stack: number;
  slices: number;
  rows: number;
  columns: number;
  format: string;
}

/**
 * Loads every slice of a registered stack into the image cache by shared memory, two pieces
 * in flight, nearest `around` first; a piece whose slices are all cached already (the stack
 * shown before, or in another pane) is not asked for. Stops between pieces when `live()` turns
 * false (another stack is shown). Throws the shell's error, naming the file at fault; slices
 * already cached stay.
 */
export async function loadStack(s: BulkStack, around: number, live: () => boolean, map: MapShared): Promise<BulkStats> {
  const sliceBytes = bytesOf(s);
  const queue = pieces(s.slices, sliceBytes, around);
  const started = performance.now();
  const stats: BulkStats = { slices: 0, bytes: 0, seconds: 0, pieces: 0, parts: { shell: 0, map: 0, cache: 0 } };
  // A piece that fails stops both workers (the caller then prefetches slice by slice).
  let failed = false;
  const going = () => live() && !failed;
  const worker = async () => {
    try {
      for (let piece = queue.shift(); piece && going(); piece = queue.shift()) {
        const [from, count] = piece;
        const ref = (k: number) => ({ generation: s.generation, series: s.series, stack: s.stack, slice: from + k });
        let missing = false;
        for (let k = 0; k < count && !missing; k++) missing = !cachedSlice(ref(k));
        if (!missing) continue;
        const t0 = performance.now();
        const r = await fetch(schemeUrl(`shm/${String(s.generation)}/${String(s.series)}/${String(s.stack)}/${String(from)}/${String(count)}`));
        if (!r.ok) throw new Error(await r.text());
        const name = await r.text();
        const t1 = performance.now();
        const buffer = map(name);
        const t2 = performance.now();
        stats.parts.shell += (t1 - t0) / 1000;
        stats.parts.map += (t2 - t1) / 1000;
        if (buffer.byteLength !== count * sliceBytes) {
          throw new Error(`slices ${String(from + 1)}–${String(from + count)} came as ${String(buffer.byteLength)} bytes, not ${String(count * sliceBytes)}`);
        }
        if (!going()) return;
        for (let k = 0; k < count; k++) {
          if (cacheSlice(ref(k), buffer, k * sliceBytes, sliceBytes)) stats.slices += 1;
        }
        stats.parts.cache += (performance.now() - t2) / 1000;
        stats.bytes += buffer.byteLength;
        stats.pieces += 1;
      }
    } catch (e) {
      failed = true;
      throw e;
    }
  };
  await Promise.all([worker(), worker()]);
  stats.seconds = (performance.now() - started) / 1000;
  bulk.slices += stats.slices;
  bulk.bytes += stats.bytes;
  bulk.seconds += stats.seconds;
  bulk.pieces += stats.pieces;
  for (const k of ["shell", "map", "cache"] as const) bulk.parts[k] += stats.parts[k];
  bulk.stacks += 1;
  return stats;
}
