"""``tinyae anomaly``: how well a model's reconstruction error flags images unlike its training
data, against PCA's with the same code width.

    tinyae anomaly runs/<time>/last.npz --digit 3           # a model trained without threes
    tinyae anomaly runs/<time>/last.npz --against fashion   # MNIST model, Fashion-MNIST images
"""
import argparse
import json
import math

import numpy as np

from .. import data, io
from ..data.mnist import load_dataset
from ..evaluate.anomaly import (at_false_alarm, auc, holdout, neg_elbo_scores, pca_scores,
                                reconstruction_scores)
from ..io import safety
from ..io.checkpoint import atomic_write
from ..models.vae import VariationalAutoencoder
from ..viz.anomaly import extremes, roc_curves
from .flags import DATA_CHOICES, digit, positive, seed

HELP = (
    "Score each test image by the model's squared reconstruction error (a VAE also by its "
    "negative ELBO) and measure how well the scores flag anomalous images: the ROC's AUC "
    "(0.5 is chance, 1 a perfect ranking) and the precision and recall at a false-alarm "
    "rate. --digit D: the test images of digit D are the anomalies, for a model trained "
    "without them (tinyae train --hold-out D; the command says whether the checkpoint's run "
    "held D out); --against fashion: Fashion-MNIST's test "
    "images are the anomalies among the checkpoint's own test images. PCA with the model's "
    "code width, fitted to the same normal training images, is the baseline to beat. "
    "Writes the ROC curves (-o) and, with --images, the most and least anomalous images.")


def _rate(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"wants a number in (0, 1) such as 0.05, got {text!r}")
    return value


def add_commands(command):
    """Add ``anomaly`` with the CLI's ``command(name, help, description)``."""
    a = command("anomaly", "AUC of reconstruction error as an anomaly score, against PCA's; "
                "a ROC figure", HELP)
    a.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    what = a.add_mutually_exclusive_group(required=True)
    what.add_argument("--digit", type=digit, help="the held-out digit 0-9: its images are the "
                      "anomalies (no default: give --digit or --against)")
    what.add_argument("--against", choices=("fashion",),
                      help="fashion: Fashion-MNIST's images are the anomalies (no default: give "
                      "--digit or --against)")
    a.add_argument("--data", choices=DATA_CHOICES, help="the normal data set (default: the one "
                   "trained on)")
    a.add_argument("--limit", type=positive(int), help="use only the first N images of each "
                   "split (default: all)")
    a.add_argument("--false-alarm", type=_rate, default=0.05, metavar="RATE",
                   help="report precision and recall where at most this fraction of normal "
                   "images is flagged (default 0.05)")
    a.add_argument("--seed", type=seed, default=0, help="seed of a VAE's samples z (default 0)")
    a.add_argument("-o", "--output", help="the ROC figure, .png (default roc.png)")
    a.add_argument("--images", help="also draw the most and least anomalous images into this "
                   ".png (default: none)")
    a.add_argument("--json", help="also write the numbers to this .json file (default: none)")
    a.add_argument("--force", action="store_true",
                   help="replace an existing output file even when it is not of the kind this "
                   "command writes; inputs are never overwritten, --force or not")
    a.set_defaults(run=cmd_anomaly)


def _check_outputs(args):
    """-o, --images and --json checked before any work; the default -o never replaces a file."""
    args.output = safety.default_output(args.output, "roc.png", args.force)
    outputs = {"-o": args.output, "--images": args.images, "--json": args.json}
    kinds = {"-o": "png", "--images": "png", "--json": "text"}
    for role, path in outputs.items():
        if path is not None:
            safety.require_suffix(path, ".json" if role == "--json" else ".png", role)
    sets = [data.MNIST, data.FASHION_MNIST]                # every file the command may read
    inputs = [args.checkpoint] + [data.data_dir(ds) / f for ds in sets for f in ds.files]
    safety.check_outputs(outputs, inputs, kinds=kinds, force=args.force)


def _test_sets(args, ckpt):
    """(normal training images, test images, anomalous (M,) bool, normal data's name, what)."""
    saved = ckpt.extra.get("args")
    saved = saved.get("data") if isinstance(saved, dict) else None
    kind = args.data or (saved if saved in DATA_CHOICES else "auto")
    X, y, name = load_dataset(kind, "train", args.limit, progress=False)
    Xt, yt, _ = load_dataset(name, "test", args.limit, progress=False)
    if args.against:
        if name == "fashion":
            raise ValueError("--against fashion needs a model of another data set; this one "
                             "is Fashion-MNIST (give --data mnist or builtin)")
        A, _, _ = load_dataset("fashion", "test", args.limit, progress=False)
        anomalous = np.r_[np.zeros(len(Xt), bool), np.ones(len(A), bool)]
        return X, np.vstack([Xt, A]), anomalous, name, "Fashion-MNIST test images"
    if name == "fashion":
        raise ValueError("--digit holds out a digit, but Fashion-MNIST's labels are clothes, "
                         "not digits; use --data mnist or builtin, or --against fashion")
    train, test = holdout(X, y, args.digit), holdout(Xt, yt, args.digit)
    return train.train, test.test, test.anomalous, name, f"the digit {args.digit}"


