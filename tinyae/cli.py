"""The ``tinyae`` command: train the seed model, then encode, decode, interpolate, inspect."""
import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from .data import load_dataset

DATA_CHOICES = ("auto", "mnist", "fashion", "builtin")


def _sizes(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants comma-separated integers like "
                                         f"784,512,256,64,2; got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--sizes needs at least two positive widths")
    return sizes


def _validation(text):
    if text in ("test", "none"):
        return text
    try:
        fraction = float(text)
    except ValueError:
        fraction = -1
    if not 0 < fraction < 1:
        raise argparse.ArgumentTypeError(f"--validation wants test, none or a fraction in (0, 1), "
                                         f"got {text!r}")
    return fraction


def _at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value
    return parse


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def _threads(text):
    from .threads import thread_setting
    try:
        return thread_setting(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- train ---------------------------------------------------------------------------
def cmd_train(args):
    from . import metrics
    from .train import Checkpointer, fit

    model, optimizer, history, out = _start_or_resume(args)
    X, y, data_name = load_dataset(args.data, "train", args.limit, progress=not args.quiet)
    Xt, yt, _ = load_dataset(data_name, "test", args.limit, progress=False)
    if model.input_width != X.shape[1]:
        raise ValueError(f"the model takes {model.input_width} features per image but the "
                         f"{data_name} images have {X.shape[1]}; check --sizes")
    run_args = {"data": data_name, "sizes": list(args.sizes), "epochs": args.epochs,
                "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                "limit": args.limit, "validation": args.validation}
    checkpoints = Checkpointer(out, extra={"args": run_args}, history=history)
    if not args.quiet:
        print(f"training {'-'.join(map(str, args.sizes))} on {data_name} ({len(X):,} images) "
              f"for {args.epochs} epochs; writing to {out}", file=sys.stderr)
    validation = {"test": (Xt,), "none": None}.get(args.validation, args.validation)
    history = fit(model, X, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer,
                  validation=validation, seed=args.seed, history=history,
                  callbacks=[checkpoints], progress=not args.quiet, threads=args.threads)
    if history.stopped:
        print(f"stopped: {history.stopped}", file=sys.stderr)

    say = (lambda *a, **k: None) if args.quiet else partial(print, file=sys.stderr, flush=True)
    say(f"evaluating the last model on {len(X):,} training and {len(Xt):,} test images: "
        "reconstruction error, the PCA-2 baseline, 5-NN accuracy of the codes; then the figures")
    started = time.perf_counter()
    chosen = history.records[-1].threads if history.records else None
    m = metrics.evaluate_autoencoder(model, X, y, Xt, yt, threads=args.threads or chosen)
    m.update({"data": data_name, "seed": args.seed, "epochs": len(history.records)})
    checkpoints.extra["metrics"] = m
    checkpoints.save_last(model, optimizer, history)
    _write_text(out / "history.json", json.dumps(history.to_dict(), indent=2))
    _write_text(out / "history.csv", history.to_csv())
    _write_text(out / "metrics.json", json.dumps(m, indent=2))
    _figures(model, Xt, yt, history, out)
    say(f"evaluated and drew the figures in {time.perf_counter() - started:.1f} s")
    print(f"test MSE per pixel {m['test_mse_per_pixel']:.4f} (PCA-2 "
          f"{m['pca2_test_mse_per_pixel']:.4f}); 5-NN accuracy of the codes "
          f"{m['knn5_accuracy_latent']:.3f} (PCA-2 {m['knn5_accuracy_pca2']:.3f})")
    print(f"wrote {out}")
    return 0


def _start_or_resume(args):
    """(model, optimizer, history, out folder): new from the flags, or from --resume."""
    import tinyae as ta
    from . import io
    from .train import History
    if not args.resume:
        model = ta.dense_autoencoder(args.sizes, rng=np.random.default_rng(args.seed))
        out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
        return model, ta.Adam(model.parameters(), lr=args.lr), History(), out
    ckpt = io.read_checkpoint(args.resume)
    saved = ckpt.extra.get("args", {})
    args.data = saved.get("data", args.data)           # the run continues on its own data
    args.sizes = tuple(saved.get("sizes") or args.sizes)
    model = io.load(ckpt)                               # checks the config like tinyae.load
    optimizer = ta.Adam(model.parameters(), lr=args.lr)
    if ckpt.optim:
        optimizer.load_state_dict(ckpt.optim)
    history = History.from_dict(ckpt.extra.get("history", {}))
    return model, optimizer, history, Path(args.out or Path(args.resume).parent)


def _figures(model, Xt, yt, history, out):
    """The five figures of a training run, from the test set."""
    from . import metrics, plot
    from .latent import latent_range, lerp
    Z = metrics.batched(model.encode, Xt)
    plot.reconstructions(Xt[:10], model.decode(Z[:10]), path=out / "reconstructions.png")
    if Z.shape[1] == 2:
        ranges = latent_range(Z)
        plot.latent_scatter(Z, yt, path=out / "latent.png", ranges=ranges)
        plot.decoded_grid(model, ranges, path=out / "grid.png")
    else:
        plot.latent_scatter(Z, yt, path=out / "latent.png")
    i, j = 0, int(np.argmax(yt != yt[0]))                # two test images of different digits
    decoded = model.decode(lerp(Z[i], Z[j], 10).astype(model.dtype))
    t = [f"t={k / 9:.2g}" for k in range(10)]
    plot.image_strip(np.vstack([Xt[i], decoded, Xt[j]]), labels=[f"image {i}", *t, f"image {j}"],
                     path=out / "interpolation.png",
                     title=f"test image {i} (a {yt[i]}) to test image {j} (a {yt[j]}): the originals "
                     "at both ends, the decoded path Z_t = Z_1 (1 - t) + Z_2 t between them")
    plot.loss_curves(history, path=out / "loss.png")


def _write_text(path, text):
    from .io import atomic_write
    atomic_write(path, lambda f: f.write(text.encode()))


# --- encode / decode / interpolate / info --------------------------------------------
def _checkpoint_data(args, ckpt):
    kind = args.data or ckpt.extra.get("args", {}).get("data", "auto")
    return load_dataset(kind, args.split, args.limit, progress=False)


def cmd_encode(args):
    from . import io, metrics
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    X, y, _ = _checkpoint_data(args, ckpt)
    Z = metrics.batched(model.encode, X)
    io.atomic_write(args.output, lambda f: np.save(f, Z))
    if args.labels:
        io.atomic_write(args.labels, lambda f: np.save(f, y))
    print(f"wrote {len(Z):,} codes of size {Z.shape[1]} to {args.output}")
    return 0


def cmd_decode(args):
    import tinyae as ta
    from . import plot
    model = ta.load(args.checkpoint)
    try:
        Z = np.load(args.codes, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read codes from {args.codes!r} ({exc}); expected a .npy array "
                         "of shape (N, latent size), e.g. from tinyae encode") from None
    Z = np.atleast_2d(Z)
    if args.max_images and len(Z) > args.max_images:     # 10,000 codes would make a 17 MB PNG
        print(f"decoding the first {args.max_images:,} of {len(Z):,} codes "
              "(--max-images N to change, 0 for all)", file=sys.stderr)
        Z = Z[:args.max_images]
    images = model.decode(Z.astype(model.dtype))
    plot.image_grid(images, args.columns, path=args.output)
    print(f"decoded {len(images):,} codes into {args.output}")
    return 0


def cmd_interpolate(args):
    from . import io, metrics, plot
    from .latent import lerp, slerp
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    X, _, _ = _checkpoint_data(args, ckpt)
    for k in (args.source, args.target):
        if not 0 <= k < len(X):
            raise ValueError(f"image index {k} is out of range: the {args.split} set has {len(X)} images")
    z1, z2 = model.encode(X[args.source]), model.encode(X[args.target])
    if args.slerp:              # the arc bends around the centre of the codes, not the origin
        center = metrics.batched(model.encode, X).mean(axis=0)
        path = slerp(z1, z2, args.steps, center=center).astype(model.dtype)
    else:
        path = lerp(z1, z2, args.steps).astype(model.dtype)
    kind = "spherical" if args.slerp else "linear"
    plot.image_strip(model.decode(path), path=args.output,
                     title=f"{kind} interpolation, {args.split} image {args.source} to {args.target}")
    print(f"wrote {args.output}")
    return 0


def cmd_explore(args):
    from . import io
    from .explore import write_explorer
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    X, y, name = _checkpoint_data(args, ckpt)
    size = write_explorer(model, X, y, args.output,
                          title=f"tinyae explorer: {args.checkpoint}, {len(X):,} {name} {args.split} images")
    print(f"wrote {args.output} ({size / 2**20:.1f} MiB); open it in a browser")
    return 0


def cmd_info(args):
    from . import io
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    print(f"{args.checkpoint}: tinyae {ckpt.config.get('tinyae_version')}, "
          f"format {ckpt.config.get('format_version')}, dtype {model.dtype}")
    records = ckpt.extra.get("history", {}).get("records", [])
    print(_which_epoch(records, ckpt.extra.get("args", {}).get("epochs")))
    model.summary()
    if records:
        print("\nepoch  loss      val_loss  seconds")
        for r in records:
            val = "" if r["val_loss"] is None else f"{r['val_loss']:.5f}"
            print(f"{r['epoch']:>5}  {r['loss']:.5f}  {val:<8}  {r['seconds']:.1f}")
    for key, value in (ckpt.extra.get("metrics") or {}).items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def _which_epoch(records, planned):
    """A sentence saying which epoch's weights the checkpoint holds (best.npz: an early one)."""
    if not records:
        return "holds weights that were never trained with tinyae train (no history)"
    last, of = records[-1], f" of {planned}" if planned else ""
    text = f"holds the weights after epoch {last['epoch']}{of}"
    vals = [r["val_loss"] for r in records if r["val_loss"] is not None]
    if last["val_loss"] is not None and last["val_loss"] <= min(vals):
        text += f" (validation loss {last['val_loss']:.5f}, the lowest up to then)"
    return text


# --- the parser ----------------------------------------------------------------------
def build_parser():
    from . import __version__
    p = argparse.ArgumentParser(prog="tinyae", description="Train and explore a NumPy autoencoder.")
    p.add_argument("--version", action="version", version=f"tinyae {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train an autoencoder and write checkpoint, metrics, figures",
                       description="Train the seed model (the autoencoder of the blog post "
                       "tinyae started from: 784-512-256-64-2, ReLU, sigmoid out, MSE, Adam) "
                       "and write last.npz, best.npz, history, metrics.json "
                       "and figures to --out.")
    t.add_argument("--data", choices=DATA_CHOICES, default="auto",
                   help="auto: MNIST, else the built-in digits (default); mnist never falls back")
    t.add_argument("--sizes", type=_sizes, default=(784, 512, 256, 64, 2),
                   help="encoder widths, input to latent (default 784,512,256,64,2)")
    t.add_argument("--epochs", type=_positive(int), default=20, help="epochs in all (default 20)")
    t.add_argument("--batch-size", type=_positive(int), default=256,
                   help="images per step (default 256)")
    t.add_argument("--lr", type=_positive(float), default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--seed", type=int, default=0,
                   help="seed for the initial weights and the shuffling (default 0)")
    t.add_argument("--validation", type=_validation, default="test", metavar="test|none|FRACTION",
                   help="what best.npz is chosen on: the test split (default), none, or a "
                   "fraction of the training set held out")
    t.add_argument("--limit", type=_positive(int),
                   help="use only the first N images of each split (default: all)")
    t.add_argument("--out", help="output folder (default runs/<timestamp>; with --resume, the "
                   "checkpoint's folder)")
    t.add_argument("--resume", metavar="CKPT",
                   help="continue from a checkpoint, with its optimiser state (default: a new run)")
    t.add_argument("--quiet", action="store_true",
                   help="print only the final metrics and the output folder: no header, "
                   "progress bar, epoch lines or evaluation line (errors and warnings still show)")
    t.add_argument("--threads", type=_threads, metavar="N|auto",
                   help="BLAS threads for the matmuls (default auto: chosen by timing steps "
                        "while training, re-checked every few hundred steps; or TINYAE_THREADS)")
    t.set_defaults(run=cmd_train)

    def data_args(q):
        q.add_argument("--data", choices=DATA_CHOICES, help="data set (default: the one trained on)")
        q.add_argument("--split", choices=("train", "test"), default="test",
                       help="which split (default test)")
        q.add_argument("--limit", type=_positive(int), help="use only the first N images (default: all)")

    e = sub.add_parser("encode", help="encode a data set to latent codes (.npy)")
    e.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    data_args(e)
    e.add_argument("-o", "--output", default="codes.npy", help="output .npy file (default codes.npy)")
    e.add_argument("--labels", help="also write the labels to this .npy file (default: no labels)")
    e.set_defaults(run=cmd_encode)

    d = sub.add_parser("decode", help="decode latent codes (.npy) into an image grid (.png)")
    d.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    d.add_argument("codes", help=".npy array of shape (N, latent size)")
    d.add_argument("-o", "--output", default="decoded.png", help="output PNG (default decoded.png)")
    d.add_argument("--columns", type=_positive(int), help="images per row (default: a square grid)")
    d.add_argument("--max-images", type=_at_least(0), default=400, metavar="N",
                   help="decode at most the first N codes, 0 for all (default 400: a 20 x 20 grid)")
    d.set_defaults(run=cmd_decode)

    i = sub.add_parser("interpolate", help="decode the path between two images' codes")
    i.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    i.add_argument("--from", dest="source", type=int, required=True, help="index of the first image")
    i.add_argument("--to", dest="target", type=int, required=True, help="index of the second image")
    i.add_argument("--steps", type=_positive(int), default=10,
                   help="images on the path, both ends included (default 10)")
    i.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    data_args(i)
    i.add_argument("-o", "--output", default="interpolation.png",
                   help="output PNG (default interpolation.png)")
    i.set_defaults(run=cmd_interpolate)

    x = sub.add_parser("explore", help="write an interactive latent-space explorer (.html)",
                       description="Write one self-contained HTML page: the latent map of a data "
                       "split coloured by digit; the pointer decodes any point in the page, two "
                       "clicks play the path between them. No server or network needed.")
    x.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    data_args(x)
    x.add_argument("-o", "--output", default="explore.html",
                   help="output HTML file (default explore.html)")
    x.set_defaults(run=cmd_explore)

    n = sub.add_parser("info", help="print which epoch a checkpoint holds, its architecture, "
                       "history and metrics")
    n.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    n.set_defaults(run=cmd_info)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from .data import DataError
    from .io import CheckpointError
    from .train import TrainingDiverged
    try:
        return args.run(args)
    except (CheckpointError, DataError, TrainingDiverged, FileNotFoundError, ValueError) as exc:
        print(f"tinyae {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:          # `tinyae info CKPT | head`: the reader stopped early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 1
