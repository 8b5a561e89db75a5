"""Convolution, transposed convolution, max pooling and the reshapes around them, by hand.

Images are NCHW: (N batch, C channels, H height, W width). Every layer here
is the same three ideas:

    windows(x)       every kh x kw patch of x, as a view: (N, C, Ho, Wo, kh, kw)
    contract         a window times the kernel, summed: y = einsum(windows, W)
    overlap_add      the adjoint of windows: each patch's gradient added back
                     onto the pixels it was read from

A convolution is ``windows`` then a contraction; its input gradient is a
contraction then ``overlap_add``; and a *transposed* convolution is exactly
that input gradient used as a forward (its backward is then a convolution).

The per-sample shape a layer takes is its "width": an int D for flat rows
(N, D), a tuple (C, H, W) for images. ``output_width`` and
``shapes_from_config`` take and give either, so ``summary`` and the
checkpoint checker follow a model from (N, 784) rows through
``Reshape((1, 28, 28))``, the convolutions and ``Flatten()`` back to rows.
"""
import math

import numpy as np

from . import init as initialisers
from .layers import LAYERS, MAX_PARAMETERS, Layer, as_float, check_model_size

MAX_SIDE = 100_000              # the largest kernel side, stride or padding a config may hold


# --- the building blocks ------------------------------------------------------------
def pair(v, name, least, who):
    """``v`` (an int or a pair of ints, each >= least) as a tuple (along H, along W)."""
    vs = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vs) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                               and least <= n <= MAX_SIDE for n in vs):
        raise ValueError(f"{who}: {name} must be an int or a pair of ints (along H, along W) "
                         f"in {least}..{MAX_SIDE:,}, got {v!r}")
    return int(vs[0]), int(vs[1])


def pad(x, padding):
    """x with (ph, pw) = ``padding`` zeros on each side: (N, C, H + 2 ph, W + 2 pw)."""
    ph, pw = padding
    if ph == pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def crop(x, padding):
    """The inverse of ``pad`` (and its adjoint): the middle of x, without the padding."""
    ph, pw = padding
    return x[:, :, ph:x.shape[2] - ph, pw:x.shape[3] - pw]


def windows(x, kernel, stride):
    """Every kh x kw window of x, a strided view (no copy): (N, C, Ho, Wo, kh, kw).

        win[n, c, h, w, i, j] = x[n, c, h sh + i, w sw + j]
    """
    sh, sw = stride
    return np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


