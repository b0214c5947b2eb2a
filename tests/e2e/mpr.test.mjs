// MPR end to end on the sample CT: the planted nodule at the same patient point in the axial,
// coronal and sagittal planes (screenshot pixels at its projections), a length drawn on the
// coronal plane, a MIP slab that shows a nodule lying off the plane, the crosshairs tool
// moving and turning the planes, and a key image marked from the axial plane. Needs the sample
// studies (scripts/sample-studies.sh).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { assertLength, grey, launch, openPaths, overlay, PASSPHRASE, saveScreenshot } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ct = path.join(root, "sample-studies/generated/chest-ct-nodules");
const truth = JSON.parse(readFileSync(path.join(ct, "ground_truth.json"), "utf8"));
const VIEWS = ["axial", "coronal", "sagittal"];

/** Page coordinates of patient point `p` on MPR view `index`, and its distance from the plane. */
async function project(b, index, p) {
  return b.execute(
    (i, point, name) => {
      const mpr = window.__dokuei.mpr();
      const at = mpr?.imagePoint(i, point);
      const canvas = document.querySelector(`[data-testid="mpr-${name}"] .viewport-canvas`);
      const c = at && mpr.viewport(i)?.canvasPoint(at.row, at.column);
      if (!at || !c || !canvas) return null;
      const rect = canvas.getBoundingClientRect();
      return { x: rect.left + c[0], y: rect.top + c[1], depth: at.depth, row: at.row, column: at.column };
    },
    index,
    p,
    VIEWS[index],
  );
}

async function setCenter(b, p) {
  await b.execute((point) => window.__dokuei.mpr()?.setCenter(point), p);
  // Every plane within half a step (0.7 mm in-plane, 2.5 mm between axial slices) of the point.
  await b.waitUntil(
    async () => {
      const depths = await Promise.all(VIEWS.map((_, i) => project(b, i, p)));
      return depths.every((d) => d && Math.abs(d.depth) <= 1.3);
    },
    { timeout: 15000, timeoutMsg: "the three planes did not move to the point" },
  );
}

/** Polls screenshots until `check(file)` holds (the planes arrive asynchronously). */
async function settle(b, name, check, timeout = 15000) {
  const started = Date.now();
  let file = "";
  for (;;) {
    await b.pause(300);
    file = await saveScreenshot(b, name);
    const result = await check(file);
    if (result === true || Date.now() - started > timeout) return { file, result };
  }
}

const plus = (p, d) => [p[0] + d[0], p[1] + d[1], p[2] + d[2]];

