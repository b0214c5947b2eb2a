import { describe, expect, it } from "vitest";
import type { QueryRow_Serialize as QueryRow } from "../bindings";
import { EMPTY, priorRows, toNode } from "./PacsView";

describe("the node form", () => {
  it("makes a DICOMweb node with each kind of authentication", () => {
    const base = { ...EMPTY, name: " PACS ", url: " http://pacs/dicom-web " };
    expect(toNode({ ...base, auth: "none" })).toEqual({ protocol: "dicomweb", name: "PACS", base_url: "http://pacs/dicom-web", auth: { kind: "none" } });
    expect(toNode({ ...base, auth: "basic", user: "u", password: "p" }).protocol).toBe("dicomweb");
    expect(toNode({ ...base, auth: "basic", user: "u", password: "p" })).toMatchObject({ auth: { kind: "basic", user: "u", password: "p" } });
    expect(toNode({ ...base, auth: "bearer", token: "t" })).toMatchObject({ auth: { kind: "bearer", token: "t" } });
  });

  it("makes a DIMSE node, with TLS only when a CA file is given", () => {
    const d = { ...EMPTY, protocol: "dimse" as const, name: "Archive", host: "10.0.0.5", port: "11112", called: "ARCHIVE", calling: "DOKUEI" };
    expect(toNode(d)).toEqual({
      protocol: "dimse",
      name: "Archive",
      host: "10.0.0.5",
      port: 11112,
      called_ae_title: "ARCHIVE",
      calling_ae_title: "DOKUEI",
      tls: null,
    });
    expect(toNode({ ...d, ca: "/ca.pem", cert: "/c.pem", key: "/k.pem" })).toMatchObject({
      tls: { ca_file: "/ca.pem", certificate_file: "/c.pem", key_file: "/k.pem" },
    });
  });
});

describe("priors offered on the PACS screen", () => {
  const row = (study_uid: string, patient_id: string): QueryRow => ({
    study_uid,
    patient_name: "Test^Patient",
    patient_id,
    accession_number: "",
    study_date: "20250601",
    study_time: "",
    study_description: "",
    modalities: "CT",
    series_count: 1,
    instance_count: 200,
    series_uid: "",
    modality: "",
    series_number: null,
    series_description: "",
    sop_instance_uid: "",
    sop_class_uid: "",
    instance_number: null,
  });
  const rows = [row("1.1", "P1"), row("1.2", " P1 "), row("1.3", "P2"), row("1.4", "")];

  it("offers the open patient's other studies, not the study open nor another patient's", () => {
    const offered = priorRows(rows, { patientId: "P1", studyUids: ["1.1"], searchNow: false });
    expect([...offered]).toEqual(["1.2"]);
  });

  it("offers nothing without a study open or without a patient ID", () => {
    expect(priorRows(rows, null).size).toBe(0);
    expect(priorRows(rows, { patientId: " ", studyUids: [], searchNow: true }).size).toBe(0);
  });
});
