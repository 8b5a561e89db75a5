"""Gradient checking: compare hand-written backward passes with finite differences.

Public, for coursework: it works on any object that follows the layer
contract (``forward``, ``backward``, ``params``, ``grads``), a tinyae layer
or your own class. Every check runs in float64 on a deep copy, so the layer
you pass in is never changed, and every call to your forward or backward
gets its own copy of ``x`` and ``dout``: in-place code is judged on its maths,
and ``check_layer`` also runs ``check_contract`` (``tinyae.contract``), which
reports the in-place change itself and every other break of the contract.
Random draws are held fixed: each generator the object keeps in an attribute
restarts at one seed before every forward (a VAE's eps, a dropout mask).

For an upstream gradient ``dout`` (random by default), the scalar
s(x) = sum(forward(x) * dout) has ds/dx = backward(dout); the numerical
estimate is the centred difference (s(x + h e_i) - s(x - h e_i)) / 2h,
whose error shrinks like h^2.

``check_op`` and ``check_three_ways`` add a third opinion, autograd's tape
(``tinyae.autograd``): an operation against finite differences, a layer's
hand-written backward against the tape and finite differences.
"""
import copy

import numpy as np

from .autograd import Tensor, layer_forward
from .contract import check_contract, float64_copy, hold_noise, named_arrays, zero_all  # noqa: F401
from .models.autoencoder import model_penalty
from .nn.layers import layer_parameters  # noqa: F401 (tests and tutorials reach it here)
from .report import Finding, GradcheckReport, Row, worst_entry  # noqa: F401 (public names)

__all__ = ["rel_error", "numerical_gradient", "check_layer", "check_contract", "check_loss",
           "check_penalty", "check_model", "check_op", "check_three_ways", "GradcheckReport",
           "float64_copy"]


def rel_error(a, b) -> float:
    """max |a - b| / max(1e-8, max(|a| + |b|)): relative to the gradient's scale.

    Scaling by the largest entry (not entry by entry) keeps tiny entries,
    where finite differences are all noise, from swamping the verdict.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}; a gradient has "
                         "the shape of its array (did a backward return None, or forget to "
                         "sum over the batch rows?)")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


def numerical_gradient(f, x, dout, h=1e-5, indices=None):
    """Centred-difference estimate of d sum(f(x) * dout) / dx.

    ``x`` is perturbed in place (and restored) and ``f`` gets a copy of it, so
    ``f`` may change its argument freely, or ignore it and read a parameter
    array that ``x`` is. ``indices`` (flat positions) limits the work to some
    entries; the others stay zero.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)    # views: writes reach x and grad
    for i in (range(x.size) if indices is None else indices):
        old = flat[i]
        flat[i] = old + h
        plus = np.sum(f(x.copy()) * dout)
        flat[i] = old - h
        minus = np.sum(f(x.copy()) * dout)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def _sample(size, samples, rng):
    return None if samples is None or samples >= size else rng.choice(size, samples, replace=False)


def _compare(rows, name, analytic, numeric, idx):
    """Append the Row of one array; sampled entries keep their place in the whole array."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    full_shape = analytic.shape
    if idx is not None:
        analytic, numeric = analytic.reshape(-1)[idx], numeric.reshape(-1)[idx]
    shape = full_shape if idx is None else f"{len(idx)} sampled"
    with np.errstate(invalid="ignore"):
        error = rel_error(analytic, numeric)
    rows.append(Row(name, shape, error if np.isfinite(error) else np.inf,    # NaN: as bad as can be
                    worst_entry(analytic, numeric, full_shape, idx)))


def _runner(layer):
    """forward(x) on a copy of x, with the layer's noise restarted first."""
    def forward(x):
        hold_noise(layer)
        return np.asarray(layer.forward(x.copy()))
    return forward