def overlap_add(cols, shape, stride):
    """The adjoint of ``windows``: each window's entries added onto the pixels it came from.

        x[n, c, h sh + i, w sw + j] += cols[n, c, h, w, i, j]    -> x of ``shape``

    One strided slice per kernel tap (i, j); overlapping windows add up.
    """
    _, _, Ho, Wo, kh, kw = cols.shape
    sh, sw = stride
    x = np.zeros(shape, cols.dtype)
    for i in range(kh):
        for j in range(kw):
            x[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += cols[..., i, j]
    return x


def conv(xp, W, stride):
    """y[n, o, h, w] = sum_{c,i,j} xp[n, c, h sh + i, w sw + j] W[o, c, i, j].

    Shapes: xp (N, C, Hp, Wp) already padded, W (O, C, kh, kw) -> y (N, O, Ho, Wo).
    (einsum turns the windows into a matrix and calls one BLAS product: im2col.)
    """
    return np.einsum("nchwij,ocij->nohw", windows(xp, W.shape[2:], stride), W, optimize=True)


def conv_transpose(dy, W, stride, shape):
    """The adjoint of ``conv`` in its input: dxp = overlap_add(dy . W).

        dxp[n, c, h sh + i, w sw + j] += sum_o dy[n, o, h, w] W[o, c, i, j]

    Shapes: dy (N, O, Ho, Wo), W (O, C, kh, kw) -> dxp of ``shape`` (N, C, Hp, Wp).
    This is the backward of a convolution, and the forward of a transposed one.
    """
    return overlap_add(np.einsum("nohw,ocij->nchwij", dy, W, optimize=True), shape, stride)


def conv_weight_grad(xp, dy, kernel, stride):
    """dW[o, c, i, j] = sum_{n,h,w} dy[n, o, h, w] xp[n, c, h sh + i, w sw + j]: (O, C, kh, kw)."""
    return np.einsum("nohw,nchwij->ocij", dy, windows(xp, kernel, stride), optimize=True)


def out_size(who, side, n, k, s, p):
    """Output length (n + 2p - k) // s + 1 along one side, refusing what would lose pixels."""
    if n + 2 * p < k:
        raise ValueError(f"{who}: the kernel's {side} {k} is larger than the padded input's "
                         f"{side} {n} + 2*{p} = {n + 2 * p}; use a smaller kernel, more padding "
                         "or larger images")
    left = (n + 2 * p - k) % s          # rows after the last window: padding only, or lost
    if left > p:
        raise ValueError(f"{who}: the output {side} ({n} + 2*{p} - {k})/{s} + 1 does not come "
                         f"out whole, so the stride would skip the last {left - p} "
                         f"{'row' if side == 'height' else 'column'}(s) of the input; use "
                         f"inputs of {side} {n - left + p} or {n + s - left}, or other padding")
    return (n + 2 * p - k) // s + 1


def image_width(who, width, channels):
    """(C, H, W) from a width (None: unknown), checked against the layer's channels."""
    if width is None:
        return None
    if not isinstance(width, tuple) or len(width) != 3:
        raise ValueError(f"{who} takes images (C, H, W) but is given {width!r} features per "
                         "sample; put Reshape((C, H, W)) before it")
    if channels is not None and width[0] != channels:
        raise ValueError(f"{who} takes {channels} channels but is given {width[0]} "
                         f"(sample shape {width}); check in_channels against the layer before")
    return width


def as_images(x, channels, dtype, who):
    """``x`` checked as a float (N, C, H, W) batch with C = ``channels``, in ``dtype``."""
    x = as_float(x, who)
    if x.ndim != 4:
        raise ValueError(f"{who} expects images of shape (N, {channels or 'C'}, H, W), got shape "
                         f"{x.shape}; put Reshape(({channels or 'C'}, H, W)) before it to turn "
                         "(N, D) rows into images")
    image_width(who, x.shape[1:], channels)
    return x if dtype is None else x.astype(dtype, copy=False)


# --- the layers ---------------------------------------------------------------------
class _Windowed(Layer):
    """What Conv2D and ConvTranspose2D share: the settings, the kernel, the config."""

    in_features = None          # takes images of any height and width: no fixed width

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, init, rng,
                 dtype, **extra):
        super().__init__()
        who = type(self).__name__
        for name, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"{who}: {name} must be a positive integer, got {n!r}")
        self.in_channels, self.out_channels, self.init = int(in_channels), int(out_channels), init
        self.kernel_size = pair(kernel_size, "kernel_size", 1, who)
        self.stride = pair(stride, "stride", 1, who)
        self.padding = pair(padding, "padding", 0, who)
        for name, v in extra.items():
            setattr(self, name, pair(v, name, 0, who))
        shape = self.weight_shape(self.in_channels, self.out_channels, self.kernel_size)
        check_model_size(math.prod(shape) + self.out_channels, repr(self))
        rng = np.random.default_rng() if rng is None else rng
        # The initialisers read fans from a kernel (out, in, kh, kw); a transposed kernel is
        # (in, out, kh, kw), read as the convolution it transposes, as PyTorch and Keras do.
        self.params["W"] = initialisers.get(init)(shape, rng, dtype)
        self.params["b"] = initialisers.bias(init, shape, self.out_channels, rng, dtype)
        self.grads = {k: np.zeros(p.shape, p.dtype) for k, p in self.params.items()}   # lazy pages

    def config(self):
        return {"type": type(self).__name__, "in_channels": self.in_channels,
                "out_channels": self.out_channels, **{k: list(getattr(self, k)) for k in
                                                      self.PAIRS}, "init": self.init}

    @classmethod
    def from_config(cls, cfg, rng=None, dtype=np.float32):
        return cls(**cfg, rng=rng, dtype=dtype)

    def output_width(self, width):
        return self.out_shape(self, width, self.in_channels, self.out_channels,
                              self.kernel_size, self.stride, self.padding,
                              *(getattr(self, k) for k in self.PAIRS[3:]))

    @classmethod
    def shapes_from_config(cls, cfg, width):
        name = cls.__name__
        if set(cfg) - {"type", "in_channels", "out_channels", "init", *cls.PAIRS} \
                or not {"in_channels", "out_channels", "kernel_size"} <= set(cfg) \
                or cfg.get("init", "he") not in initialisers.INITIALISERS:
            raise ValueError(f"a {name} config needs in_channels, out_channels, kernel_size, "
                             f"and may have {', '.join(cls.PAIRS[1:])} and a known init")
        c_in, c_out = cfg["in_channels"], cfg["out_channels"]
        for n in (c_in, c_out):
            if type(n) is not int or not 1 <= n <= MAX_PARAMETERS:
                raise ValueError(f"{name}: channels must be whole numbers >= 1, got {n!r}")
        least = {"kernel_size": 1, "stride": 1}
        k, s, p, *more = (pair(cfg.get(key, 1 if key == "stride" else 0), key,
                               least.get(key, 0), name) for key in cls.PAIRS)
        shape = cls.weight_shape(c_in, c_out, k)
        return ({"W": shape, "b": (c_out,)},
                cls.out_shape(name, width, c_in, c_out, k, s, p, *more))


