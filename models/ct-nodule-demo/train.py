"""Recipe for the ct-nodule-demo model: trains it on synthetic chest CT, exports model.onnx,
writes manifest.toml (with the file's SHA-256) and the metrics in MODEL_CARD.md.

usage: python train.py DOKUEI_BINARY [--work DIR]

Runs by hand, once (`.dokuei/venv/bin/python models/ct-nodule-demo/train.py
~/.cache/dokuei/target/debug/dokuei`): the committed model.onnx is its output. Needs numpy,
pydicom, onnx and onnxruntime (the project's reference venv) — no deep-learning framework.

The model is a per-pixel classifier on multi-scale local means of the lung-windowed slice:
features x, mean3, mean7, mean15, mean31 (ONNX AveragePool, stride 1, same size), then a
1×1 convolution to 8 hidden units, ReLU, a 1×1 convolution to 1 and a sigmoid. The fixed
pooling sizes are the architecture; the 57 weights of the two 1×1 convolutions are trained
with Adam on binary cross-entropy. A nodule is bright at small scales and surrounded by dark
lung at large ones; the chest wall and mediastinum are bright at every scale.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import pydicom
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../sample-studies"))
import generate  # noqa: E402  (the sample-study generator: one phantom definition)

POOLS = [3, 7, 15, 31]
HIDDEN = 8
WINDOW = (-600.0, 1500.0)  # lung window: centre, width
SIZE, SLICES, NODULES, NOISE = 256, 60, 8, 20.0
TRAIN_SEEDS = range(1000, 1012)
HELDOUT_SEEDS = range(2000, 2008)  # never seen in training; the model card reports these
THRESHOLD, MIN_VOLUME_MM3 = 0.5, 15.0
VERSION = "1.0.0"


def load_series(folder):
    """HU volume (slices ascending in z), slice z positions, pixel spacing."""
    ds = [pydicom.dcmread(os.path.join(folder, f)) for f in os.listdir(folder)]
    ds.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    vol = np.stack([d.pixel_array.astype(np.float32) * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in ds])
    z = np.array([float(d.ImagePositionPatient[2]) for d in ds])
    origin = np.array([float(v) for v in ds[0].ImagePositionPatient[:2]])
    return vol, z, origin, float(ds[0].PixelSpacing[0])


def window(vol):
    c, w = WINDOW
    lo, hi = c - w / 2, c + w / 2
    return ((np.clip(vol, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def box_mean(img, k):
    """Mean over a k×k box clipped at the edges: ONNX AveragePool, pads k//2,
    count_include_pad=0."""
    r = k // 2
    h, w = img.shape
    c = np.zeros((h + 1, w + 1), dtype=np.float64)
    c[1:, 1:] = np.cumsum(np.cumsum(img, 0), 1)
    y0 = np.clip(np.arange(h) - r, 0, h)
    y1 = np.clip(np.arange(h) + r + 1, 0, h)
    x0 = np.clip(np.arange(w) - r, 0, w)
    x1 = np.clip(np.arange(w) + r + 1, 0, w)
    s = c[y1][:, x1] - c[y0][:, x1] - c[y1][:, x0] + c[y0][:, x0]
    n = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return (s / n).astype(np.float32)


def features(slice_):
    return np.stack([slice_] + [box_mean(slice_, k) for k in POOLS], axis=-1)  # H, W, 5


def truth_mask(z, origin, spacing, shape, nodules):
    h, w = shape
    ys = origin[1] + spacing * np.arange(h)
    xs = origin[0] + spacing * np.arange(w)
    m = np.zeros(shape, dtype=bool)
    for n in nodules:
        d2 = (xs[None, :] - n["x"]) ** 2 + (ys[:, None] - n["y"]) ** 2 + (z - n["z"]) ** 2
        m |= d2 <= n["radius"] ** 2
    return m


def make_studies(dokuei, work, seeds):
    studies = []
    for seed in seeds:
        out = os.path.join(work, f"study-{seed}")
        if not os.path.exists(os.path.join(out, "ground_truth.json")):
            generate.generate(dokuei, out, seed, SLICES, SIZE, NODULES, NOISE, f"training phantom {seed}")
        with open(os.path.join(out, "ground_truth.json")) as f:
            studies.append((os.path.join(out, "series"), json.load(f)))
    return studies


def training_pixels(studies, rng):
    xs, ys = [], []
    for folder, truth in studies:
        vol, zs, origin, spacing = load_series(folder)
        win = window(vol)
        for k in range(len(zs)):
            f = features(win[k]).reshape(-1, 1 + len(POOLS))
            t = truth_mask(zs[k], origin, spacing, win[k].shape, truth["nodules"]).reshape(-1)
            pos = np.flatnonzero(t)
            neg = rng.choice(np.flatnonzero(~t), size=max(40, 3 * len(pos)), replace=False)
            # Hard negatives: bright pixels that are not nodules (lung walls, mediastinum edges).
            bright = np.flatnonzero(~t & (f[:, 0] > 0.6))
            hard = rng.choice(bright, size=min(len(bright), 40), replace=False) if len(bright) else bright
            idx = np.concatenate([pos, neg, hard])
            xs.append(f[idx])
            ys.append(t[idx].astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def forward(params, x):
    w1, b1, w2, b2 = params
    h = np.maximum(x @ w1 + b1, 0)
    return 1 / (1 + np.exp(-(h @ w2 + b2)))[:, 0]


def hard_negatives(studies, params, rng, per_slice=200):
    """Non-nodule pixels the current model marks (the spine, lung tips): added to training."""
    xs = []
    for folder, truth in studies:
        vol, zs, origin, spacing = load_series(folder)
        win = window(vol)
        for k in range(len(zs)):
            f = features(win[k]).reshape(-1, 1 + len(POOLS)).astype(np.float64)
            t = truth_mask(zs[k], origin, spacing, win[k].shape, truth["nodules"]).reshape(-1)
            wrong = np.flatnonzero(~t & (forward(params, f) >= 0.3))
            if len(wrong):
                xs.append(f[rng.choice(wrong, size=min(len(wrong), per_slice), replace=False)])
    return np.concatenate(xs) if xs else np.zeros((0, 1 + len(POOLS)))


def train(x, y, rng, steps=4000, lr=0.03, params=None):
    if params is None:
        params = [
            rng.normal(0, 0.5, (x.shape[1], HIDDEN)).astype(np.float64),
            np.zeros(HIDDEN),
            rng.normal(0, 0.5, (HIDDEN, 1)),
            np.zeros(1),
        ]
    w1, b1, w2, b2 = params
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    pos_weight = (len(y) - y.sum()) / max(y.sum(), 1)
    weight = np.where(y > 0.5, pos_weight, 1.0)[:, None]
    yy = y[:, None]
    for t in range(1, steps + 1):
        h = np.maximum(x @ w1 + b1, 0)
        p = 1 / (1 + np.exp(-(h @ w2 + b2)))
        g = weight * (p - yy) / len(y)
        grads = [None] * 4
        grads[3] = g.sum(0)
        grads[2] = h.T @ g
        gh = (g @ w2.T) * (h > 0)
        grads[1] = gh.sum(0)
        grads[0] = x.T @ gh
        for i, (p_, g_) in enumerate(zip(params, grads)):
            m[i] = 0.9 * m[i] + 0.1 * g_
            v[i] = 0.999 * v[i] + 0.001 * g_**2
            p_ -= lr * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
        if t % 1000 == 0:
            loss = -np.mean(weight[:, 0] * (y * np.log(p[:, 0] + 1e-7) + (1 - y) * np.log(1 - p[:, 0] + 1e-7)))
            print(f"step {t}: weighted loss {loss:.4f}", flush=True)
    return params


def export(params, path):
    w1, b1, w2, b2 = params
    nodes = [
        helper.make_node("AveragePool", ["image"], [f"mean{k}"], kernel_shape=[k, k], pads=[k // 2] * 4, count_include_pad=0)
        for k in POOLS
    ]
    nodes += [
        helper.make_node("Concat", ["image"] + [f"mean{k}" for k in POOLS], ["features"], axis=1),
        helper.make_node("Conv", ["features", "w1", "b1"], ["hidden_pre"]),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
        helper.make_node("Conv", ["hidden", "w2", "b2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    inits = [
        numpy_helper.from_array(w1.T.reshape(HIDDEN, 1 + len(POOLS), 1, 1).astype(np.float32), "w1"),
        numpy_helper.from_array(b1.astype(np.float32), "b1"),
        numpy_helper.from_array(w2.T.reshape(1, HIDDEN, 1, 1).astype(np.float32), "w2"),
        numpy_helper.from_array(b2.astype(np.float32), "b2"),
    ]
    graph = helper.make_graph(
        nodes,
        "ct-nodule-demo",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="dokuei ct-nodule-demo recipe")
    model.ir_version = 8
    model.doc_string = "Demonstration model trained on synthetic phantoms: not for clinical use."
    onnx.checker.check_model(model)
    onnx.save(model, path)


def components(mask):
    """26-connected components of a boolean volume, as arrays of (z, y, x)."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        stack, comp = [start], []
        seen[start] = True
        while stack:
            z, y, x = stack.pop()
            comp.append((z, y, x))
            for dz in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        n = (z + dz, y + dy, x + dx)
                        if all(0 <= n[i] < mask.shape[i] for i in range(3)) and mask[n] and not seen[n]:
                            seen[n] = True
                            stack.append(n)
        out.append(np.array(comp))
    return out


