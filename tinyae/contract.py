"""The layer contract, checked point by point, with the likely cause and fix of each break.

A layer is any object with ``forward(x)``, ``backward(dout)`` and the dicts
``params`` and ``grads`` (``tinyae.nn.layers`` says what each promises). A
student's layer can compute the right derivative and still fail in training:
a backward that *assigns* its gradient instead of adding, or that rebinds
``self.grads["W"]`` (the optimiser holds the old array, so W never moves), or
that changes ``dout`` in place. ``check_contract`` runs the layer the way the
containers and optimisers do and names each such break in one sentence.

Every call gets its own float64 copy of ``x`` and ``dout``, so what the layer
does to its arguments is seen, and never leaks into the next call. A
``NotImplementedError`` (an exercise's skeleton) is raised on, not reported:
the layer is not written yet rather than wrong.
"""
import copy

import numpy as np

from .nn.layers import layer_parameters
from .report import Finding, GradcheckReport

NOISE_SEED = 20061          # every random generator a checked object holds restarts here

# Every point of the contract that check_contract judges, by the name its Finding carries.
# In the order it runs them: a grade counts those after a fatal finding as not kept.
CHECKS = ("has forward", "has backward", "has params", "has grads", "params are float arrays",
          "params and grads match", "forward runs", "forward returns y", "forward keeps x",
          "forward keeps params", "float64 in, float64 out", "forward is finite",
          "same x, same y", "forward shape",
          "backward runs", "backward returns dx", "backward keeps dout", "backward is finite",
          "keeps params arrays", "keeps grads arrays", "gradient shapes", "gradients are finite",
          "gradients add up")


def owners(obj):
    """Every object in a layer, container or model that holds a params dict."""
    if isinstance(getattr(obj, "params", None), dict):
        yield obj
    for child in (obj.children() if hasattr(obj, "children") else ()):
        yield from owners(child)


def float64_copy(layer):
    """A deep copy of ``layer`` with every parameter and gradient in float64.

    An attribute that is the same array as a parameter (``self.W = self.params["W"]``,
    common in hand-written layers) is pointed at the new array too.
    """
    layer = copy.deepcopy(layer)
    for owner in owners(layer):
        for k in list(owner.params):
            old = {id(owner.params[k]): np.array(owner.params[k], dtype=np.float64)}
            if k in owner.grads:
                old[id(owner.grads[k])] = np.zeros(np.shape(owner.params[k]), dtype=np.float64)
            for attr, value in list(vars(owner).items()):
                if id(value) in old:
                    setattr(owner, attr, old[id(value)])
            owner.params[k] = old[id(owner.params[k])]
            if k in owner.grads:
                owner.grads[k] = old[id(owner.grads[k])]
    return layer


def hold_noise(obj):
    """Restart every random generator attribute of ``obj`` and its parts at one seed.

    Called before each forward of a check, so a model that samples (a VAE's eps,
    a dropout mask) draws the same numbers every time: its maths is then a
    fixed function whose gradient can be checked.
    """
    for part in _parts(obj):
        for name, value in list(vars(part).items()):
            if isinstance(value, np.random.Generator):
                setattr(part, name, np.random.default_rng(NOISE_SEED))
            elif isinstance(value, np.random.RandomState):
                setattr(part, name, np.random.RandomState(NOISE_SEED))


def _parts(obj, depth=0, seen=None):
    """``obj`` and every layer-like object (one with a forward) it holds, in attributes or
    lists, a few levels deep: where a generator may live."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 6 or not hasattr(obj, "__dict__"):
        return
    seen.add(id(obj))
    yield obj
    for value in list(vars(obj).values()):
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            if hasattr(item, "forward") and not isinstance(item, type):
                yield from _parts(item, depth + 1, seen)


def zero_all(layer):
    """Fill every gradient array with 0, without relying on the layer's own zero_grad."""
    for owner in owners(layer):
        for g in owner.grads.values():
            if isinstance(g, np.ndarray):
                g.fill(0)


def named_arrays(layer):
    """(dotted name, param, grad) for every parameter, read from the owners' dicts now."""
    return list(layer_parameters(layer))