class Conv2D(_Windowed):
    """2-D convolution (a cross-correlation, as in every deep-learning library).

    forward:   xp = pad(x);  y[n,o,h,w] = b[o] + sum_{c,i,j} xp[n,c,h s+i, w s+j] W[o,c,i,j]
    backward:  each y[n,o,h,w] read the window of xp at (h s, w s) through W[o], so
               dW[o,c,i,j] += sum_{n,h,w} dout[n,o,h,w] xp[n,c,h s+i, w s+j]
               db[o]       += sum_{n,h,w} dout[n,o,h,w]
               dxp[n,c,h s+i, w s+j] += sum_o dout[n,o,h,w] W[o,c,i,j]   (overlap-add)
               dx = dxp without its padding
    The dx line is a transposed convolution of dout with the same W.

    A stride that would skip input pixels (the output size not whole, where
    more than padding is left over) is refused rather than silently dropping
    them; 28 pixels with kernel 3, stride 2, padding 1 give 14, as 'same'.

    Args:
        in_channels, out_channels: C and O.
        kernel_size, stride, padding: an int, or a pair (along H, along W);
            padding adds that many zeros on each side.
        init: "he", "glorot" or "torch" (``tinyae.nn.init``), fans counted over the kernel's taps.
        rng, dtype: as for ``Dense``.
    Shapes:
        x (N, C, H, W) -> y (N, O, Ho, Wo), Ho = floor((H + 2 ph - kh) / sh) + 1,
        where the floor may only drop padding;
        W (O, C, kh, kw) (PyTorch's ``Conv2d.weight``);  b (O,)
    """

    PAIRS = ("kernel_size", "stride", "padding")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 *, init: str = "he", rng: np.random.Generator | None = None,
                 dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init, rng,
                         dtype)

    @staticmethod
    def weight_shape(c_in, c_out, kernel):
        return (c_out, c_in, *kernel)

    @staticmethod
    def out_shape(who, width, c_in, c_out, kernel, stride, padding):
        """(O, Ho, Wo) for images ``width`` = (C, H, W); None for None."""
        width = image_width(who, width, c_in)
        if width is None:
            return None
        return (c_out, *(out_size(who, side, n, k, s, p) for side, n, k, s, p in
                         zip(("height", "width"), width[1:], kernel, stride, padding)))

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        x = as_images(x, self.in_channels, W.dtype, self)
        self.output_width(x.shape[1:])                  # refuse bad sizes before any work
        self.xp = pad(x, self.padding)                  # (N, C, Hp, Wp), kept for dW
        y = conv(self.xp, W, self.stride) + b[:, None, None]            # (N, O, Ho, Wo)
        self._out_shape = y.shape
        return y

    def backward(self, dout):
        self._check_dout(dout)
        W = self.params["W"]
        self.grads["W"] += conv_weight_grad(self.xp, dout, self.kernel_size, self.stride)
        self.grads["b"] += dout.sum(axis=(0, 2, 3))                     # (O,)
        return crop(conv_transpose(dout, W, self.stride, self.xp.shape), self.padding)

    def tensor_forward(self, x, params):
        """The forward as ``tinyae.autograd`` Tensor operations."""
        return x.conv2d(params["W"], params["b"], self.stride, self.padding)


