"""Helpers shared by the benchmark scripts: timing, workers in their own processes."""
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# MNIST from ../shared/data/mnist unless TINYAE_DATA_DIR says otherwise.
SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
if "TINYAE_DATA_DIR" not in os.environ and os.path.isdir(SHARED):
    os.environ["TINYAE_DATA_DIR"] = os.path.abspath(SHARED)

# tinyae.models.SEED_SIZES, written out: the peers' worker processes never import tinyae.
SEED_SIZES = (784, 512, 256, 64, 2)


def layer_shapes(sizes=SEED_SIZES):
    """(in, out) of every Dense layer of the mirrored autoencoder."""
    widths = list(sizes) + list(sizes[::-1][1:])
    return list(zip(widths[:-1], widths[1:]))


def step_flops(batch, sizes=SEED_SIZES):
    """Matmul FLOPs of one training step: forward 2NDH, backward 4NDH, minus the unused dx."""
    shapes = layer_shapes(sizes)
    total = sum(6 * batch * d * h for d, h in shapes)
    return total - 2 * batch * shapes[0][0] * shapes[0][1]


def median_time(fn, repeat=7, warmup=2):
    """Median wall time of ``fn()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def paired_times(fa, fb, repeat=21, warmup=2):
    """Median times of ``fa`` and ``fb`` and the median of their ratios, timed A B A B ...

    Alternating keeps a noisy neighbour from landing on one side only.
    """
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, out in ((fa, ta), (fb, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return (statistics.median(ta), statistics.median(tb),
            statistics.median(a / b for a, b in zip(ta, tb)))


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(script, args, env=None):
    """Run ``script --worker ...`` in a fresh process; it prints one JSON line last."""
    out = subprocess.run([sys.executable, script, "--worker", *map(str, args)], capture_output=True,
                         text=True, env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def with_torch(names, what):
    """``names`` and "torch" when PyTorch imports here; else ``names``, and a line saying so."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"PyTorch is not installed: comparing {what} only "
              "(pip install torch==2.13.0 for the CPU build).")
        return list(names)
    return [*names, "torch"]


def machine():
    """One line naming the CPU, core count and library versions."""
    import numpy as np
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [cpu, f"{os.cpu_count()} cores", f"Python {sys.version.split()[0]}", f"NumPy {np.__version__}"]
    try:
        import numba
        parts.append(f"Numba {numba.__version__}")
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            parts.append(f"{blas[0]['internal_api']} {blas[0]['version']} ({blas[0].get('architecture')})")
    except ImportError:
        pass
    return ", ".join(parts)
