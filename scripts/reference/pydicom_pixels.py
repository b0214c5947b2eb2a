"""Stored pixel values of DICOM files according to pydicom, for Dokuei's decoding tests.

usage: pydicom_pixels.py OUT_DIR FILE...

Writes OUT_DIR/index.json: {file: {"ok": true, "shape": [...], "dtype": "...", "data": "N.bin",
"photometric": "...", "transfer_syntax": "..."} or {"ok": false, "error": "..."}}, and each
array as little-endian int64 in N.bin. pydicom's pixel_array is frames × rows × columns
(× samples), stored values (no rescale), YCbCr converted to RGB.
"""

import json
import os
import sys

import numpy as np
import pydicom

out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
index = {}
for n, path in enumerate(sys.argv[2:]):
    entry = {}
    try:
        ds = pydicom.dcmread(path, force=True)
        if "PixelData" not in ds:
            entry = {"ok": False, "error": "no pixel data"}
        else:
            arr = ds.pixel_array
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            if frames == 1:
                arr = arr[np.newaxis, ...]
            name = f"{n}.bin"
            arr.astype("<i8").tofile(os.path.join(out_dir, name))
            entry = {
                "ok": True,
                "shape": list(arr.shape),
                "dtype": str(arr.dtype),
                "data": name,
                "photometric": str(ds.get("PhotometricInterpretation", "")),
                "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else "",
            }
    except Exception as e:  # noqa: BLE001 - any failure is data for the test
        entry = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    index[path] = entry
with open(os.path.join(out_dir, "index.json"), "w") as f:
    json.dump(index, f, indent=1)
