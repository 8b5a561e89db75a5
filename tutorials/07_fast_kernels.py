# %% [markdown]
# # 7. The fast path: the same maths, fewer passes over memory
#
# Everything you have read so far lives in `tinyae/nn/`: `layers.py`, `losses.py`
# and `optim.py`: each formula a line of NumPy, in the class that names it.
# That is the **plain path**, the definition. `fit` trains, by default, on the
# **fast path** in `tinyae/fast/`: the same formulas fused into Numba loops,
# with arrays reused from step to step. This tutorial puts the two side by
# side, checks that they agree, and times them on your machine.
#
# `fit(..., backend="numpy")` (or `TINYAE_BACKEND=numpy`) trains on the plain
# path instead: same numbers, more time.

# %%
import inspect
import os
import statistics

import numpy as np

import tinyae as ta
from tinyae import fast
from tinyae.gradcheck import rel_error
from tinyae.train import fit
from tinyae.train.threads import blas_threads
from tinyae.tutorial import FAST, exercise, load, median_ms

print(inspect.getsource(ta.Dense.forward))
print(inspect.getsource(ta.Dense.backward))

# %% [markdown]
# ## Why fusing helps
#
# One training step does three kinds of work:
#
# - **matmuls** (x W, x^T dz, dz W^T): about 6 multiply-adds per weight per
#   sample, compute-bound. OpenBLAS runs them close to the processor's peak,
#   so both paths call it.
# - **elementwise work** (bias, activation, activation gradient, bias
#   gradient, the loss and its gradient): one or two operations per element.
#   Here the cost is moving memory, and NumPy moves it once per operation,
#   with a fresh array each time. A Numba loop does the whole chain in one
#   pass, into an array it keeps.
# - **Adam**: for each of the 1.1 million parameters, read p, g, m, v and
#   write p, m, v. The five NumPy lines of `Adam.step` make about ten passes
#   and several temporaries; the Numba loop makes one.
#
# `fast.accelerate(model)` builds the fast view of a model. It shares the
# model's parameter and gradient arrays, so the two always hold the same
# weights. First: do they compute the same thing?

# %%
rng = np.random.default_rng(0)
model = ta.dense_autoencoder(rng=rng, dtype=np.float64)      # float64 to compare closely
view = fast.accelerate(model)
X = rng.random((64, 784))
for net, loss, name in ((model, ta.MSE(), "plain"), (view, fast.FastMSE(), "fast")):
    net.zero_grad()
    value = loss.forward(net.forward(X), X)
    net.backward(loss.backward())
    grads = {n: g.copy() for n, _, g in net.parameters()}
    print(f"{name:>5}: loss {value:.12f}")
    if name == "plain":
        plain_grads = grads
worst = max(rel_error(plain_grads[n], grads[n]) for n in grads)
print(f"largest relative difference over {len(grads)} gradients: {worst:.1e}")

# %% [markdown]
# ## Timing honestly
#
# A timing is only as good as the machine is quiet. Three habits keep these
# honest. Each function is timed with `median_ms`: one untimed warm-up call
# (Numba compiles, caches fill), then the **median** of many calls, which a
# few calls slowed by a neighbour do not move. BLAS runs at the thread count
# `fit` would pick (`tinyae.train.threads.blas_threads` measures it, and puts your
# own setting back afterwards). And each side is timed **twice**, interleaved
# (a, b, a, b): when the gap between the sides is under 5%, or no bigger
# than twice the disagreement between a side's own two medians, the gap is
# noise, and `compare` says so instead of naming a winner. It says the same
# when the load average is above the number of cores: other programs then
# take turns on the processors during the measurement, and the numbers say
# more about them than about the code.


# %%
def timed(fn, threads="auto"):
    """(median ms per call, BLAS threads used): BLAS at ``threads``, measured as ``fit`` does."""
    with blas_threads(threads, every=10**9) as chooser:
        while chooser.chosen is None:            # the probe: a few calls at each thread count
            chooser.run(fn)
        return median_ms(lambda: chooser.run(fn)), chooser.threads


def compare(name_a, fn_a, name_b, fn_b, threads="auto"):
    """Time a and b twice each, interleaved; print both and a verdict only when it is one."""
    (a1, na), (b1, nb) = timed(fn_a, threads), timed(fn_b, threads)
    (a2, _), (b2, _) = timed(fn_a, threads), timed(fn_b, threads)
    a, b = statistics.mean([a1, a2]), statistics.mean([b1, b2])
    print(f"  {name_a}: {a:8.2f} ms ({a1:.2f}, {a2:.2f}; {na} BLAS thread{'s' * (na != 1)})")
    print(f"  {name_b}: {b:8.2f} ms ({b1:.2f}, {b2:.2f}; {nb} BLAS thread{'s' * (nb != 1)})")
    noise = max(abs(a1 - a2), abs(b1 - b2))                 # how far a side's repeats differ
    print("  " + verdict(name_a.strip(), a, name_b.strip(), b, noise))
    return a, b


