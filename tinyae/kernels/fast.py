"""Numba kernels: the same functions as ``reference.py``, fused into single passes.

Where the time goes in one training step, and what this file does about it:

- The big matmuls (x @ W, x^T dz, dz @ W^T) are compute-bound; OpenBLAS runs
  them near the machine's peak, so they stay ``np.dot`` calls.
- Everything else is memory-bound: bias add, activation, activation gradient,
  bias gradient, the MSE loss and its gradient, Adam. NumPy makes one pass
  (and often a temporary) per operation; here each group becomes one loop
  that reads and writes every element once.
- Kernels are serial on purpose: OpenBLAS already uses every core for the
  matmuls, and a second thread pool woken between BLAS calls stalls for a
  scheduler timeslice (see benchmarks/README.md).

Activation codes (resolved outside the loops, so the loops stay branch-free):
identity 0, relu 1, leaky_relu 2, sigmoid 3, tanh 4.
"""
import math
import warnings
from functools import lru_cache

import numba
import numpy as np

from . import reference
from .reference import ACTIVATIONS

ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}


def _jit(fn=None, **options):
    """``numba.njit(cache=True)``; without a writable cache folder, compile per process.

    ``error_model="numpy"``: a division by zero gives inf/nan as in NumPy instead
    of a per-element check that raises ZeroDivisionError. That check is a
    branch in every iteration and stops the loop from being vectorised: it
    made the Adam loop 4-8x slower.
    """
    if fn is None:                           # used as @_jit(fastmath=...)
        return lambda f: _jit(f, **options)
    try:
        return numba.njit(cache=True, error_model="numpy", **options)(fn)
    except RuntimeError as exc:              # numba finds no writable place for its cache
        if not _jit.warned:
            warnings.warn(f"tinyae: Numba cannot cache compiled kernels ({exc}); they will be "
                          "compiled again in every process. Set NUMBA_CACHE_DIR to a writable "
                          "folder to avoid that.", stacklevel=2)
            _jit.warned = True
        return numba.njit(cache=False, error_model="numpy", **options)(fn)


_jit.warned = False


# --- elementwise kernels -------------------------------------------------------------
@_jit
def _act_inplace(z, code, alpha):
    """z <- act(z) in place for the piecewise-linear codes (identity 0, relu 1, leaky_relu 2).

    Sigmoid and tanh are not here: ``_act`` uses NumPy's SIMD exp/tanh for them.
    ``alpha`` has z's dtype.
    """
    n, h = z.shape
    if code == 1:
        for i in range(n):
            for j in range(h):
                if z[i, j] < 0:
                    z[i, j] = 0
    elif code == 2:
        for i in range(n):
            for j in range(h):
                if z[i, j] < 0:
                    z[i, j] *= alpha


@_jit
def _bias_act_inplace(z, b, code, alpha):
    """z <- act(z + b), one pass: the epilogue of the forward matmul (codes 0-2)."""
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            z[i, j] += b[j]
    _act_inplace(z, code, alpha)


@_jit
def _bias_neg_abs(z, b, e):
    """z <- z + b (when b is not None), and e = -|z|: the sigmoid's exp input, one pass."""
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            if b is not None:                   # resolved at compile time (b's type)
                z[i, j] += b[j]
            e[i, j] = -abs(z[i, j])


@_jit
def _sigmoid_from_exp(z, e, one):
    """z <- sigmoid(z), given e = exp(-|z|): 1 / (1 + e) for z >= 0, e / (1 + e) below."""
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            z[i, j] = one / (one + e[i, j]) if z[i, j] >= 0 else e[i, j] / (one + e[i, j])


