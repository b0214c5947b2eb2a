"""Check a float32 DICOM Parametric Map (SOP class 1.2.840.10008.5.1.4.1.1.30) derived from a
single-frame image series, e.g. a heatmap Dokuei wrote: read it back with highdicom, compare its
values per source SOP instance, and run dciodvfy.

usage: pmap_check.py PMAP_FILE SOURCE_DIR EXPECTED

EXPECTED is either
  - JSON: {"frames": [{"sop_instance_uid": "...", "values": [row-major floats, rows*columns]}]}
  - .npy: float array (N, rows, columns), one slice per source instance, in the order of the
    source instances sorted along the slice normal (ascending dot(ImagePositionPatient, normal),
    normal = row cosines x column cosines).

Checks (any failure -> exit 1; the JSON summary on stdout says which):
  - dciodvfy (DCIODVFY env var, else next to this Python, else on PATH): no "Error" lines;
  - the SOP class is Parametric Map Storage; the pixels are in Float Pixel Data (7FE0,0008);
  - highdicom: ParametricMap.get_pixels_by_source_instance(uids) (real-world values, i.e. after
    the Real World Value Mapping) equals the expected values within 1e-6 (absolute);
  - independently of highdicom: the raw Float Pixel Data frame that the Per-Frame Derivation
    Image Sequence ties to each source instance, mapped by the frame's RWV slope/intercept,
    equals the expected values within 1e-6;
  - every frame's Image Position (Patient) matches its source instance's (1e-3 mm), and the
    orientation and pixel spacing match the source's.
Informational: highdicom's get_volume() shape and whether its geometry equals the source
series' volume (highdicom.get_volume_from_series).
"""

import json
import os
import shutil
import subprocess
import sys

import highdicom as hd
import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

PM_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.30"
TOL = 1e-6
POS_TOL = 1e-3


def dciodvfy_path():
    env = os.environ.get("DCIODVFY")
    if env:
        return env
    local = os.path.join(os.path.dirname(sys.executable), "dciodvfy")
    return local if os.path.exists(local) else shutil.which("dciodvfy")


def run_dciodvfy(path):
    exe = dciodvfy_path()
    if not exe:
        return {"ran": False, "errors": ["dciodvfy not found"], "warnings": []}
    r = subprocess.run([exe, path], capture_output=True, text=True)
    lines = (r.stdout + r.stderr).splitlines()
    return {
        "ran": True,
        "errors": [l for l in lines if l.startswith("Error")],
        "warnings": [l for l in lines if l.startswith("Warning")],
    }


def read_sources(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            try:
                ds = pydicom.dcmread(os.path.join(root, name))
            except (InvalidDicomError, OSError):
                continue
            if "SOPInstanceUID" in ds and "PixelData" in ds:
                out[str(ds.SOPInstanceUID)] = ds
    return out


def slice_key(ds):
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), normal))


def load_expected(path, sources, rows, cols):
    if path.endswith(".npy"):
        arr = np.load(path).astype(np.float64)
        order = sorted(sources, key=lambda uid: slice_key(sources[uid]))
        if arr.shape != (len(order), rows, cols):
            raise ValueError(f"expected array shape {arr.shape} != ({len(order)}, {rows}, {cols})")
        return {uid: arr[i] for i, uid in enumerate(order)}
    with open(path) as f:
        doc = json.load(f)
    exp = {}
    for fr in doc["frames"]:
        v = np.asarray(fr["values"], dtype=np.float64).ravel()
        if v.size != rows * cols:
            raise ValueError(f"{fr['sop_instance_uid']}: {v.size} values, want {rows * cols}")
        exp[str(fr["sop_instance_uid"])] = v.reshape(rows, cols)
    return exp


def fg_item(ds, i, name):
    """Functional group `name` for frame i: per-frame item if present, else shared."""
    pf = ds.PerFrameFunctionalGroupsSequence[i]
    if name in pf:
        return getattr(pf, name)[0]
    sh = ds.SharedFunctionalGroupsSequence[0]
    return getattr(sh, name)[0] if name in sh else None


