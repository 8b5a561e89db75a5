"""The ``tinyae`` command: train the seed model, then encode, decode, interpolate, inspect;
check a student's layer and write student versions of the tutorials (``course``)."""
import argparse
import contextlib
import errno
import json
import math
import os
import signal
import sys
import textwrap
import time
import traceback
from functools import partial
from pathlib import Path

import numpy as np

from .. import data, io
from ..data.mnist import load_dataset
from ..evaluate import metrics, robustness
from ..evaluate.anomaly import holdout
from ..evaluate.cvae_eval import digit_samples_figure, evaluate_cvae, style_figure
from ..evaluate.vae_eval import evaluate_vae, quantile_grid_figure, samples
from ..io import safety
from ..io.checkpoint import CheckpointError, atomic_write
from ..models.contractive import ContractiveAutoencoder
from ..models.cvae import ConditionalVAE, with_labels
from ..models.kinds import KINDS
from ..models.rbm import pretrain_stack, unroll
from ..models.vae import VariationalAutoencoder
from ..models.variants import DenoisingAutoencoder, SparseAutoencoder
from ..nn import schedules
from ..nn.losses import BCE, MSE
from ..train import loop, stacked
from ..train.history import comparable_val_losses
from ..train.stops import SIGNALS, stopped_by_signal
from ..version import __version__
from ..viz import plot
from ..viz.explore import write_explorer
from ..viz.latent import latent_range, lerp, slerp
from . import course, export   # tinyae check / exercises; tinyae export / import
from . import anomaly         # tinyae anomaly
from . import flags as policy
from .flags import DATA_CHOICES, digit, positive, seed
from .runs import (RunFolder, adam, checked_history, encoder_sizes, model_and_state,
                   new_run_folder)

MAX_STEPS = 100             # images in an interpolation strip
MAX_COLUMNS = 100           # columns (and rows) of a decoded grid
FIGURES = ("reconstructions.png", "latent.png", "grid.png", "interpolation.png", "loss.png")
VAE_FIGURES = ("samples.png", "quantile_grid.png")
IW_SAMPLES = 100            # codes per test image in a VAE's importance-weighted log p(x)
CVAE_FIGURES = ("reconstructions.png", "latent.png", "digits.png", "styles.png", "loss.png")


def _figure_names(model):
    """The figures a run of ``model`` draws (``_figures`` and a VAE's own)."""
    if isinstance(model, ConditionalVAE):
        return CVAE_FIGURES
    return FIGURES + (VAE_FIGURES if isinstance(model, VariationalAutoencoder) else ())


def _rows(model, X, y):
    """What the model reads: the images, or (a conditional VAE) [images, one-hot labels]."""
    return with_labels(X, y, model.n_classes) if isinstance(model, ConditionalVAE) else X


def _held_out(X, y, held):
    """The images that are not the digit ``held`` (--hold-out; None keeps all), with their
    labels."""
    if held is None:
        return X, y
    keep = ~holdout(X, y, held).anomalous               # refuses a digit absent or alone
    return X[keep], y[keep]


def _check_width(model, X, data_name, fix):
    """The data's images are as wide as the model's (a conditional VAE: its image part)."""
    width = getattr(model, "image_width", model.input_width)
    if width != X.shape[1]:
        raise ValueError(f"the model takes {width} features per image but the {data_name} "
                         f"images have {X.shape[1]}; {fix}")


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