@_jit
def _act_grad(y, dy, code, alpha, one, dz):
    """dz = dy * act'(y), one loop per activation (no branch inside the loops)."""
    n, h = dy.shape
    if code == 0:
        dz[:, :] = dy
    elif code == 1:
        for i in range(n):
            for j in range(h):
                dz[i, j] = dy[i, j] if y[i, j] > 0 else dy[i, j] * 0
    elif code == 2:
        for i in range(n):
            for j in range(h):
                dz[i, j] = dy[i, j] if y[i, j] > 0 else dy[i, j] * alpha
    elif code == 3:
        for i in range(n):
            for j in range(h):
                dz[i, j] = dy[i, j] * y[i, j] * (one - y[i, j])
    elif code == 4:
        for i in range(n):
            for j in range(h):
                dz[i, j] = dy[i, j] * (one - y[i, j] * y[i, j])


@_jit
def _bias_grad(dz, db, accumulate):
    """db (+)= sum_n dz, the column sums."""
    if not accumulate:
        db[:] = 0
    n, h = dz.shape
    for i in range(n):
        for j in range(h):
            db[j] += dz[i, j]


@_jit
def _act_grad_bias(y, dy, code, alpha, one, dz, db, accumulate):
    """dz = dy * act'(y), then db (+)= column sums of dz while dz is still in cache."""
    _act_grad(y, dy, code, alpha, one, dz)
    _bias_grad(dz, db, accumulate)


@_jit(fastmath={"reassoc"})
def _mse_grad(p, t, scale, g):
    """g = scale (p - t) and the sum of (p - t)^2, one pass over flat arrays.

    The sum is kept in float64; ``reassoc`` lets the compiler split it into
    SIMD partial sums (a strict left-to-right sum is one add at a time).
    """
    s = 0.0
    for i in range(p.size):
        d = p[i] - t[i]
        s += np.float64(d * d)
        g[i] = scale * d
    return s


@_jit
def _adam(p, g, m, v, step, b1, c1, b2, c2, inv_sqrt_bc2, eps, wd):
    """One Adam step over flat arrays, in place; the arithmetic of reference.adam_update.

    m and v go through locals, so each element is loaded once and stored once.
    """
    decay = wd != 0                             # loop-invariant: the compiler hoists it
    for i in range(p.size):
        gi = g[i] + wd * p[i] if decay else g[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= step * (mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps))


@_jit
def _gather(X, idx, out):
    for i in range(idx.size):
        src, dst = X[idx[i]], out[i]              # 1-D row views: a plain vectorised copy
        for j in range(src.size):
            dst[j] = src[j]


# --- the kernel API (signatures as in reference.py) ----------------------------------
def _code(act):
    try:
        return ACT_CODE[act]
    except KeyError:
        raise ValueError(f"unknown activation {act!r}; choose one of {ACTIVATIONS}") from None


def act_forward(z, act, alpha=0.0, out=None):
    if out is None:
        out = z.copy()
    elif out is not z:
        np.copyto(out, z)
    return _act(_as2d(out), _code(act), alpha).reshape(z.shape)


def _act(z, code, alpha, b=None):
    """z <- act(z + b) in place (z is 2-D); returns z."""
    t = z.dtype.type
    if code in (3, 4):
        # exp and tanh: NumPy's SIMD versions are about 4x faster than the
        # scalar libm calls a Numba loop makes, so the loops go around them.
        if code == 4:
            if b is not None:
                _bias_act_inplace(z, b, 0, t(alpha))
            return np.tanh(z, out=z)
        e = _scratch(z.shape, z.dtype, "e")
        _bias_neg_abs(z, b, e)                            # z += b; e = -|z|
        np.exp(e, out=e)                                  # e = exp(-|z|) in (0, 1]: no overflow
        _sigmoid_from_exp(z, e, t(1))
    elif b is not None:
        _bias_act_inplace(z, b, code, t(alpha))
    elif code:
        _act_inplace(z, code, t(alpha))
    return z


_scratch_buffers = {}
SCRATCH_LIMIT = 8 << 20                                  # bytes


