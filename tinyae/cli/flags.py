"""The flags of ``tinyae train``: one policy for a new run, for ``--resume`` and for argparse.

Each flag has one parser (``PARSE``): argparse uses it on the text typed, and a value read
back from a checkpoint is valid only when its text parses back to the same value, so a file
is held to the bounds of the command line. The defaults of a new run are the common
``DEFAULTS``, then its model kind's (``tinyae.models.kinds.KINDS``). A checkpoint records
every flag that shapes the run (``recorded``); ``resume`` restores them and refuses a different
one given on the command line unless told to override it, and never one that decides the
saved model itself.
"""
import argparse
import math
import textwrap

from ..io import checkpoint as io
from ..models.autoencoder import SEED_SIZES
from ..models.kinds import KINDS
from ..nn.schedules import ANNEALS
from ..nn.corrupt import parse
from ..nn.schedules import NAMES as SCHEDULES
from ..train.threads import thread_setting
from .runs import encoder_sizes

MAX_EPOCHS = 100_000        # --epochs and --pretrain-epochs, given or read from a checkpoint
MAX_BATCH = 1 << 20         # --batch-size, likewise
MIN_LIMIT = 10              # the 5-NN accuracy after training needs more than 5 training codes
DATA_CHOICES = ("auto", "mnist", "fashion", "builtin")


class RunError(ValueError):
    """A training run that cannot start as asked (e.g. flags that contradict --resume)."""


# --- parsers: text -> value, or argparse.ArgumentTypeError naming the rule ----------------
def positive(kind, most=None):
    """A finite number > 0 (and at most ``most``)."""
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


def _number_in(low, high, shown):
    """A finite number with low <= x < high (``shown``: the range as the message says it)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value < high:
            raise argparse.ArgumentTypeError(f"wants a number {shown}, got {text!r}")
        return value + 0.0                      # -0 is 0
    return parse


def _open_unit(text):
    value = _number_in(0, 1, "in (0, 1)")(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"wants a number in (0, 1), got {text!r}")
    return value


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


def _limit(text):
    value = positive(int)(text)
    if value < MIN_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{value} images are too few to train and measure: the 5-NN accuracy of the codes "
            f"needs more than 5 training images and validation holds some out; give "
            f"--limit {MIN_LIMIT} or more")
    return value


def seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"wants a whole number >= 0, got {text!r}")
    return value


def _noise(text):
    try:
        return parse(text).spec
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def digit(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 9:
        raise argparse.ArgumentTypeError(f"wants a digit 0-9, got {text!r}")
    return value


def _threads(text):
    try:
        return thread_setting(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# A weight of a loss term: finite (--beta inf would make every loss infinite) and >= 0.
_weight = _number_in(0, math.inf, ">= 0 and finite")
PARSE = {"sizes": _sizes, "epochs": positive(int, MAX_EPOCHS),
         "batch_size": positive(int, MAX_BATCH), "lr": positive(float), "seed": seed,
         "limit": _limit, "validation": _validation, "threads": _threads,
         "warmup": positive(float), "adam_beta2": _number_in(0, 1, "in [0, 1), e.g. 0.999"),
         "noise": _noise, "rho": _open_unit, "beta": _weight, "l1": _weight,
         "weight_decay": _weight, "pretrain_epochs": positive(int, MAX_EPOCHS),
         "hold_out": digit}
CHOICES = {"data": DATA_CHOICES, "schedule": SCHEDULES, "anneal": ANNEALS,
           "penalty": ("kl", "l1"), "pretrain": ("autoencoder", "rbm"), "loss": ("mse", "bce")}
OPTIONAL = ("limit", "threads", "warmup", "hold_out")   # None: all images, auto, the schedule's
                                                        # own, every digit


def valid(key, value):
    """Whether ``value``, read back from a checkpoint, is one the command line could have set."""
    if key == "model":
        return isinstance(value, str) and value in KINDS
    if key in CHOICES:
        return isinstance(value, str) and value in CHOICES[key] and value != "auto"
    if value is None:
        return key in OPTIONAL
    if isinstance(value, bool) or not isinstance(value, (int, float, str, list, tuple)):
        return False
    try:
        parsed = PARSE[key](show(value))
    except argparse.ArgumentTypeError:
        return False
    return parsed == (tuple(value) if isinstance(value, list) else value)


def flag(key):
    return "--" + key.replace("_", "-")


def show(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


# --- a new run ---------------------------------------------------------------------
DEFAULTS = {"data": "auto", "sizes": SEED_SIZES, "epochs": 20, "batch_size": 256, "lr": 1e-3,
            "seed": 0, "limit": None, "validation": "test", "threads": None,
            "schedule": "none", "warmup": None, "model": "ae", "noise": "gaussian:0.5",
            "penalty": "kl", "rho": 0.05, "beta": 0.01, "l1": 1e-4, "weight_decay": 0.0,
            "pretrain_epochs": 5, "anneal": "cos", "adam_beta2": 0.999, "hold_out": None,
            "pretrain": "autoencoder", "loss": "mse"}
ONECYCLE_LR = 4e-3          # --lr's default (the peak) under onecycle, for every kind


def new_run(given):
    """The flags of a new run: those ``given``, then the kind's defaults, then the common ones."""
    kind = KINDS[given.get("model", DEFAULTS["model"])]
    flags = {**DEFAULTS, **kind.defaults, **given}
    if flags["schedule"] == "onecycle":         # the peak, descent, beta2 measured with it
        flags.update({k: v for k, v in {"lr": ONECYCLE_LR, **kind.onecycle}.items()
                      if k not in given})
    if flags["pretrain"] == "rbm" and "loss" not in given:
        flags["loss"] = "bce"                   # the 2006 recipe fine-tunes on cross-entropy
    return flags