class ConvTranspose2D(_Windowed):
    """2-D transposed convolution: the backward of ``Conv2D`` in its input, used as a forward.

    Conv2D(out_channels -> in_channels) with the same W maps images of this
    layer's output size to its input size; this layer goes back, sending each
    input pixel through W onto the window it would have been computed from:

    forward:   yp[n,o,h s+i, w s+j] += sum_c x[n,c,h,w] W[c,o,i,j]   (overlap-add)
               y = yp without ``padding`` on each side, plus b[o]
    backward:  the adjoint of overlap-add is taking windows, so dx is a convolution:
               dx[n,c,h,w]  = sum_{o,i,j} doutp[n,o,h s+i, w s+j] W[c,o,i,j]
               dW[c,o,i,j] += sum_{n,h,w} x[n,c,h,w] doutp[n,o,h s+i, w s+j]
               db[o]       += sum_{n,h,w} dout[n,o,h,w]           (doutp = pad(dout))

    Args:
        output_padding: extra rows and columns at the bottom and right, to pick
            which of the input sizes a strided convolution maps to H is meant
            (0 <= output_padding < stride, as in PyTorch).
        the rest: as for ``Conv2D``.
    Shapes:
        x (N, C, H, W) -> y (N, O, Ho, Wo),  Ho = (H - 1) sh - 2 ph + kh + oph;
        W (C, O, kh, kw) (PyTorch's ``ConvTranspose2d.weight``);  b (O,)
    """

    PAIRS = ("kernel_size", "stride", "padding", "output_padding")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, *, init: str = "he",
                 rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, init, rng,
                         dtype, output_padding=output_padding)
        self.out_shape(self, None, self.in_channels, self.out_channels, self.kernel_size,
                       self.stride, self.padding, self.output_padding)

    @staticmethod
    def weight_shape(c_in, c_out, kernel):
        return (c_in, c_out, *kernel)

    @staticmethod
    def out_shape(who, width, c_in, c_out, kernel, stride, padding, output_padding):
        """(O, Ho, Wo) for images ``width`` = (C, H, W); None for None."""
        if any(op >= s for op, s in zip(output_padding, stride)):
            raise ValueError(f"{who}: output_padding {output_padding} must be smaller than the "
                             f"stride {stride} on each side (it picks one of the stride's "
                             "possible sizes)")
        width = image_width(who, width, c_in)
        if width is None:
            return None
        out = tuple((n - 1) * s - 2 * p + k + op for n, k, s, p, op in
                    zip(width[1:], kernel, stride, padding, output_padding))
        if min(out) < 1:
            raise ValueError(f"{who}: images of size {width[1:]} give an output of size {out}, "
                             f"since the padding {padding} crops 2*padding from "
                             "(H - 1) * stride + kernel; use less padding or larger images")
        return (c_out, *out)

    def forward(self, x):
        W, b = self.params["W"], self.params["b"]
        x = as_images(x, self.in_channels, W.dtype, self)
        _, Ho, Wo = self.output_width(x.shape[1:])      # refuse bad sizes before any work
        (ph, pw) = self.padding
        self.x = x                                      # (N, C, H, W), kept for dW
        yp = conv_transpose(x, W, self.stride, (len(x), self.out_channels, Ho + 2 * ph,
                                                Wo + 2 * pw))
        y = crop(yp, self.padding) + b[:, None, None]                   # (N, O, Ho, Wo)
        self._out_shape = y.shape
        return y

    def backward(self, dout):
        self._check_dout(dout)
        W, doutp = self.params["W"], pad(dout, self.padding)           # (N, O, Hp, Wp)
        self.grads["W"] += conv_weight_grad(doutp, self.x, self.kernel_size, self.stride)
        self.grads["b"] += dout.sum(axis=(0, 2, 3))
        return conv(doutp, W, self.stride)                              # (N, C, H, W)

    def tensor_forward(self, x, params):
        """The forward as ``tinyae.autograd`` Tensor operations."""
        return x.conv_transpose2d(params["W"], params["b"], self.stride, self.padding,
                                  self.output_padding)


