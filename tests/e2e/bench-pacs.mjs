// The PACS screen benchmark (printed, not a test), in the release app under Xvfb: from the
// Retrieve click to the first image on screen (measured by the screen), for a 300-slice CT
// held by a real Orthanc on loopback, by WADO-RS and by C-GET; the cache is cleared before each
// run.
//
//   DOKUEI_APP=…/release/dokuei-app DOKUEI_BENCH_STUDY=dir node bench-pacs.mjs

import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { launch, startOrthanc } from "./harness.mjs";

const study = process.env.DOKUEI_BENCH_STUDY;
if (!study) throw new Error("set DOKUEI_BENCH_STUDY to a folder of DICOM files");
const runs = Number(process.env.DOKUEI_BENCH_RUNS ?? 3);
const testid = (id) => `[data-testid="${id}"]`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const dir = mkdtempSync(path.join(tmpdir(), "dokuei-bench-pacs-app-"));
const orthanc = await startOrthanc(dir);
let app;
try {
  const files = readdirSync(study).map((f) => path.join(study, f));
  orthanc.send(files);
  app = await launch({ XDG_CACHE_HOME: path.join(dir, "cache"), DOKUEI_LEDGER: path.join(dir, "ledger.sqlite3") });
  const b = app.browser;
  await b.$(testid("pacs-toggle")).waitForDisplayed({ timeout: 30000 });
  await b.$(testid("pacs-toggle")).click();
  const add = async (name, fields) => {
    await b.$(testid("node-name")).setValue(name);
    await b.$(testid("node-protocol")).selectByAttribute("value", fields.protocol);
    for (const [id, value] of Object.entries(fields.values)) await b.$(testid(id)).setValue(value);
    await b.$(testid("node-add")).click();
    await b.$(testid(`pacs-test-${name}`)).waitForDisplayed({ timeout: 5000 });
  };
  await add("web", { protocol: "dicomweb", values: { "node-url": orthanc.web } });
  await add("dimse", { protocol: "dimse", values: { "node-port": String(orthanc.dicomPort), "node-called": "ORTHANC" } });
  const results = {};
  for (const node of ["web", "dimse"]) {
    const times = [];
    for (let i = 0; i < runs; i++) {
      if (!(await b.$(testid("pacs-view")).isExisting())) await b.$(testid("pacs-toggle")).click();
      await b.$(testid("cache-clear")).click();
      await b.$(testid("pacs-node")).selectByAttribute("value", node);
      await b.$(testid("q-search")).click();
      await b.$(testid("q-retrieve")).waitForDisplayed({ timeout: 10000 });
      await b.$(testid("q-retrieve")).click();
      await b.waitUntil(async () => (await b.execute(() => window.__dokuei.retrieveFirstImageMs())) !== null, {
        timeout: 120000,
        interval: 50,
      });
      times.push(await b.execute(() => window.__dokuei.retrieveFirstImageMs()));
    }
    results[node] = times;
    console.log(`${node === "web" ? "WADO-RS" : "C-GET"}: Retrieve click → first image on screen ${times.map((t) => Math.round(t)).join(", ")} ms (median ${Math.round(median(times))} ms; target ≤ 1000 ms)`);
  }
} finally {
  await app?.close();
  orthanc.kill();
}