def check_given(given, flags, resuming, override):
    """Refuse a given flag that this run would not apply: another kind's option, the other
    penalty's setting, --override without --resume, --anneal without onecycle.
    ``flags``: the run's (new or restored)."""
    if override and not resuming:
        raise RunError("--override changes flags of a resumed run; without --resume there is "
                       "nothing to override: leave it out")
    kind = KINDS[flags["model"]]
    for key in sorted(set(given) & kind.unused(flags)):
        other, value, what = kind.requires[key]
        raise RunError(f"{flag(key)} sets {what}, but this run's {flag(other)} is "
                       f"{flags[other]}; leave {flag(key)} out, or choose that {flag(other)}")
    for key in sorted(set(given) & (set(MODEL_FLAGS) - {"model", *kind.options})):
        owners = [k.name for k in KINDS.values() if key in k.options]
        names = ", ".join(owners[:-1]) + " or " + owners[-1] if len(owners) > 1 else owners[0]
        raise RunError(f"{flag(key)} is an option of --model {names}, and this run is --model "
                       f"{kind.name}, which would not use it; leave {flag(key)} out, or train "
                       f"--model {owners[0] if len(owners) == 1 else 'one of those'}")
    if "anneal" in given and flags["schedule"] != "onecycle":
        raise RunError(f"--anneal {given['anneal']} shapes the descent of --schedule onecycle, "
                       f"but this run's schedule is {flags['schedule']}; add --schedule "
                       "onecycle, or leave --anneal out.")


def recorded(flags):
    """The flags a checkpoint records: all but the options of the other model kinds."""
    unused = set(MODEL_FLAGS) - {"model", *KINDS[flags["model"]].options}
    return {k: v for k, v in flags.items() if k not in unused}


# --- resuming: every flag that shapes the run comes back from the checkpoint --------------
# The flags that decide the weights after each epoch (--epochs only says where to stop).
RUN_FLAGS = ("data", "sizes", "batch_size", "lr", "seed", "limit", "validation", "schedule",
             "warmup", "anneal", "adam_beta2", "hold_out")
# Flags added after checkpoints existed: one that a checkpoint does not record had its default
# (DEFAULTS: a constant lr, the cosine, 0.999), so a different value given on --resume needs
# --override like any other.
LATER_FLAGS = ("schedule", "warmup", "anneal", "adam_beta2")
# Flags added later whose default is what every run did before them (every digit, greedy
# autoencoder levels, the squared error): a checkpoint without one had the default, taken
# without a note.
OFF_LATER_FLAGS = ("hold_out", "pretrain", "loss")
# The model kind and its options decide them too; checkpoints older than --model have none
# (they are plain autoencoders), so a missing one is taken from the defaults without a note.
MODEL_FLAGS = ("model", *dict.fromkeys(o for k in KINDS.values() for o in k.options))
# Flags that decide the saved model itself: --resume continues that model, so a different value
# cannot be applied, even with --override (a new model needs a new run). A kind's ``in_model``
# options are the same for that kind.
SHAPES_MODEL = ("model", "sizes", "pretrain_epochs", "pretrain")
# Flags that change only the rounding (BLAS sums split differently): restored, but a new
# value given is taken with a note rather than refused.
ROUNDING_FLAGS = ("threads",)


