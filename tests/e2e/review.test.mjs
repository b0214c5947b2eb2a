// The AI review workflow end to end, in the real app on the sample CT with ct-nodule-demo:
// a reader profile, a cancelled analysis that leaves nothing behind, a finished one whose
// overlay colours the planted nodule, a decision on every finding written to the ledger at once
// (sign-off refused until then), the exact ledger rows checked with sqlite3, `dokuei ledger
// verify`, the signed-off study exported as DICOM SEG + SR that dciodvfy, dsrdump and PixelMed
// accept and that Dokuei reads back, and the QA view's export compared with `dokuei ledger export`.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { appPath, launch, openPaths, overlay, pagePoint, rgb, saveScreenshot, PASSPHRASE, typeInto } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ct = path.join(root, "sample-studies/generated/chest-ct-nodules");
const truth = JSON.parse(readFileSync(path.join(ct, "ground_truth.json"), "utf8"));
const manifest = readFileSync(path.join(root, "models/ct-nodule-demo/manifest.toml"), "utf8");
const modelSha = /sha256\s*=\s*"([0-9a-f]{64})"/.exec(manifest)[1];
const cli = path.join(path.dirname(appPath()), "dokuei");

const origin = -0.35 * truth.size;
const topZ = -400 + 2.5 * (truth.slices - 1);
const toPixel = (x, y) => ({ row: (y - origin) / truth.pixel_spacing_mm, column: (x - origin) / truth.pixel_spacing_mm });

function sql(ledger, query) {
  const out = execFileSync("sqlite3", ["-json", ledger, query]).toString().trim();
  return out ? JSON.parse(out) : [];
}

const testid = (id) => `[data-testid="${id}"]`;

/** The folder the first suite exported DICOM results to (the second suite reopens it). */
let exportedFolder = null;

/** The review state the screen holds (findings with their decisions). */
async function findings(b) {
  return b.execute(() => window.__dokuei.review().findings);
}

async function waitDecision(b, key, action) {
  await b.waitUntil(async () => (await b.$(testid(`finding-${key}`)).getAttribute("data-decision")) === action, {
    timeout: 10000,
    timeoutMsg: `finding ${key} did not become ${action}`,
  });
}

