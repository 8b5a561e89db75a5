"""Gradient checking: compare hand-written backward passes with finite differences.

Public, for coursework: it works on any object that follows the layer
contract (``forward``, ``backward``, ``params``, ``grads``), a tinyae layer
or your own class. Every check runs in float64 on a deep copy, so the layer
you pass in is never changed.

For an upstream gradient ``dout`` (random by default), the scalar
s(x) = sum(forward(x) * dout) has ds/dx = backward(dout); the numerical
estimate is the centred difference (s(x + h e_i) - s(x - h e_i)) / 2h,
whose error shrinks like h^2.

``check_op`` and ``check_three_ways`` add a third opinion, autograd's tape
(``tinyae.autograd``): an operation against finite differences, a layer's
hand-written backward against the tape and finite differences.
"""
import copy
from dataclasses import dataclass, field

import numpy as np

from .autograd import Tensor, layer_forward
from .layers import layer_parameters


def rel_error(a, b) -> float:
    """max |a - b| / max(1e-8, max(|a| + |b|)): relative to the gradient's scale.

    Scaling by the largest entry (not entry by entry) keeps tiny entries,
    where finite differences are all noise, from swamping the verdict.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


def numerical_gradient(f, x, dout, h=1e-5, indices=None):
    """Centred-difference estimate of d sum(f(x) * dout) / dx.

    ``x`` is perturbed in place (and restored), so ``f`` may also ignore its
    argument and read a parameter array that ``x`` is. ``indices`` (flat
    positions) limits the work to some entries; the others stay zero.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)    # views: writes reach x and grad
    for i in (range(x.size) if indices is None else indices):
        old = flat[i]
        flat[i] = old + h
        plus = np.sum(f(x) * dout)
        flat[i] = old - h
        minus = np.sum(f(x) * dout)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


@dataclass
class GradcheckReport:
    """Relative error per checked array; ``passed`` when all are below ``threshold``."""
    rows: list = field(default_factory=list)          # (name, shape, rel_error)
    threshold: float = 1e-7

    @property
    def passed(self) -> bool:
        return all(err < self.threshold for _, _, err in self.rows)

    @property
    def max_error(self) -> float:
        return max((err for _, _, err in self.rows), default=0.0)

    @property
    def failed(self):
        """Names of the arrays whose gradient is wrong."""
        return [name for name, _, err in self.rows if not err < self.threshold]

    def __bool__(self):
        return self.passed

    def __str__(self):
        w = max([len(r[0]) for r in self.rows] + [9])
        lines = [f"{'gradient':<{w}}  {'shape':<14}{'rel error':>11}  ok"]
        for name, shape, err in self.rows:
            lines.append(f"{name:<{w}}  {str(shape):<14}{err:>11.2e}  "
                         f"{'yes' if err < self.threshold else 'NO'}")
        verdict = "PASSED" if self.passed else f"FAILED: {', '.join(self.failed)}"
        lines.append(f"threshold {self.threshold:.0e}: {verdict}")
        return "\n".join(lines)


def _owners(obj):
    """Every object in a layer, container or model that holds a params dict."""
    if isinstance(getattr(obj, "params", None), dict):
        yield obj
    for child in (obj.children() if hasattr(obj, "children") else ()):
        yield from _owners(child)


def float64_copy(layer):
    """A deep copy of ``layer`` with every parameter and gradient in float64.

    An attribute that is the same array as a parameter (``self.W = self.params["W"]``,
    common in hand-written layers) is pointed at the new array too.
    """
    layer = copy.deepcopy(layer)
    for owner in _owners(layer):
        for k in list(owner.params):
            old = {id(owner.params[k]): np.array(owner.params[k], dtype=np.float64),
                   id(owner.grads[k]): np.zeros(np.shape(owner.params[k]), dtype=np.float64)}
            for attr, value in list(vars(owner).items()):
                if id(value) in old:
                    setattr(owner, attr, old[id(value)])
            owner.params[k], owner.grads[k] = old[id(owner.params[k])], old[id(owner.grads[k])]
    return layer


def _named_params(layer):
    return list(layer_parameters(layer))


