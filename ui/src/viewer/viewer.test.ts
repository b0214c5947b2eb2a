import { describe, expect, it } from "vitest";
import { KEY_BINDINGS, MOUSE_BINDINGS, actionForKey, clampSlice, TOOL } from "./bindings";
import { imageId, loopbackUrl, parseImageId, schemeUrl, sliceUrl, stackKey, thumbUrl } from "./imageId";
import { dicomDate, lengthText, personName, probeText, sliceText, windowText, zoomText } from "./overlay";

describe("tool bindings", () => {
  it("uses the reading-room mouse habits", () => {
    const byButton = Object.fromEntries(MOUSE_BINDINGS.map((b) => [b.button, b.tool]));
    expect(byButton).toEqual({
      Primary: TOOL.windowLevel,
      Secondary: TOOL.zoom,
      Auxiliary: TOOL.pan,
      Wheel: TOOL.scroll,
    });
  });

  it("maps keys to actions, ignoring modifier combinations", () => {
    expect(actionForKey({ key: "ArrowDown" })).toEqual({ kind: "step", by: 1 });
    expect(actionForKey({ key: "ArrowUp" })).toEqual({ kind: "step", by: -1 });
    expect(actionForKey({ key: "3" })).toEqual({ kind: "preset", index: 2 });
    expect(actionForKey({ key: "I" })).toEqual({ kind: "invert" });
    expect(actionForKey({ key: "l" })).toEqual({ kind: "primary", tool: TOOL.length });
    expect(actionForKey({ key: "r", ctrlKey: true })).toBeUndefined();
    expect(actionForKey({ key: "q" })).toBeUndefined();
  });

  it("binds each key once", () => {
    const keys = KEY_BINDINGS.map((b) => b.key);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it("clamps slice indices to the stack", () => {
    expect(clampSlice(-3, 10)).toBe(0);
    expect(clampSlice(12, 10)).toBe(9);
    expect(clampSlice(4, 10)).toBe(4);
  });
});

describe("image ids", () => {
  it("round-trips through the dokuei: scheme", () => {
    const ref = { generation: 3, series: 1, stack: 0, slice: 127 };
    expect(imageId(ref)).toBe("dokuei:3/1/0/127");
    expect(parseImageId(imageId(ref))).toEqual(ref);
    expect(parseImageId("wadouri:http://x")).toBeUndefined();
    expect(parseImageId("dokuei:1/2/3")).toBeUndefined();
    expect(stackKey(ref)).toBe("3/1/0");
  });

  it("serves pixels on the custom scheme of each platform", () => {
    const linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15";
    const windows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/120";
    expect(sliceUrl({ generation: 1, series: 2, stack: 0, slice: 5 }, null, linux)).toBe("dokuei://localhost/slice/1/2/0/5");
    expect(thumbUrl(1, 2, windows)).toBe("http://dokuei.localhost/thumb/1/2");
    expect(schemeUrl("//a/b", linux)).toBe("dokuei://localhost/a/b");
  });

  it("serves slices from the loopback server under its secret when it runs", () => {
    const base = loopbackUrl({ port: 41234, secret: "00ff" });
    expect(base).toBe("http://127.0.0.1:41234/00ff");
    expect(sliceUrl({ generation: 1, series: 2, stack: 0, slice: 5 }, base)).toBe("http://127.0.0.1:41234/00ff/slice/1/2/0/5");
    expect(sliceUrl({ generation: 1, series: 2, stack: 0, slice: 5 }, `${base}/`)).toBe("http://127.0.0.1:41234/00ff/slice/1/2/0/5");
  });
});

describe("overlay text", () => {
  it("formats slice, window, zoom and probe", () => {
    expect(sliceText({ slice: 0, slices: 200, location: -400, thickness: 2.5, center: 0, width: 1, modality: "CT" })).toBe(
      "Im 1/200  Loc -400.0 mm  Thk 2.5 mm",
    );
    expect(sliceText({ slice: 4, slices: 5, location: null, center: 0, width: 1, modality: "DX" })).toBe("Im 5/5");
    expect(windowText({ center: -600, width: 1500, presetName: "Lung" })).toBe("W 1500 L -600 (Lung)");
    expect(windowText({ center: 40.4, width: 399.6 })).toBe("W 400 L 40");
    expect(zoomText(1.5)).toBe("Zoom 1.50×");
    expect(zoomText(undefined)).toBe("");
    expect(probeText("CT", -1000, 10, 20)).toBe("(20, 10) -1000 HU");
    expect(probeText("MR", 12.345, 1, 2)).toBe("(2, 1) 12.35");
    expect(probeText("CT", undefined, 1, 2)).toBe("");
  });

  it("formats DICOM dates, names and lengths", () => {
    expect(dicomDate("20260101")).toBe("2026-01-01");
    expect(dicomDate("")).toBe("");
    expect(personName("Synthetic^Phantom")).toBe("Synthetic, Phantom");
    expect(personName("Doe")).toBe("Doe");
    expect(lengthText(42.04, "mm")).toBe("42.0 mm");
  });
});
