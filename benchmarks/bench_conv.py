"""One epoch of keras-io's convolutional autoencoder: the fast path vs the plain path vs PyTorch.

The model is ``tinyae.keras_conv_autoencoder()`` (Conv 32 + MaxPool twice,
ConvTranspose 32 stride 2 twice, Conv 1 sigmoid; 28,353 parameters), trained
with keras-io's recipe: BCE on the sigmoid's output, Adam 1e-3, batch 128.

    numba   fit(..., backend="numba"): tinyae/fast/conv.py's im2col steps
    numpy   fit(..., backend="numpy"): nn/conv.py's layers as written
    torch   the same model and initial weights in PyTorch, 2 threads, Adam(fused=True)

As bench_epoch.py: each measurement in its own process, the backends
alternated A B C, C B A, ..., a warm-up on a copy first; "x torch" is the
median of the round-by-round ratios, "best x" the fastest run over PyTorch's
fastest. ``--steps`` times that many steps and scales them to the epoch's
469 (the plain path takes minutes per epoch: ``--plain-steps`` keeps it short).

Then, in one more process, where a fast-path step goes: the products (every
``np.matmul`` of the convolution steps), im2col and col2im, and the rest
(bias and activation loops, pooling, the loss, Adam); and the GEMM-only
floor: the same products, same shapes and layouts, replayed back to back.

    python benchmarks/bench_conv.py                        # 3 rounds, a full epoch each
    python benchmarks/bench_conv.py --steps 3 --plain-steps 2 --rounds 1 --warmup 1  # a check
"""
import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, median_time, peak_rss_mb, run_worker, with_torch  # noqa: E402

N_TRAIN, BATCH = 60_000, 128
EPOCH_STEPS = math.ceil(N_TRAIN / BATCH)                 # 469


def initial_model():
    import tinyae as ta
    return ta.keras_conv_autoencoder(rng=np.random.default_rng(0))


def tinyae_worker(backend, steps, warmup):
    """``steps`` steps through ``tinyae.train.fit``, exactly what users run."""
    import tinyae as ta
    from tinyae import data
    from tinyae.train import fit
    full = data.load_mnist("train", progress=False)[0]
    X, held = full[:steps * BATCH], full[-2000:]
    fit(initial_model(), X[:warmup * BATCH], epochs=1, batch_size=BATCH, loss=ta.BCE(),
        progress=False, backend=backend)                          # JIT, BLAS threads, pages
    model = initial_model()
    opt = ta.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    history = fit(model, X, epochs=1, batch_size=BATCH, loss=ta.BCE(), optimizer=opt, seed=0,
                  progress=False, backend=backend)
    seconds, peak = time.perf_counter() - start, peak_rss_mb()     # training's peak
    # The same number for every contender: BCE on the last 2,000 training images (never seen).
    return {"seconds": seconds, "loss": float(ta.BCE().forward(model.forward(held), held)),
            "peak_mb": peak, "threads": history.records[-1].threads}


def torch_model(ref):
    """The tinyae model as a torch.nn.Sequential with the same weights (same layouts)."""
    import torch
    nn, layers = torch.nn, []
    for part in (ref.encoder, ref.decoder):
        for layer in part:
            name = type(layer).__name__
            if name in ("Conv2D", "ConvTranspose2D"):
                C, O = layer.in_channels, layer.out_channels
                if name == "Conv2D":
                    mod = nn.Conv2d(C, O, layer.kernel_size, layer.stride, layer.padding)
                else:
                    mod = nn.ConvTranspose2d(C, O, layer.kernel_size, layer.stride,
                                             layer.padding, layer.output_padding)
                with torch.no_grad():
                    mod.weight.copy_(torch.from_numpy(layer.params["W"]))
                    mod.bias.copy_(torch.from_numpy(layer.params["b"]))
            elif name == "MaxPool2D":
                mod = nn.MaxPool2d(layer.kernel_size, layer.stride)
            elif name == "Reshape":
                mod = nn.Unflatten(1, layer.shape)
            else:
                mod = {"ReLU": nn.ReLU, "Sigmoid": nn.Sigmoid, "Flatten": nn.Flatten}[name]()
            layers.append(mod)
    return nn.Sequential(*layers)