# --- the checks ---------------------------------------------------------------------
def structure(layer):
    """Findings for the four names the contract asks for, and matching params/grads."""
    name = type(layer).__name__
    if callable(getattr(layer, "parameters", None)) and not isinstance(
            getattr(layer, "params", None), dict):
        return [Finding("has params", f"{name} is a model (it has parameters() but no params "
                        "dict): check it with check_model(model, loss, x, target).", True)]
    found = []
    for method in ("forward", "backward"):
        if not callable(getattr(layer, method, None)):
            found.append(Finding(f"has {method}", f"{name} has no {method}() method; a layer "
                                 "needs forward(x) -> y and backward(dout) -> dx.", True))
    for attr in ("params", "grads"):
        if not isinstance(getattr(layer, attr, None), dict):
            found.append(Finding(f"has {attr}", f"{name}.{attr} is not a dict; set "
                                 f"self.{attr} = {{}} in __init__ (empty for a layer without "
                                 "weights), keyed like 'W' and 'b'.", True))
    if found:
        return found
    for owner in owners(layer):
        who = type(owner).__name__
        if owner.params is not owner.params or owner.grads is not owner.grads:
            found.append(Finding("has params", f"{who}.params or .grads is a new dict on every "
                                 "access (a property?); create both dicts once, in __init__, "
                                 "since an optimiser keeps their arrays.", True))
            continue
        bad = [k for k, p in owner.params.items()
               if not (isinstance(p, np.ndarray) and np.issubdtype(p.dtype, np.floating))]
        if bad:
            k = bad[0]
            found.append(Finding("params are float arrays", f"{who}.params[{k!r}] is "
                                 f"{_kind_of(owner.params[k])}, not a float array; make weights "
                                 "NumPy float arrays (e.g. rng.standard_normal((D, H))), which "
                                 "an optimiser can update in place.", True))
            continue
        if owner.params.keys() != owner.grads.keys():
            found.append(Finding("params and grads match", f"{who}.params has keys "
                                 f"{sorted(owner.params)} but grads has {sorted(owner.grads)}; "
                                 "give every parameter a gradient array under the same key.",
                                 True))
            continue
        for k, p in owner.params.items():
            g = owner.grads[k]
            if not isinstance(g, np.ndarray) or g.shape != np.shape(p):
                found.append(Finding("params and grads match", f"{who}.grads[{k!r}] should be "
                                     f"an array of params[{k!r}]'s shape {np.shape(p)}, got "
                                     f"{_shape_of(g)}; create it with np.zeros_like(W).", True))
    return found


def _shape_of(a):
    return f"shape {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__


def _kind_of(a):
    return f"an array of dtype {a.dtype}" if isinstance(a, np.ndarray) else f"a {type(a).__name__}"


def run_forward(layer, x):
    """``layer.forward`` on a copy of ``x``: (output, findings)."""
    name = type(layer).__name__
    xin = x.copy()
    hold_noise(layer)
    try:
        with np.errstate(all="ignore"):     # a NaN or inf is reported below, in one sentence
            y = layer.forward(xin)
    except NotImplementedError:             # an exercise's skeleton: not done yet, not wrong
        raise
    except Exception as exc:
        return None, [Finding("forward runs", f"{name}.forward raised {type(exc).__name__}: "
                              f"{exc}; it must run on a float64 batch of shape {x.shape}.", True)]
    if y is None:
        return None, [Finding("forward returns y", f"{name}.forward returned None; end it with "
                              "`return y` (the output array).", True)]
    found = []
    if not isinstance(y, np.ndarray):
        found.append(Finding("forward returns y", f"{name}.forward returned {_kind_of(y)}; "
                             "return a NumPy array (arithmetic on x gives one), which the next "
                             "layer and the fast path expect.", False))
    if not np.array_equal(xin, x):
        found.append(Finding("forward keeps x", f"{name}.forward changed its input x in place "
                             "(x *= ..., x[mask] = ...); the layer before still owns that "
                             "array, so compute a new one instead (y = x * mask).", False))
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.floating) or y.dtype != np.float64:
        found.append(Finding("float64 in, float64 out", f"{name}.forward returned {y.dtype} "
                             "for a float64 input; compute in the input's dtype (no "
                             ".astype(np.float32), no float32 constants), or finite "
                             "differences and training both lose precision.", False))
    if not np.all(np.isfinite(y)):
        found.append(Finding("forward is finite", f"{name}.forward returned NaN or inf for "
                             "finite input; look for log(0), division by zero or exp of a "
                             "large number (write sigmoid with exp(-|x|)).", True))
    return y, found


