"""The price of the tape: one training step of the seed model three ways.

"plain" is the layers' hand-written backward (tinyae/layers.py) with Adam.step;
"fast" is ``tinyae.fast.accelerate`` with FastMSE and the Adam kernel, what
``fit`` runs; "tape" is the loss built from ``tinyae.autograd`` Tensors on the
same weight arrays, ``backward()``, its gradients copied to where Adam reads
them, then Adam.step. float32, the seed model 784-512-256-64-2-...-784, MSE.

The three alternate step by step (A B C A B C ...) after a warm-up, so that a
noisy neighbour hits all of them alike; medians are printed with the ratio to
the plain path, and the peak memory one step allocates (tracemalloc, which
sees NumPy's arrays) beside them.

    python benchmarks/bench_autograd.py                 # batch 256, 21 rounds
    python benchmarks/bench_autograd.py --batch 64 --rounds 41
"""
import argparse
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import SEED_SIZES, machine  # noqa: E402


def steps(batch):
    """{name: one training step} for the three paths, all on one model's arrays."""
    import tinyae as ta
    from tinyae import fast
    from tinyae.autograd import Tensor, layer_forward, mse, parameter_tensors
    X = np.random.default_rng(0).random((batch, SEED_SIZES[0]), dtype=np.float32)
    model = ta.dense_autoencoder(SEED_SIZES, rng=np.random.default_rng(0))
    opt, loss = ta.Adam(model.parameters()), ta.MSE()
    view, fast_mse, fast_adam = fast.accelerate(model), fast.FastMSE(), fast.fast_step(opt)
    P = parameter_tensors(model)

    def plain():
        opt.zero_grad()
        loss.forward(model.forward(X), X)
        model.backward(loss.backward())
        opt.step()

    def fast_path():
        view.zero_grad()
        fast_mse.forward(view.forward(X), X)
        view.backward(fast_mse.backward())
        fast_adam()

    def tape():
        for t in P.values():
            t.zero_grad()
        mse(layer_forward(model, Tensor(X, requires_grad=False), P), X).backward()
        for name, _, g in model.parameters():
            g[...] = P[name].grad
        opt.step()

    return {"plain": plain, "fast": fast_path, "tape": tape}


def peak_mb(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2 ** 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    print(machine())
    fns = steps(args.batch)
    for fn in fns.values():                      # warm-up: Numba compiles, BLAS threads start
        fn()
        fn()
    times = {name: [] for name in fns}
    for _ in range(args.rounds):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    base = statistics.median(times["plain"])
    print(f"one training step, batch {args.batch}, float32, median of {args.rounds}")
    print(f"{'path':<8}{'ms':>9}{'x plain':>10}{'best ms':>10}{'peak MB':>10}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<8}{1e3 * med:>9.1f}{med / base:>10.2f}{1e3 * min(ts):>10.1f}"
              f"{peak_mb(fns[name]):>10.1f}")


if __name__ == "__main__":
    main()
