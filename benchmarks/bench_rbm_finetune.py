"""Issue 30: fine-tuning the RBM-pretrained 784-1000-500-250-30 network at other learning rates.

Run G of docs/results.md (RBM pretraining, then the ReLU recipe E: one-cycle to a peak lr
of 2e-3, batch 128, 45 epochs, Adam's weight decay 1e-6) ended at 5.09 squared error per
test image with a training error as high (5.17): slow, not overfitting. This script
pretrains the stack once per seed (Hinton & Salakhutdinov's settings, ``--pretrain-epochs``
per level), keeps the unrolled network, and fine-tunes copies of it with other peak
learning rates, everything else as E.

    python benchmarks/bench_rbm_finetune.py pretrain --seed 0        # runs/rbm-stack-seed0.npz
    python benchmarks/bench_rbm_finetune.py finetune --seed 0 --lr 1e-2 [--loss bce]
    python benchmarks/bench_rbm_finetune.py finetune --seed 0 --pretrain-epochs 0   # no pretraining
    python benchmarks/bench_rbm_finetune.py filters --seed 0     # docs/gallery/rbm_filters.png

One thread per process, so two runs share the 2-core machine; ``--log`` gets a JSON line
per fine-tuning run: the test and training squared error per image (the training error
measured after the last epoch), and the seconds.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SIZES = (784, 1000, 500, 250, 30)
LOG = Path(__file__).with_name("rbm_finetune.jsonl")
LOSSES = ("mse", "bce")


def stack_path(seed, epochs):
    return Path("runs") / f"rbm-stack-seed{seed}-{epochs}ep.npz"


def pretrain(seed, epochs):
    import tinyae as ta
    from tinyae.data import load_mnist
    from tinyae.models.rbm import pretrain_stack, unroll
    X = load_mnist("train", progress=False)[0]
    start = time.perf_counter()
    rbms = pretrain_stack(X, SIZES, epochs=epochs, rng=np.random.default_rng(seed),
                          progress=True)
    path = stack_path(seed, epochs)
    path.parent.mkdir(exist_ok=True)
    ta.save(unroll(rbms), path)
    print(f"wrote {path} after {time.perf_counter() - start:.0f} s of pretraining")


def filters(seed, epochs, path=Path("docs/gallery/rbm_filters.png")):
    """The first RBM's weights W[:, j] of 100 hidden units as images, each scaled to [0, 1]:
    read from the pretrained stack (its first Dense is that RBM's W, 784 x 1000)."""
    import tinyae as ta
    from tinyae.viz import plot
    W = ta.load(stack_path(seed, epochs)).encoder.layers[0].params["W"].T[:100]   # (100, 784)
    W = (W - W.min(axis=1, keepdims=True)) / np.ptp(W, axis=1, keepdims=True)
    plot.image_grid(W, 10, path=path, title=f"the first RBM's filters (784-1000, {epochs} CD-1 "
                    f"epochs, seed {seed}): 100 hidden units' weights")
    print(f"wrote {path}")


def start(seed, epochs):
    """The pretrained stack, or (epochs 0) the same network unrolled from untrained RBMs:
    the paper's "small random weights" start, without pretraining."""
    import tinyae as ta
    from tinyae.models.rbm import RBM, unroll
    if epochs:
        return ta.load(stack_path(seed, epochs))
    rng = np.random.default_rng(seed)
    return unroll([RBM(d, h, "gaussian" if h == SIZES[-1] else "bernoulli", rng=rng,
                       dtype=np.float32) for d, h in zip(SIZES[:-1], SIZES[1:])])


def finetune(seed, epochs, lr, finetune_epochs, loss):
    import tinyae as ta
    from tinyae.data import load_mnist
    from tinyae.train import evaluate, fit
    X, Xt = load_mnist("train", progress=False)[0], load_mnist("test", progress=False)[0]
    model = start(seed, epochs)
    opt = ta.Adam(model.parameters(), lr=lr, weight_decay=1e-6)
    began = time.perf_counter()
    fit(model, X, epochs=finetune_epochs, batch_size=128, optimizer=opt,
        loss={"mse": ta.MSE, "bce": ta.BCE}[loss](),
        schedule="onecycle", seed=seed, progress=False)
    pixels = X.shape[1]
    return {"seed": seed, "pretrain_epochs": epochs, "lr": lr, "epochs": finetune_epochs,
            "loss": loss,
            "test_error": evaluate(model, Xt, ta.MSE()) * pixels,
            "train_error": evaluate(model, X, ta.MSE()) * pixels,
            "seconds": time.perf_counter() - began}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["pretrain", "finetune", "filters"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrain-epochs", type=int, default=10,
                   help="per RBM; 0: no pretraining (untrained RBMs unrolled)")
    p.add_argument("--loss", choices=LOSSES, default="mse",
                   help="the fine-tuning loss (the paper's: cross-entropy); errors are squared")
    p.add_argument("--lr", type=float, default=2e-3, help="the one-cycle peak (E's: 2e-3)")
    p.add_argument("--epochs", type=int, default=45, help="fine-tuning epochs (E's: 45)")
    p.add_argument("--log", type=Path, default=LOG)
    args = p.parse_args()
    os.environ.setdefault("TINYAE_THREADS", "1")
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if "TINYAE_DATA_DIR" not in os.environ and shared.is_dir():
        os.environ["TINYAE_DATA_DIR"] = str(shared)
    if args.what == "pretrain":
        return pretrain(args.seed, args.pretrain_epochs)
    if args.what == "filters":
        return filters(args.seed, args.pretrain_epochs)
    result = finetune(args.seed, args.pretrain_epochs, args.lr, args.epochs, args.loss)
    print(json.dumps(result))
    with open(args.log, "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    sys.exit(main())