def saved_flags(ckpt):
    """The training flags ``ckpt`` records, in today's form.

    A VAE saved before tinyae recorded its code width lists --sizes as its
    body's widths alone (784,512,256,64 for 784,512,256,64,2): read from the
    saved model with ``encoder_sizes``, the code width is put back, so that the
    flags it was trained with resume it.
    """
    saved = ckpt.extra.get("args", {})
    if not (isinstance(saved, dict) and saved.get("model") == "vae"):
        return saved
    sizes = encoder_sizes(io.load(ckpt), [])     # checks the config like tinyae.load
    return {**saved, "sizes": sizes} if saved.get("sizes") == sizes[:-1] else saved


def resume(saved, given, override=False, path="the checkpoint"):
    """The run's flags on ``--resume``: the checkpoint's, with ``given`` (explicit) ones checked.

    Returns (flags, notes). A given flag that differs from the saved one raises
    ``RunError`` unless ``override``, when it wins and a note says so.
    """
    if not isinstance(saved, dict):
        raise RunError(f"{path}: the recorded training flags are malformed; cannot resume from it.")
    kind = KINDS.get(saved.get("model"))
    fixed = SHAPES_MODEL + (kind.in_model if kind else ())
    flags, notes = {}, []
    for key in RUN_FLAGS + MODEL_FLAGS + ROUNDING_FLAGS + ("epochs",):
        if key in saved and not valid(key, saved[key]):
            raise RunError(f"{path}: the recorded {flag(key)} {saved[key]!r} is not valid; "
                           "cannot resume from it.")
        s = tuple(saved[key]) if key == "sizes" and key in saved else saved.get(key)
        recorded_here = key in saved
        # Another kind's option is never recorded: given, check_given refuses it by name.
        elsewhere = key in MODEL_FLAGS and key != "model" and kind and key not in kind.options
        if not recorded_here and key in OFF_LATER_FLAGS and not elsewhere:
            s, recorded_here = DEFAULTS[key], True
        if not recorded_here and key in LATER_FLAGS:    # saved before the flag: it had the default
            s, recorded_here = DEFAULTS[key], True
            notes.append(f"{path} does not record {flag(key)}; using {show(s)}")
        if not recorded_here:
            flags[key] = given.get(key, DEFAULTS[key])
            if key in RUN_FLAGS:
                notes.append(f"{path} does not record {flag(key)}; using {show(flags[key])}")
        elif key not in given or given[key] == s or key == "epochs" \
                or (key == "data" and given[key] == "auto"):
            flags[key] = given.get(key, s) if key == "epochs" else s
        elif key in fixed:
            why = ("decides the saved model itself" if key in SHAPES_MODEL else
                   "is part of the saved model")
            raise RunError(f"{flag(key)} {show(given[key])} differs from the {show(s)} of "
                           f"{path}, which {why}; --resume continues that model as it is "
                           f"(even with --override); leave {flag(key)} out to resume, or train "
                           "a new model with it.")
        elif override or key in ROUNDING_FLAGS:
            flags[key] = given[key]
            why = "--override: " if key not in ROUNDING_FLAGS else ""
            notes.append(f"{why}{flag(key)} is {show(given[key])} now, {show(s)} in {path}; "
                         "the run will differ from an uninterrupted one")
        else:
            raise RunError(f"{flag(key)} {show(given[key])} conflicts with the {show(s)} that "
                           f"{path} was trained with; leave {flag(key)} out to continue the "
                           "same run, or add --override to change it.")
    return flags, notes


# --- argparse: the same parsers, with the help a newcomer reads --------------------------
def description():
    """``tinyae train --help``'s text above the flags, with a line per registered kind."""
    kinds = "\n".join(textwrap.fill(k.help, 79, initial_indent=f"  {k.name:<10} ",
                                    subsequent_indent=" " * 13, break_on_hyphens=False)
                      for k in KINDS.values())
    return ("Train an autoencoder (default: the seed model, the autoencoder of the blog\n"
            "post tinyae started from: 784-512-256-64-2, ReLU, sigmoid out, MSE, Adam) and\n"
            "write last.npz, best.npz, history, metrics.json and figures to --out. The\n"
            "flags that shape the run are stored in the checkpoints; --resume restores\n"
            f"them all.\n\nmodel kinds (--model):\n{kinds}")


