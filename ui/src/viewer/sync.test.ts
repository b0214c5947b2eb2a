// Synchronised scrolling against hand-computed cases: same frame of reference with different
// slice spacing, a manual offset across frames of reference, and stacks that cannot be linked.

import { describe, expect, it } from "vitest";
import { Followers, crosses, follow, link, linkRefusal, nearestSlice, paneReferenceLines, positionAlong, stackNormal } from "./sync";
import type { Vec3 } from "./planes";
import { fakeView } from "./fakeView";
import type { View } from "./view";

/** Axial slices from `z0` falling by `dz` (head first), in frame of reference `frame`. */
function axial(slices: number, z0: number, dz: number, frame: string, orientation: View["orientation"] = [1, 0, 0, 0, 1, 0]): View {
  return fakeView({
    slices,
    sliceSpacing: dz,
    sliceThickness: dz,
    positions: Array.from({ length: slices }, (_, k) => [0, 0, z0 - dz * k] as Vec3),
    orientation,
    frameOfReference: frame,
  });
}

describe("synchronised scrolling", () => {
  const thin = axial(200, 97.5, 2.5, "1.2.3");
  const thick = axial(100, 95, 5, "1.2.3");

  it("follows by patient position within one frame of reference", () => {
    expect(stackNormal(thin)).toEqual([0, 0, 1]);
    const l = link(thin, 10, thick, 70);
    expect(l.sameFrame).toBe(true);
    expect(l.offset).toBe(0);
    // Thin slice 40 is at z = -2.5; the thick stack's nearest is z = 0 or -5 (slice 19 or 20).
    expect(positionAlong(thin, 40, l.normal)).toBe(-2.5);
    expect([19, 20]).toContain(follow(l, thin, 40, thick, true));
    // Thick slice 20 (z = -5) → thin slice 41.
    expect(follow(l, thick, 20, thin, false)).toBe(41);
    // Beyond the other stack's end: its last slice.
    expect(follow(l, thin, 199, thick, true)).toBe(99);
  });

  it("keeps the offset on screen across frames of reference", () => {
    const other = axial(100, 45, 5, "9.9.9");
    // Lined up by hand: thin slice 0 (z = 97.5) with the other's slice 0 (z = 45).
    const l = link(thin, 0, other, 0);
    expect(l.sameFrame).toBe(false);
    expect(l.offset).toBe(-52.5);
    // Thin slice 20 (z = 47.5) → z = -5 in the other: its slice 10.
    expect(follow(l, thin, 20, other, true)).toBe(10);
    expect(follow(l, other, 10, thin, false)).toBe(20);
    // No frame of reference at all counts as different.
    expect(link(axial(10, 0, 1, ""), 0, axial(10, 0, 1, ""), 3).sameFrame).toBe(false);
  });

  it("refuses single images, missing positions and planes that are not parallel", () => {
    expect(linkRefusal(thin, thick)).toBeNull();
    expect(linkRefusal(thin, axial(1, 0, 1, "1.2.3"))).toMatch(/single image/);
    expect(linkRefusal(thin, { ...thick, spacingKnown: false })).toMatch(/no patient positions/);
    const coronal = axial(50, 0, 1, "1.2.3", [1, 0, 0, 0, 0, -1]);
    expect(linkRefusal(thin, coronal)).toMatch(/not parallel/);
    expect(nearestSlice(thin, 1000, [0, 0, 1])).toBe(0);
  });
});

describe("which pane leads", () => {
  it("lets a pane the link moved follow until it arrives, or until its patience runs out", () => {
    let t = 0;
    const f = new Followers(1000, () => t);
    expect(f.leads(0, 5)).toBe(true);
    f.send(1, 3);
    // On its way (an intermediate slice), then there: neither leads.
    expect(f.leads(1, 2)).toBe(false);
    expect(f.leads(1, 3)).toBe(false);
    // The reader scrolls it next: it leads again.
    expect(f.leads(1, 4)).toBe(true);
    // A move that never arrives stops holding the pane after a second.
    f.send(0, 9);
    t = 1500;
    expect(f.leads(0, 7)).toBe(true);
  });
});

describe("reference lines between panes", () => {
  it("draws a coronal stack's current plane across an axial slice of the same frame", () => {
    const ax = axial(10, 0, 2, "1.2.3");
    // Coronal slices (row +x, column -z), 64 × 64 at 0.7 mm from (0, y, 40), at y = 5, 6, 7 mm.
    const cor: View = { ...axial(3, 0, 1, "1.2.3", [1, 0, 0, 0, 0, -1]), positions: [0, 1, 2].map((k) => [0, 5 + k, 40] as Vec3) };
    expect(crosses(ax, cor)).toBe(true);
    expect(crosses(ax, { ...cor, frameOfReference: "other" })).toBe(false);
    expect(crosses(ax, axial(5, 0, 1, "1.2.3"))).toBe(false);
    // Coronal slice 1 (y = 6 mm) on the axial slice: the row j = 6 / 0.7 across the image.
    const [line] = paneReferenceLines([ax, cor], [0, 1], 0, 3);
    expect(line?.from[1]).toBeCloseTo(6 / 0.7, 9);
    expect(line?.to[1]).toBeCloseTo(6 / 0.7, 9);
    expect(Math.abs((line?.to[0] ?? 0) - (line?.from[0] ?? 0))).toBeCloseTo(64, 9);
    // The axial slice 2 (z = -4) on the coronal image: row (40 - -4) / 0.7; slice 3 (z = -6)
    // lies below its last row and draws nothing.
    const [back] = paneReferenceLines([ax, cor], [2, 1], 1, 1);
    expect(back?.from[1]).toBeCloseTo(44 / 0.7, 9);
    expect(paneReferenceLines([ax, cor], [3, 1], 1, 1)).toEqual([]);
    // Only panes that cross: none with a second axial stack.
    expect(paneReferenceLines([ax, axial(5, 0, 1, "1.2.3")], [0, 0], 0, 0)).toEqual([]);
  });
});
