"""One rule per layer type: what the layer is in ONNX and in PyTorch.

A rule answers three questions about a layer of its type:

    params      tinyae name -> (PyTorch name, layout out, layout back) of each parameter:
                Dense's W (D, H) is Linear.weight (H, D), so both layouts are W.T
    onnx        the ONNX nodes computing y from x, and the initializers (its parameters,
                named by the layer's path: "encoder.0.W") they read; given the ``onnx`` package
    torch       the equivalent ``torch.nn`` module (given ``torch.nn``, imported by the caller)

``RULES`` maps each stock layer class to its rule; a new layer type joins by
adding one rule class and one entry. Images are NCHW in tinyae, ONNX and PyTorch
alike, and so are the kernels' layouts: a convolution's weights cross as they are.
``rule(layer)`` is the one lookup, and its error says what to do with a layer that has none
(a student's own class).
"""
import numpy as np

from ..nn.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape
from ..nn.layers import Dense, Identity, LeakyReLU, ReLU, Sigmoid, Tanh


class ExportError(ValueError):
    """A model or a state dict that cannot cross to ONNX or PyTorch, with the reason and the fix."""


def same(a):
    return a


class Param:
    """How one parameter crosses: its PyTorch name and the layout maps out (to) and back."""

    def __init__(self, torch_name, out=same, back=same):
        self.torch_name, self.out, self.back = torch_name, out, back


class DenseRule:
    """y = x W + b: ONNX ``Gemm`` (W kept as (D, H)); ``torch.nn.Linear`` (weight = W^T)."""

    params = {"W": Param("weight", np.transpose, np.transpose), "b": Param("bias")}

    def onnx(self, layer, x, y, path, onnx):
        weights = [onnx.numpy_helper.from_array(p, f"{path}.{key}")
                   for key, p in layer.params.items()]          # W (D, H) and b (H,)
        node = onnx.helper.make_node("Gemm", [x] + [w.name for w in weights], [y], name=path)
        return [node], weights

    def torch(self, layer, nn):
        return nn.Linear(layer.in_features, layer.out_features, bias="b" in layer.params)


class ActivationRule:
    """y = act(x), no parameters: one ONNX node of type ``op``; the ``torch.nn`` class ``module``."""

    params = {}

    def __init__(self, op, module):
        self.op, self.module = op, module

    def onnx(self, layer, x, y, path, onnx):
        return [onnx.helper.make_node(self.op, [x], [y], name=path)], []

    def torch(self, layer, nn):
        return getattr(nn, self.module)()


class LeakyReLURule(ActivationRule):
    """y = x if x > 0 else a x, with a = ``negative_slope`` (ONNX calls it alpha)."""

    def __init__(self):
        super().__init__("LeakyRelu", "LeakyReLU")

    def onnx(self, layer, x, y, path, onnx):
        return [onnx.helper.make_node("LeakyRelu", [x], [y], name=path,
                                      alpha=layer.negative_slope)], []

    def torch(self, layer, nn):
        return nn.LeakyReLU(layer.negative_slope)


def onnx_pads(padding):
    """ONNX's pads [h begin, w begin, h end, w end] for tinyae's (ph, pw) on each side."""
    return [*padding, *padding]


def windowed_node(op, layer, x, y, path, onnx, **extra):
    """ONNX's ``Conv`` or ``ConvTranspose`` node of a convolution layer, and its W and b."""
    weights = [onnx.numpy_helper.from_array(p, f"{path}.{key}")
               for key, p in layer.params.items()]
    node = onnx.helper.make_node(
        op, [x] + [w.name for w in weights], [y], name=path,
        kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
        pads=onnx_pads(layer.padding), **extra)
    return [node], weights