class MaxPool2D(Layer):
    """Max pooling: the largest value of each window.

    forward:   y[n,c,h,w] = max_{i,j} x[n,c,h s+i, w s+j];  keeps where the max was
    backward:  the max is the only entry of its window that moves y, so dout goes
               back to that one pixel: dx = overlap_add(dout at the argmax, 0 elsewhere)
    (On ties the first maximum in the window takes the whole gradient.)

    Args:
        kernel_size: an int or a pair (kh, kw).
        stride: default ``kernel_size`` (windows side by side).
    Shapes:
        x (N, C, H, W) -> y (N, C, Ho, Wo),  Ho = (H - kh) / sh + 1, whole.
    """

    in_features = None          # takes images of any size

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1, "MaxPool2D")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1,
                                                                   "MaxPool2D")

    def forward(self, x):
        x = as_images(x, None, None, self)
        self.output_width(x.shape[1:])                  # refuse bad sizes before any work
        (kh, kw) = self.kernel_size
        win = windows(x, self.kernel_size, self.stride)                 # (N, C, Ho, Wo, kh, kw)
        flat = win.reshape(*win.shape[:4], kh * kw)                     # (N, C, Ho, Wo, kh kw)
        self.argmax, self.x_shape = flat.argmax(axis=-1), x.shape
        y = np.take_along_axis(flat, self.argmax[..., None], axis=-1)[..., 0]
        self._out_shape = y.shape
        return y

    def backward(self, dout):
        self._check_dout(dout)
        kh, kw = self.kernel_size
        at_max = self.argmax[..., None] == np.arange(kh * kw)         # (N, C, Ho, Wo, kh kw)
        cols = (at_max * dout[..., None]).reshape(*dout.shape, kh, kw)
        return overlap_add(cols, self.x_shape, self.stride)

    def tensor_forward(self, x, params):
        return x.max_pool2d(self.kernel_size, self.stride)

    def config(self):
        return {"type": "MaxPool2D", "kernel_size": list(self.kernel_size),
                "stride": list(self.stride)}

    def output_width(self, width):
        return self._out(self, width, self.kernel_size, self.stride)

    @staticmethod
    def _out(who, width, kernel, stride):
        width = image_width(who, width, None)
        if width is None:
            return None
        return (width[0], *(out_size(who, side, n, k, s, 0) for side, n, k, s in
                            zip(("height", "width"), width[1:], kernel, stride)))

    @classmethod
    def shapes_from_config(cls, cfg, width):
        if set(cfg) - {"type", "kernel_size", "stride"} or "kernel_size" not in cfg:
            raise ValueError("a MaxPool2D config needs kernel_size and may have a stride")
        k = pair(cfg["kernel_size"], "kernel_size", 1, "MaxPool2D")
        s = pair(cfg.get("stride", k), "stride", 1, "MaxPool2D")
        return {}, cls._out("MaxPool2D", width, k, s)


