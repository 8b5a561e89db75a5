"""The ``tinyae`` command: train the seed model, then encode, decode, interpolate, inspect;
check a student's layer and write student versions of the tutorials (``course``)."""
import argparse
import contextlib
import errno
import json
import math
import os
import sys
import textwrap
import time
import traceback
from functools import partial
from pathlib import Path

import numpy as np

from ..data.mnist import load_dataset
from ..io import safety
from ..nn.schedules import ANNEALS
from ..nn.schedules import NAMES as SCHEDULES
from .runs import MAX_BATCH, MAX_EPOCHS

DATA_CHOICES = ("auto", "mnist", "fashion", "builtin")
MODEL_CHOICES = ("ae", "denoising", "sparse", "stacked", "vae")
MAX_STEPS = 100             # images in an interpolation strip
MAX_COLUMNS = 100           # columns (and rows) of a decoded grid
FIGURES = ("reconstructions.png", "latent.png", "grid.png", "interpolation.png", "loss.png")


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


MIN_LIMIT = 10      # the 5-NN accuracy after training needs more than 5 training codes


def _train_limit(text):
    value = _positive(int)(text)
    if value < MIN_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{value} images are too few to train and measure: the 5-NN accuracy of the codes "
            f"needs more than 5 training images and validation holds some out; give "
            f"--limit {MIN_LIMIT} or more")
    return value


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