def _scratch(shape, dtype, name):
    """A reusable temporary that never leaves this module (one per shape, dtype and name).

    Fresh arrays of a few hundred KiB cost page faults on every step; these
    are allocated once. Big ones (evaluation batches) are not kept. Not
    thread-safe: one training loop per process.
    """
    if math.prod(shape) * np.dtype(dtype).itemsize > SCRATCH_LIMIT:
        return np.empty(shape, dtype)
    key = (name, shape, np.dtype(dtype))
    buf = _scratch_buffers.get(key)
    if buf is None:
        buf = _scratch_buffers[key] = np.empty(shape, dtype)
    return buf


def act_backward(y, dy, act, alpha=0.0):
    code = _code(act)
    if code == 0:
        return dy
    dy2 = _as2d(dy)
    dz = np.empty_like(dy2)
    t = dy.dtype.type
    _act_grad(_as2d(y), dy2, code, t(alpha), t(1), dz)
    return dz.reshape(dy.shape)


def dense_forward(x, W, b, act="identity", alpha=0.0, out=None):
    z = np.matmul(x, W, out=out)                         # BLAS sgemm/dgemm, (N, H)
    return _act(z, _code(act), alpha, b)


def dense_backward(x, W, y, dy, dW, db, act="identity", alpha=0.0, need_dx=True,
                   accumulate=True, dx_out=None):
    code = _code(act)
    dy = np.ascontiguousarray(dy, dtype=W.dtype)
    t = dy.dtype.type
    if code == 0:                                        # identity: dz is dy
        dz = dy
        if db is not None:
            _bias_grad(dz, db, accumulate)
    else:
        dz = _scratch(dy.shape, dy.dtype, "dz")          # used only inside this call
        if db is None:
            _act_grad(y, dy, code, t(alpha), t(1), dz)
        else:                                            # db summed while dz is in cache
            _act_grad_bias(y, dy, code, t(alpha), t(1), dz, db, accumulate)
    if accumulate:
        dW += x.T @ dz                                   # BLAS, (D, H)
    else:
        np.matmul(x.T, dz, out=dW)                       # straight into dW: no temporary
    return np.matmul(dz, W.T, out=dx_out) if need_dx else None


def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, weight_decay=0.0):
    _adam(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
          *_adam_scalars(p.dtype, lr, beta1, beta2, eps, t, weight_decay))


@lru_cache(maxsize=16)
def _adam_scalars(dtype, lr, beta1, beta2, eps, t, weight_decay):
    """The scalars of the reference, rounded to p's dtype as NumPy does there.

    Cached: one step updates every parameter array with the same scalars.
    """
    c = dtype.type
    return (c(lr / (1 - beta1 ** t)), c(beta1), c(1 - beta1), c(beta2), c(1 - beta2),
            c(1 / (1 - beta2 ** t) ** 0.5), c(eps), c(weight_decay))


def mse_grad(pred, target, out=None):
    if pred.dtype not in (np.float32, np.float64):       # e.g. float16: Numba has no loop for it
        return reference.mse_grad(pred, target, out)
    if pred.shape != target.shape:                       # the loop does not check its bounds
        raise ValueError(f"mse_grad: pred {pred.shape} and target {target.shape} differ")
    g = np.empty(pred.shape, pred.dtype) if out is None or not out.flags.c_contiguous else out
    scale = pred.dtype.type(2.0 / pred.size)
    s = _mse_grad(pred.reshape(-1), target.reshape(-1), scale, g.reshape(-1))  # flat views
    if out is not None and g is not out:                 # a strided out: reshape would copy
        np.copyto(out, g)
    return s, (g if out is None else out)


def gather_rows(X, idx, out=None):
    if out is None:
        out = np.empty((len(idx),) + X.shape[1:], dtype=X.dtype)
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and not (-len(X) <= idx.min() and idx.max() < len(X)):  # the loop won't check
        raise IndexError(f"gather_rows: row indices must be in [-{len(X)}, {len(X)}), got "
                         f"{idx.min()}..{idx.max()}")
    _gather(_as2d(X), idx, _as2d(out))
    return out


def _as2d(a):
    return a.reshape(len(a), -1) if a.ndim != 2 else a
