"""Do Numba's threads and OpenBLAS's threads fight? Serial vs parallel Adam in a real step.

The training step alternates BLAS matmuls (OpenBLAS, all cores) with Numba
loops. This runs 150 steps of the seed model at batch 256 with the fused Adam
kernel serial (tinyae's choice) and with a ``prange`` version, each in its own
process, under the default environment and with OMP_WAIT_POLICY=passive.

    python benchmarks/bench_threads.py
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, run_worker  # noqa: E402

STEPS = 150


def worker(mode):
    import json

    import numba
    import numpy as np

    import tinyae as ta
    from tinyae import fast
    from tinyae.fast import kernels

    @numba.njit(parallel=True, error_model="numpy")
    def adam_parallel(p, g, m, v, step, b1, c1, b2, c2, inv_sqrt_bc2, eps, wd, tiny, p_floor):
        # kernels.adam's loop, line for line, over prange
        for i in numba.prange(p.size):
            gi = g[i] + wd * p[i] if wd != 0 else g[i]
            mi = b1 * m[i] + c1 * gi
            vi = b2 * v[i] + c2 * (gi * gi)
            mi = mi if abs(mi) >= tiny else mi * 0
            vi = vi if vi >= tiny else vi * 0
            m[i] = mi
            v[i] = vi
            pi = p[i] - step * (mi / (np.sqrt(vi) * inv_sqrt_bc2 + eps))
            p[i] = pi if abs(pi) >= p_floor else pi * 0

    if mode == "parallel":
        kernels.adam = adam_parallel             # engine.py looks it up at every call
    rng = np.random.default_rng(0)
    X = rng.random((STEPS * 256, 784), dtype=np.float32)
    model = ta.dense_autoencoder(rng=rng)
    opt = ta.Adam(model.parameters())
    net, loss, update = fast.accelerate(model), fast.FastMSE(), fast.fast_step(opt)

    def step(xb):                               # fit's step on the fast path
        net.zero_grad()
        loss.forward(net.forward(xb), xb)
        net.backward(loss.backward())
        update()

    for k in range(10):
        step(X[k * 256:(k + 1) * 256])
    t = time.perf_counter()
    for k in range(STEPS):
        step(X[k * 256:(k + 1) * 256])
    ms = (time.perf_counter() - t) / STEPS * 1e3
    layer = numba.threading_layer() if mode == "parallel" else "-"
    print(json.dumps({"ms": ms, "layer": layer}))


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return worker(sys.argv[2])
    print(f"machine: {machine()}\nms per training step (batch 256), median of 3 processes\n")
    envs = (("default environment", {}), ("OMP_WAIT_POLICY=passive", {"OMP_WAIT_POLICY": "passive"}))
    for env_name, env in envs:
        for mode in ("serial", "parallel"):
            runs = [run_worker(os.path.abspath(__file__), [mode], env) for _ in range(3)]
            ms = statistics.median(r["ms"] for r in runs)
            print(f"{env_name:<26} Adam {mode:<9} {ms:7.2f} ms/step   (threading layer: {runs[0]['layer']})")


if __name__ == "__main__":
    main()
