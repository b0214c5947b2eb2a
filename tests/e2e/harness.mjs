// Starts the built Dokuei app under tauri-driver + WebKitWebDriver and hands tests a
// WebdriverIO browser. Tests run inside Xvfb (tests/e2e/run.sh starts it).
//
//   DOKUEI_APP        path of the built dokuei-app binary (required)
//   DOKUEI_E2E_OUT    folder for screenshots (default: tests/output/e2e)

import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

const here = path.dirname(fileURLToPath(import.meta.url));
export const outDir = process.env.DOKUEI_E2E_OUT ?? path.resolve(here, "../output/e2e");
mkdirSync(outDir, { recursive: true });
/** The application log of every app the tests launch (`DOKUEI_LOG_DIR`). */
export const logDir = path.join(outDir, "logs");

/** The test readers' passphrase (signs their sign-offs). */
export const PASSPHRASE = "correct horse battery";

/** Types into a field after scrolling it into view (the review panel scrolls). */
export async function typeInto(b, id, value) {
  const el = await b.$(`[data-testid="${id}"]`);
  await el.waitForExist({ timeout: 5000 });
  await el.scrollIntoView({ block: "center" });
  await el.waitForEnabled({ timeout: 5000 });
  await el.setValue(value);
}

export function appPath() {
  const app = process.env.DOKUEI_APP;
  if (!app) throw new Error("set DOKUEI_APP to the built dokuei-app binary (tests/e2e/run.sh does)");
  return app;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export async function waitForPort(port, child, timeoutMs = 15000, name = "tauri-driver") {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not listen on port ${port} within ${timeoutMs} ms`);
}

/**
 * Starts Orthanc (Debian `orthanc` with its DICOMweb plug-in) from a temporary configuration in
 * `dir`, on free loopback ports, AE title ORTHANC; with `user`/`password`, HTTP Basic auth.
 * DCMTK's network layer (Orthanc's) leaves Nagle on unless TCP_NODELAY is set: it is set.
 * Returns once Orthanc's REST API answers (it starts its HTTP server last, after the DICOM one).
 * Orthanc's log goes to `dir/orthanc.log`. Orthanc binds every interface: stop it with `kill()`.
 * Returns { web, dicomPort, env, log, send(files, callingAet), kill }.
 */
export async function startOrthanc(dir, { user, password } = {}) {
  const httpPort = await freePort();
  let dicomPort = await freePort();
  while (dicomPort === httpPort) dicomPort = await freePort();
  const config = path.join(dir, "orthanc.json");
  writeFileSync(
    config,
    JSON.stringify({
      Name: "dokuei-e2e",
      StorageDirectory: path.join(dir, "orthanc"),
      IndexDirectory: path.join(dir, "orthanc"),
      HttpPort: httpPort,
      DicomPort: dicomPort,
      DicomAet: "ORTHANC",
      RemoteAccessAllowed: false,
      AuthenticationEnabled: Boolean(user),
      RegisteredUsers: user ? { [user]: password } : {},
      DicomAlwaysAllowEcho: true,
      DicomAlwaysAllowStore: true,
      DicomAlwaysAllowFind: true,
      DicomAlwaysAllowGet: true,
      Plugins: ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
      DicomWeb: { Enable: true, Root: "/dicom-web/" },
    }),
  );
  const env = { ...process.env, TCP_NODELAY: "1" };
  const log = path.join(dir, "orthanc.log");
  const child = spawn("/usr/sbin/Orthanc", [config], { stdio: ["ignore", "ignore", openSync(log, "w")], env });
  const logTail = () => {
    try {
      return readFileSync(log, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "(no log)";
    }
  };
  const headers = user ? { Authorization: "Basic " + Buffer.from(`${user}:${password}`).toString("base64") } : {};
  const deadline = Date.now() + 60000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited with ${child.exitCode}; its log:\n${logTail()}`);
    const up = await fetch(`http://127.0.0.1:${httpPort}/system`, { headers }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`Orthanc did not answer on port ${httpPort} within 60 s; its log:\n${logTail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await waitForPort(dicomPort, child, 30000, "Orthanc");
  /** Sends files by DCMTK's dcmsend as a modality would (compressed ones as they are); tries
   * three times, since a loaded machine can miss DCMTK's 30 s association timeout. */
  const send = (files, callingAet = "MODALITY") => {
    for (let attempt = 1; ; attempt++) {
      try {
        execFileSync("dcmsend", ["-dn", "-aet", callingAet, "-aec", "ORTHANC", "127.0.0.1", String(dicomPort), ...files], {
          env,
          stdio: ["ignore", "ignore", "pipe"],
        });
        return;
      } catch (e) {
        if (attempt === 3) throw new Error(`dcmsend to Orthanc failed 3 times: ${e.stderr ?? e.message}\nOrthanc's log:\n${logTail()}`);
        process.stderr.write(`# dcmsend to Orthanc failed (attempt ${attempt}): ${e.stderr ?? e.message}\n`);
      }
    }
  };
  return { web: `http://127.0.0.1:${httpPort}/dicom-web`, dicomPort, env, log, send, kill: () => child.kill("SIGKILL") };
}

