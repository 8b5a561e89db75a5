"""Layers with hand-written forward and backward passes, in plain NumPy.

The layer contract (any object that follows it works with containers,
optimisers, ``summary``, ``fit`` on both paths and ``tinyae.gradcheck``; no
base class needed):

- ``forward(x)`` returns the output (a new array) and keeps what backward needs.
- ``backward(dout)`` takes dLoss/d(output), returns dLoss/dx, and *adds*
  parameter gradients into ``self.grads`` (so they are zeroed between steps).
- ``params`` and ``grads`` are dicts with the same keys; optimisers update the
  arrays in place, so references to them stay valid.

Whatever else a container needs (zeroing, widths, parameter names) it derives
from those four: ``zero_grads``, ``input_width``, ``output_width`` and
``layer_parameters`` below. ``tinyae.gradcheck.check_contract`` checks a layer
against every point of the contract.

This file is the definition of every layer formula in the package. The fast
training path (``tinyae.fast``) fuses the same formulas into Numba kernels and
is tested against these classes.

Shape letters: N batch, D input features, H output features.
"""
import numpy as np

from . import init as initialisers
from .functional import sigmoid

# A bound on what one model may ask for: 100 M parameters are 400 MB in float32 (1.6 GB with
# Adam's two moments and the gradients), far beyond any model these lessons train. A typo such
# as sizes=(10**9, 2) is refused with this number instead of asking the machine for 15 GiB.
MAX_PARAMETERS = 100_000_000
MAX_FEATURES = 10_000_000       # the widest Dense a checkpoint may describe


def check_model_size(n_parameters, what="the model"):
    """Raise ``ValueError`` when ``n_parameters`` exceeds ``MAX_PARAMETERS``."""
    if n_parameters > MAX_PARAMETERS:
        raise ValueError(f"{what} would have {n_parameters:,} parameters, more than tinyae's "
                         f"limit of {MAX_PARAMETERS:,} (tinyae.nn.layers.MAX_PARAMETERS); check "
                         "the sizes.")


class Layer:
    """Base class: empty ``params``/``grads`` and the checks every layer shares."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self._out_shape = None                    # set by forward; None means "no forward yet"

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def zero_grad(self):
        """Set every gradient to zero (gradients accumulate across backward calls)."""
        for g in self.grads.values():
            g.fill(0)

    def parameters(self, prefix=""):
        """Yield ``(name, param, grad)`` for each parameter."""
        for key, p in self.params.items():
            yield prefix + key, p, self.grads[key]

    def config(self):
        """The constructor arguments, as JSON-ready data (used by ``tinyae.save``)."""
        return {"type": type(self).__name__}

    def output_width(self, width):
        """Width out, given ``width`` in (used by ``summary``): an int for rows (N, D),
        a tuple for images (C, H, W), None when not known."""
        return width

    @classmethod
    def shapes_from_config(cls, cfg, width):
        """(parameter shapes, width out) of the layer ``cfg`` describes, for ``width``
        in, without building it: what a checkpoint may hold is checked with this
        before anything is allocated. ``ValueError`` for a config this class never writes.

        A width is the shape of one sample: an int D for rows (N, D), a tuple such
        as (C, H, W) for images (``nn/conv.py``), None when not known."""
        extra = set(cfg) - {"type"}
        if extra:
            raise ValueError(f"unexpected settings {sorted(extra)} for {cls.__name__}")
        return {}, width

    @classmethod
    def from_config(cls, cfg, rng=None, dtype=np.float32):
        """The layer ``config()`` describes (``cfg`` without its "type"); a layer with
        weights takes ``rng`` and ``dtype`` too."""
        return cls(**cfg)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    def _check_dout(self, dout):
        name = type(self).__name__
        if self._out_shape is None:
            raise RuntimeError(f"{name}.backward() was called before forward(): run forward on "
                               "a batch first, since backward uses what forward kept.")
        if np.shape(dout) != self._out_shape:
            raise ValueError(f"{name}.backward(): dout has shape {np.shape(dout)} but forward "
                             f"returned shape {self._out_shape}; pass dLoss/d(output), which "
                             "has the shape of the output.")


def as_float_batch(x, width, dtype, who):
    """Check that ``x`` is an (N, width) float array and return it in ``dtype``.

    ``width`` None accepts any width. ``who`` (a name, or the layer itself) is only
    formatted when there is an error.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{who} expects floating-point input, got dtype {x.dtype}; convert it "
                        "first, e.g. x.astype(np.float32) / 255 for 8-bit images.")
    if x.ndim != 2:
        raise ValueError(f"{who} expects a 2-D batch of shape (N, {width or 'D'}), got shape "
                         f"{x.shape}; "
                         "for a single sample use x[None, :] or x.reshape(1, -1).")
    if width is not None and x.shape[1] != width:
        raise ValueError(f"{who} expects {width} input features, got {x.shape[1]} "
                         f"(input shape {x.shape}).")
    return x.astype(dtype, copy=False)


