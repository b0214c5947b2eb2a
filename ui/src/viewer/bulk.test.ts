import { describe, expect, it } from "vitest";
import { loadWhole, PIECE_BYTES, PIECE_MAX_SLICES, pieces } from "./bulk";

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