def run_backward(layer, x, dout):
    """forward then backward on copies: (dx, findings). Gradients are added to, not zeroed."""
    name = type(layer).__name__
    y, found = run_forward(layer, x)
    if y is None or any(f.fatal for f in found):
        return None, found
    if y.shape != dout.shape:
        return None, found + [Finding("forward shape", f"{name}.forward returned shape "
                                      f"{y.shape} but dout has shape {dout.shape}; pass a dout "
                                      "of the output's shape.", True)]
    d = dout.copy()
    try:
        with np.errstate(all="ignore"):
            dx = layer.backward(d)
    except NotImplementedError:
        raise
    except Exception as exc:
        return None, found + [Finding("backward runs", f"{name}.backward raised "
                                      f"{type(exc).__name__}: {exc}; each gradient has the "
                                      "shape of its array: dW like W (x.T @ dout), db like b "
                                      "(dout.sum(axis=0)), dx like x (dout @ W.T).", True)]
    if dx is None:
        return None, found + [Finding("backward returns dx", f"{name}.backward returned None; "
                                      f"end it with `return dx`, dLoss/dx of shape {x.shape}.",
                                      True)]
    dx = np.asarray(dx)
    if dx.shape != x.shape:
        return None, found + [Finding("backward returns dx", f"{name}.backward returned shape "
                                      f"{dx.shape} but x has shape {x.shape}; return dLoss/dx, "
                                      "one entry per entry of x (for y = x W that is dout @ "
                                      "W.T).", True)]
    if not np.array_equal(d, dout):
        found.append(Finding("backward keeps dout", f"{name}.backward changed dout in place "
                             "(dout *= ...); the caller may still use it, so make a new array "
                             "(dx = dout * ...).", False))
    if dx.dtype != np.float64:
        found.append(Finding("float64 in, float64 out", f"{name}.backward returned {dx.dtype} "
                             "for a float64 dout; compute in dout's dtype.", False))
    if not np.all(np.isfinite(dx)):
        found.append(Finding("backward is finite", f"{name}.backward returned NaN or inf; "
                             "look for a division by zero or a log of 0.", True))
    return dx, found


def identity(layer, before):
    """Findings for dicts or arrays that forward/backward replaced instead of updating."""
    found = []
    for (owner, params, grads, arrays) in before:
        who = type(owner).__name__
        for attr, old in (("params", params), ("grads", grads)):
            if getattr(owner, attr) is not old:
                found.append(Finding(f"keeps {attr} arrays", f"{who} replaced self.{attr} with a "
                                     "new dict; an optimiser holds the old arrays, so training "
                                     "would never see it; change the arrays in place "
                                     "(self.grads['W'] += dW).", False))
        for (attr, k), array in arrays.items():
            now = getattr(owner, attr).get(k)
            if now is not array and getattr(owner, attr) is (params if attr == "params" else grads):
                fix = ("add into it: self.grads[{k!r}] += d{k}" if attr == "grads"
                       else "update it in place: self.params[{k!r}][...] = new").format(k=k)
                found.append(Finding(f"keeps {attr} arrays", f"{who}.{attr}[{k!r}] is a new "
                                     f"array after backward ({attr}[{k!r}] = ...); an optimiser "
                                     f"holds the old one, so {k} would never change in "
                                     f"training; {fix}.", False))
    return found


def gradients_finite(layer):
    """Findings for NaN or inf that a backward put into a gradient."""
    return [Finding("gradients are finite", f"backward put NaN or inf into grads of {name}; "
                    "look for a division by zero or a log of 0.", True)
            for name, _, g in named_arrays(layer) if not np.all(np.isfinite(g))]


def gradient_shapes(layer):
    """Findings for gradients whose shape a backward changed (a missing sum, a transpose)."""
    found = []
    for owner in owners(layer):
        for k, p in owner.params.items():
            g = owner.grads.get(k)
            if not isinstance(g, np.ndarray) or g.shape != np.shape(p):
                found.append(Finding("gradient shapes", f"after backward {type(owner).__name__}"
                                     f".grads[{k!r}] has {_shape_of(g)} but params[{k!r}] has "
                                     f"shape {np.shape(p)}; a gradient has its parameter's "
                                     "shape: sum over the batch rows (dout.sum(axis=0)) or "
                                     "check the transpose (dW = x.T @ dout for W of shape "
                                     "(D, H)).", True))
    return found