def as_float(x, who):
    """``x`` as an array, if it is floating point (activations take any shape)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{who} expects floating-point input, got dtype {x.dtype}")
    return x


class Dense(Layer):
    """Fully connected layer.

    forward:   y = x W + b
    backward:  dW += x^T dout,  db += sum_n dout,  dx = dout W^T

    ``W`` is stored as (in_features, out_features) so the forward reads
    ``x @ W``; this is the transpose of PyTorch's ``Linear.weight``.

    Args:
        in_features, out_features: D and H.
        bias: learn an additive bias ``b``.
        init: "he" (for ReLU layers), "glorot" (for linear, sigmoid, tanh) or "torch"
            (torch.nn.Linear's start, the bias drawn too; ``tinyae.nn.init``).
        rng: ``np.random.Generator`` for the initial weights.
        dtype: parameter dtype; inputs are converted to it.
    Shapes:
        x (N, D) -> y (N, H);  W (D, H);  b (H,)
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 init: str = "he", rng: np.random.Generator | None = None, dtype=np.float32):
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"Dense: {name} must be a positive integer, got {n!r}")
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        check_model_size(self.in_features * self.out_features + self.out_features,
                         f"Dense({self.in_features}, {self.out_features})")
        rng = np.random.default_rng() if rng is None else rng
        self.params["W"] = initialisers.get(init)((self.in_features, self.out_features), rng, dtype)
        if bias:
            self.params["b"] = initialisers.bias(init, (self.in_features, self.out_features),
                                                 self.out_features, rng, dtype)
        # np.zeros, not zeros_like: the OS hands out zero pages as they are first written, so a
        # model that is only used (never trained) costs no memory for its gradients.
        self.grads = {k: np.zeros(p.shape, p.dtype) for k, p in self.params.items()}

    def forward(self, x):
        W = self.params["W"]
        self.x = as_float_batch(x, self.in_features, W.dtype, self)   # (N, D), kept for dW
        y = self.x @ W                                                # (N, H)
        if "b" in self.params:
            y += self.params["b"]                                     # broadcast over the rows
        self._out_shape = y.shape
        return y

    def backward(self, dout):
        self._check_dout(dout)
        self.grads["W"] += self.x.T @ dout                            # (D, H)
        if "b" in self.grads:
            self.grads["b"] += dout.sum(axis=0)                       # (H,)
        return dout @ self.params["W"].T                              # (N, D)

    def config(self):
        return {"type": "Dense", "in_features": self.in_features,
                "out_features": self.out_features, "bias": "b" in self.params, "init": self.init}

    def output_width(self, width):
        return self.out_features

    @classmethod
    def shapes_from_config(cls, cfg, width):
        d, h, bias, init = (cfg.get(k, default) for k, default in (
            ("in_features", None), ("out_features", None), ("bias", True), ("init", "he")))
        if set(cfg) - {"type", "in_features", "out_features", "bias", "init"} \
                or not all(type(n) is int and 1 <= n <= MAX_FEATURES for n in (d, h)) \
                or not isinstance(bias, bool) or not isinstance(init, str) \
                or init not in initialisers.INITIALISERS:
            raise ValueError(f"a Dense config needs in_features and out_features in "
                             f"1..{MAX_FEATURES:,}, a boolean bias and a known init")
        if width is not None and d != width:
            raise ValueError(f"takes {d} features but is given {width}")
        return ({"W": (d, h), "b": (h,)} if bias else {"W": (d, h)}), h

    def tensor_forward(self, x, params):
        """The forward as ``tinyae.autograd`` Tensor operations: x W + b."""
        y = x @ params["W"]
        return y + params["b"] if "b" in params else y