def _zero_grads(layer):
    for _, _, g in _named_params(layer):
        g.fill(0)


def _sample(size, samples, rng):
    return None if samples is None or samples >= size else rng.choice(size, samples, replace=False)


def _compare(rows, name, analytic, numeric, idx):
    if idx is not None:
        analytic, numeric = analytic.reshape(-1)[idx], numeric.reshape(-1)[idx]
    shape = analytic.shape if idx is None else f"{len(idx)} sampled"
    rows.append((name, shape, rel_error(analytic, numeric)))


def check_layer(layer, x, dout=None, *, h=1e-5, threshold=1e-7, samples=None,
                rng=None) -> GradcheckReport:
    """Check ``layer.backward`` for the input and every parameter.

    Args:
        layer: any object with forward/backward/params/grads (not modified).
        x: an input batch; converted to float64.
        dout: upstream gradient; standard normal when None.
        samples: check at most this many random entries per array (big layers).
    Returns:
        a ``GradcheckReport``: ``print(report)`` shows a table, ``report.passed``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    layer = float64_copy(layer)
    x = np.array(x, dtype=np.float64)
    out = layer.forward(x.copy())
    dout = rng.standard_normal(np.shape(out)) if dout is None else np.array(dout, np.float64)

    _zero_grads(layer)
    layer.forward(x.copy())
    dx = layer.backward(dout)
    analytic = [(name, g.copy()) for name, _, g in _named_params(layer)]

    rows = []
    idx = _sample(x.size, samples, rng)
    _compare(rows, "input", np.asarray(dx), numerical_gradient(layer.forward, x, dout, h, idx), idx)
    for (name, p, _), (_, g) in zip(_named_params(layer), analytic):
        idx = _sample(p.size, samples, rng)
        num = numerical_gradient(lambda _: layer.forward(x.copy()), p, dout, h, idx)
        _compare(rows, name, g, num, idx)
    return GradcheckReport(rows, threshold)


def check_loss(loss, pred, target, *, h=1e-5, threshold=1e-7) -> GradcheckReport:
    """Check ``loss.backward()`` against finite differences of ``loss.forward``."""
    loss = copy.deepcopy(loss)
    pred, target = np.array(pred, dtype=np.float64), np.array(target, dtype=np.float64)
    loss.forward(pred.copy(), target)
    analytic = np.asarray(loss.backward())
    numeric = numerical_gradient(lambda p: loss.forward(p.copy(), target), pred, 1.0, h)
    rows = []
    _compare(rows, "pred", analytic, numeric, None)
    return GradcheckReport(rows, threshold)


def check_penalty(penalty, Z, *, h=1e-5, threshold=1e-7) -> GradcheckReport:
    """Check ``penalty.backward()`` (dP/dZ) against finite differences of ``penalty.forward(Z)``.

    ``penalty`` is anything with ``forward(Z) -> float`` and ``backward() -> dZ``,
    e.g. ``tinyae.penalties.KLSparsity`` or your own.
    """
    penalty = copy.deepcopy(penalty)
    Z = np.array(Z, dtype=np.float64)
    penalty.forward(Z.copy())
    analytic = np.asarray(penalty.backward())
    numeric = numerical_gradient(lambda z: penalty.forward(z.copy()), Z, 1.0, h)
    rows = []
    _compare(rows, "Z", analytic, numeric, None)
    return GradcheckReport(rows, threshold)


def _model_penalty(model):
    penalty = getattr(model, "penalty", None)
    return 0.0 if penalty is None else penalty()


def check_model(model, loss, x, target, *, h=1e-5, threshold=1e-6, samples=None,
                rng=None) -> GradcheckReport:
    """Check a whole model end to end: d/d(x and every parameter) of the training objective

        loss(model(x), target) + model.penalty()

    (the penalty only when the model has one, e.g. a sparse autoencoder).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    model, loss = float64_copy(model), copy.deepcopy(loss)
    x, target = np.array(x, dtype=np.float64), np.array(target, dtype=np.float64)

    def objective(xx):
        return loss.forward(model.forward(xx.copy()), target) + _model_penalty(model)

    def scalar(_=None):
        return objective(x)

    _zero_grads(model)
    scalar()
    dx = model.backward(loss.backward())
    analytic = [(name, g.copy()) for name, _, g in _named_params(model)]

    rows = []
    idx = _sample(x.size, samples, rng)
    num = numerical_gradient(objective, x, 1.0, h, idx)
    _compare(rows, "input", np.asarray(dx), num, idx)
    for (name, p, _), (_, g) in zip(_named_params(model), analytic):
        idx = _sample(p.size, samples, rng)
        _compare(rows, name, g, numerical_gradient(scalar, p, 1.0, h, idx), idx)
    return GradcheckReport(rows, threshold)


