// Plane maths against hand-computed cases: oblique planes, non-square pixels, reference lines,
// slabs, orientation letters and rotations.

import { describe, expect, it } from "vitest";
import {
  type Plane,
  type Vec3,
  crosshairGrab,
  directionLabel,
  distanceToCut,
  edgeLabels,
  lengthMm,
  mprPlane,
  normal,
  patientToPlane,
  planeToPatient,
  referenceLine,
  rotateAbout,
  rotateInPlane,
  slabOffsets,
  slabSlices,
  sub,
  turnAngle,
  unit,
} from "./planes";

const c30 = Math.cos(Math.PI / 6);
const s30 = 0.5;

/** An oblique plane (turned 30° about the vertical) with rows 2 mm and columns 0.5 mm apart. */
const oblique: Plane = {
  origin: [10, 20, 30],
  row: [c30, s30, 0],
  column: [0, 0, -1],
  spacing: [2, 0.5],
  rows: 40,
  columns: 80,
};

const axial: Plane = {
  origin: [-100, -100, 0],
  row: [1, 0, 0],
  column: [0, 1, 0],
  spacing: [1, 1],
  rows: 200,
  columns: 200,
};

const close = (a: number[], b: number[], digits = 6) => {
  expect(a.length).toBe(b.length);
  a.forEach((v, k) => {
    expect(v).toBeCloseTo(b[k] ?? Number.NaN, digits);
  });
};

/** A segment's ends in a fixed order, to compare without caring which end comes first. */
const ends = (s: { from: [number, number]; to: [number, number] } | null) =>
  s ? [s.from, s.to].sort((p, q) => p[0] - q[0] || p[1] - q[1]).flat() : null;

describe("patient ↔ plane", () => {
  it("places a pixel of an oblique plane with non-square pixels and finds it back", () => {
    // (4, 3): 4 columns × 0.5 mm along the row direction, 3 rows × 2 mm down.
    const p = planeToPatient(oblique, 4, 3);
    close(p, [10 + 2 * c30, 20 + 2 * s30, 24]);
    const back = patientToPlane(oblique, p);
    close([back.i, back.j, back.depth], [4, 3, 0]);
  });

  it("measures depth along the normal, row × column", () => {
    close(normal(oblique), [-0.5, c30, 0]);
    const n = normal(oblique);
    const off = planeToPatient(oblique, 10, 5).map((v, k) => v + 5 * (n[k] ?? 0)) as Vec3;
    close([patientToPlane(oblique, off).depth], [5]);
  });

  it("measures lengths with each axis at its own spacing", () => {
    // 4 columns × 0.5 mm and 3 rows × 2 mm: √(2² + 6²).
    expect(lengthMm(oblique, [0, 0], [4, 3])).toBeCloseTo(Math.sqrt(40), 9);
  });
});

describe("reference lines", () => {
  it("draws a coronal plane on an axial image as the row it passes through", () => {
    const coronal: Plane = { ...axial, origin: [-100, 20, 100], row: [1, 0, 0], column: [0, 0, -1] };
    // y = 20 is row 120 of the axial image; the line spans the image's pixel edges.
    close(ends(referenceLine(coronal, axial)) ?? [], [-0.5, 120, 199.5, 120]);
  });

  it("clips an oblique plane to the image", () => {
    // The plane x + y = 0 crosses the axial image where i + j = 200.
    const diagonal: Plane = { ...axial, origin: [0, 0, 0], row: [Math.SQRT1_2, -Math.SQRT1_2, 0], column: [0, 0, -1] };
    close(ends(referenceLine(diagonal, axial)) ?? [], [0.5, 199.5, 199.5, 0.5]);
  });

  it("uses each axis's spacing on an image with non-square pixels", () => {
    const image: Plane = { origin: [0, 0, 0], row: [1, 0, 0], column: [0, 1, 0], spacing: [2, 0.5], rows: 50, columns: 100 };
    const sagittal: Plane = { ...image, origin: [10, 0, 0], row: [0, 1, 0], column: [0, 0, -1] };
    // x = 10 mm is column 20 at 0.5 mm per column.
    close(ends(referenceLine(sagittal, image)) ?? [], [20, -0.5, 20, 49.5]);
  });

  it("has none for a parallel plane or one that misses the image", () => {
    expect(referenceLine({ ...axial, origin: [0, 0, 5] }, axial)).toBeNull();
    const far: Plane = { ...axial, origin: [-100, 500, 100], row: [1, 0, 0], column: [0, 0, -1] };
    expect(referenceLine(far, axial)).toBeNull();
  });
});

