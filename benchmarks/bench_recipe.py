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

"Fifth look" (how the weights start, on today's default; every run is in
benchmarks/quality_init.jsonl, written with --log):

    python benchmarks/bench_recipe.py --seeds $(seq 0 17) --init glorot
    python benchmarks/bench_recipe.py --seeds $(seq 9 17)
    python benchmarks/bench_recipe.py --seeds 0 1 2 --init glorot --init-part encoder
    python benchmarks/bench_recipe.py --seeds 0 1 2 --init glorot --init-part decoder
    python benchmarks/bench_recipe.py --seeds 0 1 2 --init he-uniform
    python benchmarks/bench_recipe.py --seeds 0 1 2 --init torch
    python benchmarks/bench_recipe.py --seeds 0 1 2 --weight-decay 1e-5
    python benchmarks/bench_recipe.py --seeds 0 1 2 --beta1 0.95 --warmup-share 0.2
    G="--init glorot"
    python benchmarks/bench_recipe.py $G --seeds 0 1 2 --lr 6e-3
    python benchmarks/bench_recipe.py $G --seeds 0 1 2 --lr 3e-3
    python benchmarks/bench_recipe.py $G --seeds 0 1 2 --warmup-share 0.2
    python benchmarks/bench_recipe.py $G --seeds 0 1 2 --beta1 0.95
    python benchmarks/bench_recipe.py $G --seeds 0 1 2 --epochs 30
    python benchmarks/bench_recipe.py $G --seeds 0 1 2 --batch-size 128

After each run it also counts the dead ReLU units: those that output 0 for
every test image, per hidden layer (encoder first).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402
from common import machine  # noqa: E402  (also points TINYAE_DATA_DIR at ../shared)

import tinyae as ta  # noqa: E402
from tinyae.data import load_mnist  # noqa: E402
from tinyae.evaluate import metrics  # noqa: E402
from tinyae.nn import schedules
from tinyae.nn.layers import Dense, LeakyReLU, ReLU  # noqa: E402
from tinyae.train import fit  # noqa: E402

# --init: every Dense layer's weights drawn again from U(-a, a), W of shape (fan_in, fan_out),
# by one generator seeded with the run's seed, encoder first ("torch" also draws the biases).
BOUND = {"torch": lambda fi, fo: 1 / np.sqrt(fi),              # torch.nn.Linear's default
         "glorot": lambda fi, fo: np.sqrt(6 / (fi + fo)),
         "he-uniform": lambda fi, fo: np.sqrt(6 / fi)}


def build(args, seed):
    """The seed model, redrawn by ``--init``, its hidden biases set to ``--hidden-bias``."""
    model = ta.dense_autoencoder(activation=args.activation, rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed)
    for name, part in (("encoder", model.encoder), ("decoder", model.decoder)):
        redrawn = args.init != "he" and args.init_part in ("both", name)
        for dense in [layer for layer in part.layers if isinstance(layer, Dense)]:
            if redrawn:
                a = BOUND[args.init](*dense.params["W"].shape)
                dense.params["W"][...] = rng.uniform(-a, a, dense.params["W"].shape)
            if redrawn and args.init == "torch":
                dense.params["b"][...] = rng.uniform(-a, a, dense.out_features)
        for dense, act in zip(part.layers[:-1], part.layers[1:]):
            if args.hidden_bias is not None and isinstance(dense, Dense) \
                    and isinstance(act, (ReLU, LeakyReLU)):
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
    p.add_argument("--hidden-bias", type=float,
                   help="start value of the biases before each ReLU (default: the init's, 0 "
                        "but for --init torch)")
    p.add_argument("--activation", default="relu", choices=["relu", "leaky_relu"])
    p.add_argument("--init", default="he", choices=["he", *BOUND],
                   help="he: the model's own (He normal before ReLU, Glorot elsewhere); the "
                        "others redraw every layer (default he)")
    p.add_argument("--init-part", default="both", choices=["both", "encoder", "decoder"],
                   help="the part --init redraws (default both)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="Adam's weight decay, g <- g + lambda p (default 0)")
    p.add_argument("--log", help="append one JSON line per run to this file")
    args = p.parse_args()
    X, y = load_mnist("train", progress=False)
    Xt, yt = load_mnist("test", progress=False)
    print(f"machine: {machine()}\nchange: {vars(args)}\n")
    for seed in args.seeds:
        model = build(args, seed)
        opt = ta.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2),
                      weight_decay=args.weight_decay)
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