def verdict(name_a, a, name_b, b, noise, unit="ms"):
    """'x is 2.1x faster than y', or why these numbers cannot say."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0     # not on Windows
    cores = os.cpu_count()
    if load > cores:
        return (f"no verdict: the machine is busy (load average {load:.1f} on {cores} cores), "
                "so these times measure the other programs as much as this code. Run the "
                "cell again when the machine is quiet.")
    gap = abs(a - b)
    if gap <= 2 * noise:
        return (f"no verdict: the difference ({gap:.2f} {unit}) is within the noise of the "
                f"measurement (repeats differ by up to {noise:.2f} {unit}); call it a tie.")
    if gap <= 0.05 * min(a, b):
        return (f"no verdict: they differ by {100 * gap / min(a, b):.1f}%, under the 5% that "
                "timings like these can tell apart; call it a tie.")
    fast_name, slow_name = (name_a, name_b) if a < b else (name_b, name_a)
    return f"{fast_name} is {max(a, b) / min(a, b):.1f}x faster than {slow_name}."

# %% [markdown]
# ## One layer, timed
#
# The output layer of the seed model, 512 -> 784 with a sigmoid, at batch 256.

# %%
x = rng.random((256, 512), dtype=np.float32)
dy = rng.standard_normal((256, 784)).astype(np.float32)
plain = ta.Sequential(ta.Dense(512, 784, init="glorot", rng=rng), ta.Sigmoid())
quick = fast.accelerate(plain)
plain.forward(x), quick.forward(x)
print("forward (matmul, bias, sigmoid), batch 256, 512 -> 784:")
compare("plain", lambda: plain.forward(x), "fast ", lambda: quick.forward(x))
print("backward (sigmoid', db, dW, dx):")
compare("plain", lambda: plain.backward(dy), "fast ", lambda: quick.backward(dy))

seed = ta.dense_autoencoder(rng=rng)
for _, _, g in seed.parameters():
    g[...] = rng.standard_normal(g.shape)
adam_plain, adam_fast = ta.Adam(seed.parameters()), ta.Adam(seed.parameters())
print(f"one Adam step over {seed.num_parameters():,} parameters (no BLAS in it):")
compare("plain", adam_plain.step, "fast ", fast.fast_step(adam_fast), threads=1)

# %% [markdown]
# ## Whole training steps: plain path vs fast path
#
# `fit` with `backend="numpy"` runs the classes you read; the default runs the
# fast view. Same data, same seed, same weights at the end (to rounding).
# Each path trains for three epochs (choosing its BLAS threads as always);
# the median epoch is compared, with the spread of the three as the noise.

# %%
X_train, _, _ = load("train")
X_train = X_train[:1024 if FAST else 8192]
epoch_s, spread = {}, {}
for backend in ("numpy", "numba"):
    m = ta.dense_autoencoder(rng=np.random.default_rng(0))
    fit(m, X_train[:256], epochs=1, progress=False, backend=backend)     # warm-up (JIT, BLAS)
    m = ta.dense_autoencoder(rng=np.random.default_rng(0))
    h = fit(m, X_train, epochs=3, batch_size=256, progress=False, backend=backend)
    times = [r.seconds for r in h.records]
    epoch_s[backend], spread[backend] = statistics.median(times), max(times) - min(times)
    print(f"{backend:>5}: {len(X_train):,} images per epoch, median {epoch_s[backend]:.2f} s "
          f"(epochs {', '.join(f'{t:.2f}' for t in times)}), final loss {h.loss[-1]:.5f}")
print(verdict("the fast path", epoch_s["numba"], "the plain path", epoch_s["numpy"],
              noise=max(spread.values()) / 2, unit="s"))

# %% [markdown]
# ## A matmul you can read
#
# `tinyae/fast/matmul.py` writes a matrix multiply the way fast libraries
# organise one: loop order chosen so the inner loop runs along contiguous
# memory (SIMD), four rows of the output updated together so every loaded
# weight is used four times, and the weight matrix cut into panels that fit
# the L2 cache. It is still slower than OpenBLAS, which adds packed copies,
# hand-written assembly and threads -- which is why both paths call BLAS.

# %%
from tinyae.fast import matmul  # noqa: E402

a = rng.random((64, 784), dtype=np.float32)
B = rng.random((784, 512), dtype=np.float32)
print("same result:", np.allclose(matmul.matmul(a, B), a @ B, rtol=1e-4, atol=1e-3))
flops = 2 * 64 * 784 * 512
# The teaching kernel is serial, so OpenBLAS runs on one thread too: the same core each.
print("(64 x 784) @ (784 x 512), one thread each:")
t_blas, t_numba = compare("OpenBLAS       ", lambda: a @ B,
                          "teaching kernel", lambda: matmul.matmul(a, B), threads=1)
print(f"  that is {flops / t_blas / 1e6:.0f} and {flops / t_numba / 1e6:.0f} GFLOP/s")

# %% [markdown]
# For whole-epoch timings against PyTorch, run `python benchmarks/bench_epoch.py`;
# the latest figures are in `benchmarks/README.md`.
#
# ## Exercise: a fast LeakyReLU of your own
#
# `accelerate` fuses only the activations it knows; a layer of your own runs
# through its own `forward` and `backward` in the middle of the fast path.
# So make yours fast the same way: write LeakyReLU (tutorial 1:
# y = x for x > 0, else slope * x) with each direction as **one Numba loop**
# (`@numba.njit`, like the kernels in `tinyae/fast/kernels.py`) instead of
# NumPy's several passes (`x > 0`, `slope * x`, `np.where`).
#
# Fill in `forward` and `backward` of `MyFastLeakyReLU` below. The check
# puts your layer in a small autoencoder and compares it with the same
# autoencoder built with tinyae's `ta.LeakyReLU` (the plain path): the
# outputs and every gradient, on the plain model and on its
# `fast.accelerate` view, must agree to 1e-10, and one `fit` epoch on each
# backend must end at the same weights.

# %%
import numba  # noqa: E402


class MyFastLeakyReLU(ta.Layer):
    """LeakyReLU with one Numba pass forward and one backward."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        raise NotImplementedError("forward: one @numba.njit loop, y = x if x > 0 else slope * x")

    def backward(self, dout):
        raise NotImplementedError("backward: one @numba.njit loop, dx = dout if x > 0 else "
                                  "slope * dout")