def evaluate(onnx_path, studies):
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    found = total = false_positives = 0
    for folder, truth in studies:
        vol, zs, origin, spacing = load_series(folder)
        prob = session.run(["probabilities"], {"image": window(vol)[:, None]})[0][:, 0]
        voxel_mm3 = spacing * spacing * generate.SLICE_MM
        hit = set()
        for comp in components(prob >= THRESHOLD):
            if len(comp) * voxel_mm3 < MIN_VOLUME_MM3:
                continue
            cz, cy, cx = comp.mean(0)
            c = (origin[0] + spacing * cx, origin[1] + spacing * cy, zs[0] + generate.SLICE_MM * cz)
            inside = [i for i, n in enumerate(truth["nodules"]) if (c[0] - n["x"]) ** 2 + (c[1] - n["y"]) ** 2 + (c[2] - n["z"]) ** 2 <= n["radius"] ** 2]
            if inside:
                hit.update(inside)
            else:
                false_positives += 1
        found += len(hit)
        total += len(truth["nodules"])
    return found / total, false_positives / len(studies), found, total, false_positives


def main():
    a = argparse.ArgumentParser()
    a.add_argument("dokuei")
    a.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "dokuei-ct-nodule-demo"))
    o = a.parse_args()
    rng = np.random.default_rng(7)
    print("writing training and held-out phantoms …", flush=True)
    train_studies = make_studies(o.dokuei, o.work, TRAIN_SEEDS)
    heldout = make_studies(o.dokuei, o.work, HELDOUT_SEEDS)
    x, y = training_pixels(train_studies, rng)
    print(f"training on {len(y)} pixels ({int(y.sum())} nodule pixels)", flush=True)
    params = train(x.astype(np.float64), y, rng)
    # Two rounds of hard-negative mining: what the model wrongly marks becomes training data.
    for round_ in (1, 2):
        hard = hard_negatives(train_studies, params, rng)
        print(f"mining round {round_}: {len(hard)} hard negatives", flush=True)
        if len(hard) == 0:
            break
        x = np.concatenate([x, hard.astype(x.dtype)])
        y = np.concatenate([y, np.zeros(len(hard), dtype=y.dtype)])
        params = train(x.astype(np.float64), y, rng, steps=3000, params=params)
    onnx_path = os.path.join(HERE, "model.onnx")
    export(params, onnx_path)
    sens, fp, found, total, fps = evaluate(onnx_path, heldout)
    print(f"held-out: sensitivity {sens:.3f} ({found}/{total}), false positives per scan {fp:.2f} ({fps} in {len(heldout)} scans)")
    sha = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    with open(os.path.join(HERE, "manifest.toml.in")) as f:
        manifest = f.read().replace("@SHA256@", sha).replace("@VERSION@", VERSION)
    with open(os.path.join(HERE, "manifest.toml"), "w") as f:
        f.write(manifest)
    with open(os.path.join(HERE, "MODEL_CARD.md.in")) as f:
        card = f.read()
    card = (card.replace("@SENSITIVITY@", f"{sens:.3f} ({found} of {total} nodules)")
                .replace("@FP@", f"{fp:.2f} ({fps} in {len(heldout)} scans)")
                .replace("@SHA256@", sha).replace("@VERSION@", VERSION))
    with open(os.path.join(HERE, "MODEL_CARD.md"), "w") as f:
        f.write(card)


if __name__ == "__main__":
    main()
