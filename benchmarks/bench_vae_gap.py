"""Issue 31's VAE gap: pytorch/examples' VAE recipe in tinyae and in PyTorch, seed by seed.

The recipe: 784-400-20 (ReLU body, mu and logvar heads, 20-400-784 decoder
ending in a sigmoid), BCE summed over the pixels + KL, Adam 1e-3, batch 128,
10 epochs, MNIST's grey levels; the figure is the test loss as the example
prints it, the negative ELBO with one eps per image averaged over the 10,000
test images. The contenders change one thing at a time:

    tinyae          tinyae train's VAE: He init before ReLU, Glorot on the heads and the
                    output, biases 0; the loss averaged over the batch's images
    tinyae-torchinit  the same with PyTorch's nn.Linear init, ``init="torch"``: W and b ~
                    U(-1/sqrt(fan_in), +1/sqrt(fan_in))
    tinyae-sum      the loss summed over the batch as the example's (reduction="sum"):
                    for Adam that is eps / 128 (Adam's step is otherwise scale-free)
    torch           the example in PyTorch 2.13 (its own init, its loss, Adam)
    torch-tinyinit  the example in PyTorch with tinyae's init

Each run in its own process on one thread; ``--log`` appends a JSON line per
run and skips runs already in it. PyTorch is a yardstick: install it yourself
(``pip install torch==2.13.0``).

    python benchmarks/bench_vae_gap.py --seeds 0 1 2 3 4
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

CONTENDERS = ("tinyae", "tinyae-torchinit", "tinyae-sum", "torch", "torch-tinyinit")
ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS",
                               "MKL_NUM_THREADS")}
EPOCHS, BATCH = 10, 128


def mnist():
    from tinyae import data
    return (data.load_mnist("train", progress=False)[0],
            data.load_mnist("test", progress=False)[0])


def tinyae_worker(variant, seed):
    import tinyae as ta
    from tinyae.evaluate.vae_eval import elbo_terms
    from tinyae.train import fit
    X, Xt = mnist()
    init = "torch" if variant == "torchinit" else None      # tinyae.nn.init's "torch"
    model = ta.variational_autoencoder((784, 400, 20), rng=np.random.default_rng(seed), init=init)
    eps = 1e-8 / BATCH if variant == "sum" else 1e-8
    opt = ta.Adam(model.parameters(), lr=1e-3, eps=eps)
    start = time.perf_counter()
    fit(model, X, epochs=EPOCHS, batch_size=BATCH, optimizer=opt, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    neg = elbo_terms(model, Xt, np.random.default_rng([seed, 2]))["neg_elbo"]
    return {"test_neg_elbo": float(neg.mean()), "seconds": seconds}


def torch_worker(variant, seed):
    import torch
    import torch.nn.functional as F
    from torch import nn
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    X, Xt = (torch.from_numpy(a) for a in mnist())

    class VAE(nn.Module):                       # pytorch/examples/vae/main.py's model
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
            self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

        def forward(self, x):
            h = F.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar

    def loss_fn(recon, x, mu, logvar):          # the example's: sums over pixels and images
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    model = VAE()
    if variant == "tinyinit":                   # He before ReLU, Glorot else, biases 0
        rng = np.random.default_rng(seed)
        with torch.no_grad():
            for lin, he in ((model.fc1, True), (model.fc21, False), (model.fc22, False),
                            (model.fc3, True), (model.fc4, False)):
                fan_in, fan_out = lin.in_features, lin.out_features
                std = np.sqrt(2 / fan_in) if he else np.sqrt(2 / (fan_in + fan_out))
                lin.weight.copy_(torch.from_numpy(rng.normal(0, std, (fan_out, fan_in))))
                lin.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(X))
        for k in range(0, len(X), BATCH):
            xb = X[order[k:k + BATCH]]
            opt.zero_grad()
            recon, mu, logvar = model(xb)
            loss_fn(recon, xb, mu, logvar).backward()
            opt.step()
    seconds = time.perf_counter() - start
    total = 0.0
    with torch.no_grad():                       # the example's test loss: one eps per image
        for k in range(0, len(Xt), 1000):
            xb = Xt[k:k + 1000]
            recon, mu, logvar = model(xb)
            total += float(loss_fn(recon, xb, mu, logvar))
    return {"test_neg_elbo": total / len(Xt), "seconds": seconds}


def main():
    if sys.argv[1:2] == ["--worker"]:
        name, seed = sys.argv[2], int(sys.argv[3])
        lib, _, variant = name.partition("-")
        out = (tinyae_worker if lib == "tinyae" else torch_worker)(variant, seed)
        print(json.dumps(out))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    p.add_argument("--log", default=os.path.join(os.path.dirname(__file__), "vae_gap.jsonl"))
    args = p.parse_args()
    done = set()
    if os.path.exists(args.log):
        with open(args.log) as f:
            done = {(r["contender"], r["seed"]) for r in map(json.loads, f)}
    for seed in args.seeds:                     # seeds outer: a busy spell hits every contender
        for name in args.contenders:
            if (name, seed) in done:
                continue
            res = subprocess.run([sys.executable, __file__, "--worker", name, str(seed)],
                                 check=True, capture_output=True, text=True,
                                 env={**os.environ, **ONE_THREAD})
            row = {"contender": name, "seed": seed, "machine": machine(),
                   **json.loads(res.stdout.strip().splitlines()[-1])}
            with open(args.log, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{name:17s} seed {seed}: {row['test_neg_elbo']:.2f} nats ({row['seconds']:.0f} s)",
                  flush=True)
    with open(args.log) as f:
        rows = list(map(json.loads, f))
    print("\n| contender | test negative ELBO, mean | range | seeds |\n| --- | --- | --- | --- |")
    for name in args.contenders:
        v = [r["test_neg_elbo"] for r in rows if r["contender"] == name]
        if v:
            print(f"| {name} | {np.mean(v):.2f} | {min(v):.2f}-{max(v):.2f} | {len(v)} |")


if __name__ == "__main__":
    main()
