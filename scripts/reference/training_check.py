"""Checks a Dokuei training-data export with nibabel and pydicom, independently of Dokuei.

    python training_check.py OUT

For every case in OUT/provenance.json:
  - nibabel reads the image and both label maps; their shape is columns x rows x slices;
  - sform and qform both have code 1 (scanner) and agree;
  - the affine is DICOM's geometry in RAS+: its first two columns are the (de-identified)
    images' row and column directions times the column and row spacing, and voxel (0, 0, k)
    lands on one image's Image Position (Patient) for every k;
  - the voxels equal the DICOM pixels through the modality LUT (HU), slice by slice;
  - the final label map is set exactly where the case's SEG of final labels (in dicom/) has a
    segment, frame by frame, through the SEG's references to the images.
Prints a JSON summary; exits 1 on the first kind of disagreement found (all are listed).
"""

import json
import pathlib
import sys

import nibabel as nib
import numpy as np
import pydicom

SEG = "1.2.840.10008.5.1.4.1.1.66.4"


def ras(v):
    return np.array([-v[0], -v[1], v[2]], dtype=float)


def seg_frames(seg):
    """(referenced SOP Instance UID, segment number, mask) per frame."""
    pixels = seg.pixel_array
    if pixels.ndim == 2:
        pixels = pixels[None]
    out = []
    for i, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ref = fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber
        out.append((ref, int(number), pixels[i] != 0))
    return out


def check_case(out, case, entry, errors):
    name = case["case"]
    img = nib.load(out / entry["image"])
    fin = nib.load(out / entry["label"])
    orig = nib.load(out / entry["label_original"])
    shape = (case["columns"], case["rows"], case["slices"])
    for what, im in (("image", img), ("final", fin), ("original", orig)):
        if im.shape != shape:
            errors.append(f"{name} {what}: shape {im.shape}, expected {shape}")
            return 0
        s_form, s_code = im.get_sform(coded=True)
        q_form, q_code = im.get_qform(coded=True)
        if int(s_code) != 1 or int(q_code) != 1:
            errors.append(f"{name} {what}: sform/qform codes {s_code}/{q_code}, expected 1/1")
        if s_form is None or q_form is None or not np.allclose(s_form, q_form, atol=1e-3):
            errors.append(f"{name} {what}: qform {q_form} differs from sform {s_form}")
    if fin.get_data_dtype() != np.uint8:
        errors.append(f"{name}: label type {fin.get_data_dtype()}, expected uint8")
    affine = img.affine
    folder = out / case["dicom"]
    images = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    images = [d for d in images if d.SOPClassUID != SEG]
    if len(images) != case["slices"]:
        errors.append(f"{name}: {len(images)} DICOM images in {case['dicom']}, expected {case['slices']}")
        return 0
    first = images[0]
    iop = np.array(first.ImageOrientationPatient, dtype=float)
    row_spacing, col_spacing = (float(x) for x in first.PixelSpacing)
    expected_i = ras(iop[:3] * col_spacing)
    expected_j = ras(iop[3:] * row_spacing)
    if not np.allclose(affine[:3, 0], expected_i, atol=1e-4) or not np.allclose(
        affine[:3, 1], expected_j, atol=1e-4
    ):
        errors.append(f"{name}: affine columns {affine[:3, :2].T} do not match {expected_i}, {expected_j}")
    data = np.asarray(img.dataobj)
    final = np.asarray(fin.dataobj)
    by_uid = {}
    checked = 0
    for k in range(case["slices"]):
        p = affine @ np.array([0.0, 0.0, float(k), 1.0])
        matches = [
            d for d in images if np.allclose(ras(np.array(d.ImagePositionPatient, dtype=float)), p[:3], atol=1e-3)
        ]
        if len(matches) != 1:
            errors.append(f"{name}: voxel (0, 0, {k}) at {p[:3]} matches {len(matches)} images")
            continue
        d = matches[0]
        by_uid[d.SOPInstanceUID] = k
        hu = d.pixel_array.astype(np.float64) * float(getattr(d, "RescaleSlope", 1)) + float(
            getattr(d, "RescaleIntercept", 0)
        )
        if not np.array_equal(data[:, :, k].T.astype(np.float64), hu):
            errors.append(f"{name}: slice {k} voxels differ from {d.SOPInstanceUID}'s pixels")
        checked += hu.size
    # The SEG of final labels that references these images.
    segs = [
        pydicom.dcmread(p)
        for p in (out / case["dicom"]).parent.parent.rglob("*.dcm")
        if pydicom.dcmread(p, stop_before_pixels=True).SOPClassUID == SEG
    ]
    expected = np.zeros(final.shape, dtype=bool)
    used = 0
    for seg in segs:
        frames = seg_frames(seg)
        if not frames or frames[0][0] not in by_uid:
            continue
        used += 1
        for ref, _, mask in frames:
            if ref not in by_uid:
                errors.append(f"{name}: the SEG references {ref}, not an image of the case")
                continue
            expected[:, :, by_uid[ref]] |= mask.T
    if used != 1 and final.any():
        errors.append(f"{name}: {used} SEG objects reference the case, expected 1")
    if not np.array_equal(final != 0, expected):
        diff = int(np.count_nonzero((final != 0) != expected))
        errors.append(f"{name}: the final labels differ from the SEG in {diff} voxel(s)")
    return checked


def main():
    out = pathlib.Path(sys.argv[1])
    provenance = json.loads((out / "provenance.json").read_text())
    datalist = json.loads((out / "monai_datalist.json").read_text())
    entries = {e["case"]: e for split in ("training", "validation", "test") for e in datalist[split]}
    errors = []
    voxels = 0
    labelled = 0
    original = 0
    for case in provenance["cases"]:
        entry = entries.get(case["case"])
        if entry is None:
            errors.append(f"{case['case']} is not in monai_datalist.json")
            continue
        voxels += check_case(out, case, entry, errors)
        labelled += int(np.count_nonzero(np.asarray(nib.load(out / entry["label"]).dataobj)))
        original += int(np.count_nonzero(np.asarray(nib.load(out / entry["label_original"]).dataobj)))
    print(
        json.dumps(
            {
                "nibabel": nib.__version__,
                "cases": len(provenance["cases"]),
                "voxels_checked": voxels,
                "final_label_voxels": labelled,
                "original_label_voxels": original,
                "errors": errors,
            }
        )
    )
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