def torch_worker(steps, warmup):
    import torch

    from tinyae import data
    torch.set_num_threads(2)
    full = data.load_mnist("train", progress=False)[0]
    X, held = torch.from_numpy(full[:steps * BATCH]), torch.from_numpy(full[-2000:])
    lossf = torch.nn.BCELoss()
    order = torch.from_numpy(np.random.default_rng([0, 1]).permutation(len(X)))  # fit's epoch 1

    fused = [True]

    def adam(model):
        try:
            return torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        except RuntimeError:                  # no fused Adam on this build's CPU
            fused[0] = False
            return torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch(model, n):
        opt = adam(model)
        for k in range(0, min(len(X), n * BATCH), BATCH):
            xb = X[order[k:k + BATCH]]
            opt.zero_grad(set_to_none=False)
            loss = lossf(model(xb), xb)
            loss.backward()
            opt.step()

    model = torch_model(initial_model())
    epoch(copy.deepcopy(model), warmup)                       # warm-up on a copy
    start = time.perf_counter()
    epoch(model, steps)
    seconds, peak = time.perf_counter() - start, peak_rss_mb()     # training's peak
    with torch.no_grad():                   # as the tinyae workers: the last 2,000 images
        loss = float(lossf(model(held), held))
    return {"seconds": seconds, "loss": loss, "peak_mb": peak, "fused": fused[0]}


class Timed:
    """A stand-in for a module inside tinyae/fast/conv.py: the named functions timed."""

    def __init__(self, module, names, record=None):
        self.module, self.names, self.seconds, self.record = module, names, 0.0, record

    def __getattr__(self, name):
        fn = getattr(self.module, name)
        if name not in self.names:
            return fn

        def timed(*args, **kw):
            t = time.perf_counter()
            out = fn(*args, **kw)
            self.seconds += time.perf_counter() - t
            if self.record is not None:
                self.record.append((args, kw))
            return out
        return timed