def check_layer(layer, x, dout=None, *, h=1e-5, threshold=1e-7, samples=None,
                rng=None, contract=True) -> GradcheckReport:
    """Check ``layer.backward`` for the input and every parameter, and the layer contract.

    Args:
        layer: any object with forward/backward/params/grads (not modified).
        x: an input batch, several rows; converted to float64.
        dout: upstream gradient; standard normal when None.
        samples: check at most this many random entries per array (big layers).
        contract: also run ``check_contract`` (gradients that are assigned
            instead of added, inputs changed in place, ...).
    Returns:
        a ``GradcheckReport``: ``print(report)`` shows a table, ``report.passed``,
        ``report.assert_ok()`` for tests, ``report.to_dict()`` for grading.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.array(x, dtype=np.float64)
    report = check_contract(layer, x) if contract else GradcheckReport()
    report.threshold = threshold
    report.title = f"check_layer: {type(layer).__name__} on x of shape {x.shape}"
    if report.fatal:
        return report
    try:
        _gradient_rows(report, float64_copy(layer), x, dout, h, samples, rng)
    except NotImplementedError:
        raise
    except Exception as exc:        # ran in the contract check, then failed: say so, in one line
        report.rows = []
        report.findings.append(Finding("forward runs", f"{type(layer).__name__} ran for the "
                                       f"first calls, then raised {type(exc).__name__}: {exc}; "
                                       "forward and backward must give the same results on "
                                       "every call.", True))
    return report


def _gradient_rows(report, layer, x, dout, h, samples, rng):
    """One Row per array: backward against centred differences, on copies of x and dout."""
    forward = _runner(layer)
    with np.errstate(all="ignore"):     # a NaN or inf shows in its row as an infinite error
        out = forward(x)
        dout = rng.standard_normal(out.shape) if dout is None else np.array(dout, np.float64)
        zero_all(layer)
        forward(x)
        dx = layer.backward(dout.copy())
        analytic = [(name, g.copy()) for name, _, g in named_arrays(layer)]
        idx = _sample(x.size, samples, rng)
        _compare(report.rows, "input", dx, numerical_gradient(forward, x, dout, h, idx), idx)
        for (name, p, _), (_, g) in zip(named_arrays(layer), analytic):
            idx = _sample(p.size, samples, rng)
            num = numerical_gradient(lambda _: forward(x), p, dout, h, idx)
            _compare(report.rows, name, g, num, idx)
            if idx is None and not report.rows[-1].error < report.threshold:
                report.hints += hint(name, g, num, len(x))


def hint(name, analytic, numeric, n):
    """What a wrong parameter gradient's numbers suggest: a transpose, or a mean for a sum."""
    if analytic.ndim == 2 and analytic.shape[0] == analytic.shape[1] \
            and rel_error(analytic, numeric.T) < 1e-6:
        return [f"{name}: backward's gradient is the numeric one transposed; for y = x W it "
                "is x.T @ dout, of W's shape (D, H)."]
    if analytic.ndim == 1 and n > 1 and rel_error(n * analytic, numeric) < 1e-6:
        return [f"{name}: backward's gradient is the numeric one divided by the batch size "
                f"{n}: sum over the rows (dout.sum(axis=0)), not the mean."]
    return []


def _gradient_or_finding(who, g, shape):
    """``g`` as an array of ``shape``, or the Finding that says why it is not."""
    if g is None:
        return None, Finding(f"{who} returns a gradient", f"{who} returned None; end it with "
                             "`return` and the gradient array.", True)
    g = np.asarray(g)
    if g.shape != shape:
        return None, Finding(f"{who} returns a gradient", f"{who} returned shape {g.shape} "
                             f"where the gradient has shape {shape}; return one entry per "
                             "entry of the input.", True)
    return g, None


def _check_scalar(check, obj, f, arg, threshold, h, name):
    """``obj.backward()`` against finite differences of the scalar function ``f(arg)``."""
    who = type(obj).__name__
    report = GradcheckReport(threshold=threshold,
                             title=f"{check}: {who} on {name} of shape {arg.shape}")
    f(arg)
    g, finding = _gradient_or_finding(f"{who}.backward", obj.backward(), arg.shape)
    if finding:
        report.findings.append(finding)
        return report
    _compare(report.rows, name, g, numerical_gradient(f, arg, 1.0, h), None)
    return report


