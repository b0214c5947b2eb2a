// MPR virtual stacks against hand-computed cases: the sample CT's geometry, a tilted stack,
// oblique planes, the plane URL, and a finding resampled onto coronal planes.

import { describe, expect, it } from "vitest";
import type { Geometry } from "../bindings";
import { toRuns } from "../review/logic";
import { findingOnStack, indexAt, locationOf, MPR_AXES, MPR_VIEWS, mprRefusal, parallelView, mprStack, mprView, ontoSourceSlice, patientToVoxel, planeAt, planeSpec, sourceSliceOf, stepAlong, volumeOf, voxelToPatient, type Volume } from "./mpr";
import { normal, patientToPlane, rotateAbout, type Vec3 } from "./planes";
import { fakeView } from "./fakeView";
import type { View } from "./view";

/** A stack as the shell describes it: `slices` axial slices from `z0`, `dz` apart (head
 * first: z falls), `size`² pixels of `px` mm, first pixel at (-0.35·size, -0.35·size). */
function stack(slices: number, size: number, px: number, dz: number, z0: number, tiltY = 0): View {
  const o = -0.35 * size;
  return fakeView({
    rows: size,
    columns: size,
    slices,
    pixelSpacing: [px, px],
    sliceSpacing: dz,
    sliceThickness: dz,
    positions: Array.from({ length: slices }, (_, k) => [o, o + tiltY * k, z0 - dz * k] as Vec3),
  });
}

// The sample CT (sample-studies/generate.py): 200 slices of 256² at 0.7 mm, 2.5 mm apart, shown
// head first from z = 97.5.
const sample = stack(200, 256, 0.7, 2.5, 97.5);

describe("volumes", () => {
  it("maps voxels to patient points and back, with a gantry tilt", () => {
    const tilted = volumeOf(stack(10, 64, 0.5, 2, 0, 0.8)) as Volume;
    const p = voxelToPatient(tilted, 3, 5, 7);
    // x = -22.4 + 0.5·3; y = -22.4 + 0.5·5 + 0.8·7; z = -2·7.
    expect(p[0]).toBeCloseTo(-20.9, 9);
    expect(p[1]).toBeCloseTo(-14.3, 9);
    expect(p[2]).toBeCloseTo(-14, 9);
    const back = patientToVoxel(tilted, p);
    expect(back[0]).toBeCloseTo(3, 9);
    expect(back[1]).toBeCloseTo(5, 9);
    expect(back[2]).toBeCloseTo(7, 9);
  });

  it("steps along a direction by the fastest-changing voxel index", () => {
    const v = volumeOf(sample) as Volume;
    expect(stepAlong(v, [0, 0, 1])).toBeCloseTo(2.5, 9);
    expect(stepAlong(v, [0, 1, 0])).toBeCloseTo(0.7, 9);
    // 45° between x and z: x changes by cos 45°/0.7 per mm, z by cos 45°/2.5.
    expect(stepAlong(v, [Math.SQRT1_2, 0, Math.SQRT1_2])).toBeCloseTo(0.7 / Math.SQRT1_2, 9);
  });

  it("refuses stacks that cannot be reformatted, saying why", () => {
    expect(mprRefusal(sample)).toBeNull();
    expect(mprRefusal({ ...sample, format: "rgb8" })).toMatch(/greyscale/);
    expect(mprRefusal(stack(2, 64, 0.5, 2, 0))).toMatch(/3 slices/);
    expect(mprRefusal({ ...sample, spacingKnown: false })).toMatch(/pixel spacing/);
    const same = stack(5, 64, 0.5, 0, 0);
    expect(mprRefusal(same)).toMatch(/span a volume/);
  });
});

