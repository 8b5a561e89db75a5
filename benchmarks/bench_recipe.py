"""Screen one change to the default recipe of `tinyae train --data mnist`, seed by seed.

The default is the command's: the seed model 784-512-256-64-2, Adam with
beta2 0.99, one-cycle to a peak lr of 4e-3 with a linear descent, batch 256,
20 epochs, one thread. This script trains it in-process (the same `fit` the
command calls, so with the same flags it gives the command's figures to every
digit) with changes the command has no flag for, and prints test MSE per pixel
and 5-NN accuracy of the 2-D codes. It reproduces the screens of
docs/results.md. "Third look" (on the recipe of that time, cosine and 0.999):

    OLD="--anneal cos --beta2 0.999"
    python benchmarks/bench_recipe.py $OLD --seeds 0 1 2 --beta2 0.99
    python benchmarks/bench_recipe.py $OLD --seeds 0 1 2 --hidden-bias 0.01
    python benchmarks/bench_recipe.py $OLD --seeds 1 2 --batch-size 128
    python benchmarks/bench_recipe.py $OLD --seeds 1 --batch-size 128 --lr 3e-3 --beta2 0.99
    python benchmarks/bench_recipe.py $OLD --seeds 0 1 --activation leaky_relu

"Fourth look" (the straight descent and beta2 0.99, and what did not help):

    python benchmarks/bench_recipe.py --seeds 0 1 2 --anneal linear --beta2 0.999
    python benchmarks/bench_recipe.py --seeds 0 1 2 3 4 5 6 7 8
    python benchmarks/bench_recipe.py --seeds 0 1 2 --beta2 0.98
    python benchmarks/bench_recipe.py --seeds 0 1 2 --lr 5e-3
    python benchmarks/bench_recipe.py --seeds 0 1 2 --warmup-share 0.2
    python benchmarks/bench_recipe.py --seeds 3 6 --warmup-share 0.2
    python benchmarks/bench_recipe.py --seeds 0 1 2 --lr 3e-3
    python benchmarks/bench_recipe.py --seeds 0 1 2 --beta1 0.85
    python benchmarks/bench_recipe.py --seeds 0 1 2 3 6 --beta1 0.95
    python benchmarks/bench_recipe.py $OLD --seeds 0 1 2 --loss bce
    python benchmarks/bench_recipe.py $OLD --seeds 0 1 2 --epochs 30
    python benchmarks/bench_recipe.py $OLD --seeds 0 1 2 --epochs 40

After each run it also counts the dead ReLU units: those that output 0 for
every test image, per hidden layer (encoder first).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402  (also points TINYAE_DATA_DIR at ../shared)

import numpy as np  # noqa: E402

import tinyae as ta  # noqa: E402
from tinyae import metrics, schedules  # noqa: E402
from tinyae.data import load_mnist  # noqa: E402
from tinyae.layers import Dense, LeakyReLU, ReLU  # noqa: E402
from tinyae.train import fit  # noqa: E402


def build(args, seed):
    """The seed model, its hidden biases set to ``--hidden-bias`` (He init leaves them 0)."""
    model = ta.dense_autoencoder(activation=args.activation, rng=np.random.default_rng(seed))
    for part in (model.encoder, model.decoder):
        for dense, act in zip(part.layers[:-1], part.layers[1:]):
            if isinstance(dense, Dense) and isinstance(act, (ReLU, LeakyReLU)):
                dense.params["b"][:] = args.hidden_bias
    return model


def dead_units(model, X):
    """Per hidden ReLU-like layer: units whose output is <= 0 for every row of X."""
    counts, x = [], X
    for part in (model.encoder, model.decoder):
        for layer in part.layers:
            x = layer.forward(x)
            if isinstance(layer, (ReLU, LeakyReLU)):
                counts.append(int((x.max(axis=0) <= 0).sum()))
    return counts


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=4e-3, help="one-cycle peak (default 4e-3)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--beta1", type=float, default=0.9, help="Adam's beta1 (default 0.9)")
    p.add_argument("--beta2", type=float, default=0.99, help="Adam's beta2 (default 0.99)")
    p.add_argument("--anneal", default="linear", choices=["cos", "linear"],
                   help="one-cycle's descent (default linear)")
    p.add_argument("--warmup-share", type=float, default=0.3,
                   help="one-cycle's warm-up, a share of training (default 0.3)")
    p.add_argument("--loss", default="mse", choices=["mse", "bce"],
                   help="the training loss (the figures are MSE either way; default mse)")
    p.add_argument("--hidden-bias", type=float, default=0.0,
                   help="start value of the biases before each ReLU (default 0)")
    p.add_argument("--activation", default="relu", choices=["relu", "leaky_relu"])
    p.add_argument("--log", help="append one JSON line per run to this file")
    args = p.parse_args()
    X, y = load_mnist("train", progress=False)
    Xt, yt = load_mnist("test", progress=False)
    print(f"machine: {machine()}\nchange: {vars(args)}\n")
    for seed in args.seeds:
        model = build(args, seed)
        opt = ta.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
        steps = -(-len(X) // args.batch_size)
        total = args.epochs * steps
        schedule = schedules.build("onecycle", opt, total, lr=args.lr, anneal=args.anneal,
                                   warmup_steps=round(args.warmup_share * total))
        h = fit(model, X, epochs=args.epochs, batch_size=args.batch_size, optimizer=opt,
                validation=(Xt,), seed=seed, threads=1, schedule=schedule, progress=False,
                loss=ta.BCE() if args.loss == "bce" else None)
        m = metrics.evaluate_autoencoder(model, X, y, Xt, yt, threads=1)
        run = {"seed": seed, **{k: v for k, v in vars(args).items() if k not in ("seeds", "log")},
               "test_mse_per_pixel": m["test_mse_per_pixel"],
               "knn5_accuracy_latent": m["knn5_accuracy_latent"],
               "train_s": sum(r.seconds for r in h.records), "dead_units": dead_units(model, Xt)}
        print(f"seed {seed}: test MSE {run['test_mse_per_pixel']:.4f}  5-NN "
              f"{run['knn5_accuracy_latent']:.3f}  train {run['train_s']:.0f} s  "
              f"dead units {run['dead_units']}", flush=True)
        if args.log:
            with open(args.log, "a") as f:
                f.write(json.dumps(run) + "\n")


if __name__ == "__main__":
    main()