def _arrays(layer):
    return [(o, o.params, o.grads, {**{("params", k): p for k, p in o.params.items()},
                                   **{("grads", k): g for k, g in o.grads.items()}})
            for o in owners(layer)]


def accumulation(layer, x, dout, first):
    """Findings for gradients that a second backward overwrote instead of adding to.

    ``first`` holds each gradient after one backward from zero; after a second
    forward and backward on the same batch every gradient must be twice that.
    """
    _, found = run_backward(layer, x, dout)
    if any(f.fatal for f in found):
        return []
    out = []
    for name, _, g in named_arrays(layer):
        g1 = first.get(name)
        if g1 is None or not np.any(g1) or np.allclose(g, 2 * g1, rtol=1e-6, atol=1e-12):
            continue
        key = name.rsplit(".", 1)[-1]
        where = f"{name.rsplit('.', 1)[0]}: " if "." in name else ""
        if np.allclose(g, g1, rtol=1e-6, atol=1e-12):
            out.append(Finding("gradients add up", f"{where}grads[{key!r}] holds only the last "
                               f"backward's gradient (= instead of +=); gradients must add "
                               f"up across backward calls (zero_grad clears them), so write "
                               f"self.grads[{key!r}] += d{key}.", False))
        else:
            out.append(Finding("gradients add up", f"{where}grads[{key!r}] after two backward "
                               "calls is neither the sum nor the last one; backward may depend "
                               "on state left by an earlier call: compute from what forward "
                               "kept.", False))
    return out


def check_contract(layer, x, dout=None, *, rng=None) -> GradcheckReport:
    """Run ``layer`` as containers and optimisers do, and report each broken contract point.

    Checks: forward/backward/params/grads exist; params and grads have the same
    keys and shapes; forward returns a float64 array for float64 input and
    leaves x alone; backward returns dx of x's shape and leaves dout alone;
    gradients add up across two backward calls; the params and grads arrays
    keep their identity (an optimiser holds them); output is the same for the
    same x (noise held fixed by ``hold_noise``). A one-row batch draws a
    warning: a batch sum and a batch mean agree there, so such a bug hides.

    Runs on a float64 copy; the layer you pass is not changed.
    """
    name = type(layer).__name__
    report = GradcheckReport(title=f"contract of {name}")
    report.findings = structure(layer)
    if report.findings:
        return report
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.array(x, dtype=np.float64)
    if x.ndim >= 1 and x.shape[0] == 1:
        report.warnings.append("x has one row: a sum over the batch equals its mean there, so "
                               "a wrong reduction passes; check with several rows.")
    layer = float64_copy(layer)
    weights = {name: p.copy() for name, p, _ in named_arrays(layer)}
    y, found = run_forward(layer, x)
    moved = [name for name, p, _ in named_arrays(layer)
             if name not in weights or not np.array_equal(p, weights[name])]
    if moved:
        found.append(Finding("forward keeps params", f"{name}.forward changed {moved[0]}; "
                             "only an optimiser's step changes weights (forward computes "
                             "with them), or training and the check both go wrong.", True))
    if y is not None and not any(f.fatal for f in found):
        y2, _ = run_forward(layer, x)
        if y2 is not None and not np.array_equal(np.asarray(y2), y):
            found.append(Finding("same x, same y", f"{name}.forward gives a different output "
                                 "for the same x: it draws random numbers outside a generator "
                                 "attribute (keep one: self.rng = np.random.default_rng(), "
                                 "which the checker restarts before every call), or it changes "
                                 "its own state, such as its weights, in forward (don't).",
                                 True))
    report.findings = found
    if any(f.fatal for f in found):
        return report
    dout = rng.standard_normal(y.shape) if dout is None else np.array(dout, np.float64)
    zero_all(layer)
    before = _arrays(layer)
    _, found = run_backward(layer, x, dout)
    report.findings = _merge(report.findings, found)
    if any(f.fatal for f in found):
        return report
    report.findings += identity(layer, before)
    broken = gradient_shapes(layer) or gradients_finite(layer)
    if broken:
        report.findings += broken
        return report
    first = {name: g.copy() for name, _, g in named_arrays(layer)}
    report.findings += accumulation(layer, x, dout, first)
    return report


def _merge(old, new):
    """The findings of both lists, each check's message once."""
    seen = {(f.check, f.message) for f in old}
    return old + [f for f in new if (f.check, f.message) not in seen]