describe("MPR stacks", () => {
  const v = volumeOf(sample) as Volume;

  it("covers the sample CT: axial at its slices, coronal and sagittal 0.7 mm across and a slice down", () => {
    const axial = mprStack(v, "axial", ...MPR_AXES.axial);
    expect([axial.columns, axial.rows, axial.count, axial.step]).toEqual([256, 256, 200, -2.5]);
    // The axial planes are the source slices, in the source's order (head first, against the
    // axial normal +z): image k is the source's image k.
    expect(planeAt(axial, 0).origin).toEqual([-89.6, -89.6, 97.5]);
    expect(planeAt(axial, 199).origin[2]).toBeCloseTo(-400, 9);
    expect(mprView(sample, axial, 0).sliceSpacing).toBe(2.5);
    expect(axial.spacing).toEqual([0.7, 0.7]);
    const coronal = mprStack(v, "coronal", ...MPR_AXES.coronal);
    // Down the plane is along the slices: one row per slice, 2.5 mm apart (the viewer stretches
    // them); across, 0.7 mm as in the source; 256 planes 0.7 mm apart.
    expect([coronal.columns, coronal.rows, coronal.count]).toEqual([256, 200, 256]);
    expect(coronal.spacing[0]).toBeCloseTo(2.5, 9);
    expect(coronal.spacing[1]).toBeCloseTo(0.7, 9);
    expect(coronal.step).toBeCloseTo(0.7, 9);
    // Superior up: the first row is at the top slice.
    expect(planeAt(coronal, 0).origin[2]).toBeCloseTo(97.5, 9);
    const sagittal = mprStack(v, "sagittal", ...MPR_AXES.sagittal);
    expect([sagittal.columns, sagittal.rows, sagittal.count]).toEqual([256, 200, 256]);
    // Its normal is -x (seen from the patient's left), so plane 0 is the leftmost.
    expect(normal(planeAt(sagittal, 0))).toEqual([-1, 0, 0]);
    expect(planeAt(sagittal, 0).origin[0]).toBeCloseTo(-89.6 + 0.7 * 255, 9);
  });

  it("finds the plane through a point, and reads its position along the patient axis", () => {
    const coronal = mprStack(v, "coronal", ...MPR_AXES.coronal);
    const p: Vec3 = [-27.1, -25.42, -6.43];
    const k = indexAt(coronal, p);
    expect(Math.abs(patientToPlane(planeAt(coronal, k), p).depth)).toBeLessThanOrEqual(0.35 + 1e-9);
    expect(locationOf(coronal, k)).toBeCloseTo(planeAt(coronal, k).origin[1], 9);
    const sagittal = mprStack(v, "sagittal", ...MPR_AXES.sagittal);
    const s = indexAt(sagittal, p);
    // The sagittal normal is -x, yet the location reads x.
    expect(locationOf(sagittal, s)).toBeCloseTo(-27.1, 0);
    expect(indexAt(coronal, [0, 1000, 0])).toBe(coronal.count - 1);
  });

  it("turns into an oblique stack that still passes through the centre", () => {
    const centre: Vec3 = [10, -5, -150];
    const [row, column] = MPR_AXES.coronal;
    const turned = rotateAbout({ origin: centre, row, column, spacing: [1, 1], rows: 1, columns: 1 }, [0, 0, 1], 30, centre);
    const oblique = mprStack(v, "coronal", turned.row, turned.column);
    expect(oblique.oblique).toBe(true);
    expect(mprView(sample, oblique, 0).plane).toBe("Oblique (from coronal)");
    const k = indexAt(oblique, centre);
    expect(Math.abs(patientToPlane(planeAt(oblique, k), centre).depth)).toBeLessThanOrEqual(oblique.step / 2 + 1e-9);
    // The planes still span the whole volume: every corner is within the stack's extent.
    for (const i of [0, 255]) {
      for (const z of [97.5, -400]) {
        const corner: Vec3 = [-89.6 + 0.7 * i, -89.6 + 0.7 * i, z];
        const q = patientToPlane(planeAt(oblique, indexAt(oblique, corner)), corner);
        expect(q.i).toBeGreaterThan(-0.5 - 1e-6);
        expect(q.i).toBeLessThan(oblique.columns - 0.5 + 1e-6);
        expect(q.j).toBeGreaterThan(-0.5 - 1e-6);
        expect(q.j).toBeLessThan(oblique.rows - 0.5 + 1e-6);
      }
    }
  });

  it("samples a turned plane as the source where its column still runs along the slices", () => {
    const [row, column] = MPR_AXES.coronal;
    const about = (axis: Vec3) => rotateAbout({ origin: [0, 0, 0], row, column, spacing: [1, 1], rows: 1, columns: 1 }, axis, 30, [0, 0, 0]);
    // Turned about the axial normal: the column is still -z, one row per slice.
    const aboutZ = about([0, 0, 1]);
    expect(mprStack(v, "coronal", aboutZ.row, aboutZ.column).spacing[0]).toBeCloseTo(2.5, 9);
    // Turned about x: the column is oblique to the slices, sampled at 0.7 mm.
    const aboutX = about([1, 0, 0]);
    expect(mprStack(v, "coronal", aboutX.row, aboutX.column).spacing).toEqual([0.7, 0.7]);
  });

  it("writes the plane URL part the shell parses", () => {
    const coronal = mprStack(v, "coronal", ...MPR_AXES.coronal);
    expect(planeSpec(planeAt(coronal, 0), 10, "minip")).toBe("-89.6,-89.6,97.5,1,0,0,0,0,-1,2.5,0.7,200,256,10,1");
  });

  it("describes the stack as a View with edge letters and locations", () => {
    const coronal = mprStack(v, "coronal", ...MPR_AXES.coronal);
    const view = mprView(sample, coronal, 10);
    expect(view.markers).toEqual({ left: "R", right: "L", top: "S", bottom: "I" });
    expect(view.slices).toBe(256);
    expect(view.sliceThickness).toBe(10);
    expect(view.orientation).toEqual([1, 0, 0, 0, 0, -1]);
    expect(view.window).toEqual(sample.window);
  });
});

