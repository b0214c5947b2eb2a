// The viewer end to end: open the sample CT through the same function the Open dialog and
// drag-and-drop call, read it with the keyboard and mouse, and check rendered pixels, a length
// in mm and the list of unreadable files. Needs the sample studies (scripts/sample-studies.sh).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { appPath, assertLength, grey, launch, openPaths, overlay, pagePoint, saveScreenshot } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const samples = path.join(root, "sample-studies/generated");
const ct = path.join(samples, "chest-ct-nodules");
const truth = JSON.parse(readFileSync(path.join(ct, "ground_truth.json"), "utf8"));

// The sample CT's geometry (sample-studies/generate.py, `dokuei synth-ct`): 0.7 mm pixels, the
// first pixel at (-0.35·size, -0.35·size) mm, slices 2.5 mm apart from z = -400, shown head first.
const size = truth.size;
const origin = -0.35 * size;
const topZ = -400 + 2.5 * (truth.slices - 1);
const toPixel = (x, y) => ({ row: (y - origin) / truth.pixel_spacing_mm, column: (x - origin) / truth.pixel_spacing_mm });

describe("reading the sample CT", () => {
  let app;
  before(async () => {
    app = await launch();
    await app.browser.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 20000 });
  });
  after(async () => app?.close());

  it("opens the study and shows the first slice with the file's window", async () => {
    const b = app.browser;
    assert.match(await b.$('[data-testid="app-transport"]').getText(), /^stacks through shared memory/);
    assert.equal(await openPaths(b, [ct]), null);
    const series = await b.$('[data-testid="series-0-0"]');
    await series.waitForDisplayed({ timeout: 10000 });
    assert.match(await series.getText(), /200 images/);
    await series.click();
    await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice")), { timeout: 10000 });
    assert.match(await overlay(b, "overlay-slice"), /Loc 97\.5 mm\s+Thk 2\.5 mm/);
    assert.match(await overlay(b, "overlay-window"), /W 400 L 40/);
    assert.match(await overlay(b, "overlay-patient"), /Synthetic, Phantom/);
    // The rest of the stack comes through shared memory (the web-process extension, bulk.ts),
    // not slice by slice: the scrolling and pixel checks below read these slices.
    await b.waitUntil(async () => (await b.execute(() => window.__dokuei.bulk()?.stacks ?? -1)) >= 1, {
      timeout: 30000,
      timeoutMsg: `no stack came by shared memory: ${JSON.stringify(await b.execute(() => window.__dokuei.bulk()))}`,
    });
    const moved = await b.execute(() => ({ bulk: window.__dokuei.bulk(), bySlice: window.__dokuei.transfer.slices }));
    assert.equal(moved.bulk.lastError, null);
    assert.ok(moved.bulk.slices >= 190 && moved.bulk.slices <= 200, JSON.stringify(moved));
    assert.equal(moved.bulk.bytes, 200 * size * size * 2);
    assert.ok(moved.bySlice < 10, `slices fetched one by one: ${moved.bySlice}`);
  });

  it("scrolls to the largest nodule, applies the lung preset, and shows it bright in lung that stays dark", async () => {
    const b = app.browser;
    const nodule = truth.nodules.reduce((a, n) => (n.radius > a.radius ? n : a));
    const slice = Math.round((topZ - nodule.z) / 2.5);
    // Arrow keys step one slice each, PageDown ten.
    await b.$('[data-testid="viewport-pane-0"]').click();
    for (let i = 0; i < Math.floor(slice / 10); i++) await b.keys("PageDown");
    for (let i = 0; i < slice % 10; i++) await b.keys("ArrowDown");
    await b.waitUntil(async () => (await overlay(b, "overlay-slice")).includes(`Im ${slice + 1}/200`), {
      timeout: 10000,
      timeoutMsg: `not at slice ${slice + 1}: ${await overlay(b, "overlay-slice")}`,
    });
    await b.keys("1"); // the first CT preset: lung
    await b.waitUntil(async () => (await overlay(b, "overlay-window")).includes("W 1500 L -600 (Lung)"), { timeout: 5000 });
    await b.pause(300);
    const file = await saveScreenshot(b, "viewer-lung-window");
    const centre = toPixel(nodule.x, nodule.y);
    const inNodule = await pagePoint(b, centre.row, centre.column);
    // Inside the same lung, 2 radii away from the nodule along the column direction.
    const lung = await pagePoint(b, centre.row, centre.column + (2.2 * nodule.radius) / truth.pixel_spacing_mm);
    const air = await pagePoint(b, 3, 3);
    const [g1, g2, g3] = [grey(file, inNodule.x, inNodule.y), grey(file, lung.x, lung.y), grey(file, air.x, air.y)];
    // Lung window −600/1500: a nodule of about 0 HU is near white, lung (−850 HU) and air
    // (−1000 HU) dark grey.
    assert.ok(g1 >= 180, `nodule pixel is ${g1}`);
    assert.ok(g2 <= 110, `lung pixel is ${g2}`);
    assert.ok(g3 <= 80, `air pixel is ${g3}`);
    // The value under the cursor is the nodule's HU (noise of 20 HU).
    await b.action("pointer").move({ x: Math.round(inNodule.x), y: Math.round(inNodule.y) }).perform();
    const probe = await overlay(b, "probe");
    const hu = Number(/(-?\d+) HU/.exec(probe)?.[1]);
    assert.ok(Math.abs(hu - nodule.hu) <= 100, `probe says ${probe}, the nodule is ${nodule.hu} HU`);
  });

  it("measures a known distance in mm", async () => {
    const b = app.browser;
    await b.$('[data-testid="tool-length"]').click();
    // 100 pixels along a row: 70 mm at 0.7 mm.
    const a = await pagePoint(b, 40, 60);
    const z = await pagePoint(b, 40, 160);
    // 100 pixels along a row at 0.7 mm.
    await assertLength(b, a, z, 70, 0.7, 100);
    await saveScreenshot(b, "viewer-length");
  });

  it("names the corrupt file in the problem list and opens the rest", async () => {
    const b = app.browser;
    const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-corrupt-"));
    for (const f of readdirSync(path.join(ct, "series")).slice(0, 5)) {
      copyFileSync(path.join(ct, "series", f), path.join(dir, f));
    }
    // A file that claims to be DICOM and is cut short.
    const good = readFileSync(path.join(dir, readdirSync(dir)[0]));
    writeFileSync(path.join(dir, "CORRUPT.dcm"), good.subarray(0, 400));
    assert.equal(await openPaths(b, [dir]), null);
    const problems = await b.$('[data-testid="problems"]');
    await problems.waitForDisplayed({ timeout: 10000 });
    await b.waitUntil(async () => (await problems.getText()).includes("1 file could not be read"), { timeout: 5000 });
    assert.match(await problems.getText(), /CORRUPT\.dcm/);
    assert.match(await b.$('[data-testid="series-0-0"]').getText(), /5 images/);
    await saveScreenshot(b, "viewer-problems");
  });
});

