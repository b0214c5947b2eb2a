"""Files in transfer syntaxes no registry package ships a DICOM sample of: corpus images
re-encoded losslessly, for the decoding tests.

- High-Throughput JPEG 2000 by OpenJPH, under 1.2.840.10008.1.2.4.201 (lossless only) and .203;
- JPEG XL by libjxl, under 1.2.840.10008.1.2.4.110 (JPEG XL Lossless) and .112 (JPEG XL);

both through imagecodecs (PyPI), written with pydicom.

usage: reencoded_objects.py TESTDATA_DIR OUT_DIR

OUT_DIR/sources.json maps each file written to the corpus file it was made from: the encoding is
lossless, so both must decode to the same stored values (pydicom decodes HTJ2K, not JPEG XL).
"""

import json
import os
import sys

import imagecodecs
import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import UID

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
# Signed 16-bit CT and MR, unsigned 16-bit MR (1024²), 8-bit RGB.
SOURCES = [
    "pydicom/CT_small.dcm",
    "pydicom/MR_small.dcm",
    "pydicom-data/MR2_UNCI.dcm",
    "pydicom-data/SC_rgb.dcm",
]


def htj2k(frame):
    return imagecodecs.htj2k_encode(frame, reversible=True)


def jpegxl(frame):
    return imagecodecs.jpegxl_encode(frame, lossless=True, usecontainer=False)


ENCODINGS = {
    "htj2k_lossless": ("1.2.840.10008.1.2.4.201", htj2k),
    "htj2k": ("1.2.840.10008.1.2.4.203", htj2k),
    "jpegxl_lossless": ("1.2.840.10008.1.2.4.110", jpegxl),
    "jpegxl": ("1.2.840.10008.1.2.4.112", jpegxl),
}
sources = {}
for name in SOURCES:
    path = os.path.join(src, name)
    if not os.path.exists(path):
        continue
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    stack = arr if frames > 1 else arr[np.newaxis, ...]
    for label, (ts, encode) in ENCODINGS.items():
        # libjxl takes unsigned samples only; how DICOM maps signed ones to JPEG XL is left out.
        if encode is jpegxl and arr.dtype.kind == "i":
            continue
        fragments = [encode(np.ascontiguousarray(f)) for f in stack]
        out_ds = ds.copy()
        out_ds.PixelData = encapsulate(fragments)
        out_ds["PixelData"].VR = "OB"
        out_ds["PixelData"].is_undefined_length = True
        # pydicom 3.0 refuses to write the JPEG XL syntaxes it does not know: the file is
        # written under an encapsulated syntax whose UID has the same length (MPEG2 MP@ML) and
        # the UID is swapped in the bytes.
        stand_in = "1.2.840.10008.1.2.4.100" if ts.startswith("1.2.840.10008.1.2.4.11") else ts
        out_ds.file_meta.TransferSyntaxUID = UID(stand_in)
        if "PlanarConfiguration" in out_ds:
            out_ds.PlanarConfiguration = 0
        stem = f"{os.path.splitext(os.path.basename(name))[0]}_{label}.dcm"
        target = os.path.join(out, stem)
        out_ds.save_as(target, enforce_file_format=True)
        if stand_in != ts:
            with open(target, "rb") as f:
                data = f.read()
            assert len(stand_in) == len(ts) and data.count(stand_in.encode()) == 1
            with open(target, "wb") as f:
                f.write(data.replace(stand_in.encode(), ts.encode()))
        sources[stem] = name
with open(os.path.join(out, "sources.json"), "w") as f:
    json.dump(sources, f, indent=1)
print("\n".join(sorted(sources)))
