#!/usr/bin/env python3
"""PACS benchmark: retrieve a 300-slice 512x512 CT (uncompressed, and JPEG-LS lossless) from a
real Orthanc on loopback with Dokuei (WADO-RS and C-GET) and with DCMTK getscu and Python
dicomweb-client in the same run; and receive the same files by C-STORE from DCMTK dcmsend into
Dokuei's SCP and into DCMTK storescp. Prints times, MB/s and ratios; best of N rounds, the tools
interleaved in each round so that Orthanc's own caching favours none of them.

    python pacs_bench.py --dokuei PATH [--slices 300] [--size 512] [--rounds 3] [--json OUT]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    start = time.time()
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{what} exited before listening")
            if time.time() - start > 30:
                sys.exit(f"{what} did not listen on {port}")
            time.sleep(0.05)


def make_ct(out: Path, slices: int, size: int, seed: int) -> str:
    """A synthetic CT series (a noisy elliptical phantom), one file per slice; its study UID."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    y, x = np.mgrid[0:size, 0:size]
    body = ((x - size / 2) / (0.45 * size)) ** 2 + ((y - size / 2) / (0.35 * size)) ** 2 <= 1
    for k in range(slices):
        img = np.where(body, 40, -1000) + rng.normal(0, 10, (size, size))
        pixels = (img + 1024).clip(0, 4095).astype(np.uint16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = f"Bench^{seed}", f"BENCH-{seed}"
        ds.StudyDate, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "20260101", "CT", 1, k + 1
        ds.ImagePositionPatient = [0, 0, -k * 1.0]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.0
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = pixels.tobytes()
        ds.save_as(out / f"CT{k:04d}.dcm", enforce_file_format=True)
    return study


# DCMTK (and Orthanc, which uses DCMTK's network layer) leave Nagle's algorithm on unless
# TCP_NODELAY is set: every instance then waits for the peer's delayed ACK (~45 ms here). The
# peers run in their best configuration.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def run(cmd, **kw):
    kw.setdefault("env", DCMTK_ENV)
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    if r.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {r.stderr.decode(errors='replace')[-2000:]}")


def files_in(d: Path):
    return [p for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")]


def timed(fn, out: Path, want: int):
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t = time.perf_counter()
    fn(out)
    seconds = time.perf_counter() - t
    got = len(files_in(out))
    if got != want:
        sys.exit(f"{fn.__name__}: {got} files arrived, {want} expected")
    return seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dokuei", required=True)
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    from dicomweb_client.api import DICOMwebClient
    from dicomweb_client.session_utils import create_session_from_auth
    from requests.auth import HTTPBasicAuth

    work = Path(tempfile.mkdtemp(prefix="dokuei-bench-pacs-"))
    procs = []
    try:
        raw = work / "raw"
        study_raw = make_ct(raw, a.slices, a.size, 1)
        jls_src = work / "jls-src"
        study_jls = make_ct(jls_src, a.slices, a.size, 2)
        jls = work / "jls"
        jls.mkdir()
        for f in sorted(jls_src.iterdir()):
            run(["dcmcjpls", str(f), str(jls / f.name)])
        sizes = {
            "uncompressed": sum(f.stat().st_size for f in raw.iterdir()),
            "JPEG-LS": sum(f.stat().st_size for f in jls.iterdir()),
        }

        http, dicom = free_port(), free_port()
        storage = work / "orthanc"
        cfg = work / "orthanc.json"
        cfg.write_text(json.dumps({
            "Name": "bench", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
            "RegisteredUsers": {"dokuei": "secret"},
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
            "Plugins": ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }))
        orthanc = subprocess.Popen(["/usr/sbin/Orthanc", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=DCMTK_ENV)
        procs.append(orthanc)
        wait_port(http, orthanc, "Orthanc")
        wait_port(dicom, orthanc, "Orthanc")
        for d in (raw, jls):
            run(["dcmsend", "-dn", "-aec", "ORTHANC", "127.0.0.1", str(dicom), *map(str, sorted(d.iterdir()))])
        url = f"http://127.0.0.1:{http}/dicom-web"
        client = DICOMwebClient(url, session=create_session_from_auth(HTTPBasicAuth("dokuei", "secret")))

        results = {}
        for label, study in (("uncompressed", study_raw), ("JPEG-LS", study_jls)):
            def dokuei_wado(out, study=study):
                run([a.dokuei, "pacs", "get", "--dicomweb", url, "--user", "dokuei", "--password", "secret",
                     "--study", study, "-o", str(out)])

            def dokuei_cget(out, study=study):
                run([a.dokuei, "pacs", "get", "--port", str(dicom), "--called", "ORTHANC", "--study", study, "-o", str(out)])

            def dcmtk_getscu(out, study=study, label=label):
                # +xt: accept JPEG-LS lossless as well, so Orthanc sends what it stores.
                extra = ["+xt"] if label == "JPEG-LS" else []
                run(["getscu", *extra, "-aec", "ORTHANC", "127.0.0.1", str(dicom), "-k", "0008,0052=STUDY",
                     "-k", f"0020,000D={study}", "-od", str(out)])

            def dicomweb_client(out, study=study):
                for ds in client.iter_study(study, media_types=(("application/dicom", "*"),)):
                    ds.save_as(out / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)

            tools = [dokuei_wado, dokuei_cget, dcmtk_getscu, dicomweb_client]
            best = {t.__name__: float("inf") for t in tools}
            for _ in range(a.rounds):
                for t in tools:
                    best[t.__name__] = min(best[t.__name__], timed(t, work / "out", a.slices))
            results[label] = best

        # Receiving: dcmsend into Dokuei's SCP and into DCMTK storescp.
        receive = {}
        for label, d in (("uncompressed", raw), ("JPEG-LS", jls)):
            files = [str(f) for f in sorted(d.iterdir())]
            best = {"dokuei": float("inf"), "storescp": float("inf")}
            for _ in range(a.rounds):
                for who in best:
                    out = work / "rx"
                    shutil.rmtree(out, ignore_errors=True)
                    out.mkdir()
                    port = free_port()
                    if who == "dokuei":
                        cmd = [a.dokuei, "pacs", "receive", "--port", str(port), "--ae", "DOKUEI", "--allow", "DCMSEND", "-o", str(out)]
                    else:
                        cmd = ["storescp", "+xa", "-aet", "DOKUEI", "-od", str(out), str(port)]
                    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=DCMTK_ENV)
                    procs.append(p)
                    wait_port(port, p, who)
                    t = time.perf_counter()
                    run(["dcmsend", "-dn", "-aet", "DCMSEND", "-aec", "DOKUEI", "127.0.0.1", str(port), *files])
                    best[who] = min(best[who], time.perf_counter() - t)
                    p.kill()
                    p.wait()
                    got = len(files_in(out))
                    if got != len(files):
                        sys.exit(f"{who} received {got} of {len(files)} files")
            receive[label] = best

        mb = {k: v / 1e6 for k, v in sizes.items()}
        print(f"\nRetrieve of a {a.slices}-slice {a.size}x{a.size} CT from Orthanc on loopback (best of {a.rounds}):\n")
        print("| study | tool | seconds | MB/s | same-protocol peer / this | fastest peer / this |")
        print("| --- | --- | --- | --- | --- | --- |")
        same = {"dokuei_wado": "dicomweb_client", "dokuei_cget": "dcmtk_getscu"}
        for label, best in results.items():
            peer = min(best["dcmtk_getscu"], best["dicomweb_client"])
            for tool, s in best.items():
                ratio = f"{best[same[tool]] / s:.2f}x" if tool in same else ""
                print(f"| {label} ({mb[label]:.0f} MB) | {tool} | {s:.3f} | {mb[label] / s:.0f} | {ratio} | {peer / s:.2f}x |")
        print(f"\nReceive by C-STORE from DCMTK dcmsend (best of {a.rounds}):\n")
        print("| study | receiver | seconds | MB/s | storescp / this |")
        print("| --- | --- | --- | --- | --- |")
        for label, best in receive.items():
            for who, s in best.items():
                print(f"| {label} ({mb[label]:.0f} MB) | {who} | {s:.3f} | {mb[label] / s:.0f} | {best['storescp'] / s:.2f}x |")
        if a.json:
            Path(a.json).write_text(json.dumps({"bytes": sizes, "retrieve": results, "receive": receive}, indent=2))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
