// A stack View for unit tests: 64 × 64 axial CT slices at 0.7 mm, with the fields a test does
// not care about filled in; `overrides` sets the rest.

import type { View } from "./view";

export function fakeView(overrides: Partial<View>): View {
  return {
    series: 0,
    stack: 0,
    rows: 64,
    columns: 64,
    slices: 1,
    format: "i16",
    pixelSpacing: [0.7, 0.7],
    spacingAtDetector: false,
    spacingKnown: true,
    sliceSpacing: null,
    sliceThickness: null,
    positions: [[0, 0, 0]],
    orientation: [1, 0, 0, 0, 1, 0],
    locations: [],
    inverted: false,
    modality: "CT",
    window: { name: "", center: 40, width: 400 },
    presets: [],
    markers: null,
    plane: "Axial",
    warnings: [],
    frameOfReference: "1.2.3",
    ...overrides,
  };
}