describe("findings on MPR planes", () => {
  const v = volumeOf(sample) as Volume;
  // A ball of radius 5 mm at (-27.1, -25.42, -6.43), as a mask on the source slices.
  const centre: Vec3 = [-27.1, -25.42, -6.43];
  const radius = 5;
  const mask: Geometry["mask"] = [];
  let box: [number, number, number, number] = [Infinity, Infinity, -Infinity, -Infinity];
  let slices: [number, number] = [Infinity, -Infinity];
  for (let k = 0; k < 200; k++) {
    const bitmap = new Uint8Array(256 * 256);
    let any = false;
    for (let j = 0; j < 256; j++) {
      for (let i = 0; i < 256; i++) {
        const p = voxelToPatient(v, i, j, k);
        if (Math.hypot(p[0] - centre[0], p[1] - centre[1], p[2] - centre[2]) > radius) continue;
        bitmap[j * 256 + i] = 1;
        any = true;
        box = [Math.min(box[0], i), Math.min(box[1], j), Math.max(box[2], i), Math.max(box[3], j)];
        slices = [Math.min(slices[0], k), Math.max(slices[1], k)];
      }
    }
    if (any) mask.push({ slice: k, runs: toRuns(bitmap) });
  }
  const geometry: Geometry = { box, slices, mask, centroid_lps_mm: centre, longest_diameter_mm: 10, area_mm2: null, volume_mm3: null };

  it("draws the ball as a disc on the coronal plane through its centre", () => {
    const coronal = mprStack(v, "coronal", ...MPR_AXES.coronal);
    const g = findingOnStack(geometry, v, coronal, false);
    expect(g).not.toBeNull();
    if (!g) return;
    const k = indexAt(coronal, centre);
    expect(g.slices[0]).toBeLessThanOrEqual(k);
    expect(g.slices[1]).toBeGreaterThanOrEqual(k);
    // About 10 mm / 0.7 mm = 14 planes front to back.
    expect(g.slices[1] - g.slices[0] + 1).toBeGreaterThanOrEqual(13);
    expect(g.slices[1] - g.slices[0] + 1).toBeLessThanOrEqual(16);
    const at = g.mask.find((m) => m.slice === k);
    expect(at).toBeDefined();
    const pixels = (at?.runs ?? []).reduce((n, [, len]) => n + len, 0);
    // The disc's area (π·5², with the slices 2.5 mm apart blurring its edge) in 0.7 × 2.5 mm
    // pixels.
    const area = pixels * 0.7 * 2.5;
    expect(area).toBeGreaterThan(50);
    expect(area).toBeLessThan(110);
    const q = patientToPlane(planeAt(coronal, k), centre);
    const [x0, y0, x1, y1] = g.box;
    expect((x0 + x1) / 2).toBeCloseTo(q.i, -0.5);
    expect((y0 + y1) / 2).toBeCloseTo(q.j, -0.7);
  });

  it("misses planes away from the finding and boxes a detection", () => {
    const sagittal = mprStack(v, "sagittal", ...MPR_AXES.sagittal);
    const g = findingOnStack(geometry, v, sagittal, true);
    expect(g).not.toBeNull();
    const far = indexAt(sagittal, [40, 0, 0]);
    expect(g && (far < g.slices[0] || far > g.slices[1])).toBe(true);
  });
});

