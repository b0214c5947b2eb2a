"""numpy reference for Dokuei's declared pre-processing (crates/infer/src/preprocess.rs).

usage: preprocess.py MANIFEST.toml ROWS COLUMNS CHANNELS IN.f32 OUT.f32

IN.f32 holds one or CHANNELS slices of modality values (float32, row-major); OUT.f32 receives
the model input in the manifest's layout (batch 1), float32.
"""

import sys
import tomllib

import numpy as np

manifest_path, rows, cols, channels, src, dst = sys.argv[1:]
rows, cols, channels = int(rows), int(cols), int(channels)
with open(manifest_path, "rb") as f:
    m = tomllib.load(f)
p = m.get("preprocess", {})
layout = m["input"]["layout"]
values = np.fromfile(src, dtype=np.float32).reshape(-1, rows, cols).astype(np.float64)

windows = p.get("windows", [])
if windows:
    ranges = [(w["center"] - w["width"] / 2, w["center"] + w["width"] / 2) for w in windows]
    if len(ranges) == 1:
        ranges = ranges * channels
elif "clip" in p:
    ranges = [tuple(p["clip"])] * channels
else:
    ranges = [None] * channels
norm = p.get("normalise", {"kind": "none"})


def resize(img, out_r, out_c):
    r, c = img.shape
    if (r, c) == (out_r, out_c):
        return img

    def axis(n_out, n_in):
        pos = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        i0 = np.minimum(np.floor(pos).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, pos - i0

    y0, y1, fy = axis(out_r, r)
    x0, x1, fx = axis(out_c, c)
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy[:, None]) + bottom * fy[:, None]


out_r, out_c = p.get("resize", [rows, cols])
planes = []
for k in range(channels):
    s = values[k] if len(values) == channels else values[0]
    if ranges[k] is not None:
        lo, hi = ranges[k]
        clipped = np.clip(s, lo, hi)
        unit = (clipped - lo) / (hi - lo)
        kind = norm.get("kind", "none")
        if kind == "min_max":
            s = unit
        elif kind == "mean_std":
            s = (unit - norm["mean"]) / norm["std"]
        else:
            s = clipped
    # Dokuei maps to float32 before resizing; do the same so rounding matches.
    planes.append(resize(s.astype(np.float32).astype(np.float64), out_r, out_c))
stack = np.stack(planes)  # C, H, W
out = stack if layout == "NCHW" else np.transpose(stack, (1, 2, 0))
out.astype(np.float32).tofile(dst)
