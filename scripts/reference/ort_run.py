"""Runs an ONNX model with Python onnxruntime, for Dokuei's numerical-agreement tests.

usage: ort_run.py MODEL.onnx INPUT_NAME IN.f32 DIM[,DIM...] OUTPUT_NAME OUT.f32 [THREADS]
"""

import sys

import numpy as np
import onnxruntime as ort

model, input_name, src, dims, output_name, dst = sys.argv[1:7]
threads = int(sys.argv[7]) if len(sys.argv) > 7 else 1
options = ort.SessionOptions()
options.intra_op_num_threads = threads
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
x = np.fromfile(src, dtype=np.float32).reshape([int(d) for d in dims.split(",")])
(y,) = session.run([output_name], {input_name: x})
np.asarray(y, dtype=np.float32).tofile(dst)
