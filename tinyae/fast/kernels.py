"""Numba kernels for the fast path: each loop does, in one pass over memory,
what the plain layers (``tinyae/layers.py``) do in several NumPy passes.

Where the time goes in one training step, and what this file does about it:

- The big matmuls (x @ W, x^T dz, dz @ W^T) are compute-bound; OpenBLAS runs
  them near the machine's peak, so they stay ``np.matmul`` calls (engine.py).
- Everything else is memory-bound: bias add, activation, activation gradient,
  bias gradient, the MSE loss and its gradient, Adam. NumPy makes one pass
  (and often a temporary) per operation; here each group becomes one loop
  that reads and writes every element once.
- Kernels are serial on purpose: OpenBLAS already uses every core for the
  matmuls, and a second thread pool woken between BLAS calls stalls for a
  scheduler timeslice (see benchmarks/README.md).

The formulas are those of the plain classes, and tests/test_fast.py checks
every kernel against them.
"""
import warnings

import numba
import numpy as np

# Activation codes: module-level constants, so Numba compiles them in and each
# `if code == RELU` branch is decided once per call, outside the loops.
IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH = 0, 1, 2, 3, 4

# ``x * ZERO`` is 0 of x's own dtype (and NaN for a NaN or an inf). ``x * 0`` would not
# do: Numba types a float32 times an int as float64, and one float64 value in a loop
# turns the whole loop into float64 arithmetic (Adam ran 2.8x slower for it).
ZERO = np.float32(0)


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


# --- forward: the epilogue of z = x @ W ----------------------------------------------
@_jit
def bias_act(z, b, code, alpha):
    """z <- act(z + b) in place, one pass, for IDENTITY, RELU and LEAKY_RELU.

    ``b`` may be None (a Dense without bias): Numba compiles that case without
    the add. ``alpha`` has z's dtype. One loop per code keeps the loops free of
    a branch on the code.
    """
    n, h = z.shape
    if b is not None:
        for i in range(n):
            for j in range(h):
                z[i, j] += b[j]
    if code == RELU:
        for i in range(n):
            for j in range(h):
                if z[i, j] < 0:
                    z[i, j] = 0
    elif code == LEAKY_RELU:
        for i in range(n):
            for j in range(h):
                if z[i, j] < 0:
                    z[i, j] *= alpha


@_jit
def bias_neg_abs(z, b, e):
    """z <- z + b, and e = -|z|: the input of the sigmoid's exp, in one pass."""
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            if b is not None:
                z[i, j] += b[j]
            e[i, j] = -abs(z[i, j])


@_jit
def sigmoid_from_exp(z, e, one, tiny):
    """z <- sigmoid(z), given e = exp(-|z|): 1 / (1 + e) for z >= 0, e / (1 + e) below.

    Outputs below ``tiny`` (the dtype's smallest normal number) become 0; see act_grad.
    """
    n, h = z.shape
    for i in range(n):
        for j in range(h):
            y = one / (one + e[i, j]) if z[i, j] >= 0 else e[i, j] / (one + e[i, j])
            z[i, j] = y if y >= tiny else y * ZERO


# --- backward: dz = dy * act'(y), then db = sum_n dz -------------------------------
@_jit
def act_grad(y, dy, code, alpha, one, tiny, dz):
    """dz = dy * act'(y), with act' written with the output y; one loop per activation.

    Sigmoid and tanh gradients smaller than ``tiny`` (the dtype's smallest normal
    number) become 0. A saturated output unit (a background pixel: y ~ 1e-20)
    gives dz ~ 1e-45, a subnormal float32; on many Intel processors every
    arithmetic step on a subnormal takes a slow microcode path, and the matmuls
    that read dz ran 2x slower late in an epoch. The change to the result is
    below 1e-38 per entry.
    """
    n, h = dy.shape
    if code == IDENTITY:
        dz[:, :] = dy
    elif code == RELU:
        for i in range(n):
            for j in range(h):
                dz[i, j] = dy[i, j] if y[i, j] > 0 else dy[i, j] * ZERO
    elif code == LEAKY_RELU:
        for i in range(n):
            for j in range(h):
                dz[i, j] = dy[i, j] if y[i, j] > 0 else dy[i, j] * alpha
    elif code == SIGMOID:
        for i in range(n):
            for j in range(h):
                d = dy[i, j] * y[i, j] * (one - y[i, j])
                dz[i, j] = d if abs(d) >= tiny else d * ZERO
    elif code == TANH:
        for i in range(n):
            for j in range(h):
                d = dy[i, j] * (one - y[i, j] * y[i, j])
                dz[i, j] = d if abs(d) >= tiny else d * ZERO


@_jit
def bias_grad(dz, db, accumulate):
    """db (+)= sum_n dz, the column sums; ``accumulate=False`` overwrites db."""
    if not accumulate:
        db[:] = 0
    n, h = dz.shape
    for i in range(n):
        for j in range(h):
            db[j] += dz[i, j]


@_jit
def act_grad_bias(y, dy, code, alpha, one, tiny, dz, db, accumulate):
    """act_grad, then bias_grad while dz is still in cache."""
    act_grad(y, dy, code, alpha, one, tiny, dz)
    bias_grad(dz, db, accumulate)


# --- loss and optimiser --------------------------------------------------------------
@_jit(fastmath={"reassoc"})
def mse_grad(p, t, scale, g):
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
def adam(p, g, m, v, step, b1, c1, b2, c2, inv_sqrt_bc2, eps, wd, tiny, p_floor):
    """One Adam step over flat arrays, in place; the formulas of ``tinyae.Adam.step``:

    m <- b1 m + c1 g;  v <- b2 v + c2 g^2;  p <- p - step m / (sqrt(v) inv_sqrt_bc2 + eps)

    with c1 = 1 - b1, c2 = 1 - b2, step = lr / (1 - b1^t), inv_sqrt_bc2 = 1 / sqrt(1 - b2^t):
    the bias corrections folded into two scalars. m and v go through locals, so
    each element is loaded once and stored once.

    Values too small to matter become 0: m and v below ``tiny`` (the dtype's
    smallest normal number), p below ``p_floor`` (sqrt(tiny): 1.1e-19 in
    float32). A weight whose gradient is only its own decay (a pixel that is 0
    in every image, a unit that never fires) shrinks geometrically under Adam
    once lr * wd / eps < 1; on its way to 0, a weight of 1e-30 times a gradient
    of 1e-10 is a subnormal product, and subnormal arithmetic made the matmuls
    5x slower on an Intel host (benchmarks/README.md). A weight of at least
    sqrt(tiny) times any number of at least sqrt(tiny) is a normal number; a
    smaller weight, next to weights of 1e-3, is lost in float32 rounding
    anyway. m does the same when g stops.
    """
    decay = wd != 0                             # loop-invariant: the compiler hoists it
    for i in range(p.size):
        gi = g[i] + wd * p[i] if decay else g[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * (gi * gi)
        mi = mi if abs(mi) >= tiny else mi * ZERO  # * ZERO, not 0: a NaN stays a NaN
        vi = vi if vi >= tiny else vi * ZERO
        m[i] = mi
        v[i] = vi
        pi = p[i] - step * (mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps))
        p[i] = pi if abs(pi) >= p_floor else pi * ZERO


@_jit
def gather(X, idx, out):
    """out[i] = X[idx[i]]: the rows of one mini-batch, copied into a reused array."""
    for i in range(idx.size):
        src, dst = X[idx[i]], out[i]              # 1-D row views: a plain vectorised copy
        for j in range(src.size):
            dst[j] = src[j]