/** Live processes as { pid, ppid, pgrp, comm }, read from /proc. */
function processes() {
  const list = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state !== "Z") list.push({ pid: Number(name), ppid: Number(ppid), pgrp: Number(pgrp), comm });
    } catch {
      // gone meanwhile
    }
  }
  return list;
}

/** tauri-driver's process group and every descendant of `root` (WebKitWebDriver, the app). */
function family(root) {
  const all = processes();
  const found = new Map(all.filter((p) => p.pgrp === root).map((p) => [p.pid, p]));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!found.has(p.pid) && (p.ppid === root || found.has(p.ppid))) {
        found.set(p.pid, p);
        grew = true;
      }
    }
  }
  return [...found.values()];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Ends a launch: closes the WebDriver session (the app should exit with its window), says on
 * stderr if the app is still running a few seconds later, then kills tauri-driver and whatever
 * it started, so no process (or its inherited output pipe) outlives the test file.
 */
async function shutdown(browser, driver) {
  if (browser) await Promise.race([browser.deleteSession().catch(() => {}), sleep(15000)]);
  let left = [];
  for (let waited = 0; waited < 5000; waited += 250) {
    left = family(driver.pid).filter((p) => p.comm.startsWith("dokuei"));
    if (left.length === 0) break;
    await sleep(250);
  }
  if (browser && left.length > 0) {
    console.error(`harness: ${left.map((p) => `${p.comm} (${p.pid})`).join(", ")} still running 5 s after the session ended; killing it`);
  }
  for (const p of family(driver.pid)) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  driver.kill("SIGKILL");
  driver.stdout.destroy();
  driver.stderr.destroy();
}

/**
 * Launches the app with extra environment variables (and command-line arguments) and returns
 * `{ browser, logs, close }`.
 * `logs()` returns what tauri-driver, WebKitWebDriver and the app printed so far.
 */
export async function launch(env = {}, args = []) {
  const port = await freePort();
  const nativePort = await freePort();
  let output = "";
  // Each launch gets its own data folder (recent studies, ledger) unless the test passes one,
  // so tests neither see each other's state nor touch the user's.
  const dataHome = env.XDG_DATA_HOME ?? mkdtempSync(path.join(tmpdir(), "dokuei-e2e-data-"));
  const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], {
    // Every launch logs to one folder, which the last test greps for patient identifiers.
    env: { ...process.env, XDG_DATA_HOME: dataHome, DOKUEI_LOG_DIR: logDir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so shutdown() finds all it started
  });
  driver.stdout.on("data", (d) => (output += d));
  driver.stderr.on("data", (d) => (output += d));
  try {
    // tauri-driver listens before the WebKitWebDriver it spawned does; a session request in
    // between fails with "tcp connect error" (seen once in CI). Wait for both ports.
    await waitForPort(port, driver);
    await waitForPort(nativePort, driver);
    const browser = await remote({
      hostname: "127.0.0.1",
      port,
      logLevel: "warn",
      connectionRetryCount: 0,
      capabilities: {
        browserName: "wry",
        "wdio:enforceWebDriverClassic": true,
        "tauri:options": { application: appPath(), args },
      },
    });
    return {
      browser,
      logs: () => output,
      dataHome,
      close: () => shutdown(browser, driver),
    };
  } catch (e) {
    await shutdown(null, driver);
    throw new Error(`${e.message}\n--- tauri-driver output ---\n${output}`);
  }
}