# --- the same gradients from autograd's tape -----------------------------------------
def check_op(f, *inputs, dout=None, h=1e-5, threshold=1e-7, rng=None) -> GradcheckReport:
    """Check an operation's gradient: the tape against centred differences, in float64.

    ``f`` takes Tensors and returns a Tensor, e.g. ``lambda a, b: a * b``; the
    scalar checked is sum(f(inputs) * dout), dout random by default.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    tensors = [Tensor(x) for x in arrays]
    out = f(*tensors)
    dout = rng.standard_normal(out.shape) if dout is None else np.asarray(dout, np.float64)
    out.backward(dout)

    def value(_):
        return f(*[Tensor(x, requires_grad=False) for x in arrays]).data
    rows = [(f"input {k}", x.shape, rel_error(t.grad, numerical_gradient(value, x, dout, h)))
            for k, (x, t) in enumerate(zip(arrays, tensors))]
    return GradcheckReport(rows, threshold)


def check_three_ways(layer, x, dout=None, *, forward=None, samples=None, h=1e-5,
                     threshold=1e-7, rng=None) -> GradcheckReport:
    """The same gradients three ways: the layer's backward, autograd's tape, finite differences.

    Runs on a float64 copy of ``layer`` (a layer, container or model); the
    tape reads that copy's own parameter arrays. ``forward(x, params)`` is the
    Tensor version of the forward, ``params`` the {dotted name: Tensor} of
    ``layer.parameters()``; by default ``autograd.layer_forward``, which knows
    tinyae's layers. Two rows per array: "tape vs layer", "numeric vs layer".
    """
    rng = np.random.default_rng(0) if rng is None else rng
    layer, x = float64_copy(layer), np.array(x, dtype=np.float64)
    forward = forward or (lambda xt, params: layer_forward(layer, xt, params))
    named = _named_params(layer)

    _zero_grads(layer)                                      # 1. the hand-written backward
    y = layer.forward(x.copy())
    dout = rng.standard_normal(np.shape(y)) if dout is None else np.array(dout, np.float64)
    by_layer = [np.asarray(layer.backward(dout))] + [g.copy() for _, _, g in named]

    xt = Tensor(x.copy(), name="x")                         # 2. the tape, on the same arrays
    params = {name: Tensor(p, name=name) for name, p, _ in named}
    yt = forward(xt, params)
    if yt.shape != np.shape(y) or rel_error(yt.data, y) > threshold:
        raise ValueError(f"the Tensor forward disagrees with {type(layer).__name__}.forward "
                         f"(output shapes {yt.shape} and {np.shape(y)}); make the two compute "
                         "the same function before comparing their gradients.")
    yt.backward(dout)
    tensors = [xt] + [params[name] for name, _, _ in named]
    by_tape = [np.zeros(t.shape) if t.grad is None else t.grad for t in tensors]  # unused: 0

    rows = []                                               # 3. finite differences
    arrays = [("input", x)] + [(name, p) for name, p, _ in named]
    for (name, arr), g_layer, g_tape in zip(arrays, by_layer, by_tape):
        idx = _sample(arr.size, samples, rng)
        f = layer.forward if name == "input" else (lambda _: layer.forward(x.copy()))
        _compare(rows, f"{name}: tape vs layer", g_tape, g_layer, idx)
        _compare(rows, f"{name}: numeric vs layer", numerical_gradient(f, arr, dout, h, idx),
                 g_layer, idx)
    return GradcheckReport(rows, threshold)
