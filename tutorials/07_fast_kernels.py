# %% [markdown]
# # 7. The fast path: the same maths, fewer passes over memory
#
# Everything you have read so far lives in `tinyae/layers.py`, `losses.py`
# and `optim.py`: each formula a line of NumPy, in the class that names it.
# That is the **plain path**, the definition. `fit` trains, by default, on the
# **fast path** in `tinyae/fast/`: the same formulas fused into Numba loops,
# with arrays reused from step to step. This tutorial puts the two side by
# side, checks that they agree, and times them on your machine.
#
# `fit(..., backend="numpy")` (or `TINYAE_BACKEND=numpy`) trains on the plain
# path instead: same numbers, more time.

# %%
import copy
import inspect
import time

import numpy as np

import tinyae as ta
from tinyae import fast
from tinyae.gradcheck import rel_error
from tinyae.train import fit
from tinyae.tutorial import FAST, load, median_ms

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
# ## One layer, timed
#
# The output layer of the seed model, 512 -> 784 with a sigmoid, at batch 256.

# %%
x = rng.random((256, 512), dtype=np.float32)
dy = rng.standard_normal((256, 784)).astype(np.float32)
plain = ta.Sequential(ta.Dense(512, 784, init="glorot", rng=rng), ta.Sigmoid())
quick = fast.accelerate(plain)
print(f"{'batch 256, 512 -> 784, sigmoid':<36}{'plain ms':>10}{'fast ms':>10}")
for name, f_plain, f_fast in [
        ("forward: matmul, bias, sigmoid", lambda: plain.forward(x), lambda: quick.forward(x)),
        ("backward: sigmoid', db, dW, dx", lambda: plain.backward(dy), lambda: quick.backward(dy))]:
    plain.forward(x), quick.forward(x)
    print(f"{name:<36}{median_ms(f_plain):>10.2f}{median_ms(f_fast):>10.2f}")

seed = ta.dense_autoencoder(rng=rng)
for _, _, g in seed.parameters():
    g[...] = rng.standard_normal(g.shape)
adam_plain, adam_fast = ta.Adam(seed.parameters()), ta.Adam(seed.parameters())
t_plain, t_fast = median_ms(adam_plain.step), median_ms(fast.fast_step(adam_fast))
print(f"Adam over {seed.num_parameters():,} parameters: plain {t_plain:.2f} ms, "
      f"fast {t_fast:.2f} ms ({t_plain / t_fast:.1f}x)")

# %% [markdown]
# ## Whole training steps: plain path vs fast path
#
# `fit` with `backend="numpy"` runs the classes you read; the default runs the
# fast view. Same data, same seed, same weights at the end (to rounding).

# %%
X_train, _, _ = load("train")
X_train = X_train[:1024 if FAST else 8192]
seconds, final = {}, {}
for backend in ("numpy", "numba"):
    m = ta.dense_autoencoder(rng=np.random.default_rng(0))
    fit(m, X_train[:256], epochs=1, progress=False, backend=backend)     # warm-up (JIT, BLAS)
    m = ta.dense_autoencoder(rng=np.random.default_rng(0))
    t = time.perf_counter()
    h = fit(m, X_train, epochs=1, batch_size=256, progress=False, backend=backend)
    seconds[backend], final[backend] = time.perf_counter() - t, h.loss[-1]
    print(f"{backend:>5}: {len(X_train):,} images in {seconds[backend]:.2f} s, loss {h.loss[-1]:.5f}")
print(f"the fast path took {seconds['numba'] / seconds['numpy']:.2f}x the plain path's time")

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
t_blas, t_numba = median_ms(lambda: a @ B), median_ms(lambda: matmul.matmul(a, B))
flops = 2 * 64 * 784 * 512
print(f"(64 x 784) @ (784 x 512): OpenBLAS {t_blas:.2f} ms ({flops / t_blas / 1e6:.0f} GFLOP/s), "
      f"teaching kernel {t_numba:.2f} ms ({flops / t_numba / 1e6:.0f} GFLOP/s)")

# %% [markdown]
# For whole-epoch timings against PyTorch, run `python benchmarks/bench_epoch.py`;
# the latest figures are in `benchmarks/README.md`.
#
# **Exercise.** Write a fast view of your own LeakyReLU from tutorial 1 (a
# subclass of `ta.Layer`) inside a model, train one step with `fit` on each
# path, and check with `rel_error` that the gradients agree: `accelerate`
# leaves any layer it does not know to that layer's own forward and backward.
