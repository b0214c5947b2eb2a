// The PACS workflow end to end in the real app against a real Orthanc (with its DICOMweb
// plug-in) on loopback: add a DICOMweb and a DIMSE node and test both, query by patient name,
// retrieve the sample CT (it opens from the cache), analyse with ct-nodule-demo, decide, sign
// off, send the results; Orthanc then holds the SEG and both SRs, and the ledger has a row for
// every instance sent. Then the patient's prior, found on Orthanc from the viewer, opens beside
// the study in one click.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { appPath, launch, overlay, saveScreenshot, startOrthanc, PASSPHRASE, typeInto } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ct = path.join(root, "sample-studies/generated/chest-ct-nodules/series");
const testid = (id) => `[data-testid="${id}"]`;
const cli = path.join(path.dirname(appPath()), "dokuei");

function sql(ledger, query) {
  const out = execFileSync("sqlite3", ["-json", ledger, query]).toString().trim();
  return out ? JSON.parse(out) : [];
}

const auth = "Basic " + Buffer.from("dokuei:secret").toString("base64");

async function qido(base, pathname) {
  const r = await fetch(`${base}${pathname}`, { headers: { Authorization: auth, Accept: "application/dicom+json" } });
  if (r.status === 204) return [];
  assert.equal(r.status, 200, `${pathname}: HTTP ${r.status}`);
  return r.json();
}