describe("MPR of the sample CT", () => {
  let app;
  before(async () => {
    app = await launch();
    const b = app.browser;
    await b.$('[data-testid="ort-version"]').waitForDisplayed({ timeout: 20000 });
    assert.equal(await openPaths(b, [ct]), null);
    await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice")), { timeout: 10000 });
  });
  after(async () => app?.close());

  it("shows the nodule at the same patient point in all three planes", async () => {
    const b = app.browser;
    await b.$('[data-testid="layout-mpr"]').click();
    for (const v of VIEWS) await b.$(`[data-testid="mpr-${v}"]`).waitForDisplayed({ timeout: 10000 });
    const planes = await b.execute(() => [...document.querySelectorAll('[data-testid^="mpr-"] .corner.top-right')].map((e) => e.textContent));
    assert.match(planes.join(" | "), /Axial.*\|.*Coronal.*\|.*Sagittal/);
    // The view of the study's own images (axial) is the active one at entry.
    const active = await b.execute(() => [...document.querySelectorAll('[data-testid^="mpr-"] .viewport.active')].map((e) => e.closest('[data-testid^="mpr-"]')?.getAttribute("data-testid")));
    assert.deepEqual(active, ["mpr-axial"]);
    const nodule = truth.nodules.reduce((a, n) => (n.radius > a.radius ? n : a));
    const p = [nodule.x, nodule.y, nodule.z];
    await setCenter(b, p);
    // The lung preset on the active view applies to all three (shared window).
    await b.keys("1");
    await b.waitUntil(
      async () => (await b.execute(() => [...document.querySelectorAll('[data-testid="overlay-window"]')].map((e) => e.textContent))).every((t) => t.includes("W 1500 L -600")),
      { timeout: 5000, timeoutMsg: "the window did not reach all three views" },
    );
    // Inside the same lung, 2.2 radii from the nodule: towards the midline in the axial and
    // coronal planes, backwards in the sagittal one.
    const away = [plus(p, [2.2 * nodule.radius, 0, 0]), plus(p, [2.2 * nodule.radius, 0, 0]), plus(p, [0, 2.2 * nodule.radius, 0])];
    const { file, result } = await settle(b, "mpr-nodule", async (f) => {
      const values = [];
      for (let i = 0; i < 3; i++) {
        const at = await project(b, i, p);
        const lung = await project(b, i, away[i]);
        // 4 screen pixels (about 3 mm) off the centre, inside the nodule but off the reference lines.
        // Both 4 screen pixels down (and the nodule's right), off the reference lines through
        // the centre.
        values.push([grey(f, at.x + 4, at.y + 4), grey(f, lung.x, lung.y + 4)]);
      }
      return values.every(([n, l]) => n >= 180 && l <= 110) ? true : values;
    });
    assert.equal(result, true, `nodule and lung grey values per view: ${JSON.stringify(result)} (${file})`);
    // The reference lines cross at the nodule: the centre's pixel in each view is where the
    // other two planes cut it (checked through the hook the lines are drawn from).
    const centre = await b.execute(() => window.__dokuei.mpr()?.center());
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(centre[k] - p[k]) <= 1.3, `centre ${centre} vs ${p}`);
  });

  it("measures a known distance in mm on the coronal plane", async () => {
    const b = app.browser;
    await b.$('[data-testid="tool-length"]').click();
    // 28 rows down a column of the coronal plane: 70 mm of z (its rows are the source's
    // slices, 2.5 mm apart, stretched on screen).
    const [a, z] = await b.execute(() => {
      const mpr = window.__dokuei.mpr();
      const canvas = document.querySelector('[data-testid="mpr-coronal"] .viewport-canvas');
      const rect = canvas.getBoundingClientRect();
      const at = (row, column) => {
        const c = mpr.viewport(1).canvasPoint(row, column);
        return { x: rect.left + c[0], y: rect.top + c[1] };
      };
      return [at(100, 60), at(128, 60)];
    });
    await assertLength(b, a, z, 70, 2.5, 28);
    await saveScreenshot(b, "mpr-length");
    await b.$("button=W/L").click();
  });

  it("shows a nodule lying off the coronal plane in a MIP slab", async () => {
    const b = app.browser;
    const nodule = truth.nodules.find((n) => n.radius >= 5 && n.radius < 7.5) ?? truth.nodules[0];
    const p = [nodule.x, nodule.y, nodule.z];
    // The lung window, kept across the slab change below.
    await b.execute(() => document.activeElement?.blur());
    await b.keys("1");
    const lung = async () => (await b.execute(() => [...document.querySelectorAll('[data-testid="overlay-window"]')].map((e) => e.textContent))).every((t) => t.includes("W 1500 L -600"));
    await b.waitUntil(lung, { timeout: 5000, timeoutMsg: "the lung preset did not apply" });
    // 4 mm beyond its surface, in front: the coronal plane misses it.
    const off = plus(p, [0, -(nodule.radius + 4), 0]);
    await setCenter(b, off);
    const missed = await settle(b, "mpr-slab-off", async (f) => {
      const at = await project(b, 1, p);
      const g = grey(f, at.x + 4, at.y + 4);
      return g <= 110 ? true : g;
    });
    assert.equal(missed.result, true, `the plane 4 mm off the nodule shows it (grey ${missed.result})`);
    await b.$('[data-testid="mpr-slab-mode"]').selectByAttribute("value", "mip");
    await b.$('[data-testid="mpr-slab"]').selectByAttribute("value", "20");
    await b.waitUntil(async () => (await b.execute(() => document.querySelector('[data-testid="mpr-coronal"] .corner.top-right')?.textContent ?? "")).includes("MIP 20 mm"), { timeout: 5000 });
    const shown = await settle(b, "mpr-slab-mip", async (f) => {
      const at = await project(b, 1, p);
      const g = grey(f, at.x + 4, at.y + 4);
      return g >= 180 ? true : g;
    });
    assert.equal(shown.result, true, `a 20 mm MIP 4 mm off the nodule does not show it (grey ${shown.result}, ${shown.file})`);
    // The new slab's planes kept the window on screen, in the pixels above (in the source's own
    // soft-tissue window the nodule is grey 138; the software mode once showed that) and in the
    // corners.
    assert.ok(await lung(), "the slab change lost the lung window");
    await b.$('[data-testid="mpr-slab"]').selectByAttribute("value", "0");
  });

  it("moves the three planes to the point clicked with the crosshairs tool", async () => {
    const b = app.browser;
    await b.$('[data-testid="mpr-crosshairs"]').click();
    const target = [truth.nodules[0].x, truth.nodules[0].y, -100];
    // A point of the current coronal plane: its x and z are where the click lands.
    const at = await project(b, 1, target);
    await b.action("pointer").move({ x: Math.round(at.x), y: Math.round(at.y) }).down({ button: 0 }).up({ button: 0 }).perform();
    await b.waitUntil(
      async () => {
        const c = await b.execute(() => window.__dokuei.mpr()?.center());
        return Math.abs(c[0] - target[0]) <= 1 && Math.abs(c[2] - target[2]) <= 1;
      },
      { timeout: 5000, timeoutMsg: "the crosshair centre did not move to the click" },
    );
    // The axial view now shows the slice at z = -100 (every 2.5 mm down from 97.5: image 80).
    await b.waitUntil(async () => (await project(b, 0, target)) && Math.abs((await project(b, 0, target)).depth) <= 1.3, { timeout: 5000 });
    await saveScreenshot(b, "mpr-crosshairs");
    await b.$('[data-testid="mpr-crosshairs"]').click();
  });

  it("turns the other two planes when a line is dragged round the centre", async () => {
    const b = app.browser;
    await b.$('[data-testid="mpr-crosshairs"]').click();
    const c = await b.execute(() => window.__dokuei.mpr()?.center());
    const [axialSlice] = await b.execute(() => window.__dokuei.mpr()?.slices());
    // On the axial view the sagittal plane's line runs front to back through the centre. Take
    // it 50 mm from the centre (towards the middle of the image) and drag it 30° round,
    // anticlockwise about the axial normal (+S).
    const side = c[1] > 0 ? -1 : 1;
    const arc = [0, 10, 20, 30].map((d) => {
      const a = (d * Math.PI) / 180;
      return plus(c, [-side * 50 * Math.sin(a), side * 50 * Math.cos(a), 0]);
    });
    const points = [];
    for (const p of arc) points.push(await project(b, 0, p));
    assert.ok(points.every((p) => p), `the arc is off the axial image: ${JSON.stringify(points)}`);
    let drag = b.action("pointer").move({ x: Math.round(points[0].x), y: Math.round(points[0].y) }).down({ button: 0 });
    for (const p of points.slice(1)) drag = drag.move({ x: Math.round(p.x), y: Math.round(p.y), duration: 150 });
    await drag.up({ button: 0 }).perform();
    // Sagittal −x and coronal +y, each turned 30° about +S.
    const cos = Math.cos(Math.PI / 6);
    const want = [[0, 0, 1], [-0.5, cos, 0], [-cos, -0.5, 0]];
    const normals = await b.execute(() => window.__dokuei.mpr()?.normals());
    const agree = (n, w) => n[0] * w[0] + n[1] * w[1] + n[2] * w[2];
    for (const [i, n] of normals.entries()) {
      assert.ok(agree(n, want[i]) >= Math.cos((2 * Math.PI) / 180), `${VIEWS[i]} normal ${n} is not ${want[i]} to within 2°`);
    }
    // The centre stayed, the axial view was not moved, and the others say they are oblique.
    const after = await b.execute(() => window.__dokuei.mpr()?.center());
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(after[k] - c[k]) <= 0.5, `centre ${after} moved from ${c}`);
    assert.equal((await b.execute(() => window.__dokuei.mpr()?.slices()))[0], axialSlice);
    await b.waitUntil(
      async () => {
        const corners = await b.execute(() => ["coronal", "sagittal"].map((v) => document.querySelector(`[data-testid="mpr-${v}"] .corner.top-right`)?.textContent ?? ""));
        return corners[0].includes("Oblique (from coronal)") && corners[1].includes("Oblique (from sagittal)");
      },
      { timeout: 5000, timeoutMsg: "the turned planes are not named oblique" },
    );
    // The centre is still on every turned plane.
    for (const i of [1, 2]) assert.ok(Math.abs((await project(b, i, c)).depth) <= 1.3, `${VIEWS[i]} plane left the centre`);
    await saveScreenshot(b, "mpr-turned");
    await b.$('[data-testid="mpr-reset-planes"]').click();
    await b.$('[data-testid="mpr-crosshairs"]').click();
  });

  it("marks the image the axial plane shows as a key image, refuses a reformatted plane, and shows the key image again", async () => {
    const b = app.browser;
    await b.$('[data-testid="reader-name"]').setValue("Dr. MPR");
    await b.$('[data-testid="reader-role"]').selectByAttribute("value", "radiologist");
    await b.$('[data-testid="reader-passphrase"]').setValue(PASSPHRASE);
    await b.$('[data-testid="reader-passphrase-again"]').setValue(PASSPHRASE);
    await b.$('[data-testid="reader-create"]').click();
    const mark = await b.$('[data-testid="mark-key-image"]');
    await b.waitUntil(async () => mark.isEnabled(), { timeout: 5000, timeoutMsg: "no reader profile to mark with" });
    await b.$('[data-testid="tool-wl"]').click();
    const nodule = truth.nodules.reduce((a, n) => (n.radius > a.radius ? n : a));
    const p = [nodule.x, nodule.y, nodule.z];
    await setCenter(b, p);
    // The source's images run down from z = 97.5, 2.5 mm apart.
    const image = Math.round((97.5 - nodule.z) / 2.5) + 1;
    await b.$('[data-testid="mpr-axial"] .viewport-canvas').click();
    await mark.click();
    const list = await b.$('[data-testid="key-image-list"]');
    await list.waitForDisplayed({ timeout: 5000 });
    assert.match(await list.getText(), new RegExp(`^Im ${image} Dr\\. MPR`));
    // The axial view numbers its images as the source does.
    const corner = await b.execute(() => document.querySelector('[data-testid="mpr-axial"] [data-testid="overlay-slice"]')?.textContent ?? "");
    assert.match(corner, new RegExp(`Im ${image}/200`));
    // A coronal plane is not an image of the study.
    await b.$('[data-testid="mpr-coronal"] .viewport-canvas').click();
    await mark.click();
    await b.waitUntil(async () => /reformatted/.test(await b.$('[data-testid="key-image-error"]').getText().catch(() => "")), { timeout: 5000 });
    assert.equal((await list.getText()).split("\n").length, 1);
    // Elsewhere, the key image's link brings the axial plane back to it.
    await setCenter(b, plus(p, [0, 0, 40]));
    await b.$('[data-testid="key-image-list"] button.link').click();
    await b.waitUntil(async () => Math.abs((await project(b, 0, p)).depth) <= 1.3, { timeout: 10000, timeoutMsg: "the key image was not shown again" });
    await saveScreenshot(b, "mpr-key-image");
  });
});