class Flatten(Layer):
    """Each sample as one row: (N, C, H, W) -> (N, C H W);  dx = dout reshaped back."""

    in_features = None          # takes samples of any shape

    def forward(self, x):
        x = as_float(x, self)
        if x.ndim < 2:
            raise ValueError(f"Flatten expects a batch (N, ...), got shape {x.shape}; for one "
                             "sample use x[None]")
        self.x_shape = x.shape
        y = x.reshape(len(x), math.prod(x.shape[1:]))                  # (N, C H W)
        self._out_shape = y.shape
        return y

    def backward(self, dout):
        self._check_dout(dout)
        return dout.reshape(self.x_shape)

    def tensor_forward(self, x, params):
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def output_width(self, width):
        return math.prod(width) if isinstance(width, tuple) else width

    @classmethod
    def shapes_from_config(cls, cfg, width):
        super().shapes_from_config(cfg, width)          # refuses any setting
        return {}, math.prod(width) if isinstance(width, tuple) else width


class Reshape(Layer):
    """Each sample to ``shape``: (N, D) -> (N, *shape), e.g. rows of 784 pixels to (1, 28, 28).

    forward: y = x.reshape(N, *shape);  backward: dx = dout.reshape(x.shape).
    """

    def __init__(self, shape):
        super().__init__()
        dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        if not dims or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool)
                               and 1 <= n <= MAX_PARAMETERS for n in dims):
            raise ValueError(f"Reshape: shape must be a tuple of positive ints, e.g. (1, 28, "
                             f"28), got {shape!r}")
        self.shape = tuple(int(n) for n in dims)

    @property
    def in_features(self):
        """Features per sample it reads: the product of ``shape``."""
        return math.prod(self.shape)

    def forward(self, x):
        x = as_float(x, self)
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.in_features:
            raise ValueError(f"{self!r} expects {self.in_features} values per sample, got "
                             f"input shape {x.shape}; pass (N, {self.in_features}) rows, or "
                             "change the shape to match the layer before")
        self.x_shape = x.shape
        y = x.reshape(len(x), *self.shape)
        self._out_shape = y.shape
        return y

    def backward(self, dout):
        self._check_dout(dout)
        return dout.reshape(self.x_shape)

    def tensor_forward(self, x, params):
        return x.reshape(x.shape[0], *self.shape)

    def config(self):
        return {"type": "Reshape", "shape": list(self.shape)}

    def output_width(self, width):
        return self._out(self, width, self.shape)

    @staticmethod
    def _out(who, width, shape):
        given = math.prod(width) if isinstance(width, tuple) else width
        if given is not None and given != math.prod(shape):
            raise ValueError(f"{who} takes {math.prod(shape)} values per sample but is given "
                             f"{width!r}; change the shape to match the layer before")
        return shape

    @classmethod
    def shapes_from_config(cls, cfg, width):
        if set(cfg) != {"type", "shape"} or not isinstance(cfg["shape"], list) \
                or not 1 <= len(cfg["shape"]) <= 8:
            raise ValueError("a Reshape config needs a shape: a list of 1 to 8 sizes")
        shape = Reshape(cfg["shape"]).shape          # the constructor checks the sizes
        return {}, cls._out("Reshape", width, shape)


# The registry ``layer_from_config`` and the checkpoint checker read.
LAYERS.update({cls.__name__: cls for cls in (Conv2D, ConvTranspose2D, MaxPool2D, Flatten,
                                             Reshape)})
