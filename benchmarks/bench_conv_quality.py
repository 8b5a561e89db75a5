"""Issue 26's quality targets, seed by seed: the convolutional models against published numbers.

    keras      keras-io's convolutional autoencoder (``keras_conv_autoencoder``), batch 128,
               BCE, Adam, with tinyae's schedule (one-cycle to a peak of 4e-3, a straight
               descent, Adam's beta2 0.99: the plain autoencoder's recipe, untuned here) or
               keras-io's own (``--recipe keras``: Adam 1e-3, constant). Test BCE per pixel
               after every epoch; the target is keras-io's final 0.0622 within 20 epochs.
    conv       ``tinyae train --model conv`` (the book's 2-D model) and ``--model ae`` (the
               dense seed model) at the same epochs: test MSE and 5-NN accuracy.
    conv-vae   ``tinyae train --model conv-vae`` (keras-io's VAE): the test negative ELBO in
               nats; the target is keras-io's 146.95 after 30 epochs.
    cvae       ``tinyae train --model cvae`` (issue 31): the share of each digit's samples
               that 5-NN on pixels reads as the digit asked for; the target is >= 90%.

Each training runs in its own process on one thread (OpenBLAS and Numba), ``--jobs``
at a time: most of a convolution step is serial loops around small products, so
two one-thread runs side by side train about 1.6x as many images a second as one
run on two threads. Times here are therefore not speed figures (bench_conv.py is).

``--log`` appends one JSON line per run and skips runs already in it, so an
interrupted measurement continues where it stopped; the summary (mean and range
over seeds) is printed from the log.

    python benchmarks/bench_conv_quality.py keras --seeds 0 1 2 3 4 --epochs 20
    python benchmarks/bench_conv_quality.py conv --seeds 0 1 2 3 4 --epochs 5
    python benchmarks/bench_conv_quality.py conv-vae --seeds 0 1 2 3 4 --epochs 30
    python benchmarks/bench_conv_quality.py cvae --seeds 0 1 2 3 4 --epochs 20
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
KERAS_BCE, KERAS_VAE_NATS = 0.0622, 146.95


def keras_worker(seed, epochs, recipe):
    """One keras-io autoencoder trained with ``fit``; the test BCE after every epoch."""
    import numpy as np

    import tinyae as ta
    from tinyae import data
    from tinyae.train import fit
    X, Xt = data.load_mnist("train", progress=False)[0], data.load_mnist("test", progress=False)[0]
    model = ta.keras_conv_autoencoder(rng=np.random.default_rng(seed))
    if recipe == "keras":
        opt, schedule = ta.Adam(model.parameters(), lr=1e-3), None
    else:
        opt = ta.Adam(model.parameters(), lr=4e-3, betas=(0.9, 0.99))
        schedule = ta.schedules.build("onecycle", opt, epochs * -(-len(X) // 128),
                                      anneal="linear")
    start = time.perf_counter()
    history = fit(model, X, epochs=epochs, batch_size=128, loss=ta.BCE(), optimizer=opt,
                  validation=Xt, seed=seed, progress=False, schedule=schedule)
    return {"seconds": time.perf_counter() - start,
            "test_bce": [r.val_loss for r in history.records]}


def cli_worker(kind, seed, epochs, keep=None):
    """One ``tinyae train --model KIND`` run; its metrics.json. ``keep``: a folder for the run
    (its checkpoint and figures stay), else a temporary one."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(keep, f"{kind}-seed{seed}-epochs{epochs}") if keep else tmp
        cmd = [sys.executable, "-m", "tinyae", "train", "--model", kind, "--data", "mnist",
               "--seed", str(seed), "--epochs", str(epochs), "--threads", "1", "--quiet",
               "--out", out, "--force"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        with open(os.path.join(out, "metrics.json")) as f:
            return {"wall_seconds": wall, "metrics": json.load(f)}


def kinds_for(args):
    """The kinds of run one ``what`` compares."""
    return {"keras": [f"keras-{args.recipe}"], "conv": ["conv", "ae"],
            "conv-vae": ["conv-vae"], "cvae": ["cvae"]}[args.what]


def jobs_for(args):
    """(key, worker argv) for every run the command asks for."""
    kinds = kinds_for(args)
    keep = [args.runs] if args.runs else []
    return [((kind, seed, args.epochs), [kind, str(seed), str(args.epochs), *keep])
            for seed in args.seeds for kind in kinds]


def run_all(args, log):
    """The runs not yet in the log, ``--jobs`` processes at a time, each appended as it ends."""
    done = set()
    if os.path.exists(log):
        with open(log) as f:
            done = {tuple(r["key"]) for r in map(json.loads, f)}
    todo = [(k, a) for k, a in jobs_for(args) if tuple(k) not in done]
    running = []
    while todo or running:
        while todo and len(running) < args.jobs:
            key, argv = todo.pop(0)
            proc = subprocess.Popen([sys.executable, __file__, "--worker", *argv],
                                    stdout=subprocess.PIPE, env={**os.environ, **ONE_THREAD})
            running.append((key, proc))
            print(f"started {key}", flush=True)
        time.sleep(1)
        for key, proc in [r for r in running if r[1].poll() is not None]:
            running.remove((key, proc))
            if proc.returncode != 0:
                raise SystemExit(f"{key} failed with exit code {proc.returncode}")
            result = json.loads(proc.stdout.read().decode().strip().splitlines()[-1])
            with open(log, "a") as f:
                f.write(json.dumps({"key": list(key), "machine": machine(), **result}) + "\n")
            print(f"done {key}", flush=True)


def spread(values):
    return (f"{sum(values) / len(values):.4f} (range {min(values):.4f}-{max(values):.4f}, "
            f"{len(values)} seeds)")


def summary(args, log):
    """Mean and range over seeds of what each target compares."""
    with open(log) as f:
        rows = [r for r in map(json.loads, f)
                if r["key"][2] == args.epochs and r["key"][0] in kinds_for(args)]
    by_kind = {}
    for r in rows:
        by_kind.setdefault(r["key"][0], []).append(r)
    for kind, rs in sorted(by_kind.items()):
        if kind.startswith("keras"):
            final = [r["test_bce"][-1] for r in rs]
            first = [next((e + 1 for e, v in enumerate(r["test_bce"]) if v <= KERAS_BCE), None)
                     for r in rs]
            print(f"{kind}, {args.epochs} epochs: test BCE {spread(final)}; first epoch at "
                  f"<= {KERAS_BCE}: {first}; {spread([r['seconds'] / 60 for r in rs])} minutes")
        else:
            m = [r["metrics"] for r in rs]
            keys = (["sample_accuracy_min", "sample_accuracy_mean", "test_neg_elbo_per_image"]
                    if kind == "cvae" else ["test_neg_elbo_per_image"] if kind.endswith("vae")
                    else ["test_mse_per_pixel", "knn5_accuracy_latent"])
            for key in keys:
                print(f"{kind}, {args.epochs} epochs: {key} {spread([x[key] for x in m])}")


def main():
    if sys.argv[1:2] == ["--worker"]:
        kind, seed, epochs, *keep = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:]
        out = (keras_worker(seed, epochs, kind.split("-", 1)[1]) if kind.startswith("keras-")
               else cli_worker(kind, seed, epochs, *keep))
        print(json.dumps(out))
        return
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("keras", "conv", "conv-vae", "cvae"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--recipe", choices=("tinyae", "keras"), default="tinyae")
    p.add_argument("--jobs", type=int, default=2, help="trainings at a time, >= 1 (default 2)")
    p.add_argument("--summary", action="store_true",
                   help="print the summary of the runs already in the log; train nothing")
    p.add_argument("--log", default=None, help="default benchmarks/conv_quality.jsonl")
    p.add_argument("--runs", default=None, help="keep the tinyae train runs' folders here "
                   "(default: temporary folders)")
    args = p.parse_args()
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    log = args.log or os.path.join(os.path.dirname(__file__), "conv_quality.jsonl")
    if not args.summary:
        run_all(args, log)
    summary(args, log)


if __name__ == "__main__":
    main()
