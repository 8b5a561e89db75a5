"""The fast training path: stock layers fused into Numba kernels, buffers reused.

``accelerate(model)`` returns a view of a model that trains faster and shares
its parameter and gradient arrays, so an optimiser built on the plain model
updates the view's weights and the other way round:

- every ``Sequential`` part becomes a ``FastSequential``: a Dense followed by
  a stock activation runs as one matmul plus one fused loop (bias and
  activation forward; activation gradient and bias gradient backward); the
  matmuls are NumPy's, or MKL's when that extra is installed on an Intel
  processor (``blas.py``);
- a stock ``Conv2D`` or ``ConvTranspose2D`` (and the stock activation after
  it) runs as im2col or col2im plus one matmul and one fused loop, a
  ``MaxPool2D`` as one loop each way, or inside that fused loop when it comes
  right behind a ``Conv2D`` (``conv.py``); ``Reshape`` and ``Flatten``
  are views already and run as they are;
- any other object that follows the layer contract (a student's own layer)
  runs through its own ``forward``/``backward`` in the middle of it;
- the model object itself is a shallow copy, so its own ``forward`` and
  ``backward`` (a penalty on the code, a sampling step, a corruption) run
  unchanged around the fast parts.

What the view assumes, and ``fit`` guarantees: an output is used only until
the next forward (outputs are arrays reused from step to step), and a
``zero_grad()`` is followed by a backward through every part (so a Dense may
*write* its gradients instead of filling them with zeros and adding).
A model adds its penalty gradients through ``dout`` (on activations, codes),
never straight into a Dense's ``grads`` before that Dense's backward.
State that a model changes while training must live in arrays it updates in
place: attributes rebound on the view stay on the view.
"""
import copy

import numpy as np

from ..nn.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape
from ..nn.layers import (Dense, Identity, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh,
                         as_float_batch, zero_grads)
from ..nn.losses import MSE
from ..nn.optim import Adam
from . import kernels as K
from .blas import gemm
from .conv import ConvPoolStep, MaxPoolStep, step_class

# The activations the kernels know, by exact type: a subclass may change the maths.
CODES = {Identity: K.IDENTITY, ReLU: K.RELU, LeakyReLU: K.LEAKY_RELU, Sigmoid: K.SIGMOID,
         Tanh: K.TANH}


def is_stock(obj, cls):
    """``obj`` is a ``cls`` whose maths nobody replaced (no subclass, no patched method)."""
    return type(obj) is cls and not {"forward", "backward", "step"} & vars(obj).keys()


def _activation_code(layer):
    return next((code for cls, code in CODES.items() if is_stock(layer, cls)), None)


class Buffers:
    """Arrays an object reuses from call to call, one per name; a new shape replaces one.

    A fresh array of a few hundred KiB costs page faults that take longer than
    the arithmetic that fills it (benchmarks/README.md).
    """

    def __init__(self):
        self._arrays = {}

    def __call__(self, name, shape, dtype):
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[name] = np.empty(shape, dtype)
        return a


class DenseStep:
    """y = act(x @ W + b) and its backward, for one Dense and the stock activation after it."""

    def __init__(self, dense, act=None):
        self.dense, self.act = dense, act
        self.code = _activation_code(act) if act is not None else K.IDENTITY
        self.alpha = getattr(act, "negative_slope", 0.0)
        self.skip_fill = True        # zero_grad may skip the fill (cleared if W is shared)
        self.write = False           # the next backward writes dW and db instead of adding
        self.buffers = Buffers()

    def zero_grad(self):
        if self.skip_fill:
            self.write = True        # backward will overwrite every entry: a fill is wasted
        else:
            self.dense.zero_grad()

    def forward(self, x):
        W, b = self.dense.params["W"], self.dense.params.get("b")
        self.x = as_float_batch(x, self.dense.in_features, W.dtype, self.dense)   # (N, D)
        z = gemm(self.x, W, self.buffers("y", (len(self.x), W.shape[1]), W.dtype))   # x @ W
        one = z.dtype.type(1)
        if self.code == K.SIGMOID:
            e = self.buffers("e", z.shape, z.dtype)
            K.bias_neg_abs(z, b, e)                    # z += b; e = -|z|
            np.exp(e, out=e)                           # NumPy's SIMD exp beats a scalar loop
            K.sigmoid_from_exp(z, e, one, np.finfo(z.dtype).tiny)
        elif self.code == K.TANH:
            K.bias_act(z, b, K.IDENTITY, one)
            np.tanh(z, out=z)
        else:
            K.bias_act(z, b, self.code, z.dtype.type(self.alpha))
        self.y = z                                     # (N, H); backward writes act' with y
        return z

    def backward(self, dy, need_dx=True):
        W, grads = self.dense.params["W"], self.dense.grads
        if np.shape(dy) != self.y.shape:               # the loops below do not check bounds
            raise ValueError(f"{self.dense!r}.backward(): dout has shape {np.shape(dy)}, "
                             f"expected the output's {self.y.shape}")
        dy = np.ascontiguousarray(dy, dtype=W.dtype)
        t, add, tiny = dy.dtype.type, not self.write, np.finfo(dy.dtype).tiny
        if self.code == K.IDENTITY:
            dz = dy
            if "b" in grads:
                K.bias_grad(dz, grads["b"], add)
        else:
            dz = self.buffers("dz", dy.shape, dy.dtype)
            if "b" in grads:                           # db summed while dz is in cache
                K.act_grad_bias(self.y, dy, self.code, t(self.alpha), t(1), tiny, dz, grads["b"],
                                add)
            else:
                K.act_grad(self.y, dy, self.code, t(self.alpha), t(1), tiny, dz)
        gemm(self.x, dz, grads["W"], trans_a=True, accumulate=add)   # dW (+)= x^T dz, (D, H)
        self.write = False
        if not need_dx:
            return None
        return gemm(dz, W, self.buffers("dx", self.x.shape, dz.dtype), trans_b=True)  # dz W^T