def _positive(kind, most=None):
    """argparse type: a finite number > 0 (and at most ``most``)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {text}")
        return value
    return parse


def _beta2(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"wants a number in [0, 1), e.g. 0.999, got {text!r}")
    return value + 0.0                          # -0 is 0


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"wants a whole number >= 0, got {text!r}")
    return value


def _steps(text):
    value = _positive(int, MAX_STEPS)(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"needs at least 2 steps (both ends), got {text}")
    return value


def _noise(text):
    from ..nn.corrupt import parse
    try:
        return parse(text).spec
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threads(text):
    from ..train.threads import thread_setting
    try:
        return thread_setting(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# --- train ---------------------------------------------------------------------------
def cmd_train(args):
    from .. import io
    from .runs import (DEFAULT_BETA, DEFAULT_SCHEDULE, DEFAULT_SIZES, DEFAULT_WEIGHT_DECAY,
                       ONECYCLE_LR, ONECYCLE_RECIPE, TRAIN_DEFAULTS, RunFolder,
                       check_given_flags, new_run_folder, resume_flags, saved_flags)
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if hasattr(args, k)}   # typed flags
    ckpt = io.read_checkpoint(args.resume) if args.resume else None
    if ckpt is None:
        flags, notes = {**TRAIN_DEFAULTS, **given}, []
        if "sizes" not in given:                        # a sparse model's default is UFLDL's
            flags["sizes"] = DEFAULT_SIZES.get(flags["model"], TRAIN_DEFAULTS["sizes"])
        if "schedule" not in given:
            flags["schedule"] = DEFAULT_SCHEDULE.get(flags["model"], TRAIN_DEFAULTS["schedule"])
        if flags["schedule"] == "onecycle":             # the peak, descent, beta2 measured with it
            recipe = {"lr": ONECYCLE_LR, **ONECYCLE_RECIPE.get(flags["model"], {})}
            flags.update({k: v for k, v in recipe.items() if k not in given})
        if "beta" not in given:                         # --beta weighs a different term per kind
            flags["beta"] = DEFAULT_BETA.get(flags["model"], TRAIN_DEFAULTS["beta"])
        if "weight_decay" not in given:
            flags["weight_decay"] = DEFAULT_WEIGHT_DECAY.get(flags["model"], 0.0)
    else:
        flags, notes = resume_flags(saved_flags(ckpt), given, args.override,
                                    repr(args.resume))
    check_given_flags(given, flags, ckpt is not None, args.override)
    if "anneal" in given and flags["schedule"] != "onecycle":
        raise ValueError(f"--anneal {given['anneal']} shapes the descent of --schedule onecycle, "
                         f"but this run's schedule is {flags['schedule']}; add --schedule "
                         "onecycle, or leave --anneal out.")
    out = Path(args.out) if args.out else new_run_folder()
    with RunFolder(out, created=not args.out) as run:
        kinds = {"last.npz": "npz", "best.npz": "npz", "history.json": "text",
                 "history.csv": "text", "metrics.json": "text", **dict.fromkeys(FIGURES, "png")}
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
    from ..evaluate import metrics
    from ..train.loop import Checkpointer, fit, resolve_backend
    from ..train.stops import SIGNALS, stopped_by_signal
    from .runs import encoder_sizes, model_and_state, recorded_flags
    model, optimizer, history = model_and_state(flags, ckpt)     # a size error comes first
    X, y, data_name = load_dataset(flags["data"], "train", flags["limit"], progress=not args.quiet)
    Xt, yt, _ = load_dataset(data_name, "test", flags["limit"], progress=False)
    if model.input_width != X.shape[1]:
        raise ValueError(f"the model takes {model.input_width} features per image but the "
                         f"{data_name} images have {X.shape[1]}; check --sizes")
    if len(history.records) >= flags["epochs"]:
        raise ValueError(f"{args.resume!r} already holds {len(history.records)} epochs; ask for "
                         f"more with --epochs (e.g. --epochs {len(history.records) + 10}).")
    if "best.npz" in earlier:                   # --force: no best.npz of another run stays
        (out / "best.npz").unlink()
    backend = resolve_backend()                 # TINYAE_BACKEND: same maths, other rounding
    saved = (ckpt.extra.get("args") or {}) if ckpt else {}
    if ckpt and saved.get("backend", backend) != backend:
        print(f"tinyae train: {args.resume!r} was trained on the {saved['backend']} backend and "
              f"continues on {backend}: the same maths, but not bit for bit the same numbers "
              f"(TINYAE_BACKEND={saved['backend']} to match).", file=sys.stderr)
    run_args = {**recorded_flags(flags), "data": data_name,
                "sizes": encoder_sizes(model, flags["sizes"]), "backend": backend}
    extra = {"args": run_args}
    if flags["model"] == "stacked" and ckpt is None:    # greedy levels first, then fit fine-tunes
        extra["pretraining"] = _pretrain(model, X, flags, args.quiet)
    elif ckpt is not None and "pretraining" in ckpt.extra:
        extra["pretraining"] = ckpt.extra["pretraining"]
    schedule = _schedule(flags, optimizer, len(X), len(history.records), ckpt)
    checkpoints = Checkpointer(out, extra=extra, history=history, schedule=schedule)
    if not args.quiet:
        what = "fine-tuning stacked" if flags["model"] == "stacked" else f"training {flags['model']}"
        descent = f", {flags['anneal']} descent" if flags["schedule"] == "onecycle" else ""
        print(f"{what} {'-'.join(map(str, run_args['sizes']))} on {data_name} ({len(X):,} "
              f"images) for {flags['epochs']} epochs, lr schedule {flags['schedule']} (peak "
              f"{flags['lr']:g}{descent}), Adam beta2 {flags['adam_beta2']}; writing to {out}",
              file=sys.stderr)
    validation = {"test": (Xt,), "none": None}.get(flags["validation"], flags["validation"])
    history = fit(model, X, epochs=flags["epochs"], batch_size=flags["batch_size"],
                  optimizer=optimizer, validation=validation, seed=flags["seed"], history=history,
                  callbacks=[checkpoints], progress=not args.quiet, threads=flags["threads"],
                  schedule=schedule)
    if history.stopped:
        print(f"stopped: {history.stopped}", file=sys.stderr)
    signum = stopped_by_signal(history)
    if signum:          # asked to end: keep the work, skip the evaluation, exit non-zero
        checkpoints.save_last(model, optimizer, history)
        print(f"tinyae train: stopped by {SIGNALS[signum]}; {out / 'last.npz'} holds "
              f"{len(history.records)} finished epochs (go on with tinyae train --resume "
              f"{out / 'last.npz'}); the metrics and figures were not made", file=sys.stderr)
        return 128 + signum

    with _end_on_signal(f"the trained model is in {out / 'last.npz'} and {out / 'best.npz'}, "
                        "but the metrics and figures were not made"):
        say = (lambda *a, **k: None) if args.quiet else partial(print, file=sys.stderr, flush=True)
        say(f"evaluating the last model on {len(X):,} training and {len(Xt):,} test images: "
            "reconstruction error, the PCA-2 baseline, 5-NN accuracy of the codes; then the figures")
        started = time.perf_counter()
        chosen = history.records[-1].threads if history.records else None
        m = metrics.evaluate_autoencoder(model, X, y, Xt, yt, threads=flags["threads"] or chosen)
        if flags["model"] == "vae":
            from ..evaluate.vae_eval import evaluate_vae
            m.update(evaluate_vae(model, X, y, Xt, yt, seed=flags["seed"]))
        m.update({"data": data_name, "seed": flags["seed"], "epochs": len(history.records)})
        checkpoints.extra["metrics"] = m
        checkpoints.save_last(model, optimizer, history)
        _write_text(out / "history.json", json.dumps(history.to_dict(), indent=2))
        _write_text(out / "history.csv", history.to_csv())
        _write_text(out / "metrics.json", json.dumps(m, indent=2))
        _figures(model, Xt, yt, history, out)
        if flags["model"] == "vae":
            _vae_figures(model, flags["seed"], out)
            print(f"test negative ELBO {m['test_neg_elbo_per_image']:.2f} nats per image "
                  f"(reconstruction {m['test_reconstruction_per_image']:.2f} + KL "
                  f"{m['test_kl_per_image']:.2f}); log p(x) >= {m['test_log_px_iw100']:.2f} "
                  f"(importance-weighted, k=100)")
        say(f"evaluated and drew the figures in {time.perf_counter() - started:.1f} s")
        per_image = ("" if "test_sq_error_per_image" not in m else   # (tests may stub the metrics)
                     f", squared error per image {m['test_sq_error_per_image']:.2f} (PCA-30 "
                     f"{m['pca30_test_sq_error_per_image']:.2f})")
        where = "" if data_name != "builtin" else (" (on the built-in digits, not MNIST: these "
                                                   "figures do not compare with MNIST's)")
        print(f"test MSE per pixel {m['test_mse_per_pixel']:.4f} (PCA-2 "
              f"{m['pca2_test_mse_per_pixel']:.4f}){per_image}; 5-NN accuracy of the codes "
              f"{m['knn5_accuracy_latent']:.3f} (PCA-2 {m['knn5_accuracy_pca2']:.3f}){where}")
        print(f"wrote {out}")
        return 0


@contextlib.contextmanager
def _end_on_signal(what):
    """Inside, SIGTERM and SIGHUP end the command at once with one line saying ``what``
    (every file is written atomically, so none is left half written)."""
    import signal

    from ..train.stops import SIGNALS

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
    from ..io.checkpoint import CheckpointError
    from ..nn import schedules
    from .runs import TRAIN_DEFAULTS
    saved_args = ckpt.extra.get("args", {}) if ckpt else {}
    same_curve = all(flags[k] == saved_args.get(k, TRAIN_DEFAULTS[k])
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


def _pretrain(model, X, flags, quiet):
    """Greedy layer-wise training of a stacked model, before its fine-tuning by fit."""
    from ..train.stacked import pretrain
    histories = pretrain(model, X, flags["pretrain_epochs"], batch_size=flags["batch_size"],
                         lr=flags["lr"], betas=(0.9, flags["adam_beta2"]), seed=flags["seed"],
                         progress=not quiet)
    return [h.to_dict() for h in histories]


def _figures(model, Xt, yt, history, out):
    """The five figures of a training run, from the test set."""
    from ..evaluate import metrics
    from ..viz import plot
    from ..viz.latent import latent_range, lerp
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


def _vae_figures(model, seed, out):
    """A VAE's own figures: prior samples and, for a 2-D code, the quantile grid."""
    from ..evaluate.vae_eval import quantile_grid_figure
    from ..viz import plot
    images = model.sample(64, np.random.default_rng(seed))
    plot.image_grid(images, 8, path=out / "samples.png", title="decoded samples from N(0, I)")
    if model.latent_width == 2:
        quantile_grid_figure(model, path=out / "quantile_grid.png")