class Conv2DRule:
    """y = conv(pad(x), W) + b: ONNX ``Conv``; ``torch.nn.Conv2d``; W (O, C, kh, kw) in all three."""

    params = {"W": Param("weight"), "b": Param("bias")}

    def onnx(self, layer, x, y, path, onnx):
        return windowed_node("Conv", layer, x, y, path, onnx)     # W (O, C, kh, kw), b (O,)

    def torch(self, layer, nn):
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                         layer.stride, layer.padding)


class ConvTranspose2DRule:
    """The transposed convolution: ONNX ``ConvTranspose``; ``torch.nn.ConvTranspose2d``.

    W (C, O, kh, kw) in all three; ``output_padding`` adds rows and columns at the
    bottom and right in all three.
    """

    params = {"W": Param("weight"), "b": Param("bias")}

    def onnx(self, layer, x, y, path, onnx):                      # W (C, O, kh, kw), b (O,)
        return windowed_node("ConvTranspose", layer, x, y, path, onnx,
                             output_padding=list(layer.output_padding))

    def torch(self, layer, nn):
        return nn.ConvTranspose2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                  layer.stride, layer.padding, layer.output_padding)


class MaxPool2DRule:
    """y = the max of each window: ONNX ``MaxPool``; ``torch.nn.MaxPool2d``. No padding."""

    params = {}

    def onnx(self, layer, x, y, path, onnx):
        return [onnx.helper.make_node("MaxPool", [x], [y], name=path,
                                      kernel_shape=list(layer.kernel_size),
                                      strides=list(layer.stride))], []

    def torch(self, layer, nn):
        return nn.MaxPool2d(layer.kernel_size, layer.stride)


class FlattenRule:
    """(N, C, H, W) -> (N, C H W): ONNX ``Flatten`` (axis 1); ``torch.nn.Flatten``."""

    params = {}

    def onnx(self, layer, x, y, path, onnx):
        return [onnx.helper.make_node("Flatten", [x], [y], name=path, axis=1)], []

    def torch(self, layer, nn):
        return nn.Flatten()


class ReshapeRule:
    """(N, D) -> (N, *shape): ONNX ``Reshape`` to [-1, *shape]; ``torch.nn.Unflatten(1, shape)``.

    The target shape is an int64 initializer named "<path>.shape"; -1 leaves N free.
    It is not a parameter: PyTorch's state dict has no entry for it.
    """

    params = {}

    def onnx(self, layer, x, y, path, onnx):
        shape = onnx.numpy_helper.from_array(np.array([-1, *layer.shape], np.int64),
                                             f"{path}.shape")
        return [onnx.helper.make_node("Reshape", [x, shape.name], [y], name=path)], [shape]

    def torch(self, layer, nn):
        return nn.Unflatten(1, layer.shape)


RULES = {Dense: DenseRule(), ReLU: ActivationRule("Relu", "ReLU"), LeakyReLU: LeakyReLURule(),
         Sigmoid: ActivationRule("Sigmoid", "Sigmoid"), Tanh: ActivationRule("Tanh", "Tanh"),
         Identity: ActivationRule("Identity", "Identity"), Conv2D: Conv2DRule(),
         ConvTranspose2D: ConvTranspose2DRule(), MaxPool2D: MaxPool2DRule(),
         Flatten: FlattenRule(), Reshape: ReshapeRule()}


def rule(layer, path):
    """The rule for ``layer`` (found at ``path`` in the model), or ``ExportError`` naming it."""
    found = RULES.get(type(layer))          # the exact class: a subclass may change the maths
    if found is not None:
        return found
    name, known = type(layer).__name__, ", ".join(cls.__name__ for cls in RULES)
    if type(layer).__module__.startswith("tinyae."):
        raise ExportError(f"{path} is a {name}, which tinyae.export cannot write yet (it "
                          f"knows {known}); add a rule for {name} to tinyae.export.rules.RULES")
    raise ExportError(f"{path} is a {name}, a layer of your own, which has no ONNX or PyTorch "
                      f"equivalent (tinyae.export knows {known}); build the model from those "
                      "stock layers, or add a rule for it to tinyae.export.rules.RULES")
