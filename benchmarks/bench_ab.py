"""One epoch of the seed model, two checkouts of tinyae alternated: did a change cost speed?

Each epoch runs in its own process (warm-up on 4,096 images, then a timed
epoch of MNIST's 60,000 on the fast path with 2 BLAS threads), A B A B ...,
so that a drifting VM hits both alike; prints each pair and the median of the
pair ratios B / A. A checkout is a folder holding tinyae/ (a git worktree of
the old commit, e.g. ``git worktree add ../old <commit>``).

    python benchmarks/bench_ab.py ../old . --batches 64 256 --pairs 5
"""
import argparse
import os
import statistics
import subprocess
import sys

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
WORKER = r"""
import os, sys, time
import numpy as np
import tinyae as ta
batch = int(sys.argv[1])
X = ta.data.load_mnist("train", progress=False)[0].astype(np.float32)
ta.train.fit(ta.dense_autoencoder(rng=np.random.default_rng(1)), X[:4096], epochs=1,
             batch_size=batch, progress=False, threads=2)            # compile and warm up
model = ta.dense_autoencoder(rng=np.random.default_rng(0))
t = time.perf_counter()
ta.train.fit(model, X, epochs=1, batch_size=batch, progress=False, threads=2)
print(time.perf_counter() - t)
"""


def epoch_seconds(root, batch):
    env = {**os.environ, "PYTHONPATH": os.path.abspath(root)}
    env.setdefault("TINYAE_DATA_DIR", os.path.abspath(SHARED))
    out = subprocess.run([sys.executable, "-c", WORKER, str(batch)], env=env, cwd=root,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="checkout A (before)")
    p.add_argument("b", help="checkout B (after)")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    p.add_argument("--pairs", type=int, default=5)
    args = p.parse_args()
    for batch in args.batches:
        pairs = []
        for _ in range(args.pairs):
            a, b = epoch_seconds(args.a, batch), epoch_seconds(args.b, batch)
            pairs.append((a, b))
            print(f"batch {batch}: A {a:.3f} s  B {b:.3f} s  B/A {b / a:.3f}", flush=True)
        ratios = [b / a for a, b in pairs]
        print(f"batch {batch}: median A {statistics.median(a for a, _ in pairs):.3f} s, median "
              f"B {statistics.median(b for _, b in pairs):.3f} s, median of B/A "
              f"{statistics.median(ratios):.3f} (pairs {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
