"""Each fused step of the fast path against the plain layers it replaces, at the seed model's shapes.

Prints time per call, the rate (GFLOP/s for matmul work, GB/s for memory-bound
work) and the speed-up of the fast path over the plain one, whichever way it goes.

    python benchmarks/bench_kernels.py [--batch 256]
"""
import argparse
import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import layer_shapes, machine, paired_times  # noqa: E402

import tinyae as ta  # noqa: E402
from tinyae import fast  # noqa: E402
from tinyae.fast import matmul  # noqa: E402


@numba.njit(error_model="numpy")
def touch_like_adam(p, g, m, v):
    """Adam's memory traffic and next to none of its arithmetic: 4 reads, 3 writes per element."""
    for i in range(p.size):
        gi = g[i]
        m[i] += gi
        v[i] += gi * gi                   # keeps v >= 0 for the plain Adam it alternates with
        p[i] += gi


def row(name, f_plain, f_fast, work, unit):
    """Time the pair alternately; the speed-up is the median of per-pair ratios."""
    t_plain, t_fast, ratio = paired_times(f_plain, f_fast)
    print(f"{name:<38} {t_plain * 1e3:>9.3f} {t_fast * 1e3:>9.3f} {work / t_fast / 1e9:>8.1f} {unit:<7}"
          f" {ratio:>6.2f}x")


ACTS = {"relu": ta.ReLU, "sigmoid": ta.Sigmoid, "identity": None}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--batch", type=int, default=256)
    N = p.parse_args().batch
    rng = np.random.default_rng(0)
    f32 = np.float32
    print(f"machine: {machine()}\nbatch {N}, float32; times are medians in ms\n")
    print(f"{'step':<38} {'plain ms':>9} {'fast ms':>9} {'rate':>8} {'':<7} {'speed-up':>7}")

    for d, h in layer_shapes():
        act = "sigmoid" if h == 784 and d == 512 else ("identity" if h == 2 else "relu")
        layers = [ta.Dense(d, h, rng=rng)] + ([ACTS[act]()] if ACTS[act] else [])
        plain = ta.Sequential(*layers)
        quick = fast.accelerate(plain)
        x = rng.random((N, d), dtype=f32)
        dy = rng.standard_normal((N, h)).astype(f32)
        plain.forward(x)
        quick.forward(x)
        flops = 2 * N * d * h
        row(f"forward {d}x{h} {act}", lambda: plain.forward(x), lambda: quick.forward(x),
            flops, "GFLOP/s")
        row(f"backward {d}x{h} {act}", lambda: plain.backward(dy), lambda: quick.backward(dy),
            2 * flops, "GFLOP/s")

    for d, h in [(784, 512), (512, 256), (256, 64), (64, 256), (2, 64)]:
        a = rng.random((64, d), dtype=f32)
        B = rng.random((d, h), dtype=f32)
        row(f"matmul 64x{d} @ {d}x{h} (Numba vs BLAS)", lambda: a @ B,
            lambda: matmul.matmul(a, B), 2 * 64 * d * h, "GFLOP/s")

    model = ta.dense_autoencoder(rng=rng)
    for _, _, g in model.parameters():
        g[...] = rng.standard_normal(g.shape)
    plain_adam, fast_adam = ta.Adam(model.parameters()), ta.Adam(model.parameters())
    kernel = fast.fast_step(fast_adam)
    n_params = model.num_parameters()
    # Adam reads p, g, m, v and writes p, m, v: 7 floats per parameter.
    row(f"Adam step, all {n_params:,} params", plain_adam.step, kernel, 7 * 4 * n_params, "GB/s")
    # The floor for any Adam: the same 7 streams with no arithmetic. Plain / floor is
    # the largest speed-up a fused Adam can show against the plain one here.
    flat = [rng.standard_normal(n_params).astype(f32) for _ in range(4)]
    flat[3] = np.abs(flat[3])
    row("  floor: read p, g, m, v, write p, m, v", plain_adam.step,
        lambda: touch_like_adam(*flat), 7 * 4 * n_params, "GB/s")

    # MSE value and gradient: reads pred and target, writes the gradient.
    pred, target = (rng.random((N, 784), dtype=f32) for _ in range(2))
    mse, fmse = ta.MSE(), fast.FastMSE()
    row(f"MSE forward + backward {N}x784", lambda: (mse.forward(pred, target), mse.backward()),
        lambda: (fmse.forward(pred, target), fmse.backward()), 3 * 4 * N * 784, "GB/s")

    X = rng.random((60_000, 784), dtype=f32)
    idx = rng.permutation(60_000)[:N]
    out = np.empty((N, 784), f32)
    row(f"gather {N} of 60,000 x 784 (X[idx] vs into out)", lambda: np.take(X, idx, axis=0),
        lambda: fast.gather_rows(X, idx, out), 2 * 4 * N * 784, "GB/s")


if __name__ == "__main__":
    main()