def _write_text(path, text):
    from ..io.checkpoint import atomic_write
    atomic_write(path, lambda f: f.write(text.encode()))


# --- encode / decode / interpolate / info --------------------------------------------
def _checkpoint_data(args, ckpt):
    saved = ckpt.extra.get("args")
    saved = saved.get("data") if isinstance(saved, dict) else None
    kind = args.data or (saved if saved in DATA_CHOICES else "auto")
    return load_dataset(kind, args.split, args.limit, progress=False)


def _data_files(args):
    """Paths of the data files a command may read (so that no output lands on one)."""
    from .. import data
    if not hasattr(args, "data"):
        return []
    sets = {"mnist": [data.MNIST], "fashion": [data.FASHION_MNIST], "builtin": []}
    return [data.data_dir(ds) / name for ds in sets.get(args.data, [data.MNIST, data.FASHION_MNIST])
            for name in ds.files]


def _outputs(args, default, kind, extra=None):
    """Check -o (and ``extra`` outputs) before any work; an unnamed default never replaces a file."""
    if args.output is None:
        args.output = default
        if os.path.lexists(default) and not args.force:
            raise safety.UnsafePathError(
                f"{default!r} (the default -o) already exists; give -o a new name, or add "
                "--force to replace it.")
    outputs = {"-o": args.output, **(extra or {})}
    for role, path in outputs.items():
        if path is not None:
            safety.require_suffix(path, "." + kind, role)
    inputs = [args.checkpoint, getattr(args, "codes", None)] + _data_files(args)
    safety.check_outputs(outputs, inputs, kinds={r: kind for r in outputs}, force=args.force)


