"""The same analysis as `dokuei analyse`, done the usual Python way, for `dokuei bench analyse`.

usage: python_analyse.py SERIES_DIR MODEL.onnx CENTER WIDTH THREADS

pydicom reads every file, sorts by position along the normal, rescales to HU; numpy applies
the window and min–max; onnxruntime runs the model slice by slice with the same thread count;
the probabilities are thresholded at 0.5. (Connected components are not done here, so the
Python side does slightly less work than Dokuei.) Prints JSON: seconds, run_seconds, voxels.
"""

import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
import pydicom

folder, model, center, width, threads = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
start = time.perf_counter()
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
ds = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
iop = np.array(ds[0].ImageOrientationPatient, dtype=float)
normal = np.cross(iop[:3], iop[3:])
ds.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
lo, hi = center - width / 2, center + width / 2
run = 0.0
positive = 0
for d in ds:
    hu = d.pixel_array.astype(np.float32) * float(d.RescaleSlope) + float(d.RescaleIntercept)
    x = ((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32)[None, None]
    t = time.perf_counter()
    (p,) = session.run(["probabilities"], {"image": x})
    run += time.perf_counter() - t
    positive += int((p >= 0.5).sum())
print(json.dumps({"seconds": time.perf_counter() - start, "run_seconds": run, "voxels": positive}))
