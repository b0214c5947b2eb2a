"""Deterministic synthetic chest CT studies with planted nodules, and chest radiographs with
planted opacities, written as real DICOM by `dokuei synth-ct` / `dokuei synth-cxr`. No patient
data: the "patient" is a mathematical phantom.

usage: generate.py DOKUEI_BINARY OUT_DIR [--seed N] [--slices N] [--size N] [--nodules K]
                   [--noise HU] [--description TEXT]
       generate.py DOKUEI_BINARY OUT_DIR --radiograph [--seed N] [--size N] [--opacities K]

Writes OUT_DIR/series/*.dcm and OUT_DIR/ground_truth.json (CT: each nodule's centre in patient
coordinates, LPS mm, its radius in mm and its density in HU; radiograph: each opacity's centre
row and column in pixels, its radius in pixels and mm, and its added density). The same
arguments always give the same study. Python standard library only.
"""

import argparse
import json
import os
import random
import subprocess

PIXEL_MM = 0.7  # pixel spacing `dokuei synth-ct` writes
SLICE_MM = 2.5  # slice spacing
Z0 = -400.0  # position of the first slice


def lungs(size):
    """The phantom's two lungs as (centre x, centre y, semi-axis x, semi-axis y), mm."""
    half = size * PIXEL_MM / 2
    return [(cx * half, -0.05 * half, 0.3 * half, 0.5 * half) for cx in (-0.42, 0.42)]


def sample_nodules(rng, size, slices, count):
    """Nodules of varied size (radius 2.5–8 mm) and contrast (-350 to +60 HU) inside the lungs,
    not touching the lung wall or each other."""
    nodules = []
    z_lo, z_hi = Z0, Z0 + SLICE_MM * (slices - 1)
    attempts = 0
    while len(nodules) < count and attempts < 10000:
        attempts += 1
        radius = rng.uniform(2.5, 8.0)
        cx, cy, ax, ay = rng.choice(lungs(size))
        x = rng.uniform(cx - ax, cx + ax)
        y = rng.uniform(cy - ay, cy + ay)
        z = rng.uniform(z_lo + radius + 3, z_hi - radius - 3)
        # Inside the lung ellipse shrunk by radius + 3 mm.
        if ((x - cx) / (ax - radius - 3)) ** 2 + ((y - cy) / (ay - radius - 3)) ** 2 > 1:
            continue
        if any(((x - n["x"]) ** 2 + (y - n["y"]) ** 2 + (z - n["z"]) ** 2) ** 0.5 < radius + n["radius"] + 8 for n in nodules):
            continue
        hu = round(rng.uniform(-350, 60))
        nodules.append({"x": round(x, 2), "y": round(y, 2), "z": round(z, 2), "radius": round(radius, 2), "hu": hu})
    return nodules


def generate(dokuei, out, seed, slices, size, count, noise, description):
    rng = random.Random(seed)
    nodules = sample_nodules(rng, size, slices, count)
    series = os.path.join(out, "series")
    os.makedirs(series, exist_ok=True)
    args = [dokuei, "synth-ct", series, "--slices", str(slices), "--size", str(size), "--seed", str(seed),
            "--noise", str(noise), "--description", description]
    for n in nodules:
        args.append(f"--sphere={n['x']},{n['y']},{n['z']},{n['radius']},{n['hu']}")
    subprocess.run(args, check=True)
    truth = {"seed": seed, "slices": slices, "size": size, "noise_hu": noise,
             "pixel_spacing_mm": PIXEL_MM, "slice_spacing_mm": SLICE_MM, "nodules": nodules}
    with open(os.path.join(out, "ground_truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return truth


def generate_radiograph(dokuei, out, seed, size, opacities, description):
    """A PA chest radiograph; the opacities are placed by `dokuei synth-cxr` from the seed (the
    phantom's anatomy is defined there), which reports them."""
    series = os.path.join(out, "series")
    os.makedirs(series, exist_ok=True)
    args = [dokuei, "synth-cxr", os.path.join(series, "CXR0001.dcm"), "--size", str(size), "--seed", str(seed),
            "--opacities", str(opacities), "--description", description]
    planted = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    truth = {"seed": seed, "size": size, "pixel_spacing_mm": 0.7 * 512 / size, "opacities": planted}
    with open(os.path.join(out, "ground_truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
    return truth


if __name__ == "__main__":
    a = argparse.ArgumentParser()
    a.add_argument("dokuei")
    a.add_argument("out")
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--slices", type=int, default=200)
    a.add_argument("--size", type=int, default=512)
    a.add_argument("--nodules", type=int, default=6)
    a.add_argument("--noise", type=float, default=20.0)
    a.add_argument("--description", default=None)
    a.add_argument("--radiograph", action="store_true")
    a.add_argument("--opacities", type=int, default=1)
    o = a.parse_args()
    if o.radiograph:
        generate_radiograph(o.dokuei, o.out, o.seed, o.size, o.opacities, o.description or "Synthetic chest radiograph PA")
    else:
        generate(o.dokuei, o.out, o.seed, o.slices, o.size, o.nodules, o.noise, o.description or "Synthetic chest CT")
