"""Each Numba kernel against its NumPy reference at the seed model's shapes.

Prints time per call, the rate (GFLOP/s for matmul work, GB/s for memory-bound
kernels) and the speed-up over the reference, whichever way it goes.

    python benchmarks/bench_kernels.py [--batch 256]
"""
import argparse
import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import layer_shapes, machine, paired_times  # noqa: E402

from tinyae.kernels import fast, matmul, reference  # noqa: E402


@numba.njit(error_model="numpy")
def touch_like_adam(p, g, m, v):
    """Adam's memory traffic and next to none of its arithmetic: 4 reads, 3 writes per element."""
    for i in range(p.size):
        gi = g[i]
        m[i] += gi
        v[i] += gi * gi                   # keeps v >= 0 for the reference it alternates with
        p[i] += gi


def row(name, f_ref, f_fast, work, unit):
    """Time the pair alternately; the speed-up is the median of per-pair ratios."""
    t_ref, t_fast, ratio = paired_times(f_ref, f_fast)
    print(f"{name:<38} {t_ref * 1e3:>9.3f} {t_fast * 1e3:>9.3f} {work / t_fast / 1e9:>8.1f} {unit:<7}"
          f" {ratio:>6.2f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=256)
    N = p.parse_args().batch
    rng = np.random.default_rng(0)
    f32 = np.float32
    print(f"machine: {machine()}\nbatch {N}, float32; times are medians in ms\n")
    print(f"{'kernel':<38} {'numpy ms':>9} {'numba ms':>9} {'rate':>8} {'':<7} {'speed-up':>7}")

    for d, h in layer_shapes():
        x = rng.random((N, d), dtype=f32)
        W = rng.standard_normal((d, h)).astype(f32)
        b = rng.standard_normal(h).astype(f32)
        act = "sigmoid" if h == 784 and d == 512 else ("identity" if h == 2 else "relu")
        y = reference.dense_forward(x, W, b, act)
        dy = rng.standard_normal(y.shape).astype(f32)
        dW, db = np.zeros_like(W), np.zeros_like(b)
        flops = 2 * N * d * h
        row(f"dense_forward {d}x{h} {act}", lambda: reference.dense_forward(x, W, b, act),
            lambda: fast.dense_forward(x, W, b, act), flops, "GFLOP/s")
        row(f"dense_backward {d}x{h} {act}",
            lambda: reference.dense_backward(x, W, y, dy, dW, db, act),
            lambda: fast.dense_backward(x, W, y, dy, dW, db, act), 2 * flops, "GFLOP/s")

    for d, h in [(784, 512), (512, 256), (256, 64), (64, 256), (2, 64)]:
        a = rng.random((64, d), dtype=f32)
        B = rng.random((d, h), dtype=f32)
        row(f"matmul 64x{d} @ {d}x{h} (Numba vs BLAS)", lambda: a @ B,
            lambda: matmul.matmul(a, B), 2 * 64 * d * h, "GFLOP/s")

    n_params = 1_100_434
    p_, g, m, v = (rng.standard_normal(n_params).astype(f32) for _ in range(4))
    v = np.abs(v)
    args = (1e-3, 0.9, 0.999, 1e-8, 10)
    # Adam reads p, g, m, v and writes p, m, v: 7 floats per parameter.
    row("adam_update, all 1,100,434 params", lambda: reference.adam_update(p_, g, m, v, *args),
        lambda: fast.adam_update(p_, g, m, v, *args), 7 * 4 * n_params, "GB/s")
    # The floor for any Adam: the same 7 streams with no arithmetic. Reference / floor
    # is the largest speed-up a fused Adam can show against the reference here.
    row("  floor: read p, g, m, v, write p, m, v", lambda: reference.adam_update(p_, g, m, v, *args),
        lambda: touch_like_adam(p_, g, m, v), 7 * 4 * n_params, "GB/s")

    # MSE value and gradient: reads pred and target, writes the gradient.
    pred, target, grad = (rng.random((N, 784), dtype=f32) for _ in range(3))
    row(f"mse_grad {N}x784", lambda: reference.mse_grad(pred, target, grad),
        lambda: fast.mse_grad(pred, target, grad), 3 * 4 * N * 784, "GB/s")

    X = rng.random((60_000, 784), dtype=f32)
    idx = rng.permutation(60_000)[:N]
    out = np.empty((N, 784), f32)
    row(f"gather_rows {N} of 60,000 x 784, into out", lambda: reference.gather_rows(X, idx, out),
        lambda: fast.gather_rows(X, idx, out), 2 * 4 * N * 784, "GB/s")


if __name__ == "__main__":
    main()
