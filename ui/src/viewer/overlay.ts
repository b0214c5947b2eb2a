// The text in the viewport's corners, as radiologists expect it.

export interface OverlayInput {
  slice: number; // 0-based
  slices: number;
  location?: number | null; // mm along the normal
  thickness?: number | null; // mm
  center: number;
  width: number;
  presetName?: string;
  zoom?: number;
  modality: string;
}

export function sliceText(o: OverlayInput): string {
  const parts = [`Im ${o.slice + 1}/${o.slices}`];
  if (o.location !== undefined && o.location !== null) parts.push(`Loc ${o.location.toFixed(1)} mm`);
  if (o.thickness !== undefined && o.thickness !== null) parts.push(`Thk ${o.thickness.toFixed(1)} mm`);
  return parts.join("  ");
}

export function windowText(o: Pick<OverlayInput, "center" | "width" | "presetName">): string {
  const wl = `W ${Math.round(o.width)} L ${Math.round(o.center)}`;
  return o.presetName ? `${wl} (${o.presetName})` : wl;
}

export function zoomText(zoom: number | undefined): string {
  return zoom === undefined || !Number.isFinite(zoom) ? "" : `Zoom ${zoom.toFixed(2)}×`;
}

/** The value under the cursor: HU for CT, else the modality value. */
export function probeText(modality: string, value: number | undefined, row: number, column: number): string {
  if (value === undefined) return "";
  const unit = modality.toUpperCase() === "CT" ? " HU" : "";
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(2);
  return `(${column}, ${row}) ${shown}${unit}`;
}

/** A DICOM date (YYYYMMDD) as YYYY-MM-DD; anything else unchanged. */
export function dicomDate(date: string): string {
  return /^\d{8}$/.test(date) ? `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}` : date;
}

/** A DICOM person name (Family^Given^Middle^Prefix^Suffix) as "Family, Given Middle". */
export function personName(name: string): string {
  const [family = "", given = "", middle = ""] = name.split("^");
  const rest = [given, middle].filter((s) => s.length > 0).join(" ");
  return rest ? `${family}, ${rest}` : family;
}

/** A length measurement, mm with one decimal, or pixels when the spacing is unknown. */
export function lengthText(length: number, unit: string): string {
  return `${length.toFixed(1)} ${unit}`;
}