describe("reading the sample radiograph", () => {
  let app;
  before(async () => {
    app = await launch();
    await app.browser.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 20000 });
  });
  after(async () => app?.close());

  it("shows orientation markers from Patient Orientation and says the spacing is at the detector", async () => {
    const b = app.browser;
    assert.equal(await openPaths(b, [path.join(samples, "chest-xr-opacity")]), null);
    await b.waitUntil(async () => /Im 1\/1/.test(await overlay(b, "overlay-slice")), { timeout: 10000 });
    const markers = await b.execute(() =>
      [...document.querySelectorAll('[data-testid="viewport-pane-0"] .marker')].map((m) => m.textContent).join(" "),
    );
    assert.equal(markers, "R L H F");
    assert.match(await overlay(b, "overlay-window"), /spacing at detector/);
    await saveScreenshot(b, "viewer-radiograph");
  });
});

describe("starting with a study on the command line (as scripts/run.sh does)", () => {
  it("opens the study at start, and without the web-process extension prefetches slice by slice", async () => {
    const app = await launch({ DOKUEI_WEB_EXTENSIONS: "none" }, [ct]);
    try {
      const b = app.browser;
      await b.$('[data-testid="overlay-slice"]').waitForDisplayed({ timeout: 20000 });
      await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice")), { timeout: 10000 });
      assert.match(await b.$('[data-testid="series-0-0"]').getText(), /chest-ct-nodules/);
      assert.equal(await b.execute(() => window.__dokuei.bulk()), null);
      await b.waitUntil(async () => (await b.execute(() => window.__dokuei.transfer.slices)) >= 200, {
        timeout: 30000,
        timeoutMsg: `slices prefetched: ${await b.execute(() => window.__dokuei.transfer.slices)}`,
      });
    } finally {
      await app.close();
    }
  });
});