def add_arguments(t):
    """The flags of ``tinyae train`` on the argparse parser ``t``."""
    keep = argparse.SUPPRESS                # absent unless given: --resume tells given from default
    t.add_argument("--model", choices=tuple(KINDS), default=keep,
                   help="model kind (default ae; see above)")
    t.add_argument("--data", choices=DATA_CHOICES, default=keep,
                   help="auto: MNIST, else the built-in digits (default); mnist never falls back")
    t.add_argument("--sizes", type=PARSE["sizes"], default=keep,
                   help="encoder widths, input to latent (default 784,512,256,64,2; at most "
                   "100,000,000 parameters in all)")
    t.add_argument("--epochs", type=PARSE["epochs"], default=keep,
                   help="epochs in all, at most 100,000 (default 20; with --resume: the "
                   "checkpoint's)")
    t.add_argument("--batch-size", type=PARSE["batch_size"], default=keep, help="default 256")
    t.add_argument("--lr", type=PARSE["lr"], default=keep,
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
    t.add_argument("--adam-beta2", type=PARSE["adam_beta2"], default=keep, metavar="BETA2",
                   help="Adam's second-moment decay, in [0, 1) (default 0.99 for --model ae "
                   "under onecycle, else 0.999 as in torch.optim.Adam)")
    t.add_argument("--warmup", type=PARSE["warmup"], metavar="EPOCHS", default=keep,
                   help="warm-up length in epochs for onecycle and warmup, may be a fraction "
                   "(default: 30%% of training for onecycle, 5%% for warmup)")
    t.add_argument("--weight-decay", type=PARSE["weight_decay"], default=keep, metavar="LAMBDA",
                   help="L2 weight decay, >= 0. sparse: (LAMBDA / 2) * sum of the squared "
                   "weights joins the penalty (default 7.7e-6: UFLDL's 3e-3 at the per-pixel "
                   "scale of the MSE); the other kinds: Adam's weight_decay, LAMBDA * p added to "
                   "every gradient as in torch.optim.Adam (default 0)")
    t.add_argument("--seed", type=PARSE["seed"], default=keep,
                   help="seed for the initial weights and the shuffling (default 0)")
    t.add_argument("--validation", type=PARSE["validation"], default=keep, metavar="test|none|FRACTION",
                   help="what best.npz is chosen on: the test split (default), none, or a "
                   "fraction of the training set held out")
    t.add_argument("--limit", type=PARSE["limit"], default=keep,
                   help=f"use only the first N images of each split, at least {MIN_LIMIT} "
                   "(default: all)")
    t.add_argument("--hold-out", type=PARSE["hold_out"], metavar="DIGIT", default=keep,
                   help="leave this digit out of the training and the test images (the run "
                   "never sees one, nor chooses best.npz on one): a model for tinyae anomaly "
                   "CKPT --digit DIGIT (default: every digit)")
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
    t.add_argument("--threads", type=PARSE["threads"], metavar="N|auto", default=keep,
                   help="BLAS threads for the matmuls (default auto: chosen by timing steps "
                        "while training, re-checked every few hundred steps; or TINYAE_THREADS)")
    g = t.add_argument_group("model options (each used by one --model kind, or a few)")
    g.add_argument("--loss", choices=CHOICES["loss"], default=keep,
                   help="the reconstruction loss trained on, per pixel: mse (squared error) or "
                   "bce (cross-entropy, Hinton & Salakhutdinov's); every kind but vae, cvae "
                   "and conv-vae, whose loss is their ELBO (default mse; bce for --pretrain "
                   "rbm)")
    g.add_argument("--noise", type=PARSE["noise"], default=keep, metavar="KIND:LEVEL",
                   help="denoising: gaussian:STD (clipped to [0, 1]), masking:FRACTION or "
                   "salt_and_pepper:FRACTION (default gaussian:0.5)")
    g.add_argument("--penalty", choices=CHOICES["penalty"], default=keep,
                   help="sparse: kl (sigmoid code, UFLDL) or l1 (ReLU code) (default kl)")
    g.add_argument("--rho", type=PARSE["rho"], default=keep,
                   help="sparse, kl: target mean activation, in (0, 1) (default 0.05)")
    g.add_argument("--beta", type=PARSE["beta"], default=keep,
                   help="sparse, kl: penalty weight, relative to the per-pixel MSE (default "
                   "0.01); vae: weight of the KL term, >= 0 (default 1, the ELBO); "
                   "contractive: lambda, the weight of ||J_f(x)||_F^2 (default 1e-5)")
    g.add_argument("--l1", type=PARSE["l1"], default=keep,
                   help="sparse, l1: weight of the L1 penalty (default 1e-4)")
    g.add_argument("--pretrain-epochs", type=PARSE["pretrain_epochs"], default=keep,
                   help="stacked: greedy epochs per level before fine-tuning (default 5)")
    g.add_argument("--pretrain", choices=CHOICES["pretrain"], default=keep,
                   help="stacked: how the levels are pretrained: autoencoder (each level "
                   "H0-H1-H0 with Adam, ReLU units; the default) or rbm (Hinton & "
                   "Salakhutdinov 2006: an RBM per level trained by CD-1, sigmoid units, a "
                   "linear code, then unrolled)")
