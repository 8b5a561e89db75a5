"""Anomaly AUC per held-out digit on MNIST: the plain, denoising and variational autoencoders
side by side, against PCA's reconstruction error with the same code width.

For each digit D: train each model on the MNIST training images that are not D (the first
``--limit`` of them), score every test image (squared error per image; the VAE also by its
negative ELBO), and print the AUC of flagging the test images of D (0.5 is chance). Not a
timing: the numbers are quality, the same on any machine for the same flags.

    python benchmarks/bench_anomaly.py [--limit 20000] [--epochs 10] [--sizes 784,256,32]
                                       [--digits 0,1,...] [--json results.jsonl]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

import tinyae as ta  # noqa: E402
from tinyae.data import load_mnist  # noqa: E402
from tinyae.evaluate import anomaly as an  # noqa: E402
from tinyae.train import fit  # noqa: E402

MODELS = {
    "ae": lambda sizes, rng: ta.dense_autoencoder(sizes, rng=rng),
    "denoising": lambda sizes, rng: ta.denoising_autoencoder(sizes, "gaussian:0.5", rng=rng),
    "vae": lambda sizes, rng: ta.variational_autoencoder(sizes, rng=rng),
}


def aucs(digit, X, y, Xt, yt, args):
    """{scorer: AUC} for one held-out digit."""
    train, test = an.holdout(X, y, digit), an.holdout(Xt, yt, digit)
    out = {}
    for name, build in MODELS.items():
        model = build(args.sizes, np.random.default_rng(args.seed))
        fit(model, train.train, epochs=args.epochs, batch_size=256, seed=args.seed,
            progress=False)
        out[name] = an.auc(an.reconstruction_scores(model, test.test), test.anomalous)
        if name == "vae":
            s = an.neg_elbo_scores(model, test.test, np.random.default_rng(args.seed))
            out["vae -ELBO"] = an.auc(s, test.anomalous)
    k = args.sizes[-1]
    out[f"PCA-{k}"] = an.auc(an.pca_scores(train.train, test.test, k), test.anomalous)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=int, default=20000, help="training images (default 20000)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per model (default 10)")
    p.add_argument("--sizes", type=lambda s: tuple(map(int, s.split(","))), default=(784, 256, 32),
                   help="every model's sizes (default 784,256,32)")
    p.add_argument("--digits", type=lambda s: [int(d) for d in s.split(",")],
                   default=list(range(10)), help="held-out digits (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="append one line per digit to this .jsonl file")
    args = p.parse_args()
    X, y = load_mnist("train")
    Xt, yt = load_mnist("test")
    X, y = X[:args.limit], y[:args.limit]
    print(machine())
    print(f"MNIST, {len(X):,} training images less the held-out digit, {len(Xt):,} test images; "
          f"sizes {'-'.join(map(str, args.sizes))}, {args.epochs} epochs, batch 256, Adam 1e-3; "
          "AUC of squared error per image (vae -ELBO: of the negative ELBO)")
    header = None
    for digit in args.digits:
        row = aucs(digit, X, y, Xt, yt, args)
        if header is None:
            header = "digit  " + "  ".join(f"{name:>9}" for name in row)
            print(header)
        print(f"{digit:>5}  " + "  ".join(f"{v:>9.3f}" for v in row.values()), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"digit": digit, "limit": args.limit, "epochs": args.epochs,
                                    "sizes": args.sizes, "auc": row}) + "\n")


if __name__ == "__main__":
    main()