def cmd_encode(args):
    from .. import io
    from ..evaluate import metrics
    _outputs(args, "codes.npy", "npy", {"--labels": args.labels})
    ckpt = io.read_checkpoint(args.checkpoint, optimizer=False)
    model = io.load(ckpt)
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


def cmd_decode(args):
    from .. import io
    from ..viz import plot
    _outputs(args, "decoded.png", "png")
    model = io.load(io.read_checkpoint(args.checkpoint, optimizer=False))
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
        images = model.decode(Z)
    _require_finite(images, "decoded images", "the decoder's weights overflow on these codes")
    plot.image_grid(images, columns, path=args.output)
    print(f"decoded {len(images):,} codes into {args.output}")
    return 0


def cmd_interpolate(args):
    from .. import io
    from ..evaluate import metrics
    from ..viz import plot
    from ..viz.latent import lerp, slerp
    _outputs(args, "interpolation.png", "png")
    ckpt = io.read_checkpoint(args.checkpoint, optimizer=False)
    model = io.load(ckpt)
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
    plot.image_strip(images, path=args.output,
                     title=f"{kind} interpolation, {args.split} image {args.source} to {args.target}")
    print(f"wrote {args.output}")
    return 0


def cmd_explore(args):
    from .. import io
    from ..viz.explore import write_explorer
    _outputs(args, "explore.html", "html")
    ckpt = io.read_checkpoint(args.checkpoint, optimizer=False)
    model = io.load(ckpt)
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
    from .. import io
    from .runs import checked_history
    ckpt = io.read_checkpoint(args.checkpoint, optimizer=False)
    model = io.load(ckpt)
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
    from ..models.variants import DenoisingAutoencoder, SparseAutoencoder
    kind = (ckpt.extra.get("args") or {}).get("model")
    detail = ""
    if isinstance(model, SparseAutoencoder):
        detail = f", code penalty {model.code_penalty!r}" + (
            f", weight decay {model.weight_decay:.2g}" if model.weight_decay else "")
    elif isinstance(model, DenoisingAutoencoder):
        detail = f", noise {model.noise.spec}"
    return f"model: {type(model).__name__}" + (f" (--model {kind})" if kind else "") + detail


