"""One epoch of the seed model on MNIST: the plain path vs the fast path vs PyTorch CPU.

"numpy" is ``fit(..., backend="numpy")``, the plain layers exactly as written;
"numba" is the default fast path (``tinyae.fast``).

Each measurement runs in its own process (thread pools of different libraries
slow each other down when they share one), and the backends alternate
A B C A B C ... so that a noisy neighbour hits all of them alike. Every
process starts from the same initial weights, warms up (JIT compilation,
BLAS threads, page faults) and then times one full epoch.

"x torch" is the median of the pair-by-pair ratios (round k against round k);
"best x" divides the fastest run by PyTorch's fastest run. On a shared VM
whose speed drifts for tens of seconds at a time (a slow stretch can make
every step 1.5x slower), the two together say more than either alone.

    python benchmarks/bench_epoch.py                     # batch 64, 256, 1024; 3 rounds
    python benchmarks/bench_epoch.py --batches 256 --rounds 5
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import (  # noqa: E402
    SEED_SIZES,
    machine,
    median_time,
    peak_rss_mb,
    run_worker,
    step_flops,
    with_torch,
)

N_TRAIN = 60_000


def initial_weights():
    import tinyae as ta
    model = ta.dense_autoencoder(SEED_SIZES, rng=np.random.default_rng(0))
    return model


def tinyae_worker(backend, batch, warmup_steps=20):
    """One epoch through ``tinyae.train.fit``, exactly what users run."""
    import tinyae as ta
    from tinyae import data
    from tinyae.evaluate.metrics import batched
    from tinyae.train import fit
    from tinyae.viz.latent import grid
    X, _ = data.load_mnist("train", progress=False)
    model = initial_weights()
    opt = ta.Adam(model.parameters(), lr=1e-3)
    # Warm-up on a copy (JIT compilation, BLAS threads), then the timed epoch from the
    # shared initial weights.
    warm = initial_weights()
    fit(warm, X[:warmup_steps * batch], epochs=1, batch_size=batch, progress=False,
        backend=backend)
    start = time.perf_counter()
    fit(model, X, epochs=1, batch_size=batch, optimizer=opt, seed=0, progress=False,
        backend=backend)
    seconds = time.perf_counter() - start
    final = ta.MSE().forward(model.forward(X[:2000]), X[:2000])
    Xt = X[:10_000]
    enc = median_time(lambda: batched(model.encode, Xt), repeat=5)
    Z = grid((-3, 3), (-3, 3), 30).astype(np.float32)
    dec = median_time(lambda: model.decode(Z), repeat=5)
    return {"seconds": seconds, "loss": final, "encode_10k": enc, "decode_900": dec,
            "peak_mb": peak_rss_mb()}


def torch_worker(batch, warmup_steps=20):
    import torch

    from tinyae import data
    torch.set_num_threads(2)
    X = torch.from_numpy(data.load_mnist("train", progress=False)[0])
    ref = initial_weights()
    layers = []
    for part in (ref.encoder, ref.decoder):
        for layer in part:
            name = type(layer).__name__
            if name == "Dense":
                lin = torch.nn.Linear(layer.in_features, layer.out_features)
                with torch.no_grad():            # tinyae's W is (in, out): the transpose
                    lin.weight.copy_(torch.from_numpy(layer.params["W"].T.copy()))
                    lin.bias.copy_(torch.from_numpy(layer.params["b"]))
                layers.append(lin)
            else:
                layers.append({"ReLU": torch.nn.ReLU, "Sigmoid": torch.nn.Sigmoid}[name]())
    lossf = torch.nn.MSELoss()
    order = torch.from_numpy(np.random.default_rng([0, 1]).permutation(len(X)))  # fit's epoch 1

    def epoch(model, steps):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        for k in range(0, min(len(X), steps * batch), batch):
            xb = X[order[k:k + batch]]
            opt.zero_grad(set_to_none=False)
            lossf(model(xb), xb).backward()
            opt.step()

    model = torch.nn.Sequential(*layers)
    epoch(copy.deepcopy(model), warmup_steps)             # warm-up on a copy
    start = time.perf_counter()
    epoch(model, len(X))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = float(lossf(model(X[:2000]), X[:2000]))
        enc_net = model[:7]
        enc = median_time(lambda: enc_net(X[:10_000]), repeat=5)
        Z = torch.from_numpy(np.random.default_rng(0).uniform(-3, 3, (900, 2)).astype(np.float32))
        dec = median_time(lambda: model[7:](Z), repeat=5)
    return {"seconds": seconds, "loss": final, "encode_10k": enc, "decode_900": dec,
            "peak_mb": peak_rss_mb()}


def sgemm_worker():
    """sgemm GFLOP/s on the seed model's largest product, (256, 784) @ (784, 512)."""
    a = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    b = np.random.default_rng(1).random((784, 512), dtype=np.float32)
    t = median_time(lambda: [a @ b for _ in range(50)], repeat=7) / 50
    return {"gflops": 2 * 256 * 784 * 512 / t / 1e9}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        kind, *rest = args.worker
        if kind == "sgemm":
            result = sgemm_worker()
        elif kind == "torch":
            result = torch_worker(int(rest[0]))
        else:
            result = tinyae_worker(kind, int(rest[0]))
        print(json.dumps(result))
        return

    backends = with_torch(["numpy", "numba"], "the two tinyae backends")
    print(f"machine: {machine()}")
    script = os.path.abspath(__file__)
    results = {}
    sgemm = []
    for batch in args.batches:
        for r in range(args.rounds):
            sgemm.append(run_worker(script, ["sgemm"])["gflops"])
            for b in (backends if r % 2 == 0 else backends[::-1]):          # A B C, C B A, ...
                results.setdefault((batch, b), []).append(run_worker(script, [b, batch]))
    rate = statistics.median(sgemm)
    print(f"sgemm (256x784 @ 784x512): {rate:.0f} GFLOP/s, median of {len(sgemm)} measurements\n")
    print(f"{'batch':>5}  {'backend':<7} {'epoch s':>8} {'runs':>22} {'x torch':>8} {'best x':>7} "
          f"{'% sgemm':>8} "
          f"{'loss':>7} {'enc 10k':>8} {'dec 900':>8} {'peak MB':>8}")
    for batch in args.batches:
        gflop = step_flops(batch) * (N_TRAIN / batch) / 1e9
        torch_runs = results.get((batch, "torch"))
        for b in backends:
            runs = results[(batch, b)]
            sec = statistics.median(r["seconds"] for r in runs)
            # Pair by pair: run k of this backend against run k of PyTorch (same round).
            ratio = (statistics.median(r["seconds"] / t["seconds"] for r, t in zip(runs, torch_runs))
                     if torch_runs else float("nan"))
            best = (min(r["seconds"] for r in runs) / min(t["seconds"] for t in torch_runs)
                    if torch_runs else float("nan"))
            each = " ".join(f"{r['seconds']:.2f}" for r in runs)
            print(f"{batch:>5}  {b:<7} {sec:>8.2f} {each:>22} {ratio:>8.2f} {best:>7.2f} "
                  f"{100 * gflop / sec / rate:>7.0f}% {runs[0]['loss']:>7.4f} "
                  f"{statistics.median(r['encode_10k'] for r in runs) * 1e3:>6.1f}ms "
                  f"{statistics.median(r['decode_900'] for r in runs) * 1e3:>6.1f}ms "
                  f"{max(r['peak_mb'] for r in runs):>8.0f}")
    print(f"\nepoch matmul work: {step_flops(1) / 1e6:.3f} MFLOP per sample, "
          f"{step_flops(1) * N_TRAIN / 1e9:.0f} GFLOP per epoch")


if __name__ == "__main__":
    main()