/**
 * Saves what the window shows as `<name>.png`, page pixel (x, y) at (x, y): the X display cut
 * to the window's page. (WebDriver screenshots get no answer with WebKitGTK's DMA-BUF renderer
 * off, the mode Dokuei chooses on a machine without a GPU; the X server always answers.)
 */
export async function saveScreenshot(browser, name) {
  const file = path.join(outDir, `${name}.png`);
  const rect = await browser.getWindowRect();
  const [width, height] = await browser.execute(() => [window.innerWidth, window.innerHeight]);
  execFileSync("import", ["-window", "root", "-crop", `${width}x${height}+${rect.x}+${rect.y}`, "+repage", file]);
  return file;
}

/** Saves the whole X display (window decorations included) with ImageMagick's `import`. */
export function saveDisplayScreenshot(name) {
  const file = path.join(outDir, `${name}-display.png`);
  execFileSync("import", ["-window", "root", file]);
  return file;
}

/** Reads a PNG's width and height from its header. */
export function pngSize(buffer) {
  if (buffer.toString("latin1", 1, 4) !== "PNG") throw new Error("not a PNG");
  return { width: buffer.readUInt32BE(16), height: buffer.readUInt32BE(20) };
}

/** The grey value (0–255) of one pixel of a PNG screenshot, with ImageMagick. */
export function grey(file, x, y) {
  const out = execFileSync("convert", [file, "-crop", `1x1+${Math.round(x)}+${Math.round(y)}`, "-colorspace", "Gray", "-format", "%[fx:round(255*u)]", "info:"]);
  return Number(out.toString());
}

export async function openPaths(browser, paths) {
  return browser.executeAsync((p, done) => {
    window.__dokuei.openPaths(p).then(done, (e) => done(String(e)));
  }, paths);
}

/** Page coordinates of image pixel (row, column) in pane 0. */
export async function pagePoint(browser, row, column) {
  return browser.execute(
    (r, c) => {
      const canvas = document.querySelector('[data-testid="viewport-pane-0"] .viewport-canvas');
      const point = window.__dokuei.viewport(0)?.canvasPoint(r, c);
      if (!canvas || !point) return null;
      const rect = canvas.getBoundingClientRect();
      return { x: rect.left + point[0], y: rect.top + point[1] };
    },
    row,
    column,
  );
}

export async function overlay(browser, id) {
  return browser.$(`[data-testid="${id}"]`).getText();
}

/** The RGB value (0–255 each) of one pixel of a PNG screenshot, with ImageMagick. */
export function rgb(file, x, y) {
  const out = execFileSync("convert", [file, "-crop", `1x1+${Math.round(x)}+${Math.round(y)}`, "-format", "%[fx:round(255*r)],%[fx:round(255*g)],%[fx:round(255*b)]", "info:"]);
  return out.toString().split(",").map(Number);
}

/**
 * Drags a length from page point `a` to `z` (the Length tool selected) through their midpoint,
 * and checks that the measurement list reads `expectedMm`, allowing one screen pixel at each
 * end (`mmPerPixel` image pixels, `pixels` apart). Returns the list's text.
 */
export async function assertLength(browser, a, z, expectedMm, mmPerPixel, pixels) {
  await browser
    .action("pointer")
    .move({ x: Math.round(a.x), y: Math.round(a.y) })
    .down({ button: 0 })
    .move({ x: Math.round((a.x + z.x) / 2), y: Math.round((a.y + z.y) / 2), duration: 100 })
    .move({ x: Math.round(z.x), y: Math.round(z.y), duration: 100 })
    .up({ button: 0 })
    .perform();
  const list = await browser.$('[data-testid="measurements"]');
  await list.waitForDisplayed({ timeout: 5000 });
  const text = await list.getText();
  const mm = Number(/([\d.]+) mm/.exec(text)?.[1]);
  const tolerance = (2 * mmPerPixel * pixels) / Math.hypot(z.x - a.x, z.y - a.y);
  if (!(Math.abs(mm - expectedMm) <= tolerance + 0.2)) {
    throw new Error(`measured ${text}, expected ${expectedMm} mm ± ${tolerance.toFixed(2)}`);
  }
  return text;
}