def check_fast_leaky(layer_class, slope=0.1):
    """``layer_class(slope)`` against ``ta.LeakyReLU(slope)``: outputs, gradients, training."""
    def autoencoder(activation):
        r = np.random.default_rng(7)                       # the same weights for both models
        encoder = ta.Sequential(ta.Dense(784, 32, rng=r, dtype=np.float64), activation,
                                ta.Dense(32, 8, rng=r, dtype=np.float64))
        decoder = ta.Sequential(ta.Dense(8, 784, rng=r, dtype=np.float64), ta.Sigmoid())
        return ta.Autoencoder(encoder, decoder)

    X = np.random.default_rng(8).random((64, 784))
    worst = 0.0
    for view in (lambda m: m, fast.accelerate):            # the plain model, then its fast view
        results = []
        for activation in (ta.LeakyReLU(slope), layer_class(slope)):
            net = view(autoencoder(activation))
            net.zero_grad()
            out = net.forward(X).copy()
            net.backward(out - X)
            results.append([out] + [g.copy() for _, _, g in net.parameters()])
        worst = max([worst] + [rel_error(a, b) for a, b in zip(*results)])
    for backend in ("numpy", "numba"):
        ours, theirs = autoencoder(ta.LeakyReLU(slope)), autoencoder(layer_class(slope))
        for m in (ours, theirs):
            fit(m, X, epochs=1, batch_size=16, progress=False, backend=backend, threads=1)
        worst = max([worst] + [rel_error(p, q) for (_, p, _), (_, q, _)
                               in zip(ours.parameters(), theirs.parameters())])
    print(f"largest relative difference from ta.LeakyReLU: {worst:.1e}")
    assert worst < 1e-10, "your layer does not compute what ta.LeakyReLU computes"


# %%
with exercise("a fast LeakyReLU"):
    check_fast_leaky(MyFastLeakyReLU)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions sit here, at the end, so that trying comes first.
#
# **A fast LeakyReLU.** Two loops, each one pass over the batch; forward
# keeps the input, whose sign backward needs. (The fast path would also keep
# its output arrays from call to call, as `tinyae.fast.engine.Buffers` does.)

# %% tags=["solution"]
@numba.njit
def leaky_forward(x, slope, y):
    n, h = x.shape
    for i in range(n):
        for j in range(h):
            y[i, j] = x[i, j] if x[i, j] > 0 else slope * x[i, j]


@numba.njit
def leaky_backward(x, dout, slope, dx):
    n, h = x.shape
    for i in range(n):
        for j in range(h):
            dx[i, j] = dout[i, j] if x[i, j] > 0 else slope * dout[i, j]


class MyFastLeakyReLU(ta.Layer):
    """LeakyReLU with one Numba pass forward and one backward."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        self.x = np.ascontiguousarray(x)
        y = np.empty_like(self.x)
        leaky_forward(self.x, self.x.dtype.type(self.negative_slope), y)
        return y

    def backward(self, dout):
        dout = np.ascontiguousarray(dout, dtype=self.x.dtype)
        dx = np.empty_like(dout)
        leaky_backward(self.x, dout, dout.dtype.type(self.negative_slope), dx)
        return dx


with exercise("a fast LeakyReLU"):
    check_fast_leaky(MyFastLeakyReLU)
