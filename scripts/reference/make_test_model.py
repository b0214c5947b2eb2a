"""Tiny models made with onnx.helper, for Dokuei's model-contract and pipeline tests. They are
test fixtures with fixed weights, not trained models, and are never shipped.

usage: make_test_model.py OUT.onnx [classifier | segmenter CHANNELS | segmenter3d [BATCH] | labeller | typed IN OUT | detector]

classifier: input `image` [N, 32, 32, 3] float32 (NHWC); output `scores` [N, 2] =
sigmoid(mean over rows and columns of each channel @ W + b), with W and b fixed below (the
tests recompute it).
segmenter: input `image` [N, CHANNELS, H, W] float32 (NCHW); output `probabilities`
[N, 1, H, W] = sigmoid(20 · (mean over channels − 0.5)): a soft threshold at 0.5.
segmenter3d: input `image` [N, 1, 8, 32, 32] float32 (NCDHW, a fixed patch; N = BATCH when
given, else dynamic); output `logits` [N, 1, 8, 32, 32] = 20 · (3×3×3 mean, zero-padded at the patch's faces, − 0.5): a soft threshold
of the local mean, so what a voxel gets depends on its neighbours and on where the patch cut.
labeller: input `image` [N, 1, H, W] float32 (NCHW); output `labels` [N, H, W] int64 = one
label index per pixel: 0 where the image is ≤ 0.5, 1 where it is in (0.5, 0.9], 2 above 0.9.
typed: input `image` [N, 1, H, W] of type IN (uint8 or float16); output `probabilities`
[N, 1, H, W] of type OUT (float16 or float32) = sigmoid(20 · (image / 255 − 0.5)).
detector: input `image` [N, 1, H, W] float32 (NCHW); outputs `boxes` [N, 1, 4] = the fixed box
(x1, y1, x2, y2) = (8, 4, 12, 8) in input pixels, `scores` [N, 1] = the image's maximum,
`labels` [N, 1] int64 = 0. (Also serves as a one-label classifier through `scores`.)
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = np.array([[1.0, -1.0], [0.5, 0.25], [-2.0, 1.5]], dtype=np.float32)
B = np.array([0.1, -0.2], dtype=np.float32)



def save(graph):
    """Checks the model and writes it to OUT.onnx, then ends the script."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="dokuei-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[1])
    sys.exit(0)


kind = sys.argv[2] if len(sys.argv) > 2 else "classifier"
if kind == "segmenter":
    channels = int(sys.argv[3])
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["mean", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dokuei-test-segmenter",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=[
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
            numpy_helper.from_array(np.array(20.0, dtype=np.float32), "gain"),
        ],
    )
    save(graph)

if kind == "segmenter3d":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else "N"
    nodes = [
        helper.make_node("Conv", ["image", "mean_kernel"], ["mean"], pads=[1, 1, 1, 1, 1, 1]),
        helper.make_node("Sub", ["mean", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dokuei-test-segmenter3d",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [n, 1, 8, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n, 1, 8, 32, 32])],
        initializer=[
            numpy_helper.from_array(np.full((1, 1, 3, 3, 3), 1.0 / 27.0, dtype=np.float32), "mean_kernel"),
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
            numpy_helper.from_array(np.array(20.0, dtype=np.float32), "gain"),
        ],
    )
    save(graph)

if kind == "labeller":
    nodes = [
        helper.make_node("Squeeze", ["image", "axis1"], ["plane"]),
        helper.make_node("Greater", ["plane", "half"], ["over_half"]),
        helper.make_node("Greater", ["plane", "nine_tenths"], ["over_nine_tenths"]),
        helper.make_node("Cast", ["over_half"], ["a"], to=TensorProto.INT64),
        helper.make_node("Cast", ["over_nine_tenths"], ["b"], to=TensorProto.INT64),
        helper.make_node("Add", ["a", "b"], ["labels"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dokuei-test-labeller",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("labels", TensorProto.INT64, ["N", "H", "W"])],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
            numpy_helper.from_array(np.array(0.9, dtype=np.float32), "nine_tenths"),
        ],
    )
    save(graph)

if kind == "typed":
    types = {"uint8": TensorProto.UINT8, "float16": TensorProto.FLOAT16, "float32": TensorProto.FLOAT}
    in_type, out_type = types[sys.argv[3]], types[sys.argv[4]]
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["x", "full"], ["unit"]),
        helper.make_node("Sub", ["unit", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["p"]),
        helper.make_node("Cast", ["p"], ["probabilities"], to=out_type),
    ]
    graph = helper.make_graph(
        nodes,
        "dokuei-test-typed",
        [helper.make_tensor_value_info("image", in_type, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("probabilities", out_type, ["N", 1, "H", "W"])],
        initializer=[
            numpy_helper.from_array(np.array(255.0, dtype=np.float32), "full"),
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
            numpy_helper.from_array(np.array(20.0, dtype=np.float32), "gain"),
        ],
    )
    save(graph)

if kind == "detector":
    nodes = [
        helper.make_node("ReduceMax", ["image"], ["flat_max"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Unsqueeze", ["flat_max", "axis1"], ["scores"]),
        helper.make_node("Shape", ["scores"], ["n1"]),
        helper.make_node("Concat", ["n1", "four"], ["box_shape"], axis=0),
        helper.make_node("Expand", ["box"], ["boxes"]),
        helper.make_node("Mul", ["scores", "zero"], ["zeros"]),
        helper.make_node("Cast", ["zeros"], ["labels"], to=TensorProto.INT64),
    ]
    nodes[4] = helper.make_node("Expand", ["box", "box_shape"], ["boxes"])
    graph = helper.make_graph(
        nodes,
        "dokuei-test-detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 1, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("labels", TensorProto.INT64, ["N", 1]),
        ],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([4], dtype=np.int64), "four"),
            numpy_helper.from_array(np.array([[[8.0, 4.0, 12.0, 8.0]]], dtype=np.float32), "box"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
        ],
    )
    save(graph)

nodes = [
    helper.make_node("ReduceMean", ["image"], ["channel_means"], axes=[1, 2], keepdims=0),
    helper.make_node("MatMul", ["channel_means", "W"], ["mm"]),
    helper.make_node("Add", ["mm", "B"], ["logits"]),
    helper.make_node("Sigmoid", ["logits"], ["scores"]),
]
graph = helper.make_graph(
    nodes,
    "dokuei-test-classifier",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 32, 32, 3])],
    [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])],
    initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
)
save(graph)