describe("synchronised scrolling of two series", () => {
  let app;
  // A second series of the sample CT's phantom (same seed: same study and frame of reference)
  // with slices 5 mm apart instead of 2.5, and a third study (another seed: another frame).
  const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-sync-"));
  const cli = path.join(path.dirname(appPath()), "dokuei");
  before(async () => {
    execFileSync(cli, ["synth-ct", path.join(dir, "thick"), "--seed", "1", "--series-number", "2", "--slice-spacing", "5", "--slices", "100", "--size", "256", "--description", "Thick"]);
    app = await launch();
    await app.browser.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 20000 });
  });
  after(async () => app?.close());

  /** The slice and location text of a pane. */
  const shown = (b, pane) =>
    b.execute((p) => document.querySelector(`[data-testid="viewport-pane-${p}"] [data-testid="overlay-slice"]`)?.textContent ?? "", pane);
  const loc = (text) => Number(/Loc (-?[\d.]+) mm/.exec(text)?.[1]);

  it("moves the second series to the same patient position as the first", async () => {
    const b = app.browser;
    assert.equal(await openPaths(b, [path.join(ct, "series"), path.join(dir, "thick")]), null);
    await b.$('[data-testid="series-1-0"]').waitForDisplayed({ timeout: 10000 });
    await b.$('[data-testid="layout-2"]').click();
    assert.equal(await b.execute(() => window.__dokuei.select(0, 0, 0)), null);
    assert.equal(await b.execute(() => window.__dokuei.select(1, 0, 1)), null);
    await b.waitUntil(async () => /Im 1\/100/.test(await shown(b, 1)) || /Im 1\/100/.test(await shown(b, 0)), {
      timeout: 10000,
      timeoutMsg: `the thick series is not shown: ${await shown(b, 0)} | ${await shown(b, 1)}`,
    });
    const thinPane = /\/200/.test(await shown(b, 0)) ? 0 : 1;
    await b.$('[data-testid="sync-scroll"]').click();
    assert.equal(await b.$('[data-testid="sync-scroll"]').getText(), "Synced");
    // 37 slices down the thin series (2.5 mm each): 92.5 mm.
    await b.$(`[data-testid="viewport-pane-${thinPane}"]`).click();
    for (let i = 0; i < 3; i++) await b.keys("PageDown");
    for (let i = 0; i < 7; i++) await b.keys("ArrowDown");
    await b.waitUntil(async () => (await shown(b, thinPane)).includes("Im 38/200"), { timeout: 10000 }).catch(async () => {
      assert.fail(`the thin series did not scroll: ${await shown(b, thinPane)} (${await saveScreenshot(b, "viewer-sync-scroll")})`);
    });
    await b.waitUntil(async () => Math.abs(loc(await shown(b, 1 - thinPane)) - loc(await shown(b, thinPane))) <= 2.5, {
      timeout: 10000,
      timeoutMsg: `not in step: ${await shown(b, 0)} | ${await shown(b, 1)}`,
    });
    assert.equal(loc(await shown(b, thinPane)), 5);
    // And back the other way: the thick series leads.
    await b.$(`[data-testid="viewport-pane-${1 - thinPane}"]`).click();
    for (let i = 0; i < 10; i++) await b.keys("ArrowDown");
    await b.waitUntil(async () => Math.abs(loc(await shown(b, 1 - thinPane)) - -45) <= 2.5, { timeout: 10000 }).catch(async () => {
      assert.fail(`the thick series did not scroll: ${await shown(b, 1 - thinPane)} (${await saveScreenshot(b, "viewer-sync-scroll")})`);
    });
    await b.waitUntil(async () => Math.abs(loc(await shown(b, thinPane)) - loc(await shown(b, 1 - thinPane))) <= 1.25, {
      timeout: 10000,
      timeoutMsg: `not in step: ${await shown(b, 0)} | ${await shown(b, 1)}`,
    });
    await saveScreenshot(b, "viewer-sync-scroll");
  });
});

