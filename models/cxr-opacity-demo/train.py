"""Recipe for the cxr-opacity-demo model: trains it on synthetic chest radiographs, exports
model.onnx, writes manifest.toml (with the file's SHA-256) and the metrics in MODEL_CARD.md.

usage: python train.py DOKUEI_BINARY [--work DIR]

Runs by hand, once (`.dokuei/venv/bin/python models/cxr-opacity-demo/train.py
~/.cache/dokuei/target/debug/dokuei`): the committed model.onnx is its output. Needs numpy,
pydicom, onnx and onnxruntime (the project's reference venv) — no deep-learning framework.

The model takes the radiograph resized to 256×256 (Dokuei's declared pre-processing: clip to
0–4095, min–max, bilinear resize) and outputs a heatmap (probability of opacity, smoothed by a 7×7
mean so that thin edge responses fade) and an image-level abnormality score, the heatmap's
maximum (the way commercial CXR tools show a
score next to a heatmap). The heatmap is a per-pixel classifier on multi-scale local means
(ONNX AveragePool, stride 1, same size: 5, 11, 21, 41, 81 pixels), then a 1×1 convolution to
12 hidden units, ReLU, a 1×1 convolution to 1 and a sigmoid. Only the two 1×1 convolutions
are trained (Adam, weighted binary cross-entropy, two rounds of hard-negative mining).
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
import generate  # noqa: E402  (the sample-study generator)

POOLS = [5, 11, 21, 41, 81]
BAND, DARK, BRIGHT = 21, 41, 11
SMOOTH = 7
FEATURES = 1 + len(POOLS) + 4
HIDDEN = 16
MODEL_SIZE = 256
SOURCE_SIZE = 512
TRAIN_SEEDS = range(3000, 3060)  # even seeds: one or two opacities; odd: none
HELDOUT_SEEDS = range(5000, 5040)  # never seen in training; the model card reports these
THRESHOLD, MIN_DIAMETER_MM = 0.5, 10.0
VERSION = "1.0.0"


def opacities_for(seed):
    return 0 if seed % 2 else 1 + (seed // 2) % 2


def load(folder):
    """The radiograph as the model sees it: clipped to 0–4095, scaled to 0–1, and resized
    512 → 256 (for an exact halving, the half-pixel bilinear resize Dokuei declares is the mean
    of each 2×2 block)."""
    d = pydicom.dcmread(os.path.join(folder, sorted(os.listdir(folder))[0]))
    x = np.clip(d.pixel_array.astype(np.float64), 0, 4095) / 4095
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).mean((1, 3)).astype(np.float32)


def box_mean(img, kh, kw=None):
    """Mean over a kh×kw box clipped at the edges: ONNX AveragePool, pads k//2,
    count_include_pad=0."""
    kw = kh if kw is None else kw
    ry, rx = kh // 2, kw // 2
    h, w = img.shape
    c = np.zeros((h + 1, w + 1), dtype=np.float64)
    c[1:, 1:] = np.cumsum(np.cumsum(img, 0), 1)
    y0 = np.clip(np.arange(h) - ry, 0, h)
    y1 = np.clip(np.arange(h) + ry + 1, 0, h)
    x0 = np.clip(np.arange(w) - rx, 0, w)
    x1 = np.clip(np.arange(w) + rx + 1, 0, w)
    s = c[y1][:, x1] - c[y0][:, x1] - c[y1][:, x0] + c[y0][:, x0]
    n = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return (s / n).astype(np.float32)


def box_max(img, k):
    """Maximum over a k×k box (ONNX MaxPool, pads k//2: padding never wins)."""
    r = k // 2
    p = np.pad(img, r, constant_values=-np.inf)
    rows = np.lib.stride_tricks.sliding_window_view(p, k, axis=0).max(-1)
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1).max(-1).astype(np.float32)


def features(img):
    """The image; its square box means; a horizontal and a vertical band mean (ribs are
    horizontal bands, opacities round); the darkest and brightest values nearby."""
    planes = [img] + [box_mean(img, k) for k in POOLS]
    planes += [box_mean(img, 1, BAND), box_mean(img, BAND, 1), -box_max(-img, DARK), box_max(img, BRIGHT)]
    return np.stack(planes, axis=-1).reshape(-1, len(planes))