def raw_check(ds, expected, sources):
    """highdicom-free: decode Float Pixel Data, tie frames to sources via the Derivation Image
    Sequence, apply the frame's RWV slope/intercept and compare; check geometry per frame."""
    n, rows, cols = int(ds.NumberOfFrames), ds.Rows, ds.Columns
    frames = np.frombuffer(ds.FloatPixelData, dtype="<f4").reshape(n, rows, cols)
    by_uid, problems, max_err, max_pos = {}, [], 0.0, 0.0
    for i in range(n):
        der = fg_item(ds, i, "DerivationImageSequence")
        uids = [str(s.ReferencedSOPInstanceUID) for s in der.SourceImageSequence] if der else []
        if len(uids) != 1:
            problems.append(f"frame {i + 1}: {len(uids)} source references")
            continue
        uid = uids[0]
        by_uid[uid] = i
        rwv = fg_item(ds, i, "RealWorldValueMappingSequence")
        slope = float(getattr(rwv, "RealWorldValueSlope", 1.0)) if rwv else 1.0
        icpt = float(getattr(rwv, "RealWorldValueIntercept", 0.0)) if rwv else 0.0
        src = sources.get(uid)
        if src is None:
            problems.append(f"frame {i + 1}: source {uid} not in SOURCE_DIR")
            continue
        pos = np.array(fg_item(ds, i, "PlanePositionSequence").ImagePositionPatient, dtype=float)
        d = float(np.abs(pos - np.array(src.ImagePositionPatient, dtype=float)).max())
        max_pos = max(max_pos, d)
        if d > POS_TOL:
            problems.append(f"frame {i + 1}: position {pos.tolist()} != source {[float(v) for v in src.ImagePositionPatient]}")
        iop = np.array(fg_item(ds, i, "PlaneOrientationSequence").ImageOrientationPatient, dtype=float)
        if np.abs(iop - np.array(src.ImageOrientationPatient, dtype=float)).max() > 1e-4:
            problems.append(f"frame {i + 1}: orientation differs from source")
        ps = np.array(fg_item(ds, i, "PixelMeasuresSequence").PixelSpacing, dtype=float)
        if np.abs(ps - np.array(src.PixelSpacing, dtype=float)).max() > 1e-4:
            problems.append(f"frame {i + 1}: pixel spacing differs from source")
        if uid in expected:
            err = float(np.abs(frames[i].astype(np.float64) * slope + icpt - expected[uid]).max())
            max_err = max(max_err, err)
    missing = [u for u in expected if u not in by_uid]
    if missing:
        problems.append(f"{len(missing)} expected source instances have no frame")
    if max_err > TOL:
        problems.append(f"raw values differ: max abs error {max_err:.3g}")
    return {"max_abs_error": max_err, "max_position_error_mm": max_pos, "problems": problems}


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    pmap_path, source_dir, expected_path = argv[1:]
    summary = {"file": pmap_path, "ok": False, "problems": []}
    problems = summary["problems"]

    summary["dciodvfy"] = run_dciodvfy(pmap_path)
    if summary["dciodvfy"]["errors"]:
        problems.append(f"dciodvfy: {len(summary['dciodvfy']['errors'])} Error lines")

    ds = pydicom.dcmread(pmap_path)
    summary["sop_class_uid"] = str(ds.SOPClassUID)
    if ds.SOPClassUID != PM_SOP_CLASS:
        problems.append("not a Parametric Map")
    pixel_elems = [k for k in ("FloatPixelData", "DoubleFloatPixelData", "PixelData") if k in ds]
    summary["pixel_element"] = pixel_elems
    summary["frames"], summary["rows"], summary["columns"] = int(ds.NumberOfFrames), ds.Rows, ds.Columns
    summary["bits_allocated"] = int(ds.BitsAllocated)
    summary["transfer_syntax"] = str(ds.file_meta.TransferSyntaxUID)
    if pixel_elems != ["FloatPixelData"] or ds.BitsAllocated != 32:
        problems.append("pixels are not float32 Float Pixel Data (7FE0,0008) with BitsAllocated 32")

    sources = read_sources(source_dir)
    summary["source_instances"] = len(sources)
    expected = load_expected(expected_path, sources, ds.Rows, ds.Columns)
    summary["expected_frames"] = len(expected)
    unknown = [u for u in expected if u not in sources]
    if unknown:
        problems.append(f"{len(unknown)} expected SOP instance UIDs are not in SOURCE_DIR")

    # highdicom read-back: real-world values per source SOP instance
    pm = hd.pm.ParametricMap.from_dataset(ds, copy=True)
    uids = list(expected)
    hd_summary = {}
    try:
        got = pm.get_pixels_by_source_instance(uids, dtype=np.float64)
        stored = pm.get_pixels_by_source_instance(uids, dtype=np.float64, apply_real_world_transform=False)
        want = np.stack([expected[u] for u in uids])
        hd_summary["shape"] = list(got.shape)
        hd_summary["max_abs_error"] = float(np.abs(got - want).max())
        hd_summary["stored_vs_expected_max_abs_error"] = float(np.abs(stored - want).max())
        hd_summary["value_range"] = [float(got.min()), float(got.max())]
        if hd_summary["max_abs_error"] > TOL:
            problems.append(f"highdicom values differ: max abs error {hd_summary['max_abs_error']:.3g}")
    except Exception as e:  # noqa: BLE001 - report any read-back failure
        hd_summary["error"] = f"{type(e).__name__}: {e}"
        problems.append(f"highdicom get_pixels_by_source_instance failed: {e}")
    summary["highdicom"] = hd_summary

    raw = raw_check(ds, expected, sources)
    summary["raw"] = {k: v for k, v in raw.items() if k != "problems"}
    problems.extend(raw["problems"])

    vol_summary = {}
    try:
        vol = pm.get_volume()
        vol_summary["shape"] = list(vol.shape)
        vol_summary["spacing"] = [round(float(s), 6) for s in vol.spacing]
        src_vol = hd.get_volume_from_series(list(sources.values()))
        vol_summary["geometry_equals_source"] = bool(vol.geometry_equal(src_vol, tol=1e-3))
    except Exception as e:  # noqa: BLE001 - informational only
        vol_summary["error"] = f"{type(e).__name__}: {e}"
    summary["volume"] = vol_summary

    summary["ok"] = not problems
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
