import { describe, expect, it } from "vitest";
import { EMPTY, toNode } from "./PacsView";

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