def check_loss(loss, pred, target, *, h=1e-5, threshold=1e-7) -> GradcheckReport:
    """Check ``loss.backward()`` against finite differences of ``loss.forward``."""
    loss = copy.deepcopy(loss)
    pred, target = np.array(pred, dtype=np.float64), np.array(target, dtype=np.float64)
    return _check_scalar("check_loss", loss, lambda p: loss.forward(p.copy(), target.copy()),
                         pred, threshold, h, "pred")


def check_penalty(penalty, Z, *, h=1e-5, threshold=1e-7) -> GradcheckReport:
    """Check ``penalty.backward()`` (dP/dZ) against finite differences of ``penalty.forward(Z)``.

    ``penalty`` is anything with ``forward(Z) -> float`` and ``backward() -> dZ``,
    e.g. ``tinyae.nn.penalties.KLSparsity`` or your own.
    """
    penalty = copy.deepcopy(penalty)
    Z = np.array(Z, dtype=np.float64)
    return _check_scalar("check_penalty", penalty, lambda z: penalty.forward(z.copy()),
                         Z, threshold, h, "Z")


def check_model(model, loss, x, target, *, h=1e-5, threshold=1e-6, samples=None,
                rng=None) -> GradcheckReport:
    """Check a whole model end to end: d/d(x and every parameter) of the training objective

        loss(model(x), target) + model.penalty()

    (the penalty only when the model has one, e.g. a sparse autoencoder). A
    model that samples is checked with its noise held fixed (``hold_noise``);
    one whose objective still changes from call to call gets a finding that
    says how to fix its noise.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    model, loss = float64_copy(model), copy.deepcopy(loss)
    x, target = np.array(x, dtype=np.float64), np.array(target, dtype=np.float64)
    report = GradcheckReport(threshold=threshold,
                             title=f"check_model: {type(model).__name__} on x of shape {x.shape}")

    def objective(xx):
        hold_noise(model)
        return loss.forward(model.forward(xx.copy()), target.copy()) + model_penalty(model)

    def scalar(_=None):
        return objective(x)

    if scalar() != scalar():
        report.findings.append(Finding("same x, same loss", "the objective differs between two "
                                       "calls on the same x: the model draws random numbers "
                                       "that are not in a generator attribute; hold them "
                                       "fixed (e.g. a VAE's model.fixed_eps = an (N, Z) "
                                       "array).", True))
        return report
    zero_all(model)
    scalar()
    dx, finding = _gradient_or_finding("model.backward", model.backward(loss.backward()), x.shape)
    if finding:
        report.findings.append(finding)
        return report
    analytic = [(name, g.copy()) for name, _, g in named_arrays(model)]

    idx = _sample(x.size, samples, rng)
    _compare(report.rows, "input", dx, numerical_gradient(objective, x, 1.0, h, idx), idx)
    for (name, p, _), (_, g) in zip(named_arrays(model), analytic):
        idx = _sample(p.size, samples, rng)
        _compare(report.rows, name, g, numerical_gradient(scalar, p, 1.0, h, idx), idx)
    return report


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
    rows = []
    for k, (x, t) in enumerate(zip(arrays, tensors)):
        _compare(rows, f"input {k}", t.grad, numerical_gradient(value, x, dout, h), None)
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
    named = named_arrays(layer)
    run = _runner(layer)

    zero_all(layer)                                         # 1. the hand-written backward
    y = run(x)
    dout = rng.standard_normal(np.shape(y)) if dout is None else np.array(dout, np.float64)
    by_layer = [np.asarray(layer.backward(dout.copy()))] + [g.copy() for _, _, g in named]

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
        f = run if name == "input" else (lambda _: run(x))
        _compare(rows, f"{name}: tape vs layer", g_tape, g_layer, idx)
        _compare(rows, f"{name}: numeric vs layer", numerical_gradient(f, arr, dout, h, idx),
                 g_layer, idx)
    return GradcheckReport(rows, threshold)