describe("key images from MPR", () => {
  const v = volumeOf(sample) as Volume;
  const axial = mprStack(v, "axial", ...MPR_AXES.axial);

  it("names the source image an axial plane shows, and only that plane", () => {
    // MPR's axial planes run as the source's images do, down from z = 97.5.
    expect(sourceSliceOf(v, axial, 120, 0)).toBe(120);
    expect(sourceSliceOf(v, axial, 0, 0)).toBe(0);
    expect(sourceSliceOf(v, axial, 120, 10)).toEqual({ why: expect.stringMatching(/slab/) as string });
    const coronal = mprStack(v, "coronal", ...MPR_AXES.coronal);
    expect(sourceSliceOf(v, coronal, 100, 0)).toEqual({ why: expect.stringMatching(/reformatted/) as string });
    // Planes half a slice off the images are not images.
    const between = { ...axial, origin: [axial.origin[0], axial.origin[1], axial.origin[2] + 1.25] as Vec3 };
    expect(sourceSliceOf(v, between, 120, 0)).toEqual({ why: expect.stringMatching(/between/) as string });
    // An axial plane turned in its own plane is still the same slice.
    const turned = rotateAbout({ origin: [0, 0, 0], row: MPR_AXES.axial[0], column: MPR_AXES.axial[1], spacing: [1, 1], rows: 1, columns: 1 }, [0, 0, 1], 30, [0, 0, 0]);
    expect(sourceSliceOf(v, mprStack(v, "axial", turned.row, turned.column), 120, 0)).toBe(120);
  });

  it("finds the image under a gantry tilt", () => {
    const tilted = volumeOf(stack(10, 64, 0.5, 2, 0, 0.8)) as Volume;
    const s = mprStack(tilted, "axial", ...MPR_AXES.axial);
    // Slices at z = 0, -2, … -18, sheared 0.8 mm in y each: the view parallel to them steps
    // from slice to slice (2 mm, down from z = 0 as the images run), though along z the row
    // index changes faster; its image k is the source's image k.
    expect(s.step).toBeCloseTo(-2, 9);
    expect(s.count).toBe(10);
    for (const k of [0, 5, 9]) expect(sourceSliceOf(tilted, s, k, 0)).toBe(k);
  });

  it("starts with the view whose images are the study's own active", () => {
    expect(MPR_VIEWS[parallelView(v)]).toBe("axial");
    expect(MPR_VIEWS[parallelView(volumeOf(stack(10, 64, 0.5, 2, 0, 0.8)) as Volume)]).toBe("axial");
    // A sagittal MR (rows along +y, columns along -z, slices along x) and a coronal one.
    const slices = (orientation: View["orientation"], step: Vec3) =>
      volumeOf(fakeView({ rows: 32, columns: 32, slices: 3, orientation, positions: [0, 1, 2].map((k) => step.map((d) => d * k) as Vec3) })) as Volume;
    expect(MPR_VIEWS[parallelView(slices([0, 1, 0, 0, 0, -1], [4, 0, 0]))]).toBe("sagittal");
    expect(MPR_VIEWS[parallelView(slices([1, 0, 0, 0, 0, -1], [0, 4, 0]))]).toBe("coronal");
  });

  it("moves a point onto a source image along the slices' normal", () => {
    const p = ontoSourceSlice(v, [10, 20, 5], 79);
    expect(p[0]).toBeCloseTo(10, 9);
    expect(p[1]).toBeCloseTo(20, 9);
    expect(p[2]).toBeCloseTo(-100, 9);
  });
});