def cmd_robustness(args):
    from .. import io
    from ..evaluate import robustness
    _outputs(args, "robustness.png", "png")
    if args.json:
        safety.require_suffix(args.json, ".json", "--json")
        safety.check_outputs({"--json": args.json}, [args.checkpoint], kinds={"--json": "text"},
                             force=args.force)
    ckpt = io.read_checkpoint(args.checkpoint, optimizer=False)
    model = io.load(ckpt)
    X, _, name = _checkpoint_data(args, ckpt)
    with np.errstate(over="ignore", invalid="ignore"):     # a probe: judged in one line
        probe = model.reconstruct(X[:64])
    _require_finite(probe, "reconstructions of a probe batch", "the model's weights overflow")
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
    from ..train.loop import comparable_val_losses
    val = last.whole_val_loss           # None, or one of comparable_val_losses(records)
    if val is not None and val <= min(comparable_val_losses(records)):
        text += f" (validation loss {val:.5f}, the lowest up to then)"
    return text


def cmd_sample(args):
    from .. import io
    from ..evaluate.vae_eval import samples
    from ..viz import plot
    _outputs(args, "samples.png", "png")
    ckpt = io.read_checkpoint(args.checkpoint, optimizer=False)
    model = io.load(ckpt)
    rng = np.random.default_rng(args.seed)
    X_fit = None
    if not hasattr(model, "sample"):       # a plain autoencoder: a Gaussian fitted to its codes
        X_fit, _, _ = _checkpoint_data(args, ckpt)
    with np.errstate(over="ignore", invalid="ignore"):     # judged below, in one line
        if X_fit is not None:           # the codes a Gaussian is fitted to must be finite
            _require_finite(model.reconstruct(X_fit[:64]), "reconstructions of a probe batch",
                            "the model's weights overflow")
        images = samples(model, args.n, rng, X_fit)
    _require_finite(images, "samples", "the model's weights overflow")
    how = ("from the prior N(0, I)" if X_fit is None else
           f"from a Gaussian fitted to the codes of {len(X_fit):,} {args.split} images")
    plot.image_grid(images, args.columns, path=args.output, title=f"{len(images)} samples {how}")
    print(f"wrote {len(images)} samples {how} to {args.output}")
    return 0


# --- the parser ----------------------------------------------------------------------
FORCE_HELP = ("replace an existing output file even when it is not of the kind this command "
              "writes; inputs are never overwritten, --force or not")
SAFETY_EPILOG = ("Files: no command writes over one of its inputs (the checkpoint, the codes, "
                 "the data); an existing output is replaced only when it is of the kind the "
                 "command writes (or with --force), and a default output name (no -o) never "
                 "replaces a file without --force.")


