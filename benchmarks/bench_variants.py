"""The numbers of docs/results.md for the denoising, sparse and stacked autoencoders, on MNIST.

Three short experiments (each model trained from the same seed, Adam, batch
256; test on all 10,000 MNIST test images):

1. robustness: the seed model (784-512-256-64-2) trained plainly and as a
   denoising autoencoder (Gaussian 0.5), and an over-complete 784-1000-784,
   then ``tinyae.evaluate.robustness`` on each: squared error per image against the
   clean images, and the copy errors on random strokes and on pure noise.
2. sparsity: UFLDL's 784-196-784 with a sigmoid code, with and without the KL
   penalty and weight decay: mean code activation against rho, share of
   near-zero activations (< 0.05), the reconstruction error; the first
   layer's weights drawn as images (``--out``/*_weights.png).
3. stacked: the same network trained greedily (``--pretrain-epochs`` per
   level) then fine-tuned, against end to end for the same total epochs.

    python benchmarks/bench_variants.py [--limit 20000] [--epochs 10] [--only robustness ...]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

import tinyae as ta  # noqa: E402
from tinyae.data import load_mnist  # noqa: E402
from tinyae.evaluate import robustness  # noqa: E402
from tinyae.evaluate.metrics import batched, sq_error_per_image  # noqa: E402
from tinyae.models import SEED_SIZES  # noqa: E402
from tinyae.models.variants import WEIGHT_DECAY  # noqa: E402
from tinyae.train import fit  # noqa: E402
from tinyae.train.stacked import pretrain  # noqa: E402
from tinyae.viz import plot


def train(model, X, epochs, seed=0, lr=1e-3):
    start = time.perf_counter()
    fit(model, X, epochs=epochs, batch_size=256, seed=seed,
        optimizer=ta.Adam(model.parameters(), lr=lr), progress=False)
    return time.perf_counter() - start


def test_error(model, Xt):
    return sq_error_per_image(Xt, batched(model.reconstruct, Xt))


def exp_robustness(X, Xt, args):
    print(f"\n## Robustness and copying: {args.epochs} epochs, squared error per test image "
          "against the CLEAN images\n")
    rows = {}
    for kind in ("plain", "denoising gaussian:0.5", "over-complete 784-1000"):
        rng = np.random.default_rng(0)
        if kind.startswith("denoising"):
            model = ta.denoising_autoencoder(SEED_SIZES, "gaussian:0.5", rng=rng)
        else:
            model = ta.dense_autoencoder((784, 1000) if "over" in kind else SEED_SIZES, rng=rng)
        seconds = train(model, X, args.epochs)
        rows[kind] = (robustness.robustness_table(model, Xt), robustness.copy_errors(model),
                      seconds)
        ta.save(model, os.path.join(args.out, f"{kind.split()[0]}.npz"))
    names = list(next(iter(rows.values()))[0])
    print("| input | " + " | ".join(rows) + " | the input itself |")
    print("| --- |" + " ---: |" * (len(rows) + 1))
    for name in names:
        own = next(iter(rows.values()))[0][name]["input_sq_error_per_image"]
        print(f"| {name} | " + " | ".join(f"{r[0][name]['sq_error_per_image']:.2f}"
                                          for r in rows.values()) + f" | {own:.2f} |")
    for name in robustness.COPY_INPUTS:
        print(f"| copying {name}: output vs that input | "
              + " | ".join(f"{r[1][name]:.2f}" for r in rows.values()) + " | 0 |")
    print("\ntraining time: " + ", ".join(f"{k} {r[2]:.0f} s" for k, r in rows.items()))


def exp_sparsity(X, Xt, args):
    print(f"\n## Sparsity: 784-196-784, sigmoid code, {args.epochs} epochs, Adam {args.sparse_lr:g}"
          "\n")
    print("| model | mean code activation | share of activations < 0.05 | "
          "test squared error per image |")
    print("| --- | ---: | ---: | ---: |")
    for rho, beta, decay in ((0.05, 0.0, 0.0), (0.05, args.beta, WEIGHT_DECAY),
                             (0.1, args.beta, WEIGHT_DECAY)):
        model = ta.sparse_autoencoder((784, 196), "kl", rho=rho, beta=beta, weight_decay=decay,
                                      rng=np.random.default_rng(0))
        train(model, X, args.epochs, lr=args.sparse_lr)
        Z = batched(model.encode, Xt)
        name = ("no penalty, no weight decay" if beta == 0 else
                f"KL, rho = {rho}, beta = {beta}, weight decay {decay:.1e}")
        print(f"| {name} | {Z.mean():.4f} | {np.mean(Z < 0.05):.3f} | {test_error(model, Xt):.2f} |")
        if beta == 0 or rho == 0.05:
            tag = "plain" if beta == 0 else "sparse"
            ta.save(model, os.path.join(args.out, f"{tag}_196.npz"))
            W = model.encoder[0].params["W"][:, :100].T                 # (100, 784)
            W = W - W.min(axis=1, keepdims=True)
            plot.image_grid(W / W.max(axis=1, keepdims=True), 10,
                            path=os.path.join(args.out, f"{tag}_196_weights.png"),
                            title=f"first-layer weights, {name}")


def exp_stacked(X, Xt, args):
    sizes = SEED_SIZES
    levels = len(sizes) - 1
    fine = args.epochs - levels * args.pretrain_epochs
    print(f"\n## Stacked vs end to end: {'-'.join(map(str, sizes))}, {args.epochs} epochs in all "
          f"({levels} levels x {args.pretrain_epochs} greedy + {fine} fine-tuning)\n")
    if fine < 1:
        raise SystemExit("--epochs must exceed levels x --pretrain-epochs")
    rows = []
    e2e = ta.dense_autoencoder(sizes, rng=np.random.default_rng(0))
    rows.append(("end to end", train(e2e, X, args.epochs), test_error(e2e, Xt)))
    stacked = ta.dense_autoencoder(sizes, rng=np.random.default_rng(0))    # same start
    start = time.perf_counter()
    pretrain(stacked, X, args.pretrain_epochs, batch_size=256, progress=False)
    after_pretraining = test_error(stacked, Xt)
    seconds = time.perf_counter() - start + train(stacked, X, fine)
    rows.append(("greedy, before fine-tuning", None, after_pretraining))
    rows.append(("greedy + fine-tuning", seconds, test_error(stacked, Xt)))
    print("| training | seconds | test squared error per image |")
    print("| --- | ---: | ---: |")
    for name, sec, err in rows:
        print(f"| {name} | {'' if sec is None else f'{sec:.0f}'} | {err:.2f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--limit", type=int, default=20000, help="training images (default 20000)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--beta", type=float, default=0.01)
    p.add_argument("--sparse-lr", type=float, default=3e-3, help="Adam's lr for the sparse models")
    p.add_argument("--only", nargs="+", default=["robustness", "sparsity", "stacked"])
    p.add_argument("--out", default="runs/bench_variants", help="where the models are saved")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    X = load_mnist("train", progress=False)[0][:args.limit]
    Xt = load_mnist("test", progress=False)[0]
    print(f"machine: {machine()}\nMNIST: {len(X):,} training images, {len(Xt):,} test images")
    for name in args.only:
        {"robustness": exp_robustness, "sparsity": exp_sparsity, "stacked": exp_stacked}[name](
            X, Xt, args)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
