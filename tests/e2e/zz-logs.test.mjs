// Runs last (files run in name order): the application logs written by every app the suite
// launched hold what happened, and never a patient name, patient ID, accession number or a
// study, series or instance UID of the sample studies they opened.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { logDir } from "./harness.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Every identifying value in the sample studies, read with pydicom (the reference venv). */
function identifiers() {
  const python = path.join(root, ".dokuei/venv/bin/python");
  const script = `
import json, pathlib, sys, pydicom
values = set()
for f in pathlib.Path(sys.argv[1]).rglob("*"):
    if not f.is_file():
        continue
    try:
        ds = pydicom.dcmread(f, stop_before_pixels=True)
    except Exception:
        continue
    for key in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "OtherPatientIDs"):
        v = ds.get(key)
        if v:
            values.add(str(v))
            if key == "PatientName":
                values.update(p for p in str(v).split("^") if len(p) >= 3)
print(json.dumps(sorted(values)))
`;
  const out = execFileSync(python, ["-c", script, path.join(root, "sample-studies/generated")]);
  return JSON.parse(out.toString());
}

describe("the application log", () => {
  it("records the suite's actions and no patient identifier", () => {
    assert.ok(existsSync(logDir), `no log folder at ${logDir}: did the apps start?`);
    const files = readdirSync(logDir).filter((f) => f.endsWith(".log"));
    assert.ok(files.length > 0, `no log file in ${logDir}`);
    const text = files.map((f) => readFileSync(path.join(logDir, f), "utf8")).join("\n");
    // What happened is there (the viewer, review and PACS tests did these).
    for (const event of ["Dokuei started", "open a study:", "analyse:", "decide:", "sign off:"]) {
      assert.ok(text.includes(event), `the log has no "${event}" event`);
    }
    const values = identifiers();
    assert.ok(values.length > 100, `only ${values.length} identifying values found in the sample studies`);
    const found = values.filter((v) => text.includes(v));
    assert.deepEqual(found, [], `patient identifiers in the log (${logDir})`);
    console.log(`# ${files.length} log file(s), ${text.split("\n").length} lines, ${values.length} identifying values checked`);
  });
});