def build_parser():
    from .. import __version__
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
                "Train an autoencoder (default: the seed model, the autoencoder of the blog\n"
                "post tinyae started from: 784-512-256-64-2, ReLU, sigmoid out, MSE, Adam) and\n"
                "write last.npz, best.npz, history, metrics.json and figures to --out. The\n"
                "flags that shape the run are stored in the checkpoints; --resume restores\n"
                "them all.\n\n"
                "model kinds (--model):\n"
                "  ae         the plain autoencoder\n"
                "  denoising  trained on corrupted inputs with clean targets (--noise)\n"
                "  sparse     a penalty on the code: KL sparsity on a sigmoid code (--rho,\n"
                "             --beta) or L1 on a ReLU code (--penalty l1 --l1), plus weight\n"
                "             decay (--weight-decay); default sizes 784,196\n"
                "  stacked    each level H0-H1-H0, H1-H2-H1, ... trained greedily for\n"
                "             --pretrain-epochs on the codes below it, then all levels\n"
                "             fine-tuned together for --epochs\n"
                "  vae        variational: Gaussian code (mu, logvar heads), loss = BCE summed\n"
                "             over pixels + --beta * KL(q(z|x) || N(0, I)) per image; needs 3+\n"
                "             sizes, e.g. 784,400,20 (pytorch/examples)")
    t.formatter_class = argparse.RawDescriptionHelpFormatter      # keeps the kinds' table
    t.epilog = textwrap.fill(SAFETY_EPILOG, 79)                  # raw text is not wrapped
    keep = argparse.SUPPRESS                # absent unless given: --resume tells given from default
    t.add_argument("--model", choices=MODEL_CHOICES, default=keep,
                   help="model kind (default ae; see above)")
    t.add_argument("--data", choices=DATA_CHOICES, default=keep,
                   help="auto: MNIST, else the built-in digits (default); mnist never falls back")
    t.add_argument("--sizes", type=_sizes, default=keep,
                   help="encoder widths, input to latent (default 784,512,256,64,2; at most "
                   "100,000,000 parameters in all)")
    t.add_argument("--epochs", type=_positive(int, MAX_EPOCHS), default=keep,
                   help="epochs in all, at most 100,000 (default 20; with --resume: the "
                   "checkpoint's)")
    t.add_argument("--batch-size", type=_positive(int, MAX_BATCH), default=keep, help="default 256")
    t.add_argument("--lr", type=_positive(float), default=keep,
                   help="Adam learning rate, finite and > 0; the peak of the schedule "
                   "(default 4e-3 with --schedule onecycle, else 1e-3)")
    t.add_argument("--schedule", choices=SCHEDULES, default=keep,
                   help="learning-rate schedule over the run (default onecycle for --model ae, "
                   "none for the other kinds): onecycle = linear warm-up over 30%% of the "
                   "steps, then down to ~0 (--anneal); cosine = cosine from --lr down to ~0; "
                   "step = lr / 10 after each third; warmup = linear warm-up, then "
                   "constant; none = constant lr. --resume continues the saved curve; epochs "
                   "past its end train at its final lr")
    t.add_argument("--anneal", choices=ANNEALS, default=keep,
                   help="how onecycle comes down from its peak: along a cosine or a straight "
                   "line (torch's anneal_strategy; default linear for --model ae, cos for the "
                   "other kinds)")
    t.add_argument("--adam-beta2", type=_beta2, default=keep, metavar="BETA2",
                   help="Adam's second-moment decay, in [0, 1) (default 0.99 for --model ae "
                   "under onecycle, else 0.999 as in torch.optim.Adam)")
    t.add_argument("--warmup", type=_positive(float), metavar="EPOCHS", default=keep,
                   help="warm-up length in epochs for onecycle and warmup, may be a fraction "
                   "(default: 30%% of training for onecycle, 5%% for warmup)")
    t.add_argument("--weight-decay", type=float, default=keep, metavar="LAMBDA",
                   help="L2 weight decay, >= 0. sparse: (LAMBDA / 2) * sum of the squared "
                   "weights joins the penalty (default 7.7e-6: UFLDL's 3e-3 at the per-pixel "
                   "scale of the MSE); the other kinds: Adam's weight_decay, LAMBDA * p added to "
                   "every gradient as in torch.optim.Adam (default 0)")
    t.add_argument("--seed", type=_seed, default=keep,
                   help="seed for the initial weights and the shuffling (default 0)")
    t.add_argument("--validation", type=_validation, default=keep, metavar="test|none|FRACTION",
                   help="what best.npz is chosen on: the test split (default), none, or a "
                   "fraction of the training set held out")
    t.add_argument("--limit", type=_train_limit, default=keep,
                   help=f"use only the first N images of each split, at least {MIN_LIMIT} "
                   "(default: all)")
    t.add_argument("--out", help="output folder (default: a new runs/<timestamp>); refused "
                   "while another run writes to it, or when it holds an earlier run (unless --force)")
    t.add_argument("--resume", metavar="CKPT",
                   help="continue from a checkpoint, with its optimiser state and all its "
                   "training flags, into a new folder (or --out); a flag given that differs "
                   "from the checkpoint's is an error unless --override (default: a new run)")
    t.add_argument("--override", action="store_true",
                   help="with --resume: let the flags given replace the checkpoint's training "
                   "flags (--lr, --batch-size, --schedule, --data, --seed, ...; the run then "
                   "differs from an uninterrupted one); what decides the saved model itself "
                   "(--model, --sizes, --pretrain-epochs, a kind's own options) cannot change")
    t.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds an earlier run's files")
    t.add_argument("--quiet", action="store_true",
                   help="print only the final metrics and the output folder: no header, "
                   "progress bar, epoch lines or evaluation line (errors and warnings still show)")
    t.add_argument("--threads", type=_threads, metavar="N|auto", default=keep,
                   help="BLAS threads for the matmuls (default auto: chosen by timing steps "
                        "while training, re-checked every few hundred steps; or TINYAE_THREADS)")
    g = t.add_argument_group("model options (each used by one --model kind)")
    g.add_argument("--noise", type=_noise, default=keep, metavar="KIND:LEVEL",
                   help="denoising: gaussian:STD (clipped to [0, 1]), masking:FRACTION or "
                   "salt_and_pepper:FRACTION (default gaussian:0.5)")
    g.add_argument("--penalty", choices=("kl", "l1"), default=keep,
                   help="sparse: kl (sigmoid code, UFLDL) or l1 (ReLU code) (default kl)")
    g.add_argument("--rho", type=float, default=keep,
                   help="sparse, kl: target mean activation, in (0, 1) (default 0.05)")
    g.add_argument("--beta", type=float, default=keep,
                   help="sparse, kl: penalty weight, relative to the per-pixel MSE (default "
                   "0.01); vae: weight of the KL term, >= 0 (default 1, the ELBO)")
    g.add_argument("--l1", type=float, default=keep,
                   help="sparse, l1: weight of the L1 penalty (default 1e-4)")
    g.add_argument("--pretrain-epochs", type=_positive(int, MAX_EPOCHS), default=keep,
                   help="stacked: greedy epochs per level before fine-tuning (default 5)")
    t.set_defaults(run=cmd_train)

    def data_args(q):
        q.add_argument("--data", choices=DATA_CHOICES, help="data set (default: the one trained on)")
        q.add_argument("--split", choices=("train", "test"), default="test",
                       help="which split (default test)")
        q.add_argument("--limit", type=_positive(int), help="use only the first N images (default: all)")

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
    d.add_argument("--columns", type=_positive(int, MAX_COLUMNS),
                   help=f"columns of the grid, at most {MAX_COLUMNS} (default: about square; "
                   f"at most {MAX_COLUMNS} rows)")
    d.add_argument("--max-images", type=_at_least(0), default=400, metavar="N",
                   help=f"decode at most the first N codes, 0 for all up to "
                   f"{MAX_COLUMNS * MAX_COLUMNS:,} (default 400: a 20 x 20 grid)")
    d.set_defaults(run=cmd_decode)

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
    r.add_argument("--seed", type=_seed, default=0, help="seed of the noise (default 0)")
    output_args(r, "robustness.png", ".png")
    r.add_argument("--json", help="also write the numbers to this .json file (default: none)")
    r.set_defaults(run=cmd_robustness)

    s = command("sample", "decode new random codes into an image grid (.png)",
                "A VAE decodes codes drawn from its prior N(0, I); a plain autoencoder has no "
                "prior, so its codes of the training images are fitted with one Gaussian and "
                "that is sampled (compare the two side by side).")
    s.add_argument("checkpoint", help=checkpoint_help)
    s.add_argument("-n", type=_positive(int, MAX_COLUMNS * MAX_COLUMNS), default=64,
                   help="how many images, at most 10,000 (default 64)")
    output_args(s, "samples.png", ".png")
    s.add_argument("--columns", type=_positive(int, MAX_COLUMNS),
                   help=f"columns of the grid, at most {MAX_COLUMNS} (default: about square)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the random codes (default 0)")
    data_args(s)
    s.set_defaults(run=cmd_sample, split="train")

    n = command("info", "print which epoch a checkpoint holds, its architecture, history and "
                "metrics")
    n.add_argument("checkpoint", help=checkpoint_help)
    n.set_defaults(run=cmd_info)

    from . import course  # check a student's layer; student versions of tutorials
    course.add_commands(command)
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
