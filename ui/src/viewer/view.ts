// The shell's StackView with plain numbers. (The generated bindings type every f64 as
// `number | null`, because serde writes NaN and infinities as null; Dokuei never sends those
// for geometry, and a missing value becomes NaN here rather than a null to check everywhere.)

import type { StackView } from "../bindings";

export interface Preset {
  name: string;
  center: number;
  width: number;
}

export interface View {
  series: number;
  stack: number;
  rows: number;
  columns: number;
  slices: number;
  format: string;
  pixelSpacing: [number, number];
  spacingAtDetector: boolean;
  spacingKnown: boolean;
  sliceSpacing: number | null;
  sliceThickness: number | null;
  positions: [number, number, number][];
  orientation: [number, number, number, number, number, number];
  locations: (number | null)[];
  inverted: boolean;
  modality: string;
  window: Preset;
  presets: Preset[];
  markers: { left: string; right: string; top: string; bottom: string } | null;
  plane: string;
  warnings: string[];
  /** Frame of Reference UID ("" when the images give none). */
  frameOfReference: string;
}

const n = (x: number | null | undefined): number => x ?? Number.NaN;

function preset(p: { name: string; center: number | null; width: number | null }): Preset {
  return { name: p.name, center: n(p.center), width: n(p.width) };
}

export function toView(v: StackView): View {
  const o = v.orientation;
  return {
    series: v.series,
    stack: v.stack,
    rows: v.rows,
    columns: v.columns,
    slices: v.slices,
    format: v.format,
    pixelSpacing: [n(v.pixel_spacing[0]), n(v.pixel_spacing[1])],
    spacingAtDetector: v.spacing_at_detector,
    spacingKnown: v.spacing_known,
    sliceSpacing: v.slice_spacing ?? null,
    sliceThickness: v.slice_thickness ?? null,
    positions: v.positions.map((p) => [n(p[0]), n(p[1]), n(p[2])]),
    orientation: [n(o[0]), n(o[1]), n(o[2]), n(o[3]), n(o[4]), n(o[5])],
    locations: v.locations.map((l) => l ?? null),
    inverted: v.inverted,
    modality: v.modality,
    window: preset(v.window),
    presets: v.presets.map(preset),
    markers: v.markers ?? null,
    plane: v.plane,
    warnings: v.warnings,
    frameOfReference: v.frame_of_reference,
  };
}
