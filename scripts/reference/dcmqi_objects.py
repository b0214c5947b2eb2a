"""DICOM SEG (binary and labelmap) and SR TID 1500 written by dcmqi (PyPI) from a CT series of
the corpus, for the decoding tally: objects another tool wrote, read back by Dokuei.

usage: dcmqi_objects.py CT_SERIES_DIR OUT_DIR

The segmentation marks the brightest 30% of the CT's voxels (one segment); the SR holds one
volume measurement of that segment.
"""

import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import pydicom

src, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
bin_dir = os.path.dirname(sys.executable)
os.makedirs(out, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "ct", "-o", tmp, src], check=True, capture_output=True)
    ct = nib.load(os.path.join(tmp, "ct.nii"))
    values = np.asanyarray(ct.dataobj)
    seg = (values > np.percentile(values, 70)).astype(np.uint8)
    nib.save(nib.Nifti1Image(seg, ct.affine), os.path.join(tmp, "seg.nii"))
    code = lambda v, s, m: {"CodeValue": v, "CodingSchemeDesignator": s, "CodeMeaning": m}
    meta = {
        "ContentCreatorName": "Dokuei^Tests",
        "ClinicalTrialSeriesID": "1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "Segmentation",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "ContentLabel": "SEG",
        "ContentDescription": "dcmqi test segmentation",
        "segmentAttributes": [[{
            "labelID": 1,
            "SegmentDescription": "Bright",
            "SegmentAlgorithmType": "MANUAL",
            "SegmentedPropertyCategoryCodeSequence": code("91723000", "SCT", "Anatomical Structure"),
            "SegmentedPropertyTypeCodeSequence": code("12738006", "SCT", "Brain"),
            "recommendedDisplayRGBValue": [255, 0, 0],
        }]],
    }
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump(meta, f)
    for kind in ["binary", "labelmap"]:
        subprocess.run([
            os.path.join(bin_dir, "itkimage2segimage"), "--segmentationType", kind,
            "--inputImageList", os.path.join(tmp, "seg.nii"), "--inputDICOMDirectory", src,
            "--inputMetadata", os.path.join(tmp, "meta.json"),
            "--outputDICOM", os.path.join(out, f"seg_{kind}.dcm"),
        ], check=True, capture_output=True)
    seg_dir = os.path.join(tmp, "seg")
    os.makedirs(seg_dir)
    os.link(os.path.join(out, "seg_binary.dcm"), os.path.join(seg_dir, "seg.dcm"))
    files = sorted(os.listdir(src))
    first = pydicom.dcmread(os.path.join(src, files[0]))
    seg_ds = pydicom.dcmread(os.path.join(out, "seg_binary.dcm"))
    sr = {
        "SeriesDescription": "Measurements",
        "SeriesNumber": "1001",
        "InstanceNumber": "1",
        "compositeContext": ["seg.dcm"],
        "imageLibrary": files,
        "observerContext": {"ObserverType": "PERSON", "PersonObserverName": "Tests^Dokuei"},
        "VerificationFlag": "UNVERIFIED",
        "CompletionFlag": "COMPLETE",
        "activitySession": "1",
        "timePoint": "1",
        "Measurements": [{
            "TrackingIdentifier": "Region1",
            "ReferencedSegment": 1,
            "SourceSeriesForImageSegmentation": str(first.SeriesInstanceUID),
            "segmentationSOPInstanceUID": str(seg_ds.SOPInstanceUID),
            "Finding": code("12738006", "SCT", "Brain"),
            "measurementItems": [{
                "value": str(float(seg.sum())),
                "quantity": code("118565006", "SCT", "Volume"),
                "units": code("mm3", "UCUM", "cubic millimeter"),
            }],
        }],
    }
    with open(os.path.join(tmp, "sr.json"), "w") as f:
        json.dump(sr, f)
    subprocess.run([
        os.path.join(bin_dir, "tid1500writer"), "--inputMetadata", os.path.join(tmp, "sr.json"),
        "--inputImageLibraryDirectory", src, "--inputCompositeContextDirectory", seg_dir,
        "--outputDICOM", os.path.join(out, "sr_tid1500.dcm"),
    ], check=True, capture_output=True)
print("\n".join(sorted(os.listdir(out))))
