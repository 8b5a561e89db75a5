# %% [markdown]
# # 7. Fast kernels: the same maths, fewer passes over memory
#
# Every hot operation in tinyae has two versions with one signature:
# `tinyae/kernels/reference.py` in plain NumPy (the definition) and
# `tinyae/kernels/fast.py` in Numba. This tutorial puts them side by side and
# times them on your machine.

# %%
import inspect
import time

import numpy as np

from tinyae import kernels
from tinyae.kernels import fast, matmul, reference
from tinyae.tutorial import FAST

print("active backend:", kernels.get_backend())
print(inspect.getsource(reference.dense_forward))


def median_ms(fn, repeat=5 if FAST else 20):
    fn()                                             # warm-up: JIT compile, caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))

# %% [markdown]
# ## Why fusing helps
#
# One training step does three kinds of work:
#
# - **matmuls** (x W, x^T dz, dz W^T): about 6 multiply-adds per weight per
#   sample, compute-bound. OpenBLAS runs them close to the processor's peak,
#   so both backends call it.
# - **elementwise work** (bias, activation, activation gradient, bias
#   gradient): one or two operations per element. Here the cost is moving
#   memory, and NumPy moves it once per operation, with a temporary array
#   each time. The Numba kernel does the whole chain in one pass.
# - **Adam**: for each of the 1.1 million parameters, read p, g, m, v and
#   write p, m, v. NumPy needs about ten passes and several temporaries; the
#   Numba loop does it in one.

# %%
rng = np.random.default_rng(0)
x = rng.random((256, 512), dtype=np.float32)
W = rng.standard_normal((512, 784)).astype(np.float32)
b = np.zeros(784, np.float32)
y = reference.dense_forward(x, W, b, "sigmoid")
dy = rng.standard_normal(y.shape).astype(np.float32)
dW, db = np.zeros_like(W), np.zeros_like(b)

print(f"{'operation (batch 256, 512 -> 784)':<40}{'NumPy ms':>10}{'Numba ms':>10}")
for name, ref, fst in [
    ("matmul + bias + sigmoid", lambda: reference.dense_forward(x, W, b, "sigmoid"),
     lambda: fast.dense_forward(x, W, b, "sigmoid")),
    ("sigmoid grad + bias grad + 2 matmuls", lambda: reference.dense_backward(x, W, y, dy, dW, db, "sigmoid"),
     lambda: fast.dense_backward(x, W, y, dy, dW, db, "sigmoid")),
]:
    print(f"{name:<40}{median_ms(ref):>10.2f}{median_ms(fst):>10.2f}")

# %%
n = 1_100_434                                       # every parameter of the seed model
p, g, m, v = (rng.standard_normal(n).astype(np.float32) for _ in range(4))
v = np.abs(v)
t_ref = median_ms(lambda: reference.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 10))
t_fast = median_ms(lambda: fast.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 10))
print(f"Adam over {n:,} parameters: NumPy {t_ref:.2f} ms, Numba {t_fast:.2f} ms "
      f"({t_ref / t_fast:.1f}x)")

# %% [markdown]
# ## A matmul you can read
#
# `tinyae/kernels/matmul.py` writes a matrix multiply the way fast libraries
# organise one: loop order chosen so the inner loop runs along contiguous
# memory (SIMD), four rows of the output updated together so every loaded
# weight is used four times, and the weight matrix cut into panels that fit
# the L2 cache. It is still slower than OpenBLAS, which adds packed copies,
# hand-written assembly and threads -- which is why tinyae's layers call BLAS.

# %%
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
