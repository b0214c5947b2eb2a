"""The same series load Dokuei's `bench load` does, done the usual Python way, for comparison.

usage: pydicom_load.py DIR

Reads every file with pydicom, sorts by position along the slice normal, stacks the pixel
arrays and rescales to float32 HU. Prints JSON: seconds, slices, peak RSS in bytes.
"""

import json
import os
import resource
import sys
import time

import numpy as np
import pydicom

start = time.perf_counter()
folder = sys.argv[1]
datasets = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
iop = np.array(datasets[0].ImageOrientationPatient, dtype=float)
normal = np.cross(iop[:3], iop[3:])
datasets.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
volume = np.stack([d.pixel_array for d in datasets]).astype(np.float32)
slope = np.array([float(d.get("RescaleSlope", 1)) for d in datasets], dtype=np.float32)
intercept = np.array([float(d.get("RescaleIntercept", 0)) for d in datasets], dtype=np.float32)
volume = volume * slope[:, None, None] + intercept[:, None, None]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "slices": len(datasets), "peak_rss_bytes": peak, "checksum": float(volume[len(volume) // 2].mean())}))