describe("slabs", () => {
  const orientation: [number, number, number, number, number, number] = [1, 0, 0, 0, 1, 0];
  const positions: Vec3[] = [0, 2.5, 5, 7.5, 10].map((z) => [-100, -100, z]);

  it("takes the slices within half the thickness of the centre's", () => {
    expect(slabSlices(positions, orientation, 2, 5)).toEqual([1, 3]);
    expect(slabSlices(positions, orientation, 2, 1)).toEqual([2, 2]);
    expect(slabSlices(positions, orientation, 0, 6)).toEqual([0, 1]);
    expect(slabSlices([...positions].reverse(), orientation, 4, 10)).toEqual([2, 4]);
  });

  it("measures along the normal of a tilted stack", () => {
    // Rows tilted 20°: slices 3 mm apart along z are 3·cos 20° apart along the normal.
    const t = (20 * Math.PI) / 180;
    const tilted: [number, number, number, number, number, number] = [1, 0, 0, 0, Math.cos(t), -Math.sin(t)];
    const stack: Vec3[] = [0, 3, 6, 9].map((z) => [0, 0, z]);
    // 2.82 mm per slice: a 6 mm slab takes the neighbours on each side (|Δ| = 2.82 ≤ 3).
    expect(slabSlices(stack, tilted, 1, 6)).toEqual([0, 2]);
    expect(slabSlices(stack, tilted, 1, 5.5)).toEqual([1, 1]);
  });

  it("samples a slab evenly about its centre", () => {
    expect(slabOffsets(2, 2.5)).toEqual([0]);
    close(slabOffsets(5, 2.5), [-1.25, 1.25]);
    close(slabOffsets(10, 2.5), [-3.75, -1.25, 1.25, 3.75]);
    close(slabOffsets(9, 2.5), [-3.375, -1.125, 1.125, 3.375]);
  });
});

describe("orientation and MPR planes", () => {
  it("labels the edges of the three views as radiologists expect", () => {
    expect(edgeLabels(mprPlane("axial", [0, 0, 0], 100, 1))).toEqual({ left: "R", right: "L", top: "A", bottom: "P" });
    expect(edgeLabels(mprPlane("coronal", [0, 0, 0], 100, 1))).toEqual({ left: "R", right: "L", top: "S", bottom: "I" });
    expect(edgeLabels(mprPlane("sagittal", [0, 0, 0], 100, 1))).toEqual({ left: "A", right: "P", top: "S", bottom: "I" });
    expect(directionLabel([c30, s30, 0])).toBe("LP");
    expect(directionLabel([0.05, -1, 0.1])).toBe("A");
  });

  it("centres each view on the point it is made through", () => {
    for (const view of ["axial", "coronal", "sagittal"] as const) {
      const p = mprPlane(view, [12, -7, 30], 100, 0.5);
      expect([p.rows, p.columns]).toEqual([200, 200]);
      const at = patientToPlane(p, [12, -7, 30]);
      close([at.i, at.j, at.depth], [99.5, 99.5, 0]);
    }
  });

  it("turns a plane about a pixel, keeping that pixel in place", () => {
    const turned = rotateInPlane(axial, 90, 50, 60);
    close(turned.row, [0, 1, 0]);
    close(turned.column, [-1, 0, 0]);
    close(planeToPatient(turned, 50, 60), planeToPatient(axial, 50, 60));
    // A quarter turn of the image: one column along is one row down in the original.
    close(planeToPatient(turned, 51, 60), planeToPatient(axial, 50, 61));
  });

  it("turns the other planes about the crosshairs' axis", () => {
    const coronal = mprPlane("coronal", [0, 0, 0], 100, 1);
    // A quarter turn about S through the centre makes the coronal a sagittal.
    const turned = rotateAbout(coronal, [0, 0, 1], 90, [0, 0, 0]);
    close(turned.row, [0, 1, 0]);
    close(normal(turned), [-1, 0, 0]);
    close(planeToPatient(turned, 49.5, 49.5), [0, 0, 0]);
  });
});