class LayerStep:
    """Any other layer: its own forward and backward, untouched."""

    def __init__(self, layer):
        self.layer = layer

    def zero_grad(self):
        zero_grads(self.layer)              # a student's layer may have no zero_grad of its own

    def forward(self, x):
        return self.layer.forward(x)

    def backward(self, dy, need_dx=True):
        return self.layer.backward(dy)


def _windowed(layer, pooled=False):
    """The step class (conv.py) for a stock convolution with float32 or float64 weights."""
    if not (is_stock(layer, Conv2D) or is_stock(layer, ConvTranspose2D)):
        return None
    if layer.params["W"].dtype not in (np.float32, np.float64):
        return None
    return step_class(layer, pooled)


def plan(layers):
    """The steps of a layer list: (Dense or convolution, stock activation) pairs fused,
    a max pool right behind a convolution's pair taken into its step, any other max
    pooling as its own loop, the rest as they are."""
    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        fused = nxt is not None and _activation_code(nxt) is not None
        if is_stock(layer, Dense):
            steps.append(DenseStep(layer, nxt if fused else None))
            i += 2 if fused else 1
        elif _windowed(layer) is not None:
            code = _activation_code(nxt) if fused else K.IDENTITY
            alpha = getattr(nxt, "negative_slope", 0.0) if fused else 0.0
            i += 2 if fused else 1
            pool = layers[i] if i < len(layers) and is_stock(layers[i], MaxPool2D) else None
            cls = _windowed(layer, pooled=pool is not None)
            if cls is ConvPoolStep:
                steps.append(cls(layer, code, alpha, Buffers(), pool))
                i += 1
            else:
                steps.append(cls(layer, code, alpha, Buffers()))
        elif is_stock(layer, MaxPool2D):
            steps.append(MaxPoolStep(layer, Buffers()))
            i += 1
        elif isinstance(layer, Sequential):
            steps.append(LayerStep(FastSequential(layer)))
            i += 1
        else:
            steps.append(LayerStep(layer))
            i += 1
    return steps


def _is_view(step):
    return isinstance(step, LayerStep) and (is_stock(step.layer, Reshape)
                                            or is_stock(step.layer, Flatten))


class FastSequential(Sequential):
    """A ``Sequential`` on the fast path: the same layers (and arrays), fused steps.

    Outputs are reused arrays, valid until the next ``forward``.
    ``need_input_grad = False`` skips the first layer's dx (nobody needs the
    gradient with respect to the data) and makes ``backward`` return None; a
    stock ``Reshape`` or ``Flatten`` in front has no parameters, so the layer
    after it counts as the first (a convolution behind ``Reshape``).
    """

    def __init__(self, seq):
        super().__init__(*seq.layers)
        self.steps = plan(self.layers)
        self.need_input_grad = True
        self.first = 0                       # the first step with parameters, past views
        while self.first < len(self.steps) - 1 and _is_view(self.steps[self.first]):
            self.first += 1

    def forward(self, x):
        for step in self.steps:
            x = step.forward(x)
        self._out_shape = np.shape(x)
        return x

    def backward(self, dout):
        self._check_dout(dout)
        stop = 0 if self.need_input_grad else self.first
        for k in range(len(self.steps) - 1, stop - 1, -1):
            dout = self.steps[k].backward(dout, need_dx=k > stop or self.need_input_grad)
        return dout

    def zero_grad(self):
        for step in self.steps:
            step.zero_grad()


def _filling_steps(net):
    """The steps, at any depth, that may skip zero_grad's fill: (step, its layer)."""
    for step in getattr(net, "steps", ()):
        if isinstance(step, DenseStep):
            yield step, step.dense
        elif hasattr(step, "skip_fill"):
            yield step, step.layer
        elif isinstance(step, LayerStep):
            yield from _filling_steps(step.layer)


