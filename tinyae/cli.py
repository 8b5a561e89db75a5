"""The ``tinyae`` command: train the seed model, then encode, decode, interpolate, inspect."""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .data import load_dataset

DATA_CHOICES = ("auto", "mnist", "fashion", "builtin")
MODEL_CHOICES = ("ae", "denoising", "sparse", "stacked", "vae")
DEFAULT_SIZES = {"sparse": (784, 196)}          # the others default to the seed's sizes
SEED_SIZES = (784, 512, 256, 64, 2)
DEFAULT_BETA = {"sparse": 0.01, "vae": 1.0}


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


def _noise(text):
    from .corrupt import parse
    try:
        return parse(text).spec
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


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
                "limit": args.limit, "validation": args.validation, **_model_args(args)}
    extra = {"args": run_args}
    if args.model == "stacked" and not args.resume:
        extra["pretraining"] = _pretrain(model, X, args)
    checkpoints = Checkpointer(out, extra=extra, history=history)
    if not args.quiet:
        what = "fine-tuning" if args.model == "stacked" else f"training {args.model}"
        print(f"{what} {'-'.join(map(str, args.sizes))} on {data_name} ({len(X):,} images) "
              f"for {args.epochs} epochs; writing to {out}", file=sys.stderr)
    validation = {"test": (Xt,), "none": None}.get(args.validation, args.validation)
    history = fit(model, X, epochs=args.epochs, batch_size=args.batch_size, optimizer=optimizer,
                  validation=validation, seed=args.seed, history=history,
                  callbacks=[checkpoints], progress=not args.quiet)
    if history.stopped:
        print(f"stopped: {history.stopped}", file=sys.stderr)

    m = metrics.evaluate_autoencoder(model, X, y, Xt, yt)
    if args.model == "vae":
        from .vae_eval import evaluate_vae
        m.update(evaluate_vae(model, X, y, Xt, yt, seed=args.seed))
    m.update({"data": data_name, "seed": args.seed, "epochs": len(history.records)})
    checkpoints.extra["metrics"] = m
    checkpoints.save_last(model, optimizer, history)
    _write_text(out / "history.json", json.dumps(history.to_dict(), indent=2))
    _write_text(out / "history.csv", history.to_csv())
    _write_text(out / "metrics.json", json.dumps(m, indent=2))
    _figures(model, Xt, yt, history, out)
    if args.model == "vae":
        _vae_figures(model, args.seed, out)
        print(f"test negative ELBO {m['test_neg_elbo_per_image']:.2f} nats per image "
              f"(reconstruction {m['test_reconstruction_per_image']:.2f} + KL "
              f"{m['test_kl_per_image']:.2f}); log p(x) >= {m['test_log_px_iw100']:.2f} "
              f"(importance-weighted, k=100)")
    print(f"test MSE per pixel {m['test_mse_per_pixel']:.4f} (PCA-2 "
          f"{m['pca2_test_mse_per_pixel']:.4f}), squared error per image "
          f"{m['test_sq_error_per_image']:.2f} (PCA-30 {m['pca30_test_sq_error_per_image']:.2f}); "
          f"5-NN accuracy of the codes "
          f"{m['knn5_accuracy_latent']:.3f} (PCA-2 {m['knn5_accuracy_pca2']:.3f})")
    print(f"wrote {out}")
    return 0


def _model_args(args):
    """The flags that shape the model kind, for the checkpoint's JSON."""
    options = {"denoising": {"noise": args.noise},
               "sparse": {"penalty": args.penalty, "rho": args.rho, "beta": args.beta,
                          "l1": args.l1},
               "stacked": {"pretrain_epochs": args.pretrain_epochs},
               "vae": {"beta": args.beta}}
    return {"model": args.model, **options.get(args.model, {})}