# --- activations: y = act(x) elementwise, dx = dout * act'(x) ------------------------
class Identity(Layer):
    """y = x;  dx = dout."""

    js = "v"                                  # the explorer's decoder, in JavaScript

    def tensor_forward(self, x, params):
        return x

    def forward(self, x):
        x = as_float(x, self)
        self._out_shape = x.shape
        return x

    def backward(self, dout):
        self._check_dout(dout)
        return dout


class ReLU(Layer):
    """y = max(x, 0);  dx = dout * [x > 0]."""

    js = "v > 0 ? v : 0"

    def tensor_forward(self, x, params):
        return x.relu()

    def forward(self, x):
        x = as_float(x, self)
        self.mask = x > 0                         # where the gradient passes
        self._out_shape = x.shape
        return x * self.mask

    def backward(self, dout):
        self._check_dout(dout)
        return dout * self.mask


class LeakyReLU(Layer):
    """y = x if x > 0 else a x;  dx = dout if x > 0 else a dout  (a = negative_slope)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        if not 0 <= negative_slope < 1:
            raise ValueError(f"LeakyReLU: negative_slope must be in [0, 1), got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        x = as_float(x, self)
        self.mask = x > 0
        self._out_shape = x.shape
        return np.where(self.mask, x, self.negative_slope * x)

    def backward(self, dout):
        self._check_dout(dout)
        return np.where(self.mask, dout, self.negative_slope * dout)

    def config(self):
        return {"type": "LeakyReLU", "negative_slope": self.negative_slope}

    @classmethod
    def shapes_from_config(cls, cfg, width):
        slope = cfg.get("negative_slope", 0.01)
        if set(cfg) - {"type", "negative_slope"} or isinstance(slope, bool) \
                or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
            raise ValueError(f"unexpected settings {sorted(set(cfg) - {'type'})} for LeakyReLU "
                             "(negative_slope in [0, 1))")
        return {}, width

    js = "v > 0 ? v : a * v"                  # a: the negative slope

    def tensor_forward(self, x, params):
        return x.relu() - self.negative_slope * (-x).relu()      # x if x > 0, else a x


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x));  dx = dout * y (1 - y)."""

    js = "v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v))"

    def tensor_forward(self, x, params):
        return x.sigmoid()

    def forward(self, x):
        self.y = sigmoid(as_float(x, self))       # the derivative is written with y
        self._out_shape = self.y.shape
        return self.y

    def backward(self, dout):
        self._check_dout(dout)
        return dout * self.y * (1 - self.y)


class Tanh(Layer):
    """y = tanh(x);  dx = dout * (1 - y^2)."""

    js = "Math.tanh(v)"

    def tensor_forward(self, x, params):
        return x.tanh()

    def forward(self, x):
        self.y = np.tanh(as_float(x, self))
        self._out_shape = self.y.shape
        return self.y

    def backward(self, dout):
        self._check_dout(dout)
        return dout * (1 - self.y ** 2)


# --- what containers derive from the contract ---------------------------------------
# A student's layer has forward, backward, params and grads, nothing more: each helper
# uses the layer's own method when it has one, else derives the answer from the four.
def layer_parameters(layer, prefix=""):
    """``layer.parameters(prefix)`` or, for a bare contract object, its params/grads dicts."""
    if hasattr(layer, "parameters"):
        return layer.parameters(prefix)
    return ((prefix + k, p, layer.grads[k]) for k, p in layer.params.items())