describe("turning the crosshairs by a line", () => {
  const centre: Vec3 = [0, 0, 0];
  const axialAt = mprPlane("axial", centre, 200, 1);
  const coronalAt = mprPlane("coronal", centre, 200, 1);
  const sagittalAt = mprPlane("sagittal", centre, 200, 1);

  it("measures within the plane the distance to another plane's line", () => {
    // On the axial plane the coronal cut is the line y = 0, the sagittal one x = 0.
    expect(distanceToCut(axialAt, coronalAt, [50, 2, 0])).toBeCloseTo(2, 9);
    expect(distanceToCut(axialAt, sagittalAt, [50, 2, 0])).toBeCloseTo(50, 9);
    // A plane tilted 60° from the axial through the x axis still cuts it along y = 0; a
    // point 4 mm from that line in the axial plane is 4 mm from it, not 4·sin 60°.
    const tilted: Plane = { ...coronalAt, origin: [0, 0, 0], row: [1, 0, 0], column: [0, Math.cos(Math.PI / 3), -Math.sin(Math.PI / 3)] };
    close(normal(tilted), [0, Math.sin(Math.PI / 3), Math.cos(Math.PI / 3)]);
    expect(distanceToCut(axialAt, tilted, [7, 4, 0])).toBeCloseTo(4, 9);
    // Parallel planes never meet.
    expect(distanceToCut(axialAt, mprPlane("axial", [0, 0, 10], 200, 1), [0, 0, 0])).toBe(Infinity);
  });

  it("takes a line far from the centre to turn, and anything else to move", () => {
    const others = [coronalAt, sagittalAt];
    expect(crosshairGrab(axialAt, centre, others, [50, 2, 0], 3, 20)).toBe("turn");
    expect(crosshairGrab(axialAt, centre, others, [-1, -60, 0], 3, 20)).toBe("turn");
    // On a line but near the centre: the centre moves.
    expect(crosshairGrab(axialAt, centre, others, [10, 1, 0], 3, 20)).toBe("move");
    // Far from both lines.
    expect(crosshairGrab(axialAt, centre, others, [50, 30, 0], 3, 20)).toBe("move");
  });

  it("turns by the angle swept about the centre, the way rotateAbout turns", () => {
    const axis: Vec3 = [0, 0, 1];
    const c: Vec3 = [10, 10, 5];
    // From +x to +y about +S is a quarter turn; the height of the points does not count.
    expect(turnAngle(axis, c, [20, 10, 5], [10, 20, 7])).toBeCloseTo(90, 9);
    expect(turnAngle(axis, c, [10, 20, 7], [20, 10, 5])).toBeCloseTo(-90, 9);
    // Dragging a coronal line's end from 30° to 75° turns the coronal plane's row by 45° to
    // point at the new place.
    const deg = (d: number): Vec3 => [c[0] + 40 * Math.cos((d * Math.PI) / 180), c[1] + 40 * Math.sin((d * Math.PI) / 180), c[2]];
    const angle = turnAngle(axis, c, deg(30), deg(75));
    expect(angle).toBeCloseTo(45, 9);
    const row30: Plane = { ...coronalAt, origin: c, row: unit([Math.cos(Math.PI / 6), Math.sin(Math.PI / 6), 0]), column: [0, 0, -1] };
    close(rotateAbout(row30, axis, angle, c).row, unit(sub(deg(75), c)));
  });
});
