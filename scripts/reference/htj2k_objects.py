"""High-Throughput JPEG 2000 files for the decoding tally: images of the corpus re-encoded
losslessly by OpenJPH (through imagecodecs, PyPI) and written with pydicom under
1.2.840.10008.1.2.4.201 (lossless only) and .203 (HTJ2K). No HTJ2K DICOM file ships in a
registry package; these are made from ones that do.

usage: htj2k_objects.py TESTDATA_DIR OUT_DIR

The decoding tally compares Dokuei with pydicom on them (pydicom decodes HTJ2K through
pylibjpeg-openjpeg); both must give the source's stored values, since the encoding is lossless.
"""

import os
import sys

import imagecodecs
import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
# Signed 16-bit CT, unsigned 16-bit MR, 8-bit RGB.
SOURCES = ["pydicom/CT_small.dcm", "pydicom/MR_small.dcm", "pydicom-data/SC_rgb.dcm"]
SYNTAXES = {"lossless": "1.2.840.10008.1.2.4.201", "htj2k": "1.2.840.10008.1.2.4.203"}
for name in SOURCES:
    path = os.path.join(src, name)
    if not os.path.exists(path):
        continue
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    stack = arr if frames > 1 else arr[np.newaxis, ...]
    for label, ts in SYNTAXES.items():
        fragments = [
            imagecodecs.htj2k_encode(np.ascontiguousarray(f), reversible=True) for f in stack
        ]
        out_ds = ds.copy()
        out_ds.PixelData = encapsulate(fragments)
        out_ds["PixelData"].VR = "OB"
        out_ds["PixelData"].is_undefined_length = True
        out_ds.file_meta.TransferSyntaxUID = UID(ts)
        if "PlanarConfiguration" in out_ds:
            out_ds.PlanarConfiguration = 0
        stem = f"{os.path.splitext(os.path.basename(name))[0]}_{label}"
        out_ds.save_as(os.path.join(out, stem + ".dcm"), enforce_file_format=True)
print("\n".join(sorted(os.listdir(out))))
