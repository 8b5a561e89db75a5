"""A tinyae model as an ONNX graph (onnxruntime, browsers, phones), built with ``onnx.helper``.

Three graphs, with named inputs and outputs (N, the batch, is left free):

    part="model"     x (N, D) -> reconstruction (N, D), code (N, Z)   [a VAE: and logvar (N, Z)]
    part="encoder"   x (N, D) -> code (N, Z)                          [a VAE: and logvar]
    part="decoder"   code (N, Z) -> reconstruction (N, D)

``reconstruction`` is ``model.reconstruct(x)`` and ``code`` is ``model.encode(x)``:
a VAE's code is its mean mu, decoded without sampling. The weights are
initializers named as tinyae names them ("encoder.0.W", kept (D, H): a Dense
is one ``Gemm`` computing x W + b).
"""
import numpy as np

from ..io.checkpoint import atomic_write
from ..nn.layers import output_width
from ..version import __version__
from .files import need, refuse_existing
from .parts import SIGMOID, part_layers, plan
from .rules import ExportError, rule

OPSET = 17
IR_VERSION = 8                  # the IR that came with opset 17: runtimes from 2022 on read it
PARTS = ("model", "encoder", "decoder")


def to_onnx(model, path, *, part: str = "model", force: bool = False):
    """Write ``model`` (or its ``part``: "encoder", "decoder") as an ONNX file; returns the path."""
    proto = onnx_model(model, part)             # every error comes before the file is opened
    refuse_existing(path, force)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))
    return path


def onnx_model(model, part: str = "model"):
    """The checked ``onnx.ModelProto`` of ``model`` or of one ``part`` (see the module doc)."""
    onnx = need("onnx", "exporting to ONNX")
    if part not in PARTS:
        raise ExportError(f"part {part!r} is not one of {', '.join(PARTS)}")
    p = plan(model)
    steps = {"model": p.encode + p.decode, "encoder": p.encode, "decoder": p.decode}[part]
    inputs = ["code"] if part == "decoder" else ["x"]
    outputs = {"model": ("reconstruction",) + p.outputs, "encoder": p.outputs,
               "decoder": ("reconstruction",)}[part]
    nodes, weights = [], []
    for op, x, y in steps:
        if op == SIGMOID:
            nodes.append(onnx.helper.make_node("Sigmoid", [x], [y], name=y))
        else:
            more_nodes, more_weights = part_nodes(getattr(model, op), op, x, y, onnx)
            nodes += more_nodes
            weights += more_weights
    widths = _widths(model)
    dtype = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(model.dtype))

    def value(name):                    # (N, D), or (N, C, H, W) for an image width (C, H, W)
        width = widths[name]
        dims = list(width) if isinstance(width, tuple) else [width]
        return onnx.helper.make_tensor_value_info(name, dtype, ["N", *dims])

    graph = onnx.helper.make_graph(nodes, f"tinyae {type(model).__name__} {part}",
                                   [value(n) for n in inputs], [value(n) for n in outputs],
                                   initializer=weights)
    proto = onnx.helper.make_model(graph, producer_name="tinyae", producer_version=__version__,
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   ir_version=IR_VERSION)
    onnx.checker.check_model(proto, full_check=True)     # types and shapes inferred and checked
    return proto


def part_nodes(part, name, x, y, onnx):
    """(nodes, initializers) computing ``y`` from ``x`` through the layers of ``part``."""
    found = part_layers(part, name)
    if not found:                                        # an empty Sequential: y = x
        return [onnx.helper.make_node("Identity", [x], [y], name=name)], []
    nodes, weights = [], []
    for k, (path, layer) in enumerate(found):
        out = y if k == len(found) - 1 else path         # a layer's output is named by its path
        more_nodes, more_weights = rule(layer, path).onnx(layer, x, out, path, onnx)
        nodes += more_nodes
        weights += more_weights
        x = out
    return nodes, weights


def _widths(model):
    """Feature widths of the graphs' inputs and outputs (None: left free)."""
    D, Z = model.input_width, model.latent_width
    return {"x": D, "code": Z, "logvar": Z, "reconstruction": output_width(model.decoder, Z)}
