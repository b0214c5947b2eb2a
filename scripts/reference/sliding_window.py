"""numpy + onnxruntime reference for Dokuei's 3D patch inference (crates/infer/src/patches.rs).

usage: sliding_window.py MANIFEST.toml MODEL.onnx SLICES ROWS COLUMNS IN.f32 OUT.f32

IN.f32 holds the stack's modality values (float32, slices × rows × columns, in Dokuei's display
order). The manifest's window and normalisation are applied, the stack is covered by patches
(`preprocess.patch`, `overlap`; zeros past the edges), each patch is run on its own, the outputs
are averaged with Gaussian (σ = patch / 8) or constant weights, and a sigmoid is applied when the
outputs are logits. OUT.f32 receives labels × slices × rows × columns, float32. In-plane resizing
is not part of this reference (it is checked by preprocess.py).
"""

import math
import sys
import tomllib

import numpy as np
import onnxruntime as ort

manifest_path, model_path, d, h, w, src, dst = sys.argv[1:]
d, h, w = int(d), int(h), int(w)
with open(manifest_path, "rb") as f:
    m = tomllib.load(f)
p = m["preprocess"]
assert "resize" not in p and "pixel_spacing_mm" not in p, "this reference does not resize"
windows = p.get("windows", [])
values = np.fromfile(src, dtype=np.float32).reshape(d, h, w).astype(np.float64)
channels = []
for win in windows or [None]:
    if win is None and "clip" in p:
        lo, hi = p["clip"]
    elif win is None:
        channels.append(values.astype(np.float32))
        continue
    else:
        lo, hi = win["center"] - win["width"] / 2, win["center"] + win["width"] / 2
    unit = (np.clip(values, lo, hi) - lo) / (hi - lo)
    norm = p.get("normalise", {"kind": "none"})
    if norm["kind"] == "min_max":
        x = unit
    elif norm["kind"] == "mean_std":
        x = (unit - norm["mean"]) / norm["std"]
    else:
        x = np.clip(values, lo, hi)
    channels.append(x.astype(np.float32))
volume = np.stack(channels)  # C, D, H, W
patch = p["patch"]
overlap = p.get("overlap", 0.25)
blend = p.get("blend", "gaussian")


def starts(n, size):
    if n <= size:
        return [0]
    # Halves round away from zero, as Rust's f64::round (Python's round() goes to even).
    stride = max(1, math.floor(size * (1 - overlap) + 0.5))
    s = list(range(0, n - size, stride))
    return s + [n - size]


def axis_weights(n):
    if blend == "constant":
        return np.ones(n)
    i = np.arange(n) + 0.5 - n / 2
    return np.exp(-i * i / (2 * (0.125 * n) ** 2))


weights = (
    axis_weights(patch[0])[:, None, None] * axis_weights(patch[1])[None, :, None] * axis_weights(patch[2])[None, None, :]
).astype(np.float32)
pd, ph, pw = patch
padded = np.zeros((volume.shape[0], max(d, pd), max(h, ph), max(w, pw)), dtype=np.float32)
padded[:, :d, :h, :w] = volume
options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
input_name = m["input"]["name"]
# A graph with a fixed batch size gets the patch in the first place and zeros in the others.
fixed = session.get_inputs()[0].shape[0]
batch = fixed if isinstance(fixed, int) and fixed > 0 else 1
output_name = m["output"]["names"][0]
labels = len(m["labels"])
sums = np.zeros((labels,) + padded.shape[1:], dtype=np.float64)
weight_sums = np.zeros(padded.shape[1:], dtype=np.float64)
for z in starts(d, pd):
    for y in starts(h, ph):
        for x in starts(w, pw):
            block = np.zeros((batch,) + padded.shape[:1] + tuple(patch), dtype=np.float32)
            block[0] = padded[:, z : z + pd, y : y + ph, x : x + pw]
            (out,) = session.run([output_name], {input_name: block})
            sums[:, z : z + pd, y : y + ph, x : x + pw] += out[0] * weights
            weight_sums[z : z + pd, y : y + ph, x : x + pw] += weights
result = (sums / weight_sums)[:, :d, :h, :w]
if m["output"].get("logits", False):
    result = 1 / (1 + np.exp(-result))
result.astype(np.float32).tofile(dst)