def zero_grads(layer):
    """``layer.zero_grad()``, or fill each of its ``grads`` arrays with 0 in place."""
    if hasattr(layer, "zero_grad"):
        layer.zero_grad()
    else:
        for g in layer.grads.values():
            g.fill(0)


def input_width(layer):
    """Features the layer reads: its ``in_features``, else the side of the first 2-D weight
    ``W`` met in order that its forward accepts (layers before it keep the width); None
    when none says, or at a layer that takes samples of any size first (``in_features``
    None: a convolution, a pooling, a Flatten)."""
    for part in (layer.layers if isinstance(layer, Sequential) else [layer]):
        if isinstance(part, Sequential):
            width = input_width(part)
            if width is not None:
                return width
        elif hasattr(part, "in_features"):
            return None if part.in_features is None else int(part.in_features)
        elif np.ndim(getattr(part, "params", {}).get("W")) == 2:
            return _width_that_runs(part)
    return None


def _width_that_runs(layer):
    """D for a student's weight stored (D, H), or (H, D) as PyTorch does: the side that
    ``forward`` takes, tried on two rows of zeros."""
    W = layer.params["W"]
    for width in dict.fromkeys(W.shape):
        try:
            layer.forward(np.zeros((2, width), W.dtype))
        except Exception:       # the wrong side: a shape error from the student's matmul
            continue
        return width
    return None


def output_width(layer, width):
    """Width out for ``width`` in (an int, or a tuple for images): the layer's
    ``output_width``, else measured with a forward on two samples of zeros (a student's
    layer); None when that cannot be known."""
    if hasattr(layer, "output_width"):
        return layer.output_width(width)
    if width is None:
        return None
    dtype = next((p.dtype for p in layer.params.values()), np.float64)
    try:
        y = layer.forward(np.zeros((2, *np.atleast_1d(width)), dtype))
    except Exception:           # a layer that cannot take zeros still gets its row: width '?'
        return None
    shape = np.shape(y)[1:]
    return None if not shape else shape[0] if len(shape) == 1 else tuple(shape)


# --- containers --------------------------------------------------------------------


class Sequential(Layer):
    """Layers applied in order; backward walks them in reverse (the chain rule).

    forward:   x -> l1 -> l2 -> ... -> y
    backward:  dx = l1.backward(l2.backward(... ln.backward(dout)))
    """

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        self._out_shape = np.shape(x)
        return x

    def backward(self, dout):
        self._check_dout(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def zero_grad(self):
        for layer in self.layers:
            zero_grads(layer)

    def parameters(self, prefix=""):
        for i, layer in enumerate(self.layers):
            yield from layer_parameters(layer, f"{prefix}{i}.")

    def children(self):
        return list(self.layers)

    def config(self):
        return {"type": "Sequential", "layers": [layer.config() for layer in self.layers]}

    def output_width(self, width):
        for layer in self.layers:
            width = output_width(layer, width)
        return width

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


# Every layer class a config may name; nn/conv.py adds its own.
LAYERS = {cls.__name__: cls for cls in (Dense, Identity, ReLU, LeakyReLU, Sigmoid, Tanh)}
ACTIVATION_LAYERS = {"identity": Identity, "relu": ReLU, "leaky_relu": LeakyReLU,
                     "sigmoid": Sigmoid, "tanh": Tanh}


def layer_from_config(cfg, rng=None, dtype=np.float32):
    """Build a layer (or Sequential) from ``config()`` output."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind == "Sequential":
        return Sequential(*(layer_from_config(c, rng, dtype) for c in cfg["layers"]))
    if kind == "Dense":
        return Dense(cfg["in_features"], cfg["out_features"], bias=cfg.get("bias", True),
                     init=cfg.get("init", "he"), rng=rng, dtype=dtype)
    if kind not in LAYERS:
        raise ValueError(f"unknown layer type {kind!r} in config; known: {sorted(LAYERS)}")
    return LAYERS[kind].from_config(cfg, rng, dtype)