describe("comparing with a prior study of the same patient", () => {
  let app;
  // The sample CT again as a prior: another study of the same patient, from 2025-06-01, lying
  // 20 mm higher on the table (another frame of reference); and one of another patient.
  const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-prior-"));
  const python = path.join(root, ".dokuei/venv/bin/python");
  const script = path.join(root, "scripts/reference/make_prior.py");
  before(async () => {
    execFileSync(python, [script, path.join(ct, "series"), path.join(dir, "prior"), "20250601", "20"]);
    execFileSync(python, [script, path.join(ct, "series"), path.join(dir, "stranger"), "20250601", "0", "--patient-id", "SOMEONE-ELSE"]);
    app = await launch();
    await app.browser.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 20000 });
  });
  after(async () => app?.close());

  const corner = (b, pane, which) =>
    b.execute((p, w) => document.querySelector(`[data-testid="viewport-pane-${p}"] [data-testid="${w}"]`)?.textContent ?? "", pane, which);
  const topRight = (b, pane) => b.execute((p) => document.querySelector(`[data-testid="viewport-pane-${p}"] .corner.top-right`)?.textContent ?? "", pane);
  const loc = (text) => Number(/Loc (-?[\d.]+) mm/.exec(text)?.[1]);

  it("refuses a prior of another patient and keeps the current study", async () => {
    const b = app.browser;
    assert.equal(await openPaths(b, [ct]), null);
    await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice")), { timeout: 10000 });
    const refused = await b.execute((p) => window.__dokuei.openPrior(p), [path.join(dir, "stranger")]);
    assert.match(refused, /different patients/);
    assert.match(await b.$('[data-testid="open-error"]').getText(), /different patients/);
    assert.equal(await b.$('[data-testid="series-1-0"]').isExisting(), false, "the stranger's series is not shown");
  });

  it("hangs the current study left and the prior right, and scrolls them together by the offset on screen", async () => {
    const b = app.browser;
    assert.equal(await b.execute((p) => window.__dokuei.openPrior(p), [path.join(dir, "prior")]), null);
    await b.waitUntil(async () => /Im 1\/200/.test(await corner(b, 1, "overlay-slice")), { timeout: 10000 });
    assert.match(await topRight(b, 0), /Current 2026-01-01/);
    assert.match(await topRight(b, 1), /Prior 2025-06-01/);
    // Different frames of reference: the link keeps the offset on screen (the prior's first
    // slice lies 20 mm higher, on the same anatomy).
    await b.$('[data-testid="sync-scroll"]').click();
    assert.equal(await b.$('[data-testid="sync-scroll"]').getText(), "Synced +20.0 mm");
    await b.$('[data-testid="viewport-pane-0"]').click();
    for (let i = 0; i < 4; i++) await b.keys("PageDown");
    await b.waitUntil(async () => (await corner(b, 0, "overlay-slice")).includes("Im 41/200"), { timeout: 10000 });
    await b.waitUntil(async () => (await corner(b, 1, "overlay-slice")).includes("Im 41/200"), {
      timeout: 10000,
      timeoutMsg: `the prior did not follow: ${await corner(b, 1, "overlay-slice")}`,
    });
    assert.equal(loc(await corner(b, 1, "overlay-slice")) - loc(await corner(b, 0, "overlay-slice")), 20);
    await saveScreenshot(b, "viewer-prior");
  });
});
