"""Checks Dokuei's burned-in text cleaning with pydicom as the independent reader.

Reads a JSON list on stdin, one entry per cleaned file:
  {"input": PATH, "output": PATH, "regions": [[x, y, w, h], ...], "tolerance": N}
Both files are decoded by pydicom (its own codecs: pylibjpeg, openjpeg, RLE). For each, prints
one JSON line: the output's Burned In Annotation, transfer syntax and Photometric
Interpretation; whether every frame's region pixels hold one fill value and what it is as
shown (darkest of the frame for greyscale, black for RGB, the palette's darkest entry); and the
largest difference outside the regions between input and output (0 for lossless inputs).
"""

import json
import sys

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut


def frames(ds):
    arr = ds.pixel_array
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if n == 1:
        arr = arr[np.newaxis]
    return arr


def main():
    for job in json.load(sys.stdin):
        src = pydicom.dcmread(job["input"])
        out = pydicom.dcmread(job["output"])
        a = frames(src).astype(np.int64)
        b = frames(out).astype(np.int64)
        result = {
            "output": job["output"],
            "burned_in": str(out.get("BurnedInAnnotation", "")),
            "transfer_syntax": str(out.file_meta.TransferSyntaxUID),
            "photometric": str(out.PhotometricInterpretation),
            "shape_equal": a.shape == b.shape,
            "codes": [str(c.CodeValue) for c in out.get("DeidentificationMethodCodeSequence", [])],
        }
        if a.shape != b.shape:
            print(json.dumps(result))
            continue
        mask = np.zeros(b.shape[1:3], dtype=bool)
        for x, y, w, h in job["regions"]:
            mask[y : y + h, x : x + w] = True
        photometric = result["photometric"]
        region_ok = True
        fill_darkest = True
        for f in range(b.shape[0]):
            region = b[f][mask]
            if region.size == 0:
                continue
            first = region.reshape(-1, *b.shape[3:])[0]
            region_ok &= bool(np.all(region == first))
            if photometric == "RGB":
                fill_darkest &= bool(np.all(first == 0))
            elif photometric == "MONOCHROME2":
                fill_darkest &= int(first) == int(b[f].min())
            elif photometric == "MONOCHROME1":
                fill_darkest &= int(first) == int(b[f].max())
            elif photometric == "PALETTE COLOR":
                rgb = apply_color_lut(b[f].astype(np.uint16), out).astype(np.int64)
                lut = apply_color_lut(np.arange(0, 65536 if out.BitsAllocated > 8 else 256, dtype=np.uint16), out)
                darkest = int(lut.astype(np.int64).sum(axis=-1).min())
                fill_darkest &= int(rgb[mask][0].sum()) == darkest
        outside = ~mask
        diff = np.abs(a[:, outside] - b[:, outside])
        result.update(
            {
                "region_uniform": region_ok,
                "fill_darkest": fill_darkest,
                "max_outside_diff": int(diff.max()) if diff.size else 0,
                "mean_outside_diff": float(diff.mean()) if diff.size else 0.0,
                "region_pixels_changed": int(np.count_nonzero(a[:, mask] != b[:, mask])),
            }
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
