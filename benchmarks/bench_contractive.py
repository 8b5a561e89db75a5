"""Issue 30: is the contractive autoencoder less sensitive to small input noise? On all of MNIST.

Three models of one shape, Rifai et al.'s 784-196-784 with a sigmoid code, from the same
initial weights (``contractive_autoencoder(lam=0)`` is the plain model), trained alike
(all 60,000 training images, Adam 3e-3, batch 256, ``--epochs``):

- plain: no penalty;
- contractive: lam * ||J_f(x)||_F^2 on the code, lam = ``tinyae.models.contractive.LAM``;
- denoising: the plain model trained to undo Gaussian noise of std ``DENOISING_STD``.

Each is scored on the 10,000 test images with Gaussian noise of std 0 to 0.2 added
(``corrupt.gaussian``: clipped to [0, 1]): the squared error per image against the
*clean* images, and the code's mean ||J_f(x)||_F^2 on the clean test images (what the
penalty pays for). One JSON line per model and seed goes to ``--log``.

    python benchmarks/bench_contractive.py run --seed 0      # one seed: three trainings
    python benchmarks/bench_contractive.py table             # mean [min, max] over the seeds
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402  (and MNIST from ../shared unless TINYAE_DATA_DIR)

LOG = Path(__file__).with_name("contractive.jsonl")
NOISE_STDS = (0.0, 0.05, 0.1, 0.2)
DENOISING_STD = 0.1
MODELS = ("plain", "contractive", "denoising")


def build(name, seed):
    from tinyae.models.contractive import LAM, contractive_autoencoder
    from tinyae.models.variants import DenoisingAutoencoder
    rng = np.random.default_rng(seed)
    if name == "contractive":
        return contractive_autoencoder((784, 196), lam=LAM, rng=rng)
    plain = contractive_autoencoder((784, 196), lam=0.0, rng=rng)
    if name == "plain":
        return plain
    return DenoisingAutoencoder(plain.encoder, plain.decoder, f"gaussian:{DENOISING_STD}")


def jacobian_norm(model, X):
    """mean_n ||J_f(x_n)||_F^2 of the sigmoid code layer: the contractive penalty at lam = 1."""
    from tinyae.evaluate.metrics import batched
    from tinyae.nn.penalties import Contractive
    H = batched(model.encode, X).astype(np.float64)
    W = model.encoder.layers[-2].params["W"].astype(np.float64)           # (784, 196)
    return Contractive(1.0, "sigmoid").forward(H, W)


def score(model, Xt, seed):
    from tinyae.evaluate.metrics import batched, sq_error_per_image
    from tinyae.nn import corrupt
    rng = np.random.default_rng(1000 + seed)
    errors = {}
    for std in NOISE_STDS:
        X_in = corrupt.gaussian(Xt, std, rng).astype(Xt.dtype) if std else Xt
        errors[f"{std:g}"] = sq_error_per_image(Xt, batched(model.reconstruct, X_in))
    return errors


def run(seed, epochs, log):
    import tinyae as ta
    from tinyae.data import load_mnist
    from tinyae.train import fit
    X, Xt = load_mnist("train", progress=False)[0], load_mnist("test", progress=False)[0]
    for name in MODELS:
        model = build(name, seed)
        began = time.perf_counter()
        fit(model, X, epochs=epochs, batch_size=256, seed=seed, progress=False,
            optimizer=ta.Adam(model.parameters(), lr=3e-3))
        result = {"model": name, "seed": seed, "epochs": epochs, "machine": machine(),
                  "lam": getattr(model, "lam", 0.0),
                  "denoising_std": DENOISING_STD if name == "denoising" else 0.0,
                  "sq_error_per_image": score(model, Xt, seed),
                  "jacobian_sq_norm": jacobian_norm(model, Xt),
                  "seconds": time.perf_counter() - began}
        print(json.dumps(result), flush=True)
        with open(log, "a") as f:
            f.write(json.dumps(result) + "\n")


def spread(values):
    values = np.asarray(values)
    return f"{values.mean():.2f} [{values.min():.2f}, {values.max():.2f}]"


def table(log):
    rows = [json.loads(line) for line in open(log)]
    seeds = sorted({r["seed"] for r in rows})
    print(f"seeds {seeds}; squared error per test image against the clean images, "
          "mean [min, max] over the seeds\n")
    print("| Gaussian noise std | " + " | ".join(MODELS) + " |")
    print("| --- |" + " ---: |" * len(MODELS))
    by = {m: [r for r in rows if r["model"] == m] for m in MODELS}
    for std in NOISE_STDS:
        key = f"{std:g}"
        print(f"| {key} | " + " | ".join(spread([r["sq_error_per_image"][key] for r in by[m]])
                                        for m in MODELS) + " |")
    print("| mean \\|\\|J_f(x)\\|\\|_F^2, clean test images | "
          + " | ".join(spread([r["jacobian_sq_norm"] for r in by[m]]) for m in MODELS) + " |")
    print("| seconds to train | " + " | ".join(spread([r["seconds"] for r in by[m]])
                                               for m in MODELS) + " |")
    for m in ("contractive", "denoising"):
        for std in NOISE_STDS[1:]:
            key = f"{std:g}"
            wins = sum(a["sq_error_per_image"][key] < b["sq_error_per_image"][key]
                       for a in by[m] for b in by["plain"] if a["seed"] == b["seed"])
            print(f"{m} below plain at std {key}: {wins} of {len(by[m])} seeds")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["run", "table"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--log", type=Path, default=LOG)
    args = p.parse_args()
    if args.what == "table":
        return table(args.log)
    os.environ.setdefault("TINYAE_THREADS", "1")
    run(args.seed, args.epochs, args.log)


if __name__ == "__main__":
    sys.exit(main())