describe("PACS: query Orthanc, retrieve, read, send back", () => {
  let app;
  let b;
  let orthanc;
  let web;
  let dicomPort;
  const dir = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-pacs-"));
  const ledger = path.join(dir, "ledger.sqlite3");

  before(async () => {
    orthanc = await startOrthanc(dir, { user: "dokuei", password: "secret" });
    web = orthanc.web;
    dicomPort = orthanc.dicomPort;
    // The sample CT goes in by DCMTK's dcmsend, as a modality would send it.
    const files = readdirSync(ct).map((f) => path.join(ct, f));
    orthanc.send(files, "MODALITY");
    app = await launch({ DOKUEI_LEDGER: ledger, XDG_CACHE_HOME: path.join(dir, "cache") });
    b = app.browser;
    await b.$(testid("pacs-toggle")).waitForDisplayed({ timeout: 20000 });
  });

  after(async () => {
    await app?.close();
    orthanc?.kill();
  });

  it("adds a DICOMweb and a DIMSE node and tests both", async () => {
    await b.$(testid("pacs-toggle")).click();
    await b.$(testid("pacs-view")).waitForDisplayed({ timeout: 5000 });
    await b.$(testid("node-name")).setValue("Orthanc");
    await b.$(testid("node-protocol")).selectByAttribute("value", "dicomweb");
    await b.$(testid("node-url")).setValue(web);
    await b.$(testid("node-auth")).selectByAttribute("value", "basic");
    await b.$(testid("node-user")).setValue("dokuei");
    await b.$(testid("node-password")).setValue("secret");
    await b.$(testid("node-add")).click();
    await b.$(testid("pacs-test-Orthanc")).waitForDisplayed({ timeout: 5000 });

    await b.$(testid("node-name")).setValue("Orthanc DIMSE");
    await b.$(testid("node-protocol")).selectByAttribute("value", "dimse");
    await b.$(testid("node-port")).setValue(String(dicomPort));
    await b.$(testid("node-called")).setValue("ORTHANC");
    await b.$(testid("node-add")).click();
    await b.$(testid("pacs-test-Orthanc DIMSE")).waitForDisplayed({ timeout: 5000 });

    await b.$(testid("pacs-test-Orthanc")).click();
    await b.$(testid("pacs-test-Orthanc DIMSE")).click();
    const result = (name) => b.$(testid(`pacs-test-result-${name}`));
    await b.waitUntil(async () => /QIDO-RS answered/.test(await result("Orthanc").getText()), { timeout: 10000 });
    await b.waitUntil(async () => /C-ECHO succeeded/.test(await result("Orthanc DIMSE").getText()), { timeout: 10000 });
    assert.match(await b.$(testid("rx-status")).getText(), /Off: no listening socket/);
  });

  it("finds the sample CT by patient name and retrieves it; it opens from the cache", async () => {
    await b.$(testid("pacs-node")).selectByAttribute("value", "Orthanc");
    await b.$(testid("q-name")).setValue("Synth*");
    await b.$(testid("q-search")).click();
    await b.$(testid("q-results")).waitForDisplayed({ timeout: 10000 });
    const rows = await b.$$(`${testid("q-results")} tbody tr`);
    assert.equal(rows.length, 1);
    await saveScreenshot(b, "pacs-query");
    const started = Date.now();
    await b.$(testid("q-retrieve")).click();
    // The study opens in the viewer once it has arrived.
    await b.waitUntil(async () => /Im 1\/200/.test(await overlay(b, "overlay-slice").catch(() => "")), { timeout: 120000 });
    await b.waitUntil(async () => (await b.execute(() => window.__dokuei.retrieveFirstImageMs())) !== null, {
      timeout: 10000,
      timeoutMsg: "no image was rendered after the retrieve",
    });
    const firstImage = await b.execute(() => window.__dokuei.retrieveFirstImageMs());
    console.log(
      `retrieve of the sample CT (200 slices of 256², WADO-RS): first image on screen ${Math.round(firstImage)} ms after the click (measured by the screen); the test saw it after ${Date.now() - started} ms`,
    );
    await saveScreenshot(b, "pacs-retrieved");
  });

  it("analyses, decides, signs off and sends the results back; Orthanc holds the SEG and both SRs", async () => {
    await b.$(testid("reader-name")).setValue("Dr. PACS");
    await b.$(testid("reader-role")).selectByAttribute("value", "radiologist");
    await b.$(testid("reader-passphrase")).setValue(PASSPHRASE);
    await b.$(testid("reader-passphrase-again")).setValue(PASSPHRASE);
    await b.$(testid("reader-create")).click();
    await b.$(testid("reader-select")).waitForDisplayed({ timeout: 5000 });
    await b.$(testid("analyse")).click();
    await b.$(testid("findings")).waitForDisplayed({ timeout: 180000 });
    const list = await b.execute(() => window.__dokuei.review().findings);
    assert.ok(list.length >= 1);
    for (const f of list) {
      await b.$(testid(`confirm-f${f.finding_id}`)).click();
      await b.waitUntil(async () => (await b.$(testid(`finding-f${f.finding_id}`)).getAttribute("data-decision")) === "confirm", { timeout: 10000 });
    }
    await typeInto(b, "sign-off-passphrase", PASSPHRASE);
    await b.$(testid("sign-off")).click();
    await b.$(testid("signed-off")).waitForDisplayed({ timeout: 10000 });

    await b.$(testid("send-node")).selectByAttribute("value", "Orthanc");
    await b.$(testid("send-results")).click();
    const done = await b.$(testid("send-results-done"));
    await b.waitUntil(async () => /^Sent \d+ of \d+/.test(await done.getText()), { timeout: 60000 });
    const text = await done.getText();
    const [, stored, total] = /^Sent (\d+) of (\d+)/.exec(text);
    assert.equal(stored, total, text);
    await saveScreenshot(b, "pacs-sent");

    // What Orthanc holds of the study now: the 200 CT slices, one SEG, two SRs (AI and the
    // physician's assessment).
    const studies = await qido(web, "/studies?PatientName=Synth*");
    const studyUid = studies[0]["0020000D"].Value[0];
    const series = await qido(web, `/studies/${studyUid}/series`);
    const classes = [];
    for (const s of series) {
      const seriesUid = s["0020000E"].Value[0];
      for (const i of await qido(web, `/studies/${studyUid}/series/${seriesUid}/instances`)) classes.push(i["00080016"].Value[0]);
    }
    const count = (uid) => classes.filter((c) => c === uid).length;
    assert.equal(count("1.2.840.10008.5.1.4.1.1.2"), 200);
    assert.equal(count("1.2.840.10008.5.1.4.1.1.66.4"), 1, classes.join(" "));
    assert.equal(count("1.2.840.10008.5.1.4.1.1.88.34"), 2, classes.join(" "));

    // Read back by WADO-RS (Dokuei's command line): the SEG is placed on the CT again, with
    // as many findings as were confirmed.
    const back = mkdtempSync(path.join(tmpdir(), "dokuei-e2e-pacs-back-"));
    execFileSync(cli, ["pacs", "get", "--dicomweb", web, "--user", "dokuei", "--password", "secret", "--study", studyUid, "-o", back]);
    const shown = JSON.parse(execFileSync(cli, ["results", "show", "--json", back]).toString());
    assert.equal(shown.findings.length, list.length, JSON.stringify(shown.problems));
    assert.deepEqual(shown.problems, []);

    // The ledger: every instance sent, stored, to Orthanc by DICOMweb, each tied to the object
    // Dokuei exported.
    const sent = sql(ledger, "SELECT node, protocol, stored, status, exported_object_id IS NOT NULL AS exported FROM sent_objects");
    assert.equal(sent.length, Number(total));
    assert.ok(sent.every((r) => r.node === "Orthanc" && r.protocol === "dicomweb" && r.stored === 1 && r.exported === 1), JSON.stringify(sent));
  });

  it("finds the patient's prior on the PACS and opens it beside the study in one click", async () => {
    // The sample CT again as a prior of the same patient (new UIDs, 2025-06-01, 20 mm higher on
    // the table), sent to Orthanc as a modality would.
    const prior = path.join(dir, "prior");
    execFileSync(path.join(root, ".dokuei/venv/bin/python"), [path.join(root, "scripts/reference/make_prior.py"), ct, prior, "20250601", "20"]);
    orthanc.send(readdirSync(prior).map((f) => path.join(prior, f)), "MODALITY");
    const topRight = (pane) => b.execute((p) => document.querySelector(`[data-testid="viewport-pane-${p}"] .corner.top-right`)?.textContent ?? "", pane);
    const slice = (pane) => b.execute((p) => document.querySelector(`[data-testid="viewport-pane-${p}"] [data-testid="overlay-slice"]`)?.textContent ?? "", pane);

    // From the viewer, one button: the PACS screen opens on this patient's studies.
    await b.$(testid("prior-pacs")).click();
    await b.waitUntil(async () => (await b.$$(`${testid("q-results")} tbody tr`)).length === 2, {
      timeout: 15000,
      timeoutMsg: "the patient's two studies were not listed",
    });
    // Only the study not open is offered as the prior.
    const offered = await b.$$(testid("q-prior"));
    assert.equal(offered.length, 1);
    assert.equal(await b.execute(() => document.querySelector('[data-testid="q-prior"]')?.closest("tr")?.children[0]?.textContent), "20250601");
    await saveScreenshot(b, "pacs-priors");
    await offered[0].click();
    // The viewer comes back with the current study left and the prior right.
    await b.waitUntil(async () => /Prior 2025-06-01/.test(await topRight(1)), { timeout: 120000, timeoutMsg: "the prior did not open beside the study" });
    assert.match(await topRight(0), /Current 2026-01-01/);
    await b.waitUntil(async () => /Im 1\/200/.test(await slice(1)), { timeout: 10000 });
    assert.equal(await b.$(testid("pacs-view")).isExisting(), false);
    await saveScreenshot(b, "pacs-prior-open");
  });
});
