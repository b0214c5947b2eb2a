import { describe, expect, it } from "vitest";
import { describeLibrarySource, describeProvider, providerAvailability } from "./format";

describe("describeProvider", () => {
  it("names GPU providers as GPU and the CPU as CPU", () => {
    expect(describeProvider("CUDA")).toBe("GPU (CUDA)");
    expect(describeProvider("CoreML")).toBe("GPU (CoreML)");
    expect(describeProvider("CPU")).toBe("CPU");
  });
});

describe("providerAvailability", () => {
  it("says whether the build or the library lacks a provider", () => {
    expect(providerAvailability({ kind: "TensorRT", compiled_in: false, in_library: false })).toBe(
      "not in this build",
    );
    expect(providerAvailability({ kind: "CUDA", compiled_in: true, in_library: false })).toBe(
      "not in the ONNX Runtime library",
    );
    expect(providerAvailability({ kind: "CPU", compiled_in: true, in_library: true })).toBe("available");
  });
});

describe("describeLibrarySource", () => {
  it("explains where the library was found", () => {
    expect(describeLibrarySource("project_setup")).toContain("setup.sh");
  });
});
