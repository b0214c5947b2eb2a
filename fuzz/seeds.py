"""Seed inputs for Dokuei's fuzz targets, from the real test files (pydicom's and
pydicom-data's, unpacked by scripts/testdata.sh). Nothing here is committed.

usage: seeds.py TESTDATA_DIR OUT_DIR

OUT_DIR/<target>/ gets: whole files (index_header, open_decode), the first frame's compressed
stream behind the 5-byte shape prefix the codec targets read (decode_*), the deflated data set
(decode_deflate), DICOMDIRs (dicomdir) and small zip archives of test files (zip).
"""

import glob
import io
import os
import struct
import sys
import zipfile

import pydicom
from pydicom.encaps import generate_frames

testdata, out = sys.argv[1], sys.argv[2]
FAMILIES = {
    "decode_jpeg": ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"],
    "decode_jpegls": ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"],
    "decode_j2k": ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"],
    "decode_jpegxl": ["1.2.840.10008.1.2.4.110", "1.2.840.10008.1.2.4.111", "1.2.840.10008.1.2.4.112"],
    "decode_rle": ["1.2.840.10008.1.2.5"],
}
MAX_SEED = 256 * 1024


def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)


files = sorted(glob.glob(os.path.join(testdata, "**", "*"), recursive=True))
small = [f for f in files if os.path.isfile(f) and os.path.getsize(f) <= MAX_SEED]
for n, path in enumerate(small):
    name = f"{n:04d}-{os.path.basename(path)}"
    with open(path, "rb") as f:
        raw = f.read()
    if os.path.basename(path) == "DICOMDIR":
        put("dicomdir", name, raw)
        continue
    put("index_header", name, raw)
    put("open_decode", name, raw)
    try:
        ds = pydicom.dcmread(path, force=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
    except Exception:  # noqa: BLE001 - broken files are seeds for the whole-file targets only
        continue
    if ts == "1.2.840.10008.1.2.1.99":
        # The deflated data set starts where the meta group ends.
        start = 132 + 12 + struct.unpack_from("<I", raw, 140)[0]
        put("decode_deflate", name, raw[start:])
    for target, syntaxes in FAMILIES.items():
        if ts not in syntaxes or "PixelData" not in ds:
            continue
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
            stream = next(generate_frames(ds.PixelData, number_of_frames=frames))
        except Exception:  # noqa: BLE001
            continue
        bits = {8: 0, 12: 1, 16: 2}.get(int(ds.get("BitsStored", 8)), 2)
        samples = int(ds.get("SamplesPerPixel", 1))
        prefix = struct.pack("<HHB", int(ds.Rows) - 1, int(ds.Columns) - 1, bits * 2 + (samples == 3))
        put(target, name, prefix + stream)

# A few small archives: one file, several files, a folder entry and a non-DICOM entry.
dicoms = [f for f in small if f.endswith(".dcm")][:40]
for k in range(0, len(dicoms), 8):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("study/", b"")
        z.writestr("study/README.txt", b"not DICOM")
        for f in dicoms[k : k + 8]:
            z.write(f, "study/" + os.path.basename(f))
    put("zip", f"archive{k // 8}.zip", buf.getvalue())
for target in sorted(os.listdir(out)):
    print(f"{target}: {len(os.listdir(os.path.join(out, target)))} seed(s)")
