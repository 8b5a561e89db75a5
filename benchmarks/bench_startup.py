"""Start-up cost: ``import tinyae`` and the time a fresh process needs to reach its
first training step (Numba kernels loaded from the on-disk cache after the first run).

    python benchmarks/bench_startup.py
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

IMPORT = "import time; t = time.perf_counter(); import tinyae; print(time.perf_counter() - t)"
FIRST_STEP = """
import time
t = time.perf_counter()
import numpy as np, tinyae as ta
from tinyae.train import fit, resolve_backend
model = ta.dense_autoencoder(rng=np.random.default_rng(0))
X = np.random.default_rng(1).random((256, 784), dtype=np.float32)
fit(model, X, epochs=1, batch_size=256, progress=False)      # one step, on TINYAE_BACKEND's path
print(time.perf_counter() - t, resolve_backend())
"""


def run(code, env=None):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True)
    return out.stdout.split()


def main():
    print(f"machine: {machine()}")
    imports = [float(run(IMPORT)[0]) for _ in range(5)]
    print(f"import tinyae: median {statistics.median(imports):.3f} s over 5 processes")
    for backend in ("numba", "numpy"):
        times = [float(run(FIRST_STEP, {"TINYAE_BACKEND": backend})[0]) for _ in range(4)]
        print(f"{backend:>5}: first training step of a fresh process "
              f"{', '.join(f'{t:.2f}' for t in times)} s (the first run may compile; later ones "
              "load the cache)")


if __name__ == "__main__":
    main()