def breakdown_worker(repeat):
    """Where one fast-path step goes, and the GEMM-only floor at the same shapes."""
    from threadpoolctl import threadpool_limits

    import tinyae as ta
    from tinyae import data, fast
    from tinyae.fast import conv as fconv
    X = data.load_mnist("train", progress=False)[0][:BATCH]
    model = initial_model()
    view, loss = fast.accelerate(model), fast.fast_loss(ta.BCE())
    update = fast.fast_step(ta.Adam(model.parameters(), lr=1e-3))

    def step():
        view.zero_grad()
        value = loss.forward(view.forward(X), X)
        view.backward(loss.backward())
        update()
        return value

    with threadpool_limits(2, user_api="blas"):
        for _ in range(3):
            step()                                              # JIT, pages, BLAS threads
        calls = []
        products = Timed(np, {"matmul"}, calls)
        windows = Timed(fconv.C, {"im2col", "col2im"})
        fconv.np, fconv.C = products, windows
        step()                                                  # records one step's products
        products.record, runs = None, []
        for _ in range(repeat):
            products.seconds = windows.seconds = 0.0
            t = time.perf_counter()
            step()
            runs.append((time.perf_counter() - t, products.seconds, windows.seconds))
        fconv.np, fconv.C = np, windows.module
        total, in_products, in_windows = sorted(runs)[len(runs) // 2]   # the median step
        flops = sum(2 * math.prod(np.matmul(a[..., :1, :], b[..., :1]).shape[:-2])
                    * a.shape[-2] * a.shape[-1] * b.shape[-1] for (a, b), _ in calls)
        floor = median_time(lambda: [np.matmul(a, b, **kw) for (a, b), kw in calls],
                            repeat=repeat)
    return {"step": total, "products": in_products, "windows": in_windows, "floor": floor,
            "gflop": flops / 1e9,
            "shapes": [f"({'x'.join(map(str, a.shape))})@({'x'.join(map(str, b.shape))})"
                       for (a, b), _ in calls]}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=EPOCH_STEPS,
                   help="steps timed for the fast path and PyTorch (default: an epoch)")
    p.add_argument("--plain-steps", type=int, default=20, help="steps timed for the plain path")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first, on a copy")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=9, help="steps per breakdown median")
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        kind, *rest = args.worker
        if kind == "torch":
            result = torch_worker(int(rest[0]), int(rest[1]))
        elif kind == "breakdown":
            result = breakdown_worker(int(rest[0]))
        else:
            result = tinyae_worker(kind, int(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return

    backends = with_torch(["numpy", "numba"], "the two tinyae paths")
    print(f"machine: {machine()}")
    print(f"keras_conv_autoencoder, batch {BATCH}, BCE, Adam 1e-3; fast path and PyTorch "
          f"{args.steps} steps, plain path {args.plain_steps}, each scaled to an epoch of "
          f"{EPOCH_STEPS} steps\n")
    script = os.path.abspath(__file__)
    steps = {"numpy": args.plain_steps, "numba": args.steps, "torch": args.steps}
    results = {}
    for r in range(args.rounds):
        for b in (backends if r % 2 == 0 else backends[::-1]):        # A B C, C B A, ...
            run = run_worker(script, [b, steps[b], args.warmup])
            run["epoch"] = run["seconds"] * EPOCH_STEPS / steps[b]
            results.setdefault(b, []).append(run)
    torch_runs = results.get("torch")
    print(f"{'backend':<7} {'epoch s':>8} {'runs':>26} {'x torch':>8} {'best x':>7} "
          f"{'loss':>7} {'peak MB':>8}  BLAS threads chosen")
    for b in backends:
        runs = results[b]
        ratio = (statistics.median(r["epoch"] / t["epoch"] for r, t in zip(runs, torch_runs))
                 if torch_runs else float("nan"))
        best = (min(r["epoch"] for r in runs) / min(t["epoch"] for t in torch_runs)
                if torch_runs else float("nan"))
        each = " ".join(f"{r['epoch']:.1f}" for r in runs)
        threads = ",".join(str(r.get("threads") or "-") for r in runs)
        print(f"{b:<7} {statistics.median(r['epoch'] for r in runs):>8.1f} {each:>26} "
              f"{ratio:>8.2f} {best:>7.2f} {runs[-1]['loss']:>7.4f} "
              f"{max(r['peak_mb'] for r in runs):>8.0f}  {threads}")
    if torch_runs and not torch_runs[0]["fused"]:
        print("(PyTorch ran its unfused Adam: this build has no fused Adam on the CPU)")

    d = run_worker(script, ["breakdown", args.repeat])
    ms = {k: 1e3 * d[k] for k in ("step", "products", "windows", "floor")}
    rest = ms["step"] - ms["products"] - ms["windows"]
    print(f"\none fast-path step (2 BLAS threads, the median of {args.repeat}): "
          f"{ms['step']:.1f} ms")
    for name, v in (("products (np.matmul)", ms["products"]),
                    ("im2col and col2im", ms["windows"]), ("the rest", rest)):
        print(f"  {name:<22} {v:>7.1f} ms  {100 * v / ms['step']:>4.0f}%")
    print(f"GEMM-only floor: the step's {len(d['shapes'])} products ({d['gflop']:.2f} GFLOP) "
          f"back to back: {ms['floor']:.1f} ms ({d['gflop'] / d['floor']:.0f} GFLOP/s); "
          f"step / floor = {ms['step'] / ms['floor']:.2f}")
    print("  shapes: " + ", ".join(d["shapes"]))


if __name__ == "__main__":
    main()