def distance_to_opacity(truth):
    """Per model pixel: distance to the nearest opacity centre in units of its radius."""
    scale = MODEL_SIZE / SOURCE_SIZE
    rows = (np.arange(MODEL_SIZE) + 0.5) / scale - 0.5
    d = np.full((MODEL_SIZE, MODEL_SIZE), np.inf)
    for o in truth["opacities"]:
        dd = np.sqrt((rows[:, None] - o["row"]) ** 2 + (rows[None, :] - o["column"]) ** 2) / o["radius_px"]
        d = np.minimum(d, dd)
    return d.reshape(-1)


def make_studies(dokuei, work, seeds):
    out = []
    for seed in seeds:
        folder = os.path.join(work, f"cxr-{seed}")
        if not os.path.exists(os.path.join(folder, "ground_truth.json")):
            generate.generate_radiograph(dokuei, folder, seed, SOURCE_SIZE, opacities_for(seed), f"training radiograph {seed}")
        with open(os.path.join(folder, "ground_truth.json")) as f:
            out.append((os.path.join(folder, "series"), json.load(f)))
    return out


def training_pixels(studies, rng):
    xs, ys = [], []
    for folder, truth in studies:
        f = features(load(folder))
        d = distance_to_opacity(truth)
        pos = np.flatnonzero(d <= 0.6)  # the dense core; the soft rim 0.6–1.0 is left out
        neg_pool = np.flatnonzero(d >= 1.2)
        neg = rng.choice(neg_pool, size=max(400, 3 * len(pos)), replace=False)
        idx = np.concatenate([pos, neg])
        xs.append(f[idx])
        ys.append((d[idx] <= 0.6).astype(np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def forward(params, x):
    w1, b1, w2, b2 = params
    h = np.maximum(x @ w1 + b1, 0)
    return 1 / (1 + np.exp(-(h @ w2 + b2)))[:, 0]


def hard_negatives(studies, params, rng, per_image=600):
    xs = []
    for folder, truth in studies:
        f = features(load(folder)).astype(np.float64)
        d = distance_to_opacity(truth)
        wrong = np.flatnonzero((d >= 1.2) & (forward(params, f) >= 0.3))
        if len(wrong):
            xs.append(f[rng.choice(wrong, size=min(len(wrong), per_image), replace=False)])
    return np.concatenate(xs) if xs else np.zeros((0, FEATURES))


def train(x, y, rng, steps=4000, lr=0.03, params=None):
    if params is None:
        params = [
            rng.normal(0, 0.5, (x.shape[1], HIDDEN)),
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
        grads = [h.T @ g, g.sum(0)]
        gh = (g @ w2.T) * (h > 0)
        grads = [x.T @ gh, gh.sum(0)] + grads
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
    r = BAND // 2
    nodes += [
        helper.make_node("AveragePool", ["image"], ["band_h"], kernel_shape=[1, BAND], pads=[0, r, 0, r], count_include_pad=0),
        helper.make_node("AveragePool", ["image"], ["band_v"], kernel_shape=[BAND, 1], pads=[r, 0, r, 0], count_include_pad=0),
        helper.make_node("Neg", ["image"], ["negated"]),
        helper.make_node("MaxPool", ["negated"], ["neg_max"], kernel_shape=[DARK, DARK], pads=[DARK // 2] * 4),
        helper.make_node("Neg", ["neg_max"], ["dark"]),
        helper.make_node("MaxPool", ["image"], ["bright"], kernel_shape=[BRIGHT, BRIGHT], pads=[BRIGHT // 2] * 4),
    ]
    nodes += [
        helper.make_node("Concat", ["image"] + [f"mean{k}" for k in POOLS] + ["band_h", "band_v", "dark", "bright"], ["features"], axis=1),
        helper.make_node("Conv", ["features", "w1", "b1"], ["hidden_pre"]),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"]),
        helper.make_node("Conv", ["hidden", "w2", "b2"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["pixel_probability"]),
        # A 7×7 mean: thin responses along lung and heart edges fade, round opacities stay.
        helper.make_node("AveragePool", ["pixel_probability"], ["heatmap"], kernel_shape=[SMOOTH, SMOOTH], pads=[SMOOTH // 2] * 4, count_include_pad=0),
        helper.make_node("ReduceMax", ["heatmap"], ["score"], axes=[2, 3], keepdims=0),
    ]
    inits = [
        numpy_helper.from_array(w1.T.reshape(HIDDEN, FEATURES, 1, 1).astype(np.float32), "w1"),
        numpy_helper.from_array(b1.astype(np.float32), "b1"),
        numpy_helper.from_array(w2.T.reshape(1, HIDDEN, 1, 1).astype(np.float32), "w2"),
        numpy_helper.from_array(b2.astype(np.float32), "b2"),
    ]
    graph = helper.make_graph(
        nodes,
        "cxr-opacity-demo",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, MODEL_SIZE, MODEL_SIZE])],
        [
            helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["N", 1, MODEL_SIZE, MODEL_SIZE]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N", 1]),
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="dokuei cxr-opacity-demo recipe")
    model.ir_version = 8
    model.doc_string = "Demonstration model trained on synthetic phantoms: not for clinical use."
    onnx.checker.check_model(model)
    onnx.save(model, path)


def components(mask):
    """8-connected components of a boolean image, as arrays of (row, column)."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        stack, comp = [start], []
        seen[start] = True
        while stack:
            y, x = stack.pop()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    n = (y + dy, x + dx)
                    if 0 <= n[0] < mask.shape[0] and 0 <= n[1] < mask.shape[1] and mask[n] and not seen[n]:
                        seen[n] = True
                        stack.append(n)
        out.append(np.array(comp))
    return out


def evaluate(onnx_path, studies):
    """Image level: score ≥ threshold on images with / without an opacity. Localisation: a
    heatmap region (≥ threshold, ≥ MIN_DIAMETER_MM across) whose centroid lies inside a planted
    opacity finds it; any other region is a false positive."""
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    tp = fn = tn = fp_images = found = total = false_regions = 0
    mm = SOURCE_SIZE / MODEL_SIZE * 0.7
    for folder, truth in studies:
        heat, score = session.run(["heatmap", "score"], {"image": load(folder)[None, None]})
        positive = bool(truth["opacities"])
        flagged = float(score[0, 0]) >= THRESHOLD
        tp += positive and flagged
        fn += positive and not flagged
        tn += (not positive) and not flagged
        fp_images += (not positive) and flagged
        hit = set()
        for comp in components(heat[0, 0] >= THRESHOLD):
            extent = (comp.max(0) - comp.min(0) + 1).max() * mm
            if extent < MIN_DIAMETER_MM:
                continue
            cy, cx = (comp.mean(0) + 0.5) * SOURCE_SIZE / MODEL_SIZE - 0.5
            inside = [i for i, o in enumerate(truth["opacities"]) if (cy - o["row"]) ** 2 + (cx - o["column"]) ** 2 <= o["radius_px"] ** 2]
            if inside:
                hit.update(inside)
            else:
                false_regions += 1
        found += len(hit)
        total += len(truth["opacities"])
    n = len(studies)
    return {
        "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp_images, 1),
        "tp": tp, "fn": fn, "tn": tn, "fp": fp_images,
        "found": found, "total": total, "false_regions": false_regions, "images": n,
    }


def main():
    a = argparse.ArgumentParser()
    a.add_argument("dokuei")
    a.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "dokuei-cxr-opacity-demo"))
    o = a.parse_args()
    rng = np.random.default_rng(11)
    print("writing training and held-out radiographs …", flush=True)
    train_studies = make_studies(o.dokuei, o.work, TRAIN_SEEDS)
    heldout = make_studies(o.dokuei, o.work, HELDOUT_SEEDS)
    x, y = training_pixels(train_studies, rng)
    print(f"training on {len(y)} pixels ({int(y.sum())} opacity pixels)", flush=True)
    params = train(x.astype(np.float64), y, rng)
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
    r = evaluate(onnx_path, heldout)
    print(json.dumps(r))
    sha = hashlib.sha256(open(onnx_path, "rb").read()).hexdigest()
    with open(os.path.join(HERE, "manifest.toml.in")) as f:
        manifest = f.read().replace("@SHA256@", sha).replace("@VERSION@", VERSION)
    with open(os.path.join(HERE, "manifest.toml"), "w") as f:
        f.write(manifest)
    with open(os.path.join(HERE, "MODEL_CARD.md.in")) as f:
        card = f.read()
    positives = r["tp"] + r["fn"]
    negatives = r["tn"] + r["fp"]
    card = (card.replace("@SENSITIVITY@", f"{r['sensitivity']:.3f} ({r['tp']} of {positives} radiographs with an opacity)")
                .replace("@SPECIFICITY@", f"{r['specificity']:.3f} ({r['tn']} of {negatives} clear radiographs)")
                .replace("@LOCALISED@", f"{r['found']} of {r['total']} opacities")
                .replace("@FP@", f"{r['false_regions'] / r['images']:.2f} ({r['false_regions']} in {r['images']} radiographs)")
                .replace("@SHA256@", sha).replace("@VERSION@", VERSION))
    with open(os.path.join(HERE, "MODEL_CARD.md"), "w") as f:
        f.write(card)


if __name__ == "__main__":
    main()
