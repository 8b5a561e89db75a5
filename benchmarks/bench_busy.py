"""Training beside a busy neighbour: tinyae's measured thread count vs fixed counts vs PyTorch.

One epoch of 16,384 MNIST images through the seed model, at batch 256 and 64,
each configuration in its own process, alternated (A B C D, D C B A, ...),
first on a quiet machine and then beside a neighbour process that this
script starts (one busy-looping Python process: a browser tab, another
notebook) and stops itself. Configurations:

    default    fit(...) as users run it: threads "auto", measured while training; the
               timed fit follows the warm-up fit of the same model and batch size, so it
               starts with the warm-up's decision, as a notebook's next fit does
    first fit  the same with that memory cleared: a process's first fit, probing from scratch
    1 thread   fit(..., threads=1)
    N threads  fit(..., threads=N), N = the cores OpenBLAS uses (tinyae's old default)
    torch      PyTorch CPU with fused Adam, torch.set_num_threads(N) (when installed)

Prints the median epoch time of each, and its ratio to the best fixed count
in the same condition (the targets: default within 10% of the best fixed
count when busy, within 5% of the N-thread time when quiet).

    python benchmarks/bench_busy.py [--batches 256 64] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import SEED_SIZES, machine, run_worker  # noqa: E402

N_IMAGES = 16_384


def tinyae_worker(threads, batch):
    import tinyae as ta
    from tinyae import data
    from tinyae.train import fit
    X = data.load_mnist("train", progress=False)[0][:N_IMAGES]
    from tinyae.train import threads as pool
    fixed = None if threads in ("auto", "first") else int(threads)
    warm = ta.dense_autoencoder(SEED_SIZES, rng=np.random.default_rng(1))
    fit(warm, X[:20 * batch], epochs=1, batch_size=batch, progress=False, threads=fixed)
    if threads == "first":
        pool._choosers.clear()                  # forget the warm-up's decision
    model = ta.dense_autoencoder(SEED_SIZES, rng=np.random.default_rng(0))
    start = time.perf_counter()
    h = fit(model, X, epochs=1, batch_size=batch, progress=False, threads=fixed)
    return {"seconds": time.perf_counter() - start, "threads": h.records[-1].threads}


def torch_worker(batch):
    import torch
    from threadpoolctl import threadpool_info

    from tinyae import data
    torch.set_num_threads(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
    X = torch.from_numpy(data.load_mnist("train", progress=False)[0][:N_IMAGES])
    sizes = SEED_SIZES + SEED_SIZES[-2::-1]
    layers = []
    for k, (d, h) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(d, h))
        if k == len(sizes) - 2:
            layers.append(torch.nn.Sigmoid())
        elif h != SEED_SIZES[-1]:
            layers.append(torch.nn.ReLU())
    model, lossf = torch.nn.Sequential(*layers), torch.nn.MSELoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def epoch(n):
        for k in range(0, n, batch):
            xb = X[k:k + batch]
            opt.zero_grad(set_to_none=False)
            lossf(model(xb), xb).backward()
            opt.step()
    epoch(20 * batch)                                       # warm-up
    start = time.perf_counter()
    epoch(N_IMAGES)
    return {"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}


def start_neighbour():
    """A process that keeps one core busy, as a browser or a second notebook would."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[256, 64])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        kind, batch = args.worker
        result = torch_worker(int(batch)) if kind == "torch" else tinyae_worker(kind, int(batch))
        print(json.dumps(result))
        return

    from threadpoolctl import threadpool_info
    n = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    configs = ["auto", "first", "1", str(n)] if n > 1 else ["auto", "first", "1"]
    try:
        import torch  # noqa: F401
        configs.append("torch")
    except ImportError:
        print("PyTorch is not installed: tinyae only (pip install torch==2.13.0 for the CPU build).")
    names = {"auto": "default (auto)", "first": "first fit", "1": "1 thread",
             str(n): f"{n} threads", "torch": "PyTorch"}
    print(f"machine: {machine()}\n{N_IMAGES:,}-image epochs of the seed model, median of "
          f"{args.rounds} processes each\n")
    script = os.path.abspath(__file__)
    results = {}
    for condition in ("quiet", "busy"):
        neighbour = start_neighbour() if condition == "busy" else None
        try:
            time.sleep(1.0 if neighbour else 0)
            for batch in args.batches:
                for r in range(args.rounds):
                    for c in (configs if r % 2 == 0 else configs[::-1]):
                        results.setdefault((condition, batch, c), []).append(
                            run_worker(script, [c, batch]))
        finally:
            if neighbour:
                neighbour.kill()
                neighbour.wait()
    print(f"{'condition':<10}{'batch':>6}  {'configuration':<16}{'epoch s':>9}  {'runs':<20}"
          f"{'x best fixed':>13}  threads chosen")
    for condition in ("quiet", "busy"):
        for batch in args.batches:
            med = {c: statistics.median(r["seconds"] for r in results[(condition, batch, c)])
                   for c in configs}
            best_fixed = min(med[c] for c in configs if c.isdigit())
            for c in configs:
                runs = results[(condition, batch, c)]
                each = " ".join(f"{r['seconds']:.2f}" for r in runs)
                chosen = ",".join(str(r["threads"]) for r in runs)
                print(f"{condition:<10}{batch:>6}  {names[c]:<16}{med[c]:>9.2f}  {each:<20}"
                      f"{med[c] / best_fixed:>13.2f}  {chosen}")


if __name__ == "__main__":
    main()
