import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type BulkStack, loadStack, loadWhole, PIECE_BYTES, PIECE_MAX_SLICES, pieces } from "./bulk";

// The image cache, as far as bulk.ts sees it: slice → the first byte and length it was given.
const fake = vi.hoisted(() => ({ cache: new Map<number, [number, number]>() }));
vi.mock("./cornerstone", () => ({
  sliceBytes: (v: { rows: number; columns: number; format: string }) => v.rows * v.columns * (v.format === "u8" ? 1 : 2),
  cachedSlice: (ref: { slice: number }) => fake.cache.has(ref.slice),
  cacheSlice: (ref: { slice: number }, buffer: ArrayBuffer, offset: number, bytes: number) => {
    if (fake.cache.has(ref.slice)) return false;
    fake.cache.set(ref.slice, [new Uint8Array(buffer, offset, bytes)[bytes - 1] ?? -1, bytes]);
    return true;
  },
}));

describe("shared-memory pieces", () => {
  const covered = (p: [number, number][]) => p.flatMap(([from, count]) => Array.from({ length: count }, (_, k) => from + k)).sort((a, b) => a - b);

  it("covers the stack once, the piece of the current slice first, then nearest alternately", () => {
    // 300 slices of 512² i16 (512 KiB): 32 slices to a 16 MiB piece.
    const slice = 512 * 512 * 2;
    expect(PIECE_BYTES / slice).toBe(32);
    const p = pieces(300, slice, 150);
    expect(covered(p)).toEqual(Array.from({ length: 300 }, (_, k) => k));
    expect(p.slice(0, 5)).toEqual([
      [128, 32],
      [160, 32],
      [96, 32],
      [192, 32],
      [64, 32],
    ]);
    // The last piece is the remainder.
    expect(p).toContainEqual([288, 12]);
    expect(p).toHaveLength(10);
  });

  it("starts at either end and keeps going one way", () => {
    expect(pieces(100, 4 * 1024 * 1024, 0)).toEqual([
      [0, 4],
      [4, 4],
      [8, 4],
    ].concat(Array.from({ length: 22 }, (_, k) => [12 + 4 * k, 4])));
    const fromEnd = pieces(100, 4 * 1024 * 1024, 99);
    expect(fromEnd[0]).toEqual([96, 4]);
    expect(fromEnd[1]).toEqual([92, 4]);
    // A slice past the end (a stale position) is the last piece.
    expect(pieces(100, 4 * 1024 * 1024, 500)[0]).toEqual([96, 4]);
  });

  it("never asks for more slices than the shell serves, nor for none", () => {
    expect(pieces(1000, 64, 0)[0]).toEqual([0, PIECE_MAX_SLICES]);
    expect(covered(pieces(1000, 64, 700))).toHaveLength(1000);
    // A slice larger than a piece goes alone.
    expect(pieces(3, 64 * 1024 * 1024, 1)).toEqual([
      [1, 1],
      [2, 1],
      [0, 1],
    ]);
    expect(pieces(0, 1024, 0)).toEqual([]);
  });
});

describe("whole-stack loads", () => {
  it("load a stack at once only while it takes at most half the image cache", () => {
    const gb = 1024 ** 3;
    // 300 slices of 512² i16 in Cornerstone3D's default 3 GB cache.
    expect(loadWhole(300 * 512 * 512 * 2, 3 * gb)).toBe(true);
    expect(loadWhole(1.5 * gb, 3 * gb)).toBe(true);
    expect(loadWhole(1.5 * gb + 1, 3 * gb)).toBe(false);
  });
});

describe("loading a stack by shared memory", () => {
  // 4 MiB slices (2048² u8): four to a 16 MiB piece.
  const SLICE = 2048 * 2048;
  const stack = (slices: number): BulkStack => ({ generation: 3, series: 1, stack: 0, slices, rows: 2048, columns: 2048, format: "u8" });
  let asked: [number, number][];
  // The shell: `shm/…/{from}/{count}` answers a name; `failing` answers that piece's error.
  const shell = (failing?: number) =>
    vi.fn((url: string) => {
      const m = /^dokuei:\/\/localhost\/shm\/3\/1\/0\/(\d+)\/(\d+)$/.exec(url);
      if (!m) throw new Error(`unexpected ${url}`);
      const [from, count] = [Number(m[1]), Number(m[2])];
      asked.push([from, count]);
      const ok = from !== failing;
      const text = ok ? `dokuei-1-${String(from)}-${String(count)}` : `slice ${String(from + 2)}: cannot read /study/${String(from + 2)}.dcm`;
      return Promise.resolve({ ok, text: () => Promise.resolve(text) });
    });
  // dokueiShm: each slice's bytes end in its number.
  const map = (name: string) => {
    const [from = 0, count = 0] = name.split("-").slice(2).map(Number);
    const bytes = new Uint8Array(count * SLICE);
    for (let k = 0; k < count; k++) bytes[(k + 1) * SLICE - 1] = from + k;
    return bytes.buffer;
  };

  beforeEach(() => {
    fake.cache.clear();
    asked = [];
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("puts every slice into the cache once, the piece of the current slice first", async () => {
    vi.stubGlobal("fetch", shell());
    const stats = await loadStack(stack(12), 9, () => true, map);
    expect(asked[0]).toEqual([8, 4]);
    expect(asked.map(([from]) => from).sort((a, b) => a - b)).toEqual([0, 4, 8]);
    expect([...fake.cache.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, k) => k));
    for (const [slice, [last, bytes]] of fake.cache) expect([last, bytes]).toEqual([slice, SLICE]);
    expect(stats).toMatchObject({ slices: 12, pieces: 3, bytes: 12 * SLICE });
  });

  it("does not ask for a piece whose slices are all cached", async () => {
    vi.stubGlobal("fetch", shell());
    for (let k = 0; k < 4; k++) fake.cache.set(k, [k, SLICE]);
    fake.cache.set(5, [5, SLICE]);
    const stats = await loadStack(stack(12), 0, () => true, map);
    // Slices 0–3 were there: not asked for. Piece 4–7 is asked for; slice 5 is not put again.
    expect(asked.map(([from]) => from).sort((a, b) => a - b)).toEqual([4, 8]);
    expect(stats.slices).toBe(7);
    expect(fake.cache.size).toBe(12);
  });

  it("stops both workers at a failed piece and throws the shell's error", async () => {
    const fetch = shell(4);
    vi.stubGlobal("fetch", fetch);
    await expect(loadStack(stack(40), 0, () => true, map)).rejects.toThrow("cannot read /study/6.dcm");
    // Ten pieces: the first two were asked for together; after the failure at most the one
    // the other worker had started.
    expect(asked.length).toBeLessThanOrEqual(3);
    expect(fake.cache.has(5)).toBe(false);
  });

  it("refuses a piece of the wrong length, naming its slices", async () => {
    vi.stubGlobal("fetch", shell());
    const short = (name: string) => map(name).slice(0, SLICE);
    await expect(loadStack(stack(4), 0, () => true, short)).rejects.toThrow(`slices 1–4 came as ${String(SLICE)} bytes, not ${String(4 * SLICE)}`);
    expect(fake.cache.size).toBe(0);
  });

  it("stops between pieces once the stack is no longer shown", async () => {
    vi.stubGlobal("fetch", shell());
    let shown = true;
    const watching = (name: string) => {
      shown = false;
      return map(name);
    };
    const stats = await loadStack(stack(40), 0, () => shown, watching);
    // Each worker had asked for one piece; neither asks again, nor caches what came.
    expect(asked).toHaveLength(2);
    expect(stats.slices).toBe(0);
  });
});