def build_model(args):
    """A new model of kind ``args.model`` (ae, denoising, sparse, stacked) from the flags."""
    import tinyae as ta
    rng = np.random.default_rng(args.seed)
    if args.model == "denoising":
        return ta.denoising_autoencoder(args.sizes, args.noise, rng=rng)
    if args.model == "vae":
        return ta.variational_autoencoder(args.sizes, beta=args.beta, rng=rng)
    if args.model == "sparse":
        return ta.sparse_autoencoder(args.sizes, args.penalty, rho=args.rho, beta=args.beta,
                                     l1=args.l1, rng=rng)
    return ta.dense_autoencoder(args.sizes, rng=rng)    # ae; stacked is pretrained after this


def _pretrain(model, X, args):
    """Greedy layer-wise training of a stacked model, before its fine-tuning by fit."""
    from .stacked import pretrain
    histories = pretrain(model, X, args.pretrain_epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, progress=not args.quiet)
    return [h.to_dict() for h in histories]


def _start_or_resume(args):
    """(model, optimizer, history, out folder): new from the flags, or from --resume."""
    import tinyae as ta
    from . import io
    from .train import History
    if not args.resume:
        args.sizes = args.sizes or DEFAULT_SIZES.get(args.model, SEED_SIZES)
        if args.beta is None:                            # --beta means a different thing to each
            args.beta = DEFAULT_BETA.get(args.model, 0.01)
        model = build_model(args)
        out = Path(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
        return model, ta.Adam(model.parameters(), lr=args.lr), History(), out
    ckpt = io.read_checkpoint(args.resume)
    saved = ckpt.extra.get("args", {})
    args.data = saved.get("data", args.data)           # the run continues on its own data
    args.sizes = tuple(saved.get("sizes") or args.sizes or SEED_SIZES)
    args.model = saved.get("model", "ae")               # and keeps its model kind and options
    for key, value in saved.items():
        if key in ("noise", "penalty", "rho", "beta", "l1", "pretrain_epochs"):
            setattr(args, key, value)
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
    plot.image_strip(model.decode(lerp(Z[i], Z[j], 10).astype(model.dtype)),
                     path=out / "interpolation.png", title=f"test image {i} to test image {j}")
    plot.loss_curves(history, path=out / "loss.png")


def _vae_figures(model, seed, out):
    """A VAE's own figures: prior samples and, for a 2-D code, the quantile grid."""
    from . import plot
    from .vae_eval import quantile_grid_figure
    images = model.sample(64, np.random.default_rng(seed))
    plot.image_grid(images, 8, path=out / "samples.png", title="decoded samples from N(0, I)")
    if model.latent_width == 2:
        quantile_grid_figure(model, path=out / "quantile_grid.png")


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
    images = model.decode(np.atleast_2d(Z).astype(model.dtype))
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


def cmd_info(args):
    from . import io
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    print(f"{args.checkpoint}: tinyae {ckpt.config.get('tinyae_version')}, "
          f"format {ckpt.config.get('format_version')}, dtype {model.dtype}")
    model.summary()
    records = ckpt.extra.get("history", {}).get("records", [])
    if records:
        terms = any(r.get("penalty") for r in records)     # a sparse or variational model's
        print("\nepoch  loss      val_loss  seconds" + ("  reconstruction  penalty" if terms else ""))
        for r in records:
            val = "" if r["val_loss"] is None else f"{r['val_loss']:.5f}"
            extra = f"  {r['reconstruction']:<14.5f}  {r['penalty']:.5f}" if terms else ""
            print(f"{r['epoch']:>5}  {r['loss']:.5f}  {val:<8}  {r['seconds']:>7.1f}{extra}")
    for key, value in (ckpt.extra.get("metrics") or {}).items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0


def cmd_robustness(args):
    from . import io, robustness
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    X, _, name = _checkpoint_data(args, ckpt)
    table = robustness.robustness_table(model, X, seed=args.seed)
    copy = robustness.copy_error(model, n=min(len(X), 1000), seed=args.seed)
    kind = ckpt.extra.get("args", {}).get("model", type(model).__name__)
    print(f"{args.checkpoint} ({kind}) on {len(X):,} {name} {args.split} images; errors are "
          "squared error per image against the CLEAN images")
    print(robustness.format_table(table, copy))
    robustness.figure(model, X, seed=args.seed, path=args.output)
    if args.json:
        from .io import atomic_write
        report = {"table": table, "copy_error_per_image": copy, "n": len(X), "data": name}
        atomic_write(args.json, lambda f: f.write(json.dumps(report, indent=2).encode()))
    print(f"wrote {args.output}" + (f" and {args.json}" if args.json else ""))
    return 0


def cmd_sample(args):
    from . import io, plot
    from .vae_eval import samples
    ckpt = io.read_checkpoint(args.checkpoint)
    model = io.load(ckpt)
    rng = np.random.default_rng(args.seed)
    X_fit = None
    if not hasattr(model, "sample"):       # a plain autoencoder: a Gaussian fitted to its codes
        X_fit, _, _ = _checkpoint_data(args, ckpt)
    images = samples(model, args.n, rng, X_fit)
    how = ("from the prior N(0, I)" if X_fit is None else
           f"from a Gaussian fitted to the codes of {len(X_fit):,} {args.split} images")
    plot.image_grid(images, args.columns, path=args.output, title=f"{len(images)} samples {how}")
    print(f"wrote {len(images)} samples {how} to {args.output}")
    return 0


# --- the parser ----------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(prog="tinyae", description="Train and explore a NumPy autoencoder.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train an autoencoder and write checkpoint, metrics, figures",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train an autoencoder (default: the seed model 784-512-256-64-2, "
                       "ReLU,\nsigmoid out, MSE, Adam) and write last.npz, best.npz, history, "
                       "metrics.json\nand figures to --out.\n\n"
                       "model kinds (--model):\n"
                       "  ae         the plain autoencoder\n"
                       "  denoising  trained on corrupted inputs with clean targets (--noise)\n"
                       "  sparse     a penalty on the code: KL sparsity on a sigmoid code (--rho, "
                       "--beta)\n             or L1 on a ReLU code (--penalty l1 --l1); default "
                       "sizes 784,196\n"
                       "  stacked    each level H0-H1-H0, H1-H2-H1, ... trained greedily for\n"
                       "             --pretrain-epochs on the codes below it, then all levels "
                       "fine-tuned\n             together for --epochs\n"
                       "  vae        variational: Gaussian code (mu, logvar heads), loss = BCE "
                       "summed over\n             pixels + --beta * KL(q(z|x) || N(0, I)) per "
                       "image; needs 3+ sizes,\n             e.g. 784,400,20 (pytorch/examples)")
    t.add_argument("--model", choices=MODEL_CHOICES, default="ae",
                   help="model kind (default ae; see above)")
    t.add_argument("--data", choices=DATA_CHOICES, default="auto",
                   help="auto: MNIST, else the built-in digits (default); mnist never falls back")
    t.add_argument("--sizes", type=_sizes, default=None,
                   help="encoder widths, input to latent (default 784,512,256,64,2; "
                   "784,196 for sparse)")
    t.add_argument("--epochs", type=_positive(int), default=20, help="epochs in all; for stacked, the fine-tuning epochs (default 20)")
    t.add_argument("--batch-size", type=_positive(int), default=256, help="default 256")
    t.add_argument("--lr", type=_positive(float), default=1e-3, help="Adam learning rate (default 1e-3)")
    t.add_argument("--seed", type=int, default=0,
                   help="seed for the initial weights and the shuffling (default 0)")
    t.add_argument("--validation", type=_validation, default="test", metavar="test|none|FRACTION",
                   help="what best.npz is chosen on: the test split (default), none, or a "
                   "fraction of the training set held out")
    t.add_argument("--limit", type=_positive(int), help="use only the first N images of each split")
    t.add_argument("--out", help="output folder (default runs/<timestamp>)")
    t.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (with optimiser state)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    g = t.add_argument_group("model options (each used by one --model kind)")
    g.add_argument("--noise", type=_noise, default="gaussian:0.5", metavar="KIND:LEVEL",
                   help="denoising: gaussian:STD (clipped to [0, 1]), masking:FRACTION or "
                   "salt_and_pepper:FRACTION (default gaussian:0.5)")
    g.add_argument("--penalty", choices=("kl", "l1"), default="kl",
                   help="sparse: kl (sigmoid code, UFLDL) or l1 (ReLU code) (default kl)")
    g.add_argument("--rho", type=float, default=0.05,
                   help="sparse, kl: target mean activation, in (0, 1) (default 0.05)")
    g.add_argument("--beta", type=float, default=None,
                   help="sparse, kl: penalty weight, relative to the per-pixel MSE (default "
                   "0.01); vae: weight of the KL term, >= 0 (default 1, the ELBO)")
    g.add_argument("--l1", type=float, default=1e-4,
                   help="sparse, l1: weight of the L1 penalty (default 1e-4)")
    g.add_argument("--pretrain-epochs", type=_positive(int), default=5,
                   help="stacked: greedy epochs per level before fine-tuning (default 5)")
    t.set_defaults(run=cmd_train)

    def data_args(q):
        q.add_argument("--data", choices=DATA_CHOICES, help="data set (default: the one trained on)")
        q.add_argument("--split", choices=("train", "test"), default="test")
        q.add_argument("--limit", type=_positive(int), help="use only the first N images")

    e = sub.add_parser("encode", help="encode a data set to latent codes (.npy)")
    e.add_argument("checkpoint")
    data_args(e)
    e.add_argument("-o", "--output", default="codes.npy")
    e.add_argument("--labels", help="also write the labels to this .npy file")
    e.set_defaults(run=cmd_encode)

    d = sub.add_parser("decode", help="decode latent codes (.npy) into an image grid (.png)")
    d.add_argument("checkpoint")
    d.add_argument("codes", help=".npy array of shape (N, latent size)")
    d.add_argument("-o", "--output", default="decoded.png")
    d.add_argument("--columns", type=_positive(int))
    d.set_defaults(run=cmd_decode)

    i = sub.add_parser("interpolate", help="decode the path between two images' codes")
    i.add_argument("checkpoint")
    i.add_argument("--from", dest="source", type=int, required=True, help="index of the first image")
    i.add_argument("--to", dest="target", type=int, required=True, help="index of the second image")
    i.add_argument("--steps", type=_positive(int), default=10)
    i.add_argument("--slerp", action="store_true", help="spherical instead of linear interpolation")
    data_args(i)
    i.add_argument("-o", "--output", default="interpolation.png")
    i.set_defaults(run=cmd_interpolate)

    r = sub.add_parser("robustness", help="error against clean images for noisy, rotated and "
                       "flipped inputs; a figure",
                       description="Reconstruct clean, noisy (Gaussian 0.5), rotated (30 degrees) "
                       "and flipped clean test images and print the squared error per image against the "
                       "clean images (and how far each distortion moved the input itself); then "
                       "feed pure noise U(0, 1) and print how far the output is from that noise "
                       "(small: the model copies its input). Writes a figure with a row of inputs "
                       "and a row of reconstructions for each.")
    r.add_argument("checkpoint")
    data_args(r)
    r.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    r.add_argument("-o", "--output", default="robustness.png", help="the figure (default "
                   "robustness.png)")
    r.add_argument("--json", help="also write the numbers to this JSON file")
    r.set_defaults(run=cmd_robustness)

    s = sub.add_parser("sample", help="decode new random codes into an image grid (.png)",
                       description="A VAE decodes codes drawn from its prior N(0, I); a plain "
                       "autoencoder has no prior, so its codes of the training images are fitted "
                       "with one Gaussian and that is sampled (compare the two side by side).")
    s.add_argument("checkpoint")
    s.add_argument("-n", type=_positive(int), default=64, help="how many images (default 64)")
    s.add_argument("-o", "--output", default="samples.png")
    s.add_argument("--columns", type=_positive(int))
    s.add_argument("--seed", type=int, default=0, help="seed of the random codes (default 0)")
    data_args(s)
    s.set_defaults(run=cmd_sample, split="train")
    n = sub.add_parser("info", help="print a checkpoint's architecture, history and metrics")
    n.add_argument("checkpoint")
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