def cmd_anomaly(args):
    _check_outputs(args)
    ckpt, model = io.read_model(args.checkpoint)
    X_normal, Xt, anomalous, name, what = _test_sets(args, ckpt)
    if model.input_width != Xt.shape[1]:
        raise ValueError(f"the model takes {model.input_width} features per image but the "
                         f"{name} images have {Xt.shape[1]}; choose --data")
    scores = _scores(model, X_normal, Xt, args.seed)
    rows = {s: {"auc": auc(v, anomalous), **at_false_alarm(v, anomalous, args.false_alarm)}
            for s, v in scores.items()}
    print(f"{args.checkpoint} ({type(model).__name__}): {len(Xt):,} test images, "
          f"{int(anomalous.sum()):,} of them anomalous ({what}); normal: {name}, PCA fitted to "
          f"{len(X_normal):,} normal training images")
    if args.digit is not None:
        print(_held_out_note(ckpt, args.digit))
    print(_table(rows, args.false_alarm))
    roc_curves(scores, anomalous, path=args.output,
               title=f"anomalous: {what}, among {name} test images")
    if args.images:
        extremes(Xt, scores["model, squared error"], path=args.images, anomalous=anomalous,
                 title=f"most (top) and least (bottom) anomalous by the model, squared error; "
                 f"red: {what}")
    if args.json:
        report = {"data": name, "anomalous": what, "n": len(Xt), "n_anomalous":
                  int(anomalous.sum()), "false_alarm_target": args.false_alarm,
                  "scorers": {s: {key: (v if math.isfinite(v) else None) for key, v in r.items()}
                              for s, r in rows.items()}}     # JSON has no NaN or inf: null
        atomic_write(args.json, lambda f: f.write(json.dumps(report, indent=2).encode()))
    print("wrote " + ", ".join(p for p in (args.output, args.images, args.json) if p))
    return 0


def _held_out_note(ckpt, digit):
    """One line on whether the run that made the model left ``digit`` out (--hold-out)."""
    saved = ckpt.extra.get("args")
    held = saved.get("hold_out") if isinstance(saved, dict) else None
    if held == digit:
        return f"(the model was trained without the digit {digit}: its run had --hold-out {digit})"
    if isinstance(held, int):
        return (f"(warning: the model was trained without the digit {held}, not {digit}: it "
                f"has seen {digit}s, so this measures little; use --digit {held})")
    return (f"(the model should have been trained without the digit {digit}, with tinyae train "
            f"--hold-out {digit}; its checkpoint records no --hold-out, so if it saw {digit}s "
            "this measures little)")


def _scores(model, X_normal, Xt, seed):
    """{scorer: (M,) scores}: the model's squared error (a VAE's negative ELBO too), then
    PCA's with the model's code width, fitted to the normal training images."""
    with np.errstate(over="ignore", invalid="ignore"):     # overflow: judged below, in one line
        scores = {"model, squared error": reconstruction_scores(model, Xt)}
        if isinstance(model, VariationalAutoencoder):
            scores["model, negative ELBO"] = neg_elbo_scores(model, Xt,
                                                             np.random.default_rng(seed))
    for s in scores.values():
        bad = int(np.sum(~np.isfinite(s)))
        if bad:
            raise ValueError(f"{bad:,} of the {len(s):,} scores would be NaN or infinite (the "
                             "model's weights overflow on these images); nothing was written")
    k = model.latent_width
    scores[f"PCA-{k}, squared error"] = pca_scores(X_normal, Xt, k)
    return scores


def _table(rows, rate):
    """The scorers' AUC, precision and recall, one line each."""
    width = max(map(len, rows))
    lines = [f"{'scorer':<{width}}  AUC    precision  recall  (at {rate * 100:g}% false alarms)"]
    for name, r in rows.items():
        precision = "n/a" if math.isnan(r["precision"]) else f"{r['precision']:.3f}"
        lines.append(f"{name:<{width}}  {r['auc']:.3f}  {precision:>9}  {r['recall']:.3f}")
    return "\n".join(lines)
