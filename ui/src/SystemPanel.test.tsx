import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { MemoryBackend } from "./backend";
import type { AppInfo } from "./bindings";
import { SystemPanel } from "./SystemPanel";

const app: AppInfo = {
  name: "Dokuei",
  version: "0.1.0",
  platform: "linux x86_64",
  clinical_use_notice: "",
  log_dir: "/home/r/.local/share/org.dokuei.workstation/logs",
  rendering: "software",
  cpu_rendering: true,
};

describe("SystemPanel", () => {
  it("shows the ONNX Runtime version and where models run", async () => {
    const backend = MemoryBackend(app, {
      status: "ok",
      data: {
        version: "1.31.1",
        library_path: "/x/libonnxruntime.so.1.31.1",
        library_source: "project_setup",
        providers: [
          { kind: "CUDA", compiled_in: true, in_library: false },
          { kind: "CPU", compiled_in: true, in_library: true },
        ],
        preferred_provider: "CPU",
      },
    });
    render(<SystemPanel backend={backend} />);
    expect((await screen.findByTestId("ort-version")).textContent).toBe("1.31.1");
    expect(screen.getByTestId("ort-provider").textContent).toBe("CPU");
    expect(screen.getByTestId("ort-providers").textContent).toContain("not in the ONNX Runtime library");
    expect(screen.getByTestId("app-rendering").textContent).toContain("images drawn on the CPU");
  });

  it("shows the error's message and code when the library is missing", async () => {
    const backend = MemoryBackend(app, {
      status: "error",
      error: { code: "onnx_runtime_missing", message: "ONNX Runtime library not found; looked for `/nope`." },
    });
    render(<SystemPanel backend={backend} />);
    const alert = await screen.findByTestId("ort-error");
    expect(alert.dataset.code).toBe("onnx_runtime_missing");
    expect(screen.getByTestId("ort-error-message").textContent).toContain("/nope");
  });
});