def _steps(text):
    value = positive(int, MAX_STEPS)(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 steps (both ends), got {text}")
    return value


# --- train ---------------------------------------------------------------------------
def cmd_train(args):
    given = {k: getattr(args, k) for k in policy.DEFAULTS if hasattr(args, k)}   # typed flags
    ckpt = io.read_checkpoint(args.resume) if args.resume else None
    if ckpt is None:
        flags, notes = policy.new_run(given), []
    else:
        flags, notes = policy.resume(policy.saved_flags(ckpt), given, args.override,
                                     repr(args.resume))
    policy.check_given(given, flags, ckpt is not None, args.override)
    out = Path(args.out) if args.out else new_run_folder()
    with RunFolder(out, created=not args.out) as run:
        kinds = {"last.npz": "npz", "best.npz": "npz", "history.json": "text",
                 "history.csv": "text", "metrics.json": "text",
                 **dict.fromkeys(FIGURES + VAE_FIGURES + CVAE_FIGURES, "png")}
        safety.check_outputs({name: out / name for name in kinds}, inputs=[args.resume],
                             kinds=kinds, force=args.force)
        earlier = run.earlier_run_files()
        if earlier and not args.force:
            raise safety.UnsafePathError(
                f"--out {str(out)!r} already holds an earlier run's files ({', '.join(earlier)}); "
                "choose a new folder (the default is a new runs/<timestamp>), or add --force "
                "to replace them.")
        for note in notes:
            print(f"tinyae train: {note}", file=sys.stderr)
        return _train(args, flags, ckpt, out, earlier)


def _train(args, flags, ckpt, out, earlier):
    model, optimizer, history = model_and_state(flags, ckpt)     # a size error comes first
    X, y, data_name = load_dataset(flags["data"], "train", flags["limit"], progress=not args.quiet)
    Xt, yt, _ = load_dataset(data_name, "test", flags["limit"], progress=False)
    (X, y), (Xt, yt) = _held_out(X, y, flags["hold_out"]), _held_out(Xt, yt, flags["hold_out"])
    _check_width(model, X, data_name, "check --sizes")
    if "best.npz" in earlier:                   # --force: no best.npz of another run stays
        (out / "best.npz").unlink()
    backend = loop.resolve_backend()                 # TINYAE_BACKEND: same maths, other rounding
    saved = (ckpt.extra.get("args") or {}) if ckpt else {}
    if ckpt and saved.get("backend", backend) != backend:
        print(f"tinyae train: {args.resume!r} was trained on the {saved['backend']} backend and "
              f"continues on {backend}: the same maths, but not bit for bit the same numbers "
              f"(TINYAE_BACKEND={saved['backend']} to match).", file=sys.stderr)
    run_args = {**policy.recorded(flags), "data": data_name,
                "sizes": encoder_sizes(model, flags["sizes"]), "backend": backend}
    extra = {"args": run_args}
    kind = KINDS[flags["model"]]
    if kind.pretrain and ckpt is None:          # greedy levels first, then fit fine-tunes
        model, extra["pretraining"] = _pretrain(model, X, flags, args.quiet)
        optimizer = adam(model, flags)          # (an RBM stack unrolls into a new model)
    elif ckpt is not None and "pretraining" in ckpt.extra:
        extra["pretraining"] = ckpt.extra["pretraining"]
    schedule = _schedule(flags, optimizer, len(X), len(history.records), ckpt)
    if len(history.records) >= flags["epochs"]:
        more = len(history.records) + 10
        final = optimizer.lr                    # where the restored schedule left it
        if final < flags["lr"] / 100:           # it annealed to ~0: more epochs would not train
            raise ValueError(
                f"{args.resume!r} already holds {len(history.records)} epochs, and its "
                f"{flags['schedule']} schedule has brought the lr down to {final:.1g}, where more epochs would barely move the weights; go on at a "
                f"constant lr with --epochs {more} --override --schedule none --lr 1e-4, or "
                "train a new run with more --epochs.")
        raise ValueError(f"{args.resume!r} already holds {len(history.records)} epochs; ask for "
                         f"more with --epochs (e.g. --epochs {more}).")
    checkpoints = loop.Checkpointer(out, extra=extra, history=history, schedule=schedule)
    if not args.quiet:
        what = f"fine-tuning {kind.name}" if kind.pretrain else f"training {kind.name}"
        descent = f", {flags['anneal']} descent" if flags["schedule"] == "onecycle" else ""
        without = "" if flags["hold_out"] is None else f", no {flags['hold_out']}s"
        loss = f", loss {LOSS_NAMES[flags['loss']]}" if "loss" in kind.options else ""
        print(f"{what} {'-'.join(map(str, run_args['sizes']))} on {data_name} ({len(X):,} "
              f"images{without}) for {flags['epochs']} epochs{loss}, lr schedule "
              f"{flags['schedule']} (peak {flags['lr']:g}{descent}), Adam beta2 "
              f"{flags['adam_beta2']}; writing to {out}", file=sys.stderr)
    validation = {"test": (_rows(model, Xt, yt),), "none": None}.get(flags["validation"],
                                                                      flags["validation"])
    history = loop.fit(model, _rows(model, X, y), epochs=flags["epochs"], loss=_loss(kind, flags),
                  batch_size=flags["batch_size"], optimizer=optimizer, validation=validation,
                  seed=flags["seed"], history=history, callbacks=[checkpoints],
                  progress=not args.quiet, threads=flags["threads"], schedule=schedule)
    if history.stopped:
        print(f"stopped: {history.stopped}", file=sys.stderr)
    signum = stopped_by_signal(history)
    if signum:          # asked to end: keep the work, skip the evaluation, exit non-zero
        checkpoints.save_last(model, optimizer, history)
        print(f"tinyae train: stopped by {SIGNALS[signum]}; {out / 'last.npz'} holds "
              f"{len(history.records)} finished epochs (go on with tinyae train --resume "
              f"{out / 'last.npz'}); the metrics and figures were not made (tinyae evaluate "
              f"{out / 'last.npz'} makes them)", file=sys.stderr)
        return 128 + signum

    with _end_on_signal(f"the trained model is in {out / 'last.npz'} and {out / 'best.npz'}, "
                        "but the metrics and figures were not made (make them with: tinyae "
                        f"evaluate {out / 'last.npz'})"):
        say = _silent if args.quiet else partial(print, file=sys.stderr, flush=True)
        chosen = history.records[-1].threads if history.records else None
        started = time.perf_counter()
        m = _measure(model, (X, y, Xt, yt, data_name), flags["seed"], flags["threads"] or chosen,
                     len(history.records), say)
        checkpoints.extra["metrics"] = m
        checkpoints.save_last(model, optimizer, history)
        _results(model, history, m, Xt, yt, flags["seed"], out, say, started)
        return 0


def _silent(*args, **kwargs):
    """``say`` under --quiet: nothing (and no progress bar)."""


def _measure(model, data_sets, seed, threads, epochs, say):
    """The metrics of a trained model: reconstruction errors, the PCA baselines, the 5-NN
    accuracy of the codes (and a VAE's ELBO and log p(x))."""
    X, y, Xt, yt, data_name = data_sets
    say(f"evaluating the last model on {len(X):,} training and {len(Xt):,} test images: "
        + ("the ELBO, 5-NN accuracy of the codes, samples of each digit judged by 5-NN on pixels"
           if isinstance(model, ConditionalVAE) else
           "reconstruction error, the PCA-2 baseline, 5-NN accuracy of the codes")
        + "; then the figures")
    if isinstance(model, ConditionalVAE):
        m = evaluate_cvae(model, X, y, Xt, yt, seed=seed, threads=threads)
        return {**m, "data": data_name, "seed": seed, "epochs": epochs}
    m = metrics.evaluate_autoencoder(model, X, y, Xt, yt, threads=threads)
    if isinstance(model, VariationalAutoencoder):
        say(f"the importance-weighted log p(x): {IW_SAMPLES} codes decoded per test image, "
            f"{IW_SAMPLES * len(Xt):,} in all")
        m.update(evaluate_vae(model, X, y, Xt, yt, iw_samples=IW_SAMPLES, seed=seed,
                              progress=say is not _silent))
    return {**m, "data": data_name, "seed": seed, "epochs": epochs}


def _results(model, history, m, Xt, yt, seed, out, say, started):
    """Write a run's history, metrics and figures into ``out`` and print its summary
    (``started``: when the evaluation began, for the time it took)."""
    _write_text(out / "history.json", json.dumps(history.to_dict(), indent=2))
    _write_text(out / "history.csv", history.to_csv())
    _write_text(out / "metrics.json", json.dumps(m, indent=2))
    if isinstance(model, ConditionalVAE):
        return _cvae_results(model, history, m, Xt, yt, seed, out, say, started)
    _figures(model, Xt, yt, history, out)
    if isinstance(model, VariationalAutoencoder):
        _vae_figures(model, seed, out)
        print(f"test negative ELBO {m['test_neg_elbo_per_image']:.2f} nats per image "
              f"(reconstruction {m['test_reconstruction_per_image']:.2f} + KL "
              f"{m['test_kl_per_image']:.2f}); log p(x) >= "
              f"{m[f'test_log_px_iw{IW_SAMPLES}']:.2f} (importance-weighted, k={IW_SAMPLES})")
    say(f"evaluated and drew the figures in {time.perf_counter() - started:.1f} s")
    per_image = ("" if "test_sq_error_per_image" not in m else   # (tests may stub the metrics)
                 f", squared error per image {m['test_sq_error_per_image']:.2f} (PCA-30 "
                 f"{m['pca30_test_sq_error_per_image']:.2f})")
    where = "" if m["data"] != "builtin" else (" (on the built-in digits, not MNIST: these "
                                               "figures do not compare with MNIST's)")
    print(f"test MSE per pixel {m['test_mse_per_pixel']:.4f} (PCA-2 "
          f"{m['pca2_test_mse_per_pixel']:.4f}){per_image}; 5-NN accuracy of the codes "
          f"{m['knn5_accuracy_latent']:.3f} (PCA-2 {m['knn5_accuracy_pca2']:.3f}){where}")
    print(f"wrote {out}")


def _cvae_results(model, history, m, Xt, yt, seed, out, say, started):
    """A conditional VAE's figures and summary: its samples by digit, not a decoded grid."""
    mu = metrics.batched(model.encode, _rows(model, Xt, yt))
    plot.reconstructions(Xt[:10], model.decode(mu[:10], yt[:10]), path=out / "reconstructions.png")
    plot.latent_scatter(mu, yt, path=out / "latent.png",
                        title="conditional VAE: mu of the test set, coloured by digit")
    digit_samples_figure(model, rng=np.random.default_rng(seed), path=out / "digits.png")
    style_figure(model, Xt, yt, path=out / "styles.png")
    plot.loss_curves(history, path=out / "loss.png")
    say(f"evaluated and drew the figures in {time.perf_counter() - started:.1f} s")
    print(f"test negative ELBO {m['test_neg_elbo_per_image']:.2f} nats per image "
          f"(reconstruction {m['test_reconstruction_per_image']:.2f} + KL "
          f"{m['test_kl_per_image']:.2f}); samples drawn as the digit asked for: "
          f"{m['sample_accuracy_mean']:.1%} (worst digit {m['sample_accuracy_min']:.0%}; the "
          f"judge, 5-NN on pixels, reads {m['pixel_knn_test_accuracy']:.1%} of real test "
          f"digits right)")
    print(f"wrote {out}")


def cmd_evaluate(args):
    """The metrics and figures of a run's checkpoint, as ``tinyae train`` makes them at its end:
    for a run stopped before they were made (SIGTERM during the evaluation, say)."""
    ckpt, model = io.read_model(args.checkpoint, conditional=True)
    history = checked_history(ckpt)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    kinds = {"history.json": "text", "history.csv": "text", "metrics.json": "text",
             **dict.fromkeys(_figure_names(model), "png")}
    saved = ckpt.extra.get("args") if isinstance(ckpt.extra.get("args"), dict) else {}
    data_name = args.data or (saved.get("data") if saved.get("data") in DATA_CHOICES else "auto")
    limit = saved.get("limit") if policy.valid("limit", saved.get("limit")) else None
    run_seed = saved.get("seed") if policy.valid("seed", saved.get("seed")) else 0
    with RunFolder(out):
        existing = [name for name in kinds if (out / name).exists()]
        if existing and not args.force:
            raise safety.UnsafePathError(
                f"{str(out)!r} already holds {', '.join(existing)}; add --force to replace them, "
                "or choose another --out")
        safety.check_outputs({name: out / name for name in kinds}, inputs=[args.checkpoint],
                             kinds=kinds, force=args.force)
        X, y, data_name = load_dataset(data_name, "train", limit, progress=False)
        Xt, yt, _ = load_dataset(data_name, "test", limit, progress=False)
        held = saved.get("hold_out") if policy.valid("hold_out", saved.get("hold_out")) else None
        (X, y), (Xt, yt) = _held_out(X, y, held), _held_out(Xt, yt, held)
        _check_width(model, X, data_name, "choose --data")
        _probe(model, _rows(model, X, y))
        say, started = partial(print, file=sys.stderr, flush=True), time.perf_counter()
        # The BLAS thread count the run measured with (train's own evaluation uses it): the
        # same count, the same sums, the same numbers to the last bit.
        threads = saved.get("threads") if policy.valid("threads", saved.get("threads")) else None
        chosen = history.records[-1].threads if history.records else None
        m = _measure(model, (X, y, Xt, yt, data_name), run_seed, threads or chosen,
                     len(history.records), say)
        _results(model, history, m, Xt, yt, run_seed, out, say, started)
    return 0


@contextlib.contextmanager
def _end_on_signal(what):
    """Inside, SIGTERM and SIGHUP end the command at once with one line saying ``what``
    (every file is written atomically, so none is left half written)."""
    def end(signum, frame):
        print(f"tinyae train: stopped by {SIGNALS[signum]}; {what}", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)
    old = {signum: signal.signal(signum, end) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)


def _schedule(flags, optimizer, n_images, done_epochs, ckpt=None):
    """The run's lr schedule: the checkpoint's at its saved step, or a new one from the flags.

    A new one starts at the step the run has reached (``done_epochs`` epochs).
    """
    saved_args = ckpt.extra.get("args", {}) if ckpt else {}
    same_curve = all(flags[k] == saved_args.get(k, policy.DEFAULTS[k])
                     for k in ("schedule", "lr", "warmup", "anneal", "batch_size", "validation",
                               "limit"))
    if ckpt is not None and ckpt.schedule is not None and same_curve:
        try:
            restored = schedules.from_state_dict(optimizer, ckpt.schedule)
        except ValueError as exc:
            raise CheckpointError(f"{ckpt.path!r}: its lr schedule cannot be resumed ({exc})") from None
        anneal = getattr(restored, "anneal_strategy", flags["anneal"])
        if anneal != flags["anneal"]:
            raise CheckpointError(f"{ckpt.path!r}: its lr schedule comes down along {anneal!r} "
                                  f"but its flags say --anneal {flags['anneal']}; the file was "
                                  "altered, so it cannot be resumed as it is.")
        return restored
    n = n_images
    if isinstance(flags["validation"], float):          # fit holds this many images out
        n -= max(1, int(round(n_images * flags["validation"])))
    steps = -(-n // flags["batch_size"])                # ceil: the last batch may be short
    warmup = None
    if flags["warmup"] is not None:
        if flags["warmup"] >= flags["epochs"]:
            raise ValueError(f"--warmup {flags['warmup']:g} epochs is not shorter than training "
                             f"(--epochs {flags['epochs']}); use a shorter warm-up, e.g. --warmup "
                             f"{max(1, flags['epochs'] // 10)}, or more --epochs.")
        warmup = max(1, round(flags["warmup"] * steps))
    anneal = flags["anneal"] if flags["schedule"] == "onecycle" else None
    if flags["schedule"] == "onecycle" and flags["epochs"] * steps < 2:
        raise ValueError(f"--epochs {flags['epochs']} of {n:,} images in batches of "
                         f"{flags['batch_size']} is one step, and the one-cycle schedule needs "
                         "at least 2 (a rise and a fall); train more epochs, use a smaller "
                         "--batch-size, or --schedule none")
    schedule = schedules.build(flags["schedule"], optimizer, flags["epochs"] * steps,
                               lr=flags["lr"], warmup_steps=warmup, anneal=anneal)
    schedule.go_to(done_epochs * steps)
    return schedule


LOSSES = {"mse": MSE, "bce": BCE}
LOSS_NAMES = {"mse": "squared error", "bce": "cross-entropy"}


def _loss(kind, flags):
    """The loss --loss names, for the kinds that take it; None: the model's own (a VAE's ELBO)."""
    return LOSSES[flags["loss"]]() if "loss" in kind.options else None


def _pretrain(model, X, flags, quiet):
    """Greedy layer-wise training of a stacked model, before its fine-tuning by fit:
    (model, what each level did). --pretrain rbm returns a new model: the RBMs unrolled."""
    if flags["pretrain"] == "rbm":
        return _pretrain_rbm(X, flags, quiet)
    histories = stacked.pretrain(model, X, flags["pretrain_epochs"], batch_size=flags["batch_size"],
                         lr=flags["lr"], betas=(0.9, flags["adam_beta2"]), seed=flags["seed"],
                         progress=not quiet)
    return model, [h.to_dict() for h in histories]


def _pretrain_rbm(X, flags, quiet):
    """Hinton & Salakhutdinov's pretraining: an RBM per level (CD-1, their learning rates,
    momentum and weight decay; the top one Gaussian-hidden, the linear code), unrolled."""
    levels = []

    def report(level, rbm, errors):
        levels.append({"level": level + 1, "visible": rbm.n_visible, "hidden": rbm.n_hidden,
                       "units": rbm.hidden, "reconstruction_error": errors})
        if not quiet:
            print(f"RBM level {level + 1}: {rbm.n_visible}-{rbm.n_hidden} ({rbm.hidden} hidden "
                  f"units), squared reconstruction error per image by epoch: "
                  + ", ".join(f"{e:.2f}" for e in errors), file=sys.stderr)

    if not quiet:
        print(f"pretraining {len(flags['sizes']) - 1} RBMs by CD-1, "
              f"{flags['pretrain_epochs']} epochs each", file=sys.stderr)
    with _end_on_signal("the RBMs were still pretraining, so nothing was saved; run the "
                        "same command again to start over"):
        rbms = pretrain_stack(X, flags["sizes"], epochs=flags["pretrain_epochs"],
                              rng=np.random.default_rng(flags["seed"]), callback=report,
                              progress=not quiet)
    return unroll(rbms), levels


def _figures(model, Xt, yt, history, out):
    """The five figures of a training run, from the test set."""
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
    _path_strip(Xt[i], decoded, Xt[j], (f"image {i}", f"image {j}"), out / "interpolation.png",
                f"test image {i} (a {yt[i]}) to test image {j} (a {yt[j]}): the originals at "
                "both ends, the decoded path Z_t = Z_1 (1 - t) + Z_2 t between them")
    plot.loss_curves(history, path=out / "loss.png")


def _path_strip(x1, decoded, x2, names, path, title):
    """The two originals at the ends, the decoded path between them, each step labelled t."""
    t = [f"t={k / (len(decoded) - 1):.2g}" for k in range(len(decoded))]
    plot.image_strip(np.vstack([x1, decoded, x2]), labels=[names[0], *t, names[1]], path=path,
                     title=title)


def _vae_figures(model, seed, out):
    """A VAE's own figures: prior samples and, for a 2-D code, the quantile grid."""
    images = model.sample(64, np.random.default_rng(seed))
    plot.image_grid(images, 8, path=out / "samples.png", title="decoded samples from N(0, I)")
    if model.latent_width == 2:
        quantile_grid_figure(model, path=out / "quantile_grid.png")


def _write_text(path, text):
    atomic_write(path, lambda f: f.write(text.encode()))


# --- encode / decode / interpolate / info --------------------------------------------
def _checkpoint_data(args, ckpt):
    saved = ckpt.extra.get("args")
    saved = saved.get("data") if isinstance(saved, dict) else None
    kind = args.data or (saved if saved in DATA_CHOICES else "auto")
    return load_dataset(kind, args.split, args.limit, progress=False)


def _data_files(args):
    """Paths of the data files a command may read (so that no output lands on one)."""
    if not hasattr(args, "data"):
        return []
    sets = {"mnist": [data.MNIST], "fashion": [data.FASHION_MNIST], "builtin": []}
    return [data.data_dir(ds) / name for ds in sets.get(args.data, [data.MNIST, data.FASHION_MNIST])
            for name in ds.files]


def _outputs(args, default, kind, extra=None):
    """Check -o (and ``extra`` outputs) before any work; an unnamed default never replaces a file."""
    args.output = safety.default_output(args.output, default, args.force)
    outputs = {"-o": args.output, **(extra or {})}
    for role, path in outputs.items():
        if path is not None:
            safety.require_suffix(path, "." + kind, role)
    inputs = [args.checkpoint, getattr(args, "codes", None)] + _data_files(args)
    safety.check_outputs(outputs, inputs, kinds={r: kind for r in outputs}, force=args.force)


def cmd_encode(args):
    _outputs(args, "codes.npy", "npy", {"--labels": args.labels})
    ckpt, model = io.read_model(args.checkpoint)
    X, y, _ = _checkpoint_data(args, ckpt)
    with np.errstate(over="ignore", invalid="ignore"):     # judged below, in one line
        Z = metrics.batched(model.encode, X)
    _require_finite(Z, "codes", "the encoder's weights overflow on these images")
    io.atomic_write(args.output, lambda f: np.save(f, Z))
    if args.labels:
        io.atomic_write(args.labels, lambda f: np.save(f, y))
    print(f"wrote {len(Z):,} codes of size {Z.shape[1]} to {args.output}")
    return 0


def _require_finite(a, what, why):
    """Refuse to write NaN or infinite ``a``: one line naming how many and the likely cause."""
    bad = int(np.count_nonzero(~np.isfinite(a).all(axis=tuple(range(1, np.ndim(a))))))
    if bad:
        raise ValueError(f"{bad:,} of the {len(a):,} {what} would be NaN or infinite ({why}); "
                         "nothing was written")


def _probe(model, X):
    """Refuse weights that overflow, judged on the reconstructions of a probe batch, before
    any work (and without the RuntimeWarnings the overflow would print)."""
    with np.errstate(over="ignore", invalid="ignore"):
        probe = model.reconstruct(X[:64])
    _require_finite(probe, "reconstructions of a probe batch", "the model's weights overflow")


def cmd_decode(args):
    _outputs(args, "decoded.png", "png")
    _, model = io.read_model(args.checkpoint)
    Z = io.load_codes(args.codes, model.latent_width, max_codes=10**7)
    if args.max_images and len(Z) > args.max_images:     # 10,000 codes would make a 17 MB PNG
        print(f"decoding the first {args.max_images:,} of {len(Z):,} codes "
              "(--max-images N to change, 0 for all)", file=sys.stderr)
        Z = Z[:args.max_images]
    if len(Z) > MAX_COLUMNS * MAX_COLUMNS:
        raise ValueError(f"{len(Z):,} codes make more than a {MAX_COLUMNS} x {MAX_COLUMNS} grid; "
                         f"decode at most {MAX_COLUMNS * MAX_COLUMNS:,} at once (--max-images).")
    columns = args.columns or math.ceil(math.sqrt(len(Z)))
    if math.ceil(len(Z) / columns) > MAX_COLUMNS:
        raise ValueError(f"{len(Z):,} codes in {columns} columns make more than {MAX_COLUMNS} "
                         f"rows; use --columns {math.ceil(len(Z) / MAX_COLUMNS)} or more.")
    with np.errstate(over="ignore", invalid="ignore"):
        Z = Z.astype(model.dtype)
        _require_finite(Z, "codes", f"a code beyond {model.dtype}'s range (about "
                        f"{np.finfo(model.dtype).max:.1e})")
        images = metrics.batched(model.decode, Z)      # in batches: a wide decoder stays small
    _require_finite(images, "decoded images", "the decoder's weights overflow on these codes")
    plot.image_grid(images, columns, path=args.output)
    print(f"decoded {len(images):,} codes into {args.output}")
    return 0


def cmd_interpolate(args):
    _outputs(args, "interpolation.png", "png")
    ckpt, model = io.read_model(args.checkpoint)
    X, _, _ = _checkpoint_data(args, ckpt)
    for k in (args.source, args.target):
        if not 0 <= k < len(X):
            raise ValueError(f"image index {k} is out of range: the {args.split} set has {len(X)} images")
    with np.errstate(over="ignore", invalid="ignore"):     # judged below, in one line
        z1, z2 = model.encode(X[args.source]), model.encode(X[args.target])
        if args.slerp:          # the arc bends around the centre of the codes, not the origin
            center = metrics.batched(model.encode, X).mean(axis=0)
            path = slerp(z1, z2, args.steps, center=center).astype(model.dtype)
        else:
            path = lerp(z1, z2, args.steps).astype(model.dtype)
        images = model.decode(path)
    kind = "spherical" if args.slerp else "linear"
    _require_finite(images, "decoded images", "the model's weights overflow on this path")
    formula = ("Z_t = Z_1 (1 - t) + Z_2 t" if not args.slerp else
               "along the arc from Z_1 to Z_2 around the codes' mean")
    _path_strip(X[args.source], images, X[args.target],
                (f"image {args.source}", f"image {args.target}"), args.output,
                f"{kind} interpolation, {args.split} image {args.source} to {args.target}: the "
                f"originals at both ends, the decoded path {formula} between them")
    print(f"wrote {args.output}")
    return 0


def cmd_explore(args):
    _outputs(args, "explore.html", "html")
    ckpt, model = io.read_model(args.checkpoint)
    X, y, name = _checkpoint_data(args, ckpt)
    size = write_explorer(model, X, y, args.output,
                          title=f"tinyae explorer: {Path(args.checkpoint).name}, {len(X):,} "
                                f"{name} {args.split} images")
    print(f"wrote {args.output} ({size / 2**20:.1f} MiB); open it in a browser")
    return 0


def printable(text):
    """``text`` with control characters shown as escapes: a checkpoint's strings reach the
    terminal only as text, never as escape sequences that move the cursor or recolour it."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def cmd_info(args):
    ckpt, model = io.read_model(args.checkpoint, conditional=True)
    history = checked_history(ckpt)
    metrics = ckpt.extra.get("metrics") or {}

    def say(text):                                      # text read from the file
        print(printable(text))

    if not isinstance(metrics, dict):
        raise io.CheckpointError(f"{args.checkpoint!r}: its metrics entry is malformed")
    say(f"{args.checkpoint}: tinyae {ckpt.config.get('tinyae_version')}, "
          f"format {ckpt.config.get('format_version')}, dtype {model.dtype}")
    say(_which_epoch(history.records, ckpt.extra.get("args", {}).get("epochs"), history.stopped))
    say(_model_kind(model, ckpt))
    model.summary()
    if history.records:
        terms = any(r.penalty for r in history.records)     # a sparse model: show both terms
        print()
        say("epoch  loss      val_loss  seconds  lr (last step)"
              + ("  reconstruction  penalty" if terms else ""))
        for r in history.records:
            val = "" if r.val_loss is None else f"{r.val_loss:.5f}"
            say(f"{r.epoch:>5}  {r.loss:.5f}  {val:<8}  {r.seconds:>7.1f}  {r.lr:<14.3g}"
                  + (f"  {r.reconstruction:>14.5f}  {r.penalty:.5f}" if terms else ""))
    if isinstance(ckpt.schedule, dict):
        state = ", ".join(f"{k}={v}" for k, v in ckpt.schedule.items() if k != "name")
        say(f"lr schedule: {ckpt.schedule.get('name')}({state})")
    for key, value in metrics.items():
        say(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def _model_kind(model, ckpt):
    """One line: the model's class, the --model it was trained as, and its options."""
    kind = (ckpt.extra.get("args") or {}).get("model")
    detail = ""
    if isinstance(model, (SparseAutoencoder, ContractiveAutoencoder)):
        detail = f", code penalty {model.code_penalty!r}" + (
            f", weight decay {model.weight_decay:.2g}" if getattr(model, "weight_decay", 0) else "")
    elif isinstance(model, DenoisingAutoencoder):
        detail = f", noise {model.noise.spec}"
    elif isinstance(model, ConditionalVAE):
        detail = f", {model.n_classes} classes (tinyae sample --digit D draws one)"
    return f"model: {type(model).__name__}" + (f" (--model {kind})" if kind else "") + detail


def cmd_robustness(args):
    _outputs(args, "robustness.png", "png")
    if args.json:
        safety.require_suffix(args.json, ".json", "--json")
        safety.check_outputs({"--json": args.json}, [args.checkpoint], kinds={"--json": "text"},
                             force=args.force)
    ckpt, model = io.read_model(args.checkpoint)
    X, _, name = _checkpoint_data(args, ckpt)
    _probe(model, X)
    table = robustness.robustness_table(model, X, seed=args.seed)
    copy = robustness.copy_errors(model, n=min(len(X), 1000), seed=args.seed)
    kind = (ckpt.extra.get("args") or {}).get("model", type(model).__name__)
    print(printable(f"{args.checkpoint} ({kind}) on {len(X):,} {name} {args.split} images; "
                    "errors are squared error per image against the CLEAN images"))
    print(robustness.format_table(table, copy))
    robustness.figure(model, X, seed=args.seed, path=args.output)
    if args.json:
        report = {"table": table, "copy_error_per_image": copy, "n": len(X), "data": name}
        _write_text(args.json, json.dumps(report, indent=2))
    print(f"wrote {args.output}" + (f" and {args.json}" if args.json else ""))
    return 0


def _which_epoch(records, planned, stopped=None):
    """A sentence saying which epoch's weights the checkpoint holds (best.npz: an early one)."""
    if not records and stopped:
        return f"holds the starting weights: the run was {stopped.split(';')[0]}, before any " \
               "epoch finished"
    if not records:
        return "holds weights that were never trained with tinyae train (no history)"
    last, of = records[-1], f" of {planned}" if planned else ""
    text = f"holds the weights after epoch {last.epoch}{of}"
    val = last.whole_val_loss           # None, or one of comparable_val_losses(records)
    if val is not None and val <= min(comparable_val_losses(records)):
        text += f" (validation loss {val:.5f}, the lowest up to then)"
    return text


def cmd_sample(args):
    _outputs(args, "samples.png", "png")
    ckpt, model = io.read_model(args.checkpoint, conditional=True)
    rng = np.random.default_rng(args.seed)
    if isinstance(model, ConditionalVAE) or args.digit is not None:
        return _sample_digit(args, model, rng)
    X_fit = None
    if not hasattr(model, "sample"):       # a plain autoencoder: a Gaussian fitted to its codes
        X_fit, _, _ = _checkpoint_data(args, ckpt)
    if X_fit is not None:               # the codes a Gaussian is fitted to must be finite
        _probe(model, X_fit)
    with np.errstate(over="ignore", invalid="ignore"):     # judged below, in one line
        images = samples(model, args.n, rng, X_fit)
    _require_finite(images, "samples", "the model's weights overflow")
    how = ("from the prior N(0, I)" if X_fit is None else
           f"from a Gaussian fitted to the codes of {len(X_fit):,} {args.split} images")
    plot.image_grid(images, args.columns, path=args.output, title=f"{len(images)} samples {how}")
    print(f"wrote {len(images)} samples {how} to {args.output}")
    return 0


def _sample_digit(args, model, rng):
    """A conditional VAE's samples of the digit asked for; a clear error for any other model."""
    if not isinstance(model, ConditionalVAE):
        raise ValueError(f"--digit needs a conditional VAE (tinyae train --model cvae); "
                         f"{args.checkpoint!r} holds a {type(model).__name__}, which was trained "
                         "without labels and cannot be asked for a digit: leave --digit out")
    if args.digit is None:
        raise ValueError(f"{args.checkpoint!r} holds a conditional VAE, which draws the class "
                         f"you name: add --digit D (0 to {model.n_classes - 1})")
    if args.digit >= model.n_classes:
        raise ValueError(f"--digit {args.digit}: this model knows {model.n_classes} classes, "
                         f"0 to {model.n_classes - 1}")
    with np.errstate(over="ignore", invalid="ignore"):     # judged below, in one line
        images = model.sample(args.n, args.digit, rng)
    _require_finite(images, "samples", "the model's weights overflow")
    plot.image_grid(images, args.columns, path=args.output,
                    title=f"{len(images)} samples drawn with label {args.digit}")
    print(f"wrote {len(images)} samples of the digit {args.digit} (codes from the prior "
          f"N(0, I), decoded with its label) to {args.output}")
    return 0


# --- the parser ----------------------------------------------------------------------
FORCE_HELP = ("replace an existing output file even when it is not of the kind this command "
              "writes; inputs are never overwritten, --force or not")
SAFETY_EPILOG = ("Files: no command writes over one of its inputs (the checkpoint, the codes, "
                 "the data); an existing output is replaced only when it is of the kind the "
                 "command writes (or with --force), and a default output name (no -o) never "
                 "replaces a file without --force.")


def build_parser():
    p = argparse.ArgumentParser(prog="tinyae", description="Train and explore a NumPy autoencoder.",
                                epilog=SAFETY_EPILOG)
    p.add_argument("--version", action="version", version=f"tinyae {__version__}")
    p.add_argument("--debug", action="store_true", help="on an error, show the traceback")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, description=None):
        q = sub.add_parser(name, help=help, description=description or help, epilog=SAFETY_EPILOG)
        # also after the command; SUPPRESS keeps a --debug given before it
        q.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an error, show the traceback (default off; may also come "
                       "before the command)")
        return q

    t = command("train", "train an autoencoder and write checkpoint, metrics, figures",
                policy.description())
    t.formatter_class = argparse.RawDescriptionHelpFormatter      # keeps the kinds' table
    t.epilog = textwrap.fill(SAFETY_EPILOG, 79)                  # raw text is not wrapped
    policy.add_arguments(t)
    t.set_defaults(run=cmd_train)

    def data_args(q):
        q.add_argument("--data", choices=DATA_CHOICES, help="data set (default: the one trained on)")
        q.add_argument("--split", choices=("train", "test"), default="test",
                       help="which split (default test)")
        q.add_argument("--limit", type=positive(int), help="use only the first N images (default: all)")

    def output_args(q, default, kind):
        q.add_argument("-o", "--output", help=f"the {kind} file to write (default {default})")
        q.add_argument("--force", action="store_true", help=FORCE_HELP)

    checkpoint_help = "a .npz checkpoint, e.g. runs/<time>/last.npz"
    e = command("encode", "encode a data set to latent codes (.npy)")
    e.add_argument("checkpoint", help=checkpoint_help)
    data_args(e)
    output_args(e, "codes.npy", ".npy")
    e.add_argument("--labels", help="also write the labels to this .npy file (default: no labels)")
    e.set_defaults(run=cmd_encode)

    d = command("decode", "decode latent codes (.npy) into an image grid (.png)")
    d.add_argument("checkpoint", help=checkpoint_help)
    d.add_argument("codes", help=".npy array of shape (N, latent size)")
    output_args(d, "decoded.png", ".png")
    d.add_argument("--columns", type=positive(int, MAX_COLUMNS),
                   help=f"columns of the grid, at most {MAX_COLUMNS} (default: about square; "
                   f"at most {MAX_COLUMNS} rows)")
    d.add_argument("--max-images", type=_at_least(0), default=400, metavar="N",
                   help=f"decode at most the first N codes, 0 for all up to "
                   f"{MAX_COLUMNS * MAX_COLUMNS:,} (default 400: a 20 x 20 grid)")
    d.set_defaults(run=cmd_decode)

    v = command("evaluate", "make a run's metrics and figures from its checkpoint",
                "Measure a checkpoint as tinyae train does at the end of a run (metrics.json, "
                "history, figures), on the data and --limit the run recorded: for a run "
                "stopped before they were made.")
    v.add_argument("checkpoint", help=checkpoint_help)
    v.add_argument("--out", help="folder to write into (default: the checkpoint's folder)")
    v.add_argument("--data", choices=DATA_CHOICES, help="data set (default: the one trained on)")
    v.add_argument("--force", action="store_true",
                   help="replace the metrics, history and figures already in the folder")
    v.set_defaults(run=cmd_evaluate)

    i = command("interpolate", "decode the path between two images' codes")
    i.add_argument("checkpoint", help=checkpoint_help)
    i.add_argument("--from", dest="source", type=int, required=True, help="index of the first image")
    i.add_argument("--to", dest="target", type=int, required=True, help="index of the second image")
    i.add_argument("--steps", type=_steps, default=10,
                   help=f"images in the strip, both ends included, 2 to {MAX_STEPS} (default 10)")
    i.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    data_args(i)
    output_args(i, "interpolation.png", ".png")
    i.set_defaults(run=cmd_interpolate)

    x = command("explore", "write an interactive latent-space explorer (.html)",
                "Write one self-contained HTML page: the latent map of a data split coloured by "
                "digit; the pointer decodes any point in the page, two clicks play the path "
                "between them. No server or network needed.")
    x.add_argument("checkpoint", help=checkpoint_help)
    data_args(x)
    output_args(x, "explore.html", ".html")
    x.set_defaults(run=cmd_explore)

    r = command("robustness", "error against clean images for noisy, rotated and flipped inputs; "
                "a figure",
                "Reconstruct clean, noisy (Gaussian 0.5), rotated (30 degrees) and flipped clean "
                "test images and print the squared error per image against the clean images (and "
                "how far each distortion moved the input itself); then feed images that are not "
                "digits (random pen strokes, and pure noise U(0, 1)) and print how far the output "
                "is from each (small: the model copies its input). Writes a figure with a row of "
                "inputs and a row of reconstructions for each.")
    r.add_argument("checkpoint", help=checkpoint_help)
    data_args(r)
    r.add_argument("--seed", type=seed, default=0, help="seed of the noise (default 0)")
    output_args(r, "robustness.png", ".png")
    r.add_argument("--json", help="also write the numbers to this .json file (default: none)")
    r.set_defaults(run=cmd_robustness)

    s = command("sample", "decode new random codes into an image grid (.png)",
                "A VAE decodes codes drawn from its prior N(0, I); a plain autoencoder has no "
                "prior, so its codes of the training images are fitted with one Gaussian and "
                "that is sampled (compare the two side by side).")
    s.add_argument("checkpoint", help=checkpoint_help)
    s.add_argument("-n", type=positive(int, MAX_COLUMNS * MAX_COLUMNS), default=64,
                   help="how many images, at most 10,000 (default 64)")
    output_args(s, "samples.png", ".png")
    s.add_argument("--columns", type=positive(int, MAX_COLUMNS),
                   help=f"columns of the grid, at most {MAX_COLUMNS} (default: about square)")
    s.add_argument("--seed", type=seed, default=0, help="seed of the random codes (default 0)")
    s.add_argument("--digit", type=digit, default=None,
                   help="the class to draw, 0-9: for a conditional VAE (--model cvae), which "
                        "needs it (no default); refused for other models")
    data_args(s)
    s.set_defaults(run=cmd_sample, split="train")

    n = command("info", "print which epoch a checkpoint holds, its architecture, history and "
                "metrics")
    n.add_argument("checkpoint", help=checkpoint_help)
    n.set_defaults(run=cmd_info)

    course.add_commands(command)
    anomaly.add_commands(command)
    export.add_commands(command)
    return p


OS_FIXES = {errno.ENOSPC: "the disk is full: free some space or write elsewhere",
            errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
            errno.EACCES: "permission denied: check the permissions or choose another path",
            errno.EPERM: "permission denied: check the permissions or choose another path",
            errno.EROFS: "the file system is read-only: write elsewhere",
            errno.EISDIR: "it is a folder: give a file name",
            errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
            errno.ENOENT: "no such file or folder: check the path",
            errno.EEXIST: "it exists already: choose another name",
            errno.ENAMETOOLONG: "the name is too long: choose a shorter one"}


def error_message(exc):
    """One line for any error: what went wrong, with which file, and what to do."""
    if isinstance(exc, OSError) and exc.errno is not None:
        where = exc.filename if exc.filename is not None else "a file"
        fix = OS_FIXES.get(exc.errno, f"{exc.strerror}: check the path and try again")
        return f"{where}: {fix}"
    if isinstance(exc, (ValueError, OSError, FloatingPointError)):   # tinyae's own errors
        return str(exc)
    if isinstance(exc, MemoryError):
        return ("out of memory: this machine could not give the command the memory it asked "
                "for (README, Safety: what each command needs); use smaller --sizes, "
                "--batch-size or --limit, or close other programs")
    return (f"unexpected {type(exc).__name__}: {exc}; please report it with the output of "
            "the same command with --debug")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"tinyae {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # `tinyae info CKPT | head`: the reader stopped early
        # (before `except Exception`, which would catch it: BrokenPipeError is an OSError)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 1
    except Exception as exc:        # every failure: one line and exit code 1 (--debug: traceback)
        if args.debug:
            traceback.print_exc()
        print(f"tinyae {args.command}: error: {error_message(exc)}", file=sys.stderr)
        return 1