def accelerate(model):
    """A view of ``model`` on the fast path; parameters and gradients are shared, not copied.

    A ``Sequential`` becomes a ``FastSequential``; any other model becomes a
    shallow copy whose ``Sequential`` attributes are fast. The part named by
    the model's ``input_part`` attribute (an autoencoder's "encoder") skips
    the gradient with respect to the data.
    """
    if isinstance(model, FastSequential):
        return model
    if isinstance(model, Sequential):
        fast = FastSequential(model)
    else:
        fast = copy.copy(model)
        for name, part in vars(model).items():
            if isinstance(part, Sequential):
                setattr(fast, name, accelerate(part))
        first = getattr(fast, getattr(model, "input_part", None) or "", None)
        if isinstance(first, FastSequential):     # never set attributes on a student's object
            first.need_input_grad = False
    # A layer used twice (tied or repeated) gets two backward calls a step: the
    # second must add to the first, so neither may skip the zero fill.
    parts = [fast] if isinstance(fast, FastSequential) else [
        p for p in vars(fast).values() if isinstance(p, FastSequential)]
    seen = {}
    for s, layer in (pair for p in parts for pair in _filling_steps(p)):
        seen.setdefault(id(layer.grads["W"]), []).append(s)
    for group in seen.values():
        if len(group) > 1:
            for s in group:
                s.skip_fill = False
    return fast


class FastMSE(MSE):
    """``MSE`` with the loss and its gradient in one Numba pass, into a reused array."""

    def __init__(self):
        self.buffers, self._fused = Buffers(), True

    def forward(self, pred, target) -> float:
        pred, target = self._check(pred, target)
        self._fused = pred.dtype in (np.float32, np.float64)   # no Numba loop for float16
        if not self._fused:
            return super().forward(pred, target)
        g = self.buffers("grad", pred.shape, pred.dtype)
        s = K.mse_grad(np.ravel(pred), np.ravel(target), pred.dtype.type(2.0 / pred.size),
                       g.reshape(-1))
        self._cache = (g,)
        return s / pred.size

    def backward(self):
        if not self._fused:
            return super().backward()
        g, = self._saved()                       # dpred, computed with the loss
        return g


def fast_loss(loss):
    """The fast version of a stock loss, else the loss itself."""
    return FastMSE() if is_stock(loss, MSE) else loss


class AdamKernel:
    """``adam.step()`` as one Numba loop per parameter array, on the optimiser's own state.

    Reads ``adam.lr`` at every call, so a schedule that sets it works here too.
    Stores 0 for a new moment below the dtype's smallest normal number and a new
    weight below its square root (``kernels.adam`` says why); the plain ``Adam``
    keeps the exact values.
    """

    def __init__(self, adam):
        self.adam = adam
        arrays = [a for (_, p, g), m, v in zip(adam.params, adam.m, adam.v) for a in (p, g, m, v)]
        if not all(a.flags.c_contiguous for a in arrays):
            raise ValueError("AdamKernel needs C-contiguous parameters, gradients and moments")
        tiny = [np.finfo(p.dtype).tiny for _, p, _ in adam.params]
        self.floors = [(t, np.sqrt(t)) for t in tiny]   # per parameter: moments, weights

    def __call__(self):
        a = self.adam
        a.t += 1
        b1, b2 = a.betas
        for (_, p, g), m, v, (tiny, p_floor) in zip(a.params, a.m, a.v, self.floors):
            c = p.dtype.type                            # the scalars in p's dtype, as NumPy does
            K.adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                   c(a.lr / (1 - b1 ** a.t)), c(b1), c(1 - b1), c(b2), c(1 - b2),
                   c(1 / (1 - b2 ** a.t) ** 0.5), c(a.eps), c(a.weight_decay), tiny, p_floor)


def fast_step(optimizer):
    """A callable doing ``optimizer.step()``: the fused kernel for Adam, else the plain step."""
    if is_stock(optimizer, Adam) and all(p.dtype in (np.float32, np.float64)
                                       for _, p, _ in optimizer.params):
        try:
            return AdamKernel(optimizer)
        except ValueError:
            pass
    return optimizer.step


def gather_rows(X, idx, out):
    """X[idx] into ``out`` (when it has the right shape): one mini-batch, contiguous."""
    idx = np.asarray(idx, dtype=np.int64)
    if out is None or out.shape != (len(idx),) + X.shape[1:]:
        out = np.empty((len(idx),) + X.shape[1:], dtype=X.dtype)
    if idx.size and not (-len(X) <= idx.min() and idx.max() < len(X)):   # the loop won't check
        raise IndexError(f"gather_rows: row indices must be in [-{len(X)}, {len(X)}), got "
                         f"{idx.min()}..{idx.max()}")
    K.gather(X.reshape(len(X), -1), idx, out.reshape(len(out), -1))
    return out
