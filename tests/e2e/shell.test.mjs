// The desktop shell end to end: the real window, the real IPC, the real ONNX Runtime.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { appPath, launch, pngSize, saveDisplayScreenshot, saveScreenshot } from "./harness.mjs";

describe("the app with ONNX Runtime installed", () => {
  let app;
  before(async () => {
    app = await launch();
  });
  after(async () => app?.close());

  it("opens a window titled Dokuei", async () => {
    assert.equal(await app.browser.getTitle(), "Dokuei");
  });

  it("shows the ONNX Runtime version reported by the Rust command", async () => {
    const version = await app.browser.$('[data-testid="ort-version"]');
    await version.waitForDisplayed({ timeout: 20000 });
    assert.equal(await version.getText(), "1.31.1");
    assert.equal(await app.browser.$('[data-testid="ort-provider"]').getText(), "CPU");
    // The CPU-only wheel: CUDA is compiled into Dokuei but absent from the library.
    const cuda = await app.browser.$('[data-testid="provider-status-CUDA"]').getText();
    assert.equal(cuda, "not in the ONNX Runtime library");
    assert.equal(await app.browser.$('[data-testid="provider-status-CPU"]').getText(), "available");
  });

  it("has WebGL2 in its webview (the viewer renders with it)", async () => {
    const renderer = await app.browser.execute(() => {
      const gl = document.createElement("canvas").getContext("webgl2");
      return gl ? String(gl.getParameter(gl.VERSION)) : null;
    });
    assert.match(renderer ?? "none", /WebGL 2/);
  });

  it("says the bundled models are not for clinical use", async () => {
    const banner = await app.browser.$('[data-testid="clinical-use-banner"]').getText();
    assert.match(banner, /not for clinical use/);
  });

  it("renders something a person can look at", async () => {
    const file = await saveScreenshot(app.browser, "start-screen");
    const { width, height } = pngSize(readFileSync(file));
    assert.ok(width >= 800 && height >= 600, `screenshot is ${width}x${height}`);
    saveDisplayScreenshot("start-screen");
  });
});

describe("the app without ONNX Runtime", () => {
  const missing = "/nonexistent/dokuei-e2e/libonnxruntime.so.1.31.1";

  it("shows an actionable error in the window instead of crashing", async () => {
    const app = await launch({ DOKUEI_ORT_LIB: missing });
    try {
      const alert = await app.browser.$('[data-testid="ort-error"]');
      await alert.waitForDisplayed({ timeout: 20000 });
      assert.equal(await alert.getAttribute("data-code"), "onnx_runtime_missing");
      const message = await app.browser.$('[data-testid="ort-error-message"]').getText();
      assert.ok(message.includes(missing), message);
      assert.ok(message.includes("scripts/setup.sh"), message);
      await saveScreenshot(app.browser, "onnx-runtime-missing");
    } finally {
      await app.close();
    }
  });

  it("prints the same error on stderr", async () => {
    const child = spawn(appPath(), [], {
      env: { ...process.env, DOKUEI_ORT_LIB: missing },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const seen = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 20000);
      child.stderr.on("data", (d) => {
        stderr += d;
        // Wait for the whole line, not just the start of it.
        if (/onnx_runtime_missing.*\n/.test(stderr)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.on("exit", () => {
        clearTimeout(timer);
        resolve(stderr.includes("onnx_runtime_missing"));
      });
    });
    const stillRunning = child.exitCode === null;
    child.kill();
    assert.ok(seen, `stderr did not name the error:\n${stderr}`);
    assert.ok(stderr.includes(missing), stderr);
    assert.ok(stillRunning, "the app exited instead of staying open with the error shown");
  });
});