describe("reviewing the sample CT with ct-nodule-demo", () => {
  let app;
  let b;
  const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-review-"));
  const ledger = path.join(dir, "ledger.sqlite3");

  before(async () => {
    app = await launch({ DOKUEI_LEDGER: ledger });
    b = app.browser;
    await b.$(testid("ort-version")).waitForDisplayed({ timeout: 20000 });
    assert.equal(await openPaths(b, [ct]), null);
    await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice")), { timeout: 20000 });
  });
  after(async () => app?.close());

  it("creates a reader profile on first use", async () => {
    await b.$(testid("reader-name")).setValue("Dr. E2E");
    await b.$(testid("reader-role")).selectByAttribute("value", "radiologist");
    await b.$(testid("reader-passphrase")).setValue(PASSPHRASE);
    await b.$(testid("reader-passphrase-again")).setValue(PASSPHRASE);
    await b.$(testid("reader-create")).click();
    const select = await b.$(testid("reader-select"));
    await select.waitForDisplayed({ timeout: 5000 });
    // The new profile is listed first and selected a moment later.
    await b
      .waitUntil(async () => /Dr\. E2E \(radiologist\)/.test(await select.$("option:checked").getText()), { timeout: 5000 })
      .catch(() => {});
    assert.match(await select.$("option:checked").getText(), /Dr\. E2E \(radiologist\)/);
    assert.deepEqual(sql(ledger, "SELECT display_name, role FROM readers"), [{ display_name: "Dr. E2E", role: "radiologist" }]);
  });

  it("cancels an analysis and leaves no findings and no ledger rows behind", async () => {
    await b.$(testid("analyse")).click();
    await b.$(testid("cancel-analysis")).click();
    const error = await b.$(testid("review-error"));
    await error.waitForDisplayed({ timeout: 60000 });
    assert.match(await error.getText(), /cancel/i);
    assert.equal((await findings(b)).length, 0);
    assert.equal(await b.$(testid("findings")).isExisting(), false);
    assert.deepEqual(sql(ledger, "SELECT (SELECT count(*) FROM analyses) AS a, (SELECT count(*) FROM findings) AS f, (SELECT count(*) FROM studies) AS s"), [
      { a: 0, f: 0, s: 0 },
    ]);
  });

  it("runs the model and colours the planted nodule with the label colour", async () => {
    await b.$(testid("analyse")).click();
    await b.$(testid("findings")).waitForDisplayed({ timeout: 180000 });
    await b.$(testid("demo-banner")).waitForDisplayed({ timeout: 5000 });
    const list = await findings(b);
    assert.ok(list.length >= 1, "the model found nothing");
    // The largest planted nodule, and the finding on it.
    const nodule = truth.nodules.reduce((a, n) => (n.radius > a.radius ? n : a));
    const slice = Math.round((topZ - nodule.z) / 2.5);
    const centre = toPixel(nodule.x, nodule.y);
    const onIt = list.find(
      (f) =>
        f.geometry.slices[0] <= slice &&
        slice <= f.geometry.slices[1] &&
        f.geometry.box[0] <= centre.column &&
        centre.column <= f.geometry.box[2] &&
        f.geometry.box[1] <= centre.row &&
        centre.row <= f.geometry.box[3],
    );
    assert.ok(onIt, `no finding covers the largest nodule at slice ${slice}, row ${centre.row}, column ${centre.column}`);
    // Clicking its row jumps to its slice and centres it.
    await b.$(testid(`finding-f${onIt.finding_id}`)).click();
    await b.waitUntil(async () => (await b.execute(() => window.__dokuei.viewport(0).slice())) === Math.round((onIt.geometry.slices[0] + onIt.geometry.slices[1]) / 2), {
      timeout: 5000,
    });
    await b.execute((s) => window.__dokuei.viewport(0).goTo(s), slice);
    await b.pause(500);
    const file = await saveScreenshot(b, "review-overlay");
    const inside = await pagePoint(b, centre.row + 0.5, centre.column + 0.5);
    const [r, g] = rgb(file, inside.x, inside.y);
    // Label colour (255, 64, 32) blended over the grey nodule: red well above green.
    assert.ok(r - g >= 50, `nodule pixel is rgb(${r}, ${g}) — not the label colour`);
    // A pixel far from every finding on this slice stays grey.
    const far = { row: truth.size / 2, column: truth.size / 2 };
    for (const f of list) {
      if (f.geometry.slices[0] <= slice && slice <= f.geometry.slices[1]) {
        assert.ok(
          far.column < f.geometry.box[0] - 5 || far.column > f.geometry.box[2] + 5 || far.row < f.geometry.box[1] - 5 || far.row > f.geometry.box[3] + 5,
          "the check point is near a finding",
        );
      }
    }
    const away = await pagePoint(b, far.row + 0.5, far.column + 0.5);
    const [r2, g2, b2] = rgb(file, away.x, away.y);
    assert.ok(Math.abs(r2 - g2) <= 12 && Math.abs(g2 - b2) <= 12, `far pixel is rgb(${r2}, ${g2}, ${b2}) — not grey`);
    // One key hides every AI overlay.
    await b.$(testid("viewport-pane-0")).click();
    await b.keys("a");
    await b.pause(300);
    const hidden = await saveScreenshot(b, "review-overlay-hidden");
    const [r3, g3] = rgb(hidden, inside.x, inside.y);
    assert.ok(Math.abs(r3 - g3) <= 12, `with overlays hidden the nodule pixel is rgb(${r3}, ${g3})`);
    await b.keys("a");
  });

  it("shows the finding in its label colour on the coronal and sagittal MPR planes", async () => {
    const nodule = truth.nodules.reduce((a, n) => (n.radius > a.radius ? n : a));
    const p = [nodule.x, nodule.y, nodule.z];
    await b.$(testid("layout-mpr")).click();
    try {
      await mprColours(p);
    } finally {
      // The tests after this one read the stack view.
      await b.$("button=1×1").click();
      await b.waitUntil(async () => /Im \d+\/200/.test(await overlay(b, "overlay-slice")), { timeout: 10000 });
    }
  });

  async function mprColours(p) {
    await b.$(testid("mpr-sagittal")).waitForDisplayed({ timeout: 10000 });
    await b.execute((point) => window.__dokuei.mpr().setCenter(point), p);
    const project = (i, name) =>
      b.execute(
        (index, point, view) => {
          const mpr = window.__dokuei.mpr();
          const at = mpr.imagePoint(index, point);
          const c = mpr.viewport(index)?.canvasPoint(at.row, at.column);
          const rect = document.querySelector(`[data-testid="mpr-${view}"] .viewport-canvas`).getBoundingClientRect();
          return c ? { x: rect.left + c[0], y: rect.top + c[1], depth: at.depth } : null;
        },
        i,
        p,
        name,
      );
    let colours = [];
    for (let attempt = 0; attempt < 30; attempt++) {
      await b.pause(300);
      const file = await saveScreenshot(b, "review-mpr-overlay");
      colours = [];
      for (const [i, name] of [[1, "coronal"], [2, "sagittal"]]) {
        const at = await project(i, name);
        // 4 screen pixels (about 3 mm) off the centre, inside the nodule but off the reference lines.
        colours.push(at && Math.abs(at.depth) <= 1 ? rgb(file, at.x + 4, at.y + 4) : null);
      }
      if (colours.every((c) => c && c[0] - c[1] >= 50)) break;
    }
    assert.ok(
      colours.every((c) => c && c[0] - c[1] >= 50),
      `the nodule on the coronal and sagittal planes is ${JSON.stringify(colours)}, not the label colour`,
    );
  }

  it("marks a key image with a note and unmarks another, each a ledger row", async () => {
    const nodule = truth.nodules.reduce((a, n) => (n.radius > a.radius ? n : a));
    const slice = Math.round((topZ - nodule.z) / 2.5);
    await b.execute((s) => window.__dokuei.viewport(0).goTo(s - 3), slice);
    await b.$(testid("mark-key-image")).click();
    await b.$(testid("key-image-list")).waitForDisplayed({ timeout: 5000 });
    await b.execute((s) => window.__dokuei.viewport(0).goTo(s), slice);
    await b.waitUntil(async () => (await b.execute(() => window.__dokuei.viewport(0).slice())) === slice, { timeout: 5000 });
    await typeInto(b, "key-image-note", "largest nodule, right lung");
    await b.$(testid("mark-key-image")).click();
    await b.waitUntil(async () => (await b.$(testid("key-image-list")).getText()).includes("largest nodule"), { timeout: 5000 });
    // The first mark taken back.
    await b.$(`button[aria-label="Unmark image ${slice - 2}"]`).click();
    await b.waitUntil(async () => !(await b.$(testid("key-image-list")).getText()).includes(`Im ${slice - 2}`), { timeout: 5000 });
    assert.match(await b.$(testid("key-image-list")).getText(), new RegExp(`Im ${slice + 1} largest nodule, right lung Dr\\. E2E`));
    assert.deepEqual(
      sql(ledger, "SELECT action, note, frame FROM key_images ORDER BY id"),
      [
        { action: "mark", note: "", frame: null },
        { action: "mark", note: "largest nodule, right lung", frame: null },
        { action: "unmark", note: "", frame: null },
      ],
    );
  });

  it("writes each decision at once, refuses an early sign-off, then signs off", async () => {
    const list = await findings(b);
    const [first, second, ...rest] = list;
    await b.$(testid(`confirm-f${first.finding_id}`)).click();
    await waitDecision(b, `f${first.finding_id}`, "confirm");
    assert.equal(sql(ledger, "SELECT count(*) AS n FROM decisions")[0].n, 1, "the confirmation is in the ledger before sign-off");

    // Too early: Rust refuses, and says why.
    await typeInto(b, "sign-off-passphrase", PASSPHRASE);
    await b.$(testid("sign-off")).click();
    const error = await b.$(testid("review-error"));
    await error.waitForDisplayed({ timeout: 5000 });
    assert.match(await error.getText(), /still need/);
    assert.equal(sql(ledger, "SELECT count(*) AS n FROM sign_offs")[0].n, 0);

    if (second) {
      await b.$(testid(`reject-f${second.finding_id}`)).click();
      await b.$(testid("reject-reason")).selectByAttribute("value", "artefact");
      await b.$(testid("reject-submit")).click();
      await waitDecision(b, `f${second.finding_id}`, "reject");
    }
    for (const f of rest) {
      await b.$(testid(`confirm-f${f.finding_id}`)).click();
      await waitDecision(b, `f${f.finding_id}`, "confirm");
    }

    // Add a finding the model missed: paint a stroke on the current slice.
    await b.$(testid("add-finding")).click();
    await b.$(testid("drawing")).waitForDisplayed({ timeout: 5000 });
    const a = await pagePoint(b, 60, 60);
    await b
      .action("pointer")
      .move({ x: Math.round(a.x), y: Math.round(a.y) })
      .down({ button: 0 })
      .move({ x: Math.round(a.x) + 15, y: Math.round(a.y), duration: 100 })
      .up({ button: 0 })
      .perform();
    await b.$(testid("drawing-save")).click();
    await b.waitUntil(async () => (await findings(b)).some((f) => f.finding_id === null), { timeout: 5000, timeoutMsg: "the added finding is not listed" });

    await b.$(testid("impression")).setValue("Demonstration reading.");
    // A wrong passphrase is refused and counted; the right one signs.
    await typeInto(b, "sign-off-passphrase", "not the passphrase");
    await b.$(testid("sign-off")).click();
    await b.waitUntil(async () => /wrong passphrase.*1 of 5/.test(await b.$(testid("review-error")).getText()), {
      timeout: 10000,
      timeoutMsg: "a wrong passphrase was not refused",
    });
    assert.equal(sql(ledger, "SELECT count(*) AS n FROM sign_offs")[0].n, 0);
    assert.deepEqual(sql(ledger, "SELECT kind FROM auth_events"), [{ kind: "failure" }]);
    await typeInto(b, "sign-off-passphrase", PASSPHRASE);
    await b.$(testid("sign-off")).click();
    await b.$(testid("signed-off")).waitForDisplayed({ timeout: 10000 });
    // The sign-off is signed: name, meaning, and the reader's key.
    const [signed] = sql(ledger, "SELECT g.statement, k.public_key FROM sign_off_signatures g JOIN reader_keys k ON k.id = g.reader_key_id");
    assert.match(signed.statement, /Signed by: Dr\. E2E \(radiologist\)/);
    assert.match(signed.statement, /Meaning: final read/);
    assert.equal(signed.public_key.length, 64);
    await saveScreenshot(b, "review-signed-off");
    assert.equal(await b.$(testid("add-finding")).isExisting(), false, "a signed-off study is read-only");
  });

  it("left exactly these rows in the ledger, which verifies", async () => {
    const list = await findings(b);
    const ai = list.filter((f) => f.finding_id !== null);
    const rows = sql(
      ledger,
      `SELECT d.action, d.reject_reason, r.display_name, d.finding_id, a.model_id, a.model_sha256, a.execution_provider
       FROM decisions d JOIN readers r ON r.id = d.reader_id
       LEFT JOIN findings f ON f.id = d.finding_id
       LEFT JOIN analyses a ON a.id = COALESCE(f.analysis_id, (SELECT max(id) FROM analyses))
       ORDER BY d.id`,
    );
    const expected = [
      "confirm",
      ...(ai.length > 1 ? ["reject"] : []),
      ...ai.slice(2).map(() => "confirm"),
      "add",
    ];
    assert.deepEqual(
      rows.map((r) => r.action),
      expected,
    );
    for (const r of rows) {
      assert.equal(r.display_name, "Dr. E2E");
      assert.equal(r.model_id, "ct-nodule-demo");
      assert.equal(r.model_sha256, modelSha);
      assert.equal(r.execution_provider, "CPU");
    }
    if (ai.length > 1) assert.equal(rows[1].reject_reason, "artefact");
    assert.equal(rows.at(-1).finding_id, null);
    const analyses = sql(ledger, "SELECT model_id, model_sha256, execution_provider FROM analyses");
    assert.deepEqual(analyses, [{ model_id: "ct-nodule-demo", model_sha256: modelSha, execution_provider: "CPU" }]);
    assert.equal(sql(ledger, "SELECT count(*) AS n FROM findings")[0].n, ai.length);
    const signOff = sql(ledger, "SELECT confirmed, edited, rejected, added, impression FROM sign_offs");
    assert.deepEqual(signOff, [
      { confirmed: ai.length > 1 ? ai.length - 1 : 1, edited: 0, rejected: ai.length > 1 ? 1 : 0, added: 1, impression: "Demonstration reading." },
    ]);
    // No patient identifier in the study row.
    const study = sql(ledger, "SELECT patient_key FROM studies")[0];
    assert.match(study.patient_key, /^psn-[0-9a-f]{32}$/);
    const verify = execFileSync(cli, ["ledger", "verify", "--ledger", ledger]).toString();
    assert.match(verify, /intact|verified|ok/i);
  });

  it("exports the signed-off study as DICOM SEG + SR that the validators accept and Dokuei reads back", async () => {
    const out = path.join(dir, "results");
    await b.$(testid("export-results")).waitForDisplayed({ timeout: 5000 });
    // The button asks for a folder with the native dialog; the hook passes one.
    const status = await b.execute(async (p) => await window.__dokuei.review().exportResults(p), out);
    assert.match(status, /^Wrote 5 DICOM object/, status);
    await b.$(testid("export-results-done")).waitForDisplayed({ timeout: 10000 });
    exportedFolder = out;
    const files = readdirSync(out).filter((f) => f.endsWith(".dcm")).sort();
    assert.deepEqual(files.map((f) => f.replace(/(_\d+)?\.dcm$/, "").replace(/_ct-nodule-demo$/, "")), ["AI_SEG", "AI_SR", "ASSESSMENT_SR", "KEY_IMAGES", "READER_SEG"]);
    // The key image, read back by pydicom and resolved by highdicom.
    const kos = JSON.parse(
      execFileSync(path.join(root, ".dokuei/venv/bin/python"), [path.join(root, "scripts/reference/kos_check.py"), path.join(out, "KEY_IMAGES.dcm")]).toString(),
    );
    const marked = sql(ledger, "SELECT sop_instance_uid FROM key_images WHERE note != ''")[0].sop_instance_uid;
    assert.deepEqual(kos.images, [[marked, null]]);
    assert.deepEqual(kos.highdicom_images, [marked]);
    assert.match(kos.description, /largest nodule, right lung/);
    assert.equal(kos.observer, "Dr. E2E");
    assert.deepEqual(sql(ledger, "SELECT images FROM key_object_documents"), [{ images: 1 }]);
    const dciodvfy = path.join(root, ".dokuei/venv/bin/dciodvfy");
    for (const f of files) {
      let report;
      try {
        report = execFileSync(dciodvfy, [path.join(out, f)], { stdio: ["ignore", "pipe", "pipe"] }).toString();
      } catch (e) {
        report = `${e.stdout}${e.stderr}`;
      }
      assert.doesNotMatch(report, /^Error/m, `${f}: ${report}`);
    }
    for (const f of files.filter((x) => x.includes("_SR"))) {
      execFileSync("dsrdump", [path.join(out, f)], { stdio: "ignore" });
      const pixelmed = execFileSync("java", ["-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0",
        "-cp", "/usr/share/java/pixelmed.jar", "com.pixelmed.validate.DicomSRValidator", "-checktemplateid", path.join(out, f)]).toString();
      assert.doesNotMatch(pixelmed, /^Error/m, `${f}: ${pixelmed}`);
      assert.match(pixelmed, /IOD validation complete/);
    }
    // Read back beside the study, in a fresh process: every AI finding and the added one.
    const shown = JSON.parse(execFileSync(cli, ["results", "show", ct, out, "--json"]).toString());
    assert.deepEqual(shown.problems, []);
    const ai = (await findings(b)).filter((f) => f.finding_id !== null);
    const automatic = shown.findings.filter((f) => f.algorithm_type === "AUTOMATIC");
    assert.equal(automatic.length, ai.length);
    for (const f of automatic) {
      assert.equal(f.algorithm_name, "CT lung nodule segmentation (demonstration)");
      assert.equal(f.algorithm_version, "1.0.0");
    }
    assert.equal(shown.findings.filter((f) => f.algorithm_type === "MANUAL").length, 1);
    // The ledger recorded each object with what it came from.
    const rows = sql(ledger, "SELECT kind, analysis_id IS NOT NULL AS from_analysis FROM exported_objects ORDER BY id");
    assert.deepEqual(rows, [
      { kind: "ai_seg", from_analysis: 1 },
      { kind: "ai_sr", from_analysis: 1 },
      { kind: "reader_seg", from_analysis: 0 },
      { kind: "assessment_sr", from_analysis: 0 },
    ]);
  });

  it("exports the study de-identified, with dates shifted and faces checked for, that dciodvfy accepts and that names nobody", async () => {
    const out = path.join(dir, "deidentified");
    await b.execute(() => {
      const box = document.querySelector('[data-testid="deid-box"]');
      box.open = true;
      box.scrollIntoView();
    });
    await b.$(testid("deid-export")).waitForDisplayed({ timeout: 5000 });
    // The button asks for a folder with the native dialog; the hook passes one.
    const settings = { dates: "modified", retain_uids: false, retain_device: false, retain_institution: false,
      retain_patient_characteristics: true, clean_descriptors: false, clean_structured_content: false,
      clean_recognizable_visual_features: true };
    const status = await b.execute(async (s, p) => await window.__dokuei.review().exportDeidentified(s, p), settings, out);
    assert.match(status, new RegExp(`^${truth.slices} file\\(s\\) written to `), status);
    await b.$(testid("deid-done")).waitForDisplayed({ timeout: 10000 });
    // Clean Recognizable Visual Features looked for a face: no brain in it, and a chest (Body
    // Part Examined) has no face, so it leaves whole.
    const notes = await b.$(testid("deid-notes")).getText();
    assert.match(notes, /kept, no face \(Body Part Examined CHEST, and no brain found\)/, notes);
    // One patient folder (the site's pseudonym), one study, one series of every slice.
    const [patient] = readdirSync(out).filter((f) => f !== "deid-report.json");
    assert.match(patient, /^DOKUEI-\d{6}$/);
    const info = execFileSync(cli, ["info", out]).toString();
    assert.match(info, new RegExp(`Patient ${patient}`));
    assert.match(info, new RegExp(`${truth.slices} slice\\(s\\)`));
    // No identifier of the source in any output byte: name, ID, accession, study date, UIDs.
    const source = execFileSync(cli, ["info", ct, "--json"]).toString();
    const study = JSON.parse(source).patients[0].studies[0];
    const needles = ["Synthetic^Phantom", JSON.parse(source).patients[0].id, study.accession_number, study.date, study.uid];
    const files = execFileSync("find", [out, "-name", "*.dcm"]).toString().trim().split("\n");
    assert.equal(files.length, truth.slices);
    // dciodvfy finds nothing in the copies it did not find in the source (whose synthetic
    // slices lack some Type 2 attributes); UIDs and numbers differ by design.
    const errors = (f) => {
      let report;
      try {
        report = execFileSync(path.join(root, ".dokuei/venv/bin/dciodvfy"), [f], { stdio: ["ignore", "pipe", "pipe"] }).toString();
      } catch (e) {
        report = `${e.stdout}${e.stderr}`;
      }
      return new Set(report.split("\n").filter((l) => l.startsWith("Error")).map((l) => l.replace(/[0-9][0-9.]*/g, "#")));
    };
    const sourceFile = execFileSync("find", [ct, "-name", "*.dcm"]).toString().trim().split("\n")[0];
    const before = errors(sourceFile);
    for (const f of files.slice(0, 10)) {
      const bytes = readFileSync(f).toString("latin1");
      for (const n of needles) assert.ok(!bytes.includes(n), `${f} holds ${n}`);
      const added = [...errors(f)].filter((e) => !before.has(e));
      assert.deepEqual(added, [], `${f}: new dciodvfy errors`);
    }
    // The export is in the access audit.
    const events = sql(ledger, "SELECT object FROM access_events WHERE object LIKE 'de-identified%'");
    assert.equal(events.length, 1);
    assert.match(events[0].object, /Modified Dates/);
  });

  it("exports from the QA view exactly what `dokuei ledger export` writes for the same filter", async () => {
    await b.$(testid("qa-toggle")).click();
    await b.$(testid("qa-view")).waitForDisplayed({ timeout: 5000 });
    await b.$(testid("qa-action")).selectByAttribute("value", "confirm");
    await b.waitUntil(async () => /^\d+ decisions?$/.test(await b.$(testid("qa-count")).getText()), { timeout: 5000 });
    const ui = path.join(dir, "ui.csv");
    await b.execute((p) => window.__dokuei.setExportPath(p), ui);
    await b.$(testid("qa-export-csv")).click();
    await b.$(testid("qa-exported")).waitForDisplayed({ timeout: 10000 });
    const fromCli = path.join(dir, "cli.csv");
    execFileSync(cli, ["ledger", "export", "--ledger", ledger, "--format", "csv", "--action", "confirm", "--output", fromCli]);
    const [x, y] = [readFileSync(ui, "utf8"), readFileSync(fromCli, "utf8")];
    // The same decisions; each export's trailer is the checkpoint of the ledger as it was then
    // (the first export is itself recorded in the access audit, so the second is one entry on).
    const trailer = /^# dokuei-checkpoint\/1 .*\n$/m;
    assert.match(x, trailer);
    assert.match(y, trailer);
    assert.equal(x.replace(trailer, ""), y.replace(trailer, ""));
    assert.ok(x.split("\n").length >= 3, "the export has a header and decisions");
    assert.doesNotMatch(x, new RegExp(truth.study_uid ?? "no-such-uid"));
    await b.$(testid("qa-verify")).click();
    const result = await b.$(testid("qa-verify-result"));
    await result.waitForDisplayed({ timeout: 5000 });
    assert.match(await result.getText(), /^PASS/);
    await saveScreenshot(b, "review-qa");
  });

  it("exports training data from the QA view that nibabel and pydicom read back as Dokuei meant", async () => {
    const out = path.join(dir, "training");
    await b.execute(() => {
      const box = document.querySelector('[data-testid="training-box"]');
      box.open = true;
      box.scrollIntoView();
    });
    await typeInto(b, "training-label", "nodule");
    await b.execute((p) => window.__dokuei.setExportPath(p), out);
    await b.$(testid("training-export")).click();
    await b.$(testid("training-done")).waitForDisplayed({ timeout: 60000 });
    const summary = await b.$(testid("training-done")).getText();
    assert.match(summary, /^1 case\(s\) of 1 patient\(s\) written to /, summary);
    assert.match(summary, /de-identified\./);
    // The folder: an nnU-Net dataset, both label maps, the lists and the DICOM part.
    const ai = (await findings(b)).filter((f) => f.finding_id !== null);
    const lines = readFileSync(path.join(out, "findings.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, ai.length + 1);
    assert.equal(lines.filter((l) => l.negative).length, ai.length > 1 ? 1 : 0);
    for (const l of lines.filter((x) => x.source === "ai")) assert.equal(l.model.sha256, modelSha);
    const dataset = JSON.parse(readFileSync(path.join(out, "nnUNet/Dataset500_Dokuei/dataset.json"), "utf8"));
    assert.deepEqual(dataset.labels, { background: 0, nodule: 1 });
    assert.equal(dataset.numTraining, 1);
    assert.deepEqual(readdirSync(path.join(out, "nnUNet/Dataset500_Dokuei/imagesTr")).map((f) => /^DOKUEI-\d{6}-01_0000\.nii\.gz$/.test(f)), [true]);
    const provenance = JSON.parse(readFileSync(path.join(out, "provenance.json"), "utf8"));
    assert.equal(provenance.identified, false);
    assert.equal(provenance.filter.label, "nodule");
    // nibabel and pydicom, on their own: shape, affine, voxels and the final labels against the
    // de-identified SEG.
    const check = JSON.parse(execFileSync(path.join(root, ".dokuei/venv/bin/python"), [path.join(root, "scripts/reference/training_check.py"), out]).toString());
    assert.deepEqual(check.errors, []);
    assert.equal(check.cases, 1);
    assert.ok(check.final_label_voxels > 0 && check.original_label_voxels > 0, JSON.stringify(check));
    // Nothing identifying in the lists or the DICOM copies.
    const source = JSON.parse(execFileSync(cli, ["info", ct, "--json"]).toString());
    const needles = ["Synthetic^Phantom", source.patients[0].id, source.patients[0].studies[0].uid];
    const files = execFileSync("find", [out, "-type", "f", "(", "-name", "*.dcm", "-o", "-name", "*.json*", ")"]).toString().trim().split("\n");
    for (const f of files) {
      const bytes = readFileSync(f).toString("latin1");
      for (const n of needles) assert.ok(!bytes.includes(n), `${f} holds ${n}`);
    }
    const events = sql(ledger, "SELECT object FROM access_events WHERE object LIKE 'training data%'");
    assert.deepEqual(events, [{ object: "training data, de-identified" }]);
  });

  it("follows the model version in the QA view and writes the committee report that `dokuei ledger watch` agrees with", async () => {
    await b.execute(() => document.querySelector('[data-testid="watch-box"]').scrollIntoView());
    await b.waitUntil(async () => (await b.$$(`${testid("watch-table")} tbody tr`)).length === 1, { timeout: 5000 });
    assert.match(await b.$(`${testid("watch-table")} tbody tr`).getText(), /ct-nodule-demo\s*1\.0\.0/);
    const report = path.join(dir, "watch.html");
    await b.execute((p) => window.__dokuei.setExportPath(p), report);
    await b.$(testid("watch-report")).click();
    await b.$(testid("watch-reported")).waitForDisplayed({ timeout: 10000 });
    const html = readFileSync(report, "utf8");
    assert.match(html, /<h2>ct-nodule-demo<\/h2>/);
    assert.match(html, /not for clinical use/);
    assert.equal(html.match(/<svg/g).length, 2);
    // The same numbers from the command line.
    const ai = (await findings(b)).filter((f) => f.finding_id !== null);
    const watch = JSON.parse(execFileSync(cli, ["ledger", "watch", "--ledger", ledger, "--json"]).toString());
    assert.equal(watch.versions.length, 1);
    const v = watch.versions[0];
    assert.equal(v.findings, ai.length);
    assert.equal(v.confirmed + v.edited + v.rejected, ai.length);
    assert.equal(v.rejected, ai.length > 1 ? 1 : 0);
    assert.deepEqual(watch.comparisons, []);
  });

  it("exports the access audit as DICOM PS3.15 audit messages that jing validates, and configures the repository", async () => {
    const atna = path.join(dir, "atna");
    await b.execute((p) => window.__dokuei.setExportPath(p), atna);
    await b.$(testid("audit-export")).click();
    await b.$(testid("audit-message")).waitForDisplayed({ timeout: 10000 });
    assert.match(await b.$(testid("audit-message")).getText(), /^\d+ audit messages \(DICOM PS3\.15\) written to /);
    const files = readdirSync(atna).sort();
    const names = files.map((f) => f.replace(/^\d+-/, "").replace(/\.xml$/, ""));
    // What this suite did, in order of first appearance.
    const firsts = [...new Set(names)];
    for (const expected of ["application-start", "dicom-instances-accessed", "model-run", "export", "audit-log-used"]) {
      assert.ok(firsts.includes(expected), `${expected} in ${firsts.join(", ")}`);
    }
    assert.ok(names.indexOf("application-start") < names.indexOf("dicom-instances-accessed"));
    assert.ok(names.includes("user-authentication"), "the passphrases given at sign-off");
    const schema = path.join(root, "crates/ledger/schema/dicom-audit-message.rnc");
    // jing exits non-zero and names the file and line for any message the schema refuses.
    execFileSync("jing", ["-c", schema, ...files.map((f) => path.join(atna, f))]);
    const all = files.map((f) => readFileSync(path.join(atna, f), "utf8")).join("");
    assert.ok(all.includes(`ParticipantObjectID="ct-nodule-demo 1.0.0 sha256:${modelSha}`), "the model that ran");

    // Sending needs the repository's CA (TLS only); with it, the settings are kept beside the ledger.
    await b.$(testid("audit-send")).click();
    await typeInto(b, "audit-host", "127.0.0.1");
    await typeInto(b, "audit-port", "6514");
    await b.$(testid("audit-save")).click();
    await b.waitUntil(async () => /needs the CA certificate/.test(await b.$(testid("audit-error")).getText()), { timeout: 5000 });
    await typeInto(b, "audit-ca", path.join(dir, "repository-ca.pem"));
    await b.$(testid("audit-save")).click();
    await b.waitUntil(async () => /Audit events go to 127\.0\.0\.1:6514 over TLS/.test(await b.$(testid("audit-message")).getText()), { timeout: 5000 });
    const saved = JSON.parse(readFileSync(`${ledger}.audit.json`, "utf8"));
    assert.equal(saved.send, true);
    assert.equal(saved.repository.port, 6514);
    // The change itself is in the audit.
    const changes = sql(ledger, "SELECT object, detail_json FROM access_events WHERE action = 'setting_changed'");
    assert.ok(changes.some((c) => c.object === "audit repository" && c.detail_json.includes("repository")), JSON.stringify(changes));
  });
});

describe("reopening the exported DICOM results in a fresh data directory", () => {
  let app;
  let b;
  const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-reopen-"));
  const ledger = path.join(dir, "ledger.sqlite3");

  before(async () => {
    assert.ok(exportedFolder, "the review suite exported results first");
    app = await launch({ DOKUEI_LEDGER: ledger });
    b = app.browser;
    await b.$(testid("ort-version")).waitForDisplayed({ timeout: 20000 });
    assert.equal(await openPaths(b, [ct, exportedFolder]), null);
    await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice")), { timeout: 20000 });
  });
  after(async () => app?.close());

  it("lists the exported findings as imported with their producer, and records a decision on one", async () => {
    // The exported objects are results, not series to view.
    const box = await b.$(testid("imported-results"));
    await box.waitForDisplayed({ timeout: 20000 });
    const count = Number(await box.getAttribute("data-count"));
    const shown = JSON.parse(execFileSync(cli, ["results", "show", ct, exportedFolder, "--json"]).toString());
    assert.equal(count, shown.findings.length);
    assert.match(await box.getText(), /CT lung nodule segmentation \(demonstration\) 1\.0\.0/);
    await b.$(testid("reader-name")).setValue("Dr. Reopen");
    await b.$(testid("reader-role")).selectByAttribute("value", "radiologist");
    await b.$(testid("reader-passphrase")).setValue(PASSPHRASE);
    await b.$(testid("reader-passphrase-again")).setValue(PASSPHRASE);
    await b.$(testid("reader-create")).click();
    await b.$(testid("review-imported")).waitForDisplayed({ timeout: 5000 });
    await b.$(testid("review-imported")).click();
    await b.waitUntil(async () => (await findings(b)).length === count, { timeout: 10000, timeoutMsg: "the imported findings are not listed" });
    const listed = await findings(b);
    assert.ok(listed.every((f) => f.finding_id !== null && f.color !== null), "imported findings carry their colour");
    assert.match(await b.$(testid(`imported-f${listed[0].finding_id}`)).getText(), /^imported · /);
    await saveScreenshot(b, "review-imported");
    const first = listed[0];
    await b.$(testid(`confirm-f${first.finding_id}`)).click();
    await waitDecision(b, `f${first.finding_id}`, "confirm");
    // The ledger names the producing algorithm in place of a model SHA-256.
    const rows = sql(
      ledger,
      `SELECT a.execution_provider, a.model_sha256, i.algorithm_name, i.algorithm_version, i.device_uid
       FROM decisions d JOIN findings f ON f.id = d.finding_id JOIN analyses a ON a.id = f.analysis_id
       JOIN imported_analyses i ON i.analysis_id = a.id`,
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].execution_provider, "imported");
    assert.equal(rows[0].model_sha256, "");
    assert.match(rows[0].algorithm_name, /CT lung nodule segmentation/);
    assert.match(rows[0].device_uid, /^2\.25\.\d+$/);
    const verify = execFileSync(cli, ["ledger", "verify", "--ledger", ledger]).toString();
    assert.match(verify, /intact|verified|ok/i);
  });
});

describe("commit-then-reveal on the sample radiograph with cxr-opacity-demo", () => {
  let app;
  let b;
  const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-reveal-"));
  const ledger = path.join(dir, "ledger.sqlite3");
  const xr = path.join(root, "sample-studies/generated/chest-xr-opacity");
  const xrTruth = JSON.parse(readFileSync(path.join(xr, "ground_truth.json"), "utf8"));

  before(async () => {
    app = await launch({ DOKUEI_LEDGER: ledger });
    b = app.browser;
    await b.$(testid("ort-version")).waitForDisplayed({ timeout: 20000 });
    await b.$(testid("reader-name")).setValue("Dr. Reveal");
    await b.$(testid("reader-role")).selectByAttribute("value", "clinician");
    await b.$(testid("reader-passphrase")).setValue(PASSPHRASE);
    await b.$(testid("reader-passphrase-again")).setValue(PASSPHRASE);
    await b.$(testid("reader-create")).click();
    await b.$(testid("reader-select")).waitForDisplayed({ timeout: 5000 });
    await b.$(testid("commit-then-reveal")).click();
    assert.equal(await openPaths(b, [xr]), null);
    await b.waitUntil(async () => /Im 1\/1/.test(await overlay(b, "overlay-slice")), { timeout: 20000 });
  });
  after(async () => app?.close());

  it("asks for the reader's impression first, hides the results until revealed, and records the order", async () => {
    const model = (await b.$(testid("model-select")).$$("option").map((o) => o.getAttribute("value"))).find((v) => v.endsWith("cxr-opacity-demo"));
    await b.$(testid("model-select")).selectByAttribute("value", model);
    assert.equal(await b.$(testid("analyse")).isEnabled(), false, "Analyse waits for the impression");
    await b.$(testid("impression-before")).setValue("opacity present: yes, right upper zone");
    await b.$(testid("impression-record")).click();
    await b.waitUntil(() => b.$(testid("analyse")).isEnabled(), { timeout: 5000 });
    await b.$(testid("analyse")).click();
    await b.$(testid("reveal")).waitForDisplayed({ timeout: 60000 });
    // Results are recorded but not shown: no list, nothing drawn.
    assert.equal(await b.$(testid("findings")).isExisting(), false);
    const blank = await b.execute(() => window.__dokuei.review().overlay.findings.length);
    assert.equal(blank, 0);
    await b.$(testid("reveal")).click();
    await b.$(testid("findings")).waitForDisplayed({ timeout: 5000 });
    await b.$(testid("image-score")).waitForDisplayed({ timeout: 5000 });
    assert.match(await b.$(testid("image-score")).getText(), /image score (0\.9\d|1\.00)/);
    // The heatmap and the region are drawn over the planted opacity.
    await b.pause(500);
    const file = await saveScreenshot(b, "review-radiograph-heatmap");
    const o = xrTruth.opacities[0];
    const at = await pagePoint(b, o.row + 0.5, o.column + 0.5);
    const [r, g, bl] = rgb(file, at.x, at.y);
    assert.ok(r - bl >= 40 || g - bl >= 40, `opacity centre is rgb(${r}, ${g}, ${bl}) — no heatmap colour`);
    const events = sql(ledger, "SELECT kind, recorded_at FROM reading_events ORDER BY id");
    assert.deepEqual(
      events.map((e) => e.kind),
      ["impression_before_ai", "ai_revealed"],
    );
    const shown = sql(ledger, "SELECT min(shown_at) AS t FROM findings")[0].t;
    assert.ok(events[0].recorded_at <= shown && shown <= events[1].recorded_at, `impression ${events[0].recorded_at}, shown ${shown}, revealed ${events[1].recorded_at}`);
    assert.equal(sql(ledger, "SELECT content FROM reading_events WHERE kind = 'impression_before_ai'")[0].content, "opacity present: yes, right upper zone");
  });
  it("asks for the passphrase with every decision once an administrator turns the policy on", async () => {
    // The reader is made the first administrator (their own passphrase) and turns the policy on
    // from the command line, while the app runs on the same ledger.
    execFileSync(cli, ["readers", "grant-admin", "--ledger", ledger, "--reader", "1"], { input: `${PASSPHRASE}\n` });
    const out = execFileSync(cli, ["readers", "decision-passphrase", "on", "--ledger", ledger, "--by", "1"], { input: `${PASSPHRASE}\n` }).toString();
    assert.match(out, /passphrase for every decision: on/);
    const [first] = await findings(b);
    await b.$(testid(`confirm-f${first.finding_id}`)).click();
    await b.waitUntil(async () => /passphrase with every decision/.test(await b.$(testid("review-error")).getText()), { timeout: 5000 });
    await b.$(testid("decision-passphrase")).waitForDisplayed({ timeout: 5000 });
    await typeInto(b, "decision-passphrase", "not my passphrase");
    await b.$(testid(`confirm-f${first.finding_id}`)).click();
    await b.waitUntil(async () => /wrong passphrase.*1 of 5/.test(await b.$(testid("review-error")).getText()), { timeout: 5000 });
    assert.equal(await b.$(testid("decision-passphrase")).getValue(), "", "cleared after each attempt");
    await typeInto(b, "decision-passphrase", PASSPHRASE);
    await b.$(testid(`confirm-f${first.finding_id}`)).click();
    await waitDecision(b, `f${first.finding_id}`, "confirm");
    const policy = sql(ledger, "SELECT object, reader_id, detail_json FROM access_events WHERE object LIKE 'policy:%'");
    assert.equal(policy.length, 1);
    assert.equal(policy[0].reader_id, 1);
    assert.match(policy[0].detail_json, /"note":"on"/);
    assert.deepEqual(
      sql(ledger, "SELECT kind FROM auth_events ORDER BY id").map((e) => e.kind),
      ["failure", "success"],
    );
  });
});
