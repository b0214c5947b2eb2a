"""How dcm2niix and SimpleITK (GDCM) group a folder's DICOM files into volumes, for Dokuei's
grouping test.

usage: grouping.py OUT.json DIR...

For each DIR: {"dcm2niix": {series_uid: [volume, ...]}, "gdcm": {series_uid: [[file, ...], ...]},
"dcm2niix_log": "..."}. A dcm2niix volume is the list of its slices' first-voxel positions in
patient coordinates (LPS, mm), in the order dcm2niix stacked them; a 4D output counts as one
volume per time point. dcm2niix's derived copies (`_Eq` for equalised spacing, `_Tilt` for gantry
tilt correction) are left out: they are resamplings, not groupings. A GDCM list is
`GetGDCMSeriesFileNames` for one series id, in GDCM's order; "gdcm_errors" names the series
GDCM failed on.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
import SimpleITK as sitk

sitk.ProcessObject.SetGlobalWarningDisplay(False)


def dcm2niix(folder):
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            ["dcm2niix", "-b", "n", "-z", "n", "-x", "n", "-v", "0", "-f", "%j", "-o", tmp, folder],
            capture_output=True,
            text=True,
        )
        for name in sorted(os.listdir(tmp)):
            if not name.endswith(".nii") or re.search(r"_(Eq|Tilt)", name):
                continue
            # The name is the series UID (`-f %j`) and suffixes dcm2niix adds (`_e2`, `_ph`,
            # `_i00001`, and a, b, … when names collide); a UID is digits and dots.
            uid = re.match(r"[0-9.]*", name).group(0).rstrip(".")
            img = nib.load(os.path.join(tmp, name))
            shape = img.shape + (1,) * (4 - len(img.shape))
            affine = img.affine
            slices = []
            for k in range(shape[2]):
                ras = affine @ np.array([0.0, 0.0, float(k), 1.0])
                slices.append([-ras[0], -ras[1], ras[2]])
            for _ in range(shape[3]):
                out.setdefault(uid, []).append(slices)
        return out, run.stdout + run.stderr


def gdcm(folder):
    reader = sitk.ImageSeriesReader()
    out = {}
    # GetGDCMSeriesIDs looks at one folder only: ask each folder, then let GDCM gather each
    # series from the whole tree.
    ids = set()
    for here, _, files in os.walk(folder):
        if files:
            try:
                ids.update(reader.GetGDCMSeriesIDs(here))
            except RuntimeError:  # no series in this folder
                pass
    errors = {}
    for sid in sorted(ids):
        try:
            files = reader.GetGDCMSeriesFileNames(folder, sid, recursive=True)
        except RuntimeError as e:  # GDCM gives up on some files of the folder
            errors[sid] = str(e).strip().splitlines()[-1]
            continue
        out.setdefault(sid, []).append([os.path.abspath(f) for f in files])
    return out, errors


result = {}
for folder in sys.argv[2:]:
    volumes, log = dcm2niix(folder)
    lists, errors = gdcm(folder)
    result[folder] = {"dcm2niix": volumes, "gdcm": lists, "gdcm_errors": errors, "dcm2niix_log": log}
with open(sys.argv[1], "w") as f:
    json.dump(result, f, indent=1)
