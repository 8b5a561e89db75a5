"""Training runs: their folders, and what ``--resume`` brings back.

One training run writes into a folder at a time.

A run claims its folder by creating ``.tinyae-run.lock`` exclusively (O_EXCL)
with its process id inside; a second run into the same folder is refused and
told that pid. A lock left by a run that was killed (its pid is gone) is taken
over. Default folders are ``runs/<timestamp>``, created with ``mkdir`` (which
fails when the folder exists), adding ``-2``, ``-3``... until one is new, so two
runs started in the same second never share one.

A run's checkpoints record every flag that shapes it (``TRAIN_DEFAULTS``);
``resume_flags`` restores them and refuses a different one given on the
command line unless told to override it.
"""
import math
import os
import socket
import time
from pathlib import Path

import numpy as np

from ..io.checkpoint import alive
from ..io.safety import UnsafePathError
from ..models.autoencoder import SEED_SIZES
from ..models.variants import WEIGHT_DECAY
from ..nn.schedules import ANNEALS, NAMES

LOCK = ".tinyae-run.lock"
RUN_FILES = ("last.npz", "best.npz", "history.json", "history.csv", "metrics.json")


def new_run_folder(parent="runs"):
    """Create and return a fresh folder ``parent/<YYYYmmdd-HHMMSS>[-k]``."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 10_000):
        folder = Path(parent) / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise UnsafePathError(f"could not create a new run folder in {parent!r}; pass --out")


class RunFolder:
    """Context manager: hold ``folder``'s lock while a run writes into it."""

    def __init__(self, folder, created=False):
        self.folder = Path(folder)
        self.lock = self.folder / LOCK
        self.held, self.created = False, created     # created: remove it again if left empty

    def __enter__(self):
        self.created = self.created or not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                busy = self._busy()
                if busy:
                    raise UnsafePathError(
                        f"{str(self.folder)!r} is in use by another tinyae run ({busy}); wait "
                        f"for it to finish or choose another --out. If that run is gone, "
                        f"delete {str(self.lock)!r}.") from None
                self.lock.unlink(missing_ok=True)       # left by a run that died: take it over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            return self
        raise UnsafePathError(f"could not lock {str(self.folder)!r}; another run keeps claiming it")

    def _busy(self):
        """Who holds the lock ("pid 123", ...), or None when its run is gone."""
        try:
            pid, host = (self.lock.read_text().split() + [socket.gethostname()])[:2]
            pid = int(pid)
        except (OSError, ValueError):
            # Being written this instant by the other run, or garbage: a fresh one is busy.
            try:
                young = time.time() - self.lock.stat().st_mtime < 5
            except OSError:
                return None
            return "starting now" if young else None
        if host != socket.gethostname():                # cannot look at another machine's pids
            return f"pid {pid} on {host}"
        return f"pid {pid}" if pid != os.getpid() and alive(pid) else None

    def __exit__(self, *exc):
        if self.held:
            self.lock.unlink(missing_ok=True)
            self.held = False
        if self.created:
            try:
                self.folder.rmdir()                     # only succeeds when nothing was written
            except OSError:
                pass

    def earlier_run_files(self):
        """Names of files of an earlier run already in the folder."""
        return [name for name in RUN_FILES if (self.folder / name).exists()]


# --- resuming: every flag that shapes the run comes back from the checkpoint --------------
MAX_EPOCHS = 100_000        # --epochs and --pretrain-epochs, given or read from a checkpoint
MAX_BATCH = 1 << 20         # --batch-size, likewise
TRAIN_DEFAULTS = {"data": "auto", "sizes": SEED_SIZES, "epochs": 20,
                  "batch_size": 256, "lr": 1e-3, "seed": 0, "limit": None, "validation": "test",
                  "threads": None, "schedule": "none", "warmup": None, "model": "ae",
                  "noise": "gaussian:0.5", "penalty": "kl",
                  "rho": 0.05, "beta": 0.01, "l1": 1e-4, "weight_decay": 0.0,
                  "pretrain_epochs": 5, "anneal": "cos", "adam_beta2": 0.999}
DEFAULT_SIZES = {"sparse": (784, 196)}      # other kinds: TRAIN_DEFAULTS["sizes"]
# The lr recipe of a new run (docs/results.md): for the plain autoencoder, one-cycle with a peak
# of 4e-3 lowers the test MSE and raises the 5-NN accuracy on each of seeds 0, 1 and 2 against
# the constant 1e-3; a straight descent with Adam's beta2 at 0.99 then lowers the MSE on each
# of seeds 0 to 8 and raises the 5-NN accuracy on eight of them. The other kinds were not
# measured: they keep the constant lr (and, under onecycle, the cosine and 0.999).
# Checkpoints that record no schedule had a constant one, and those that record no anneal
# or beta2 had the cosine and 0.999 (TRAIN_DEFAULTS).
DEFAULT_SCHEDULE = {"ae": "onecycle"}       # other kinds: TRAIN_DEFAULTS["schedule"]
ONECYCLE_LR = 4e-3                          # --lr's default (the peak) under onecycle
ONECYCLE_RECIPE = {"ae": {"anneal": "linear", "adam_beta2": 0.99}}   # also under onecycle
DEFAULT_BETA = {"vae": 1.0}                 # the ELBO; other kinds: TRAIN_DEFAULTS["beta"]
# UFLDL's weight decay for a new sparse run; sparse checkpoints from before --weight-decay
# had none, so a missing one is TRAIN_DEFAULTS' 0.
DEFAULT_WEIGHT_DECAY = {"sparse": WEIGHT_DECAY}
# The flags that decide the weights after each epoch (--epochs only says where to stop).
RUN_FLAGS = ("data", "sizes", "batch_size", "lr", "seed", "limit", "validation", "schedule",
             "warmup", "anneal", "adam_beta2")
# Flags added after checkpoints existed: one that a checkpoint does not record had its default
# (TRAIN_DEFAULTS), so a different value given on --resume needs --override like any other.
LATER_FLAGS = ("schedule", "warmup", "anneal", "adam_beta2")
# The model kind and its options decide them too; checkpoints older than --model have none
# (they are plain autoencoders), so a missing one is taken from the defaults without a note.
MODEL_FLAGS = ("model", "noise", "penalty", "rho", "beta", "l1", "weight_decay",
               "pretrain_epochs")
# The options each kind's saved model config holds (a sparse model's weight decay is in its
# penalty; the other kinds' is Adam's): a resumed model keeps them, so --override cannot
# change them.
IN_MODEL_CONFIG = {"denoising": ("noise",), "sparse": ("penalty", "rho", "beta", "l1",
                                                     "weight_decay"), "vae": ("beta",)}
KIND_OPTIONS = {"ae": ("weight_decay",), "denoising": ("noise", "weight_decay"),
                "sparse": ("penalty", "rho", "beta", "l1", "weight_decay"),
                "stacked": ("pretrain_epochs", "weight_decay"), "vae": ("beta", "weight_decay")}


# The options that decide which penalty a sparse model pays: the others belong to the other one.
PENALTY_OPTIONS = {"kl": ("rho", "beta"), "l1": ("l1",)}
# Flags that decide the saved model itself: --resume continues that model, so a different value
# cannot be applied, even with --override (a new model needs a new run).
SHAPES_MODEL = ("model", "sizes", "pretrain_epochs")


def check_given_flags(given, flags, resuming, override):
    """Refuse a given flag that this run would not apply: another kind's option, the other
    penalty's setting, --override without --resume. ``flags``: the run's (new or restored)."""
    if override and not resuming:
        raise RunError("--override changes flags of a resumed run; without --resume there is "
                       "nothing to override: leave it out")
    kind, unused = flags["model"], set(MODEL_FLAGS) - {"model", *KIND_OPTIONS[flags["model"]]}
    if kind == "sparse":
        unused |= set(PENALTY_OPTIONS["l1" if flags["penalty"] == "kl" else "kl"])
    for key in sorted(set(given) & unused):
        owner = " or --model ".join(k for k, opts in KIND_OPTIONS.items()
                                    if key in opts and k != kind)
        if kind == "sparse" and key in sum(PENALTY_OPTIONS.values(), ()):
            raise RunError(f"{_flag(key)} sets the {'KL' if key != 'l1' else 'L1'} penalty, but "
                           f"this run's --penalty is {flags['penalty']}; leave {_flag(key)} "
                           "out, or choose that --penalty")
        raise RunError(f"{_flag(key)} is an option of --model {owner}, and this run is --model "
                       f"{kind}, which would not use it; leave {_flag(key)} out, or train "
                       f"--model {owner}")


def recorded_flags(flags):
    """The flags a checkpoint records: all but the options of the other model kinds."""
    unused = set(MODEL_FLAGS) - {"model", *KIND_OPTIONS[flags["model"]]}
    return {k: v for k, v in flags.items() if k not in unused}
# Flags that change only the rounding (BLAS sums split differently): restored, but a new
# value given is taken with a note rather than refused.
ROUNDING_FLAGS = ("threads",)


class RunError(ValueError):
    """A training run that cannot start as asked (e.g. flags that contradict --resume)."""


def _flag(key):
    return "--" + key.replace("_", "-")


def _show(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _valid(key, v):
    """Whether a value read back from a checkpoint's JSON is a sound value for ``key``."""
    num = isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = {"data": lambda: v in ("mnist", "fashion", "builtin"),
          "sizes": lambda: isinstance(v, (list, tuple)) and len(v) >= 2
          and all(type(s) is int and s >= 1 for s in v),
          "epochs": lambda: type(v) is int and 1 <= v <= MAX_EPOCHS,
          "batch_size": lambda: type(v) is int and 1 <= v <= MAX_BATCH,
          "lr": lambda: num and 0 < v < float("inf"),
          "seed": lambda: type(v) is int and v >= 0,
          "limit": lambda: v is None or (type(v) is int and v >= 1),
          "validation": lambda: v in ("test", "none") or (num and 0 < v < 1),
          "threads": lambda: v in (None, "auto") or (type(v) is int and v >= 1),
          "schedule": lambda: v in NAMES,
          "warmup": lambda: v is None or (num and 0 < v < float("inf")),
          "anneal": lambda: v in ANNEALS,
          "adam_beta2": lambda: num and 0 <= v < 1,
          "model": lambda: v in KIND_OPTIONS,
          "noise": lambda: isinstance(v, str) and _parses_as_noise(v),
          "penalty": lambda: v in ("kl", "l1"),
          "rho": lambda: num and 0 < v < 1,
          "beta": lambda: num and 0 <= v < float("inf"),
          "l1": lambda: num and 0 <= v < float("inf"),
          "weight_decay": lambda: num and 0 <= v < float("inf"),
          "pretrain_epochs": lambda: type(v) is int and 1 <= v <= MAX_EPOCHS}[key]
    return ok()


def _parses_as_noise(text):
    from ..nn.corrupt import parse
    try:
        parse(text)
    except ValueError:
        return False
    return True


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
    from .. import io
    sizes = encoder_sizes(io.load(ckpt), [])     # checks the config like tinyae.load
    return {**saved, "sizes": sizes} if saved.get("sizes") == sizes[:-1] else saved


def resume_flags(saved, given, override=False, path="the checkpoint"):
    """The run's flags on ``--resume``: the checkpoint's, with ``given`` (explicit) ones checked.

    Returns (flags, notes). A given flag that differs from the saved one raises
    ``RunError`` unless ``override``, when it wins and a note says so.
    """
    if not isinstance(saved, dict):
        raise RunError(f"{path}: the recorded training flags are malformed; cannot resume from it.")
    flags, notes = {}, []
    for key in RUN_FLAGS + MODEL_FLAGS + ROUNDING_FLAGS + ("epochs",):
        if key in saved and not _valid(key, saved[key]):
            raise RunError(f"{path}: the recorded {_flag(key)} {saved[key]!r} is not valid; "
                           "cannot resume from it.")
        s = tuple(saved[key]) if key == "sizes" and key in saved else saved.get(key)
        recorded = key in saved
        if not recorded and key in LATER_FLAGS:     # saved before the flag: it had the default
            s, recorded = TRAIN_DEFAULTS[key], True
            notes.append(f"{path} does not record {_flag(key)}; using {_show(s)}")
        if not recorded:
            flags[key] = given.get(key, TRAIN_DEFAULTS[key])
            if key in RUN_FLAGS:
                notes.append(f"{path} does not record {_flag(key)}; using {_show(flags[key])}")
        elif key not in given or given[key] == s or key == "epochs" \
                or (key == "data" and given[key] == "auto"):
            flags[key] = given.get(key, s) if key == "epochs" else s
        elif key in SHAPES_MODEL:
            raise RunError(f"{_flag(key)} {_show(given[key])} differs from the {_show(s)} of "
                           f"{path}, which decides the saved model itself; --resume continues "
                           f"that model as it is (even with --override); leave {_flag(key)} out "
                           "to resume, or train a new model with it.")
        elif key in IN_MODEL_CONFIG.get(saved.get("model"), ()):
            raise RunError(f"{_flag(key)} {_show(given[key])} differs from the {_show(s)} of "
                           f"{path}, and it is part of the saved model, which --resume "
                           f"continues as it is (even with --override); leave {_flag(key)} out "
                           "to resume, or train a new model with it.")
        elif override or key in ROUNDING_FLAGS:
            flags[key] = given[key]
            why = "--override: " if key not in ROUNDING_FLAGS else ""
            notes.append(f"{why}{_flag(key)} is {_show(given[key])} now, {_show(s)} in {path}; "
                         "the run will differ from an uninterrupted one")
        else:
            raise RunError(f"{_flag(key)} {_show(given[key])} conflicts with the {_show(s)} that "
                           f"{path} was trained with; leave {_flag(key)} out to continue the "
                           "same run, or add --override to change it.")
    return flags, notes


# --- the model, optimiser and history a run starts from ------------------------------
def encoder_sizes(model, default):
    """The --sizes of a dense autoencoder: its encoder's widths (``default`` for other models).

    A VAE's encoder is its body; its code width is that of its mu head.
    """
    from ..nn.layers import Dense, Sequential
    layers = model.encoder if isinstance(model.encoder, Sequential) else [model.encoder]
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    dense += [model.mu_head] if isinstance(getattr(model, "mu_head", None), Dense) else []
    return [dense[0].in_features] + [d.out_features for d in dense] if dense else list(default)


def build_model(flags):
    """A new model of kind ``flags["model"]`` (ae, denoising, sparse, stacked, vae) from the flags.

    A stacked model is a dense autoencoder here; the run trains its levels greedily
    (``tinyae.train.stacked.pretrain``) before ``fit`` fine-tunes it.
    """
    import tinyae as ta
    rng, sizes = np.random.default_rng(flags["seed"]), flags["sizes"]
    if flags["model"] == "denoising":
        return ta.denoising_autoencoder(sizes, flags["noise"], rng=rng)
    if flags["model"] == "vae":
        return ta.variational_autoencoder(sizes, beta=flags["beta"], rng=rng)
    if flags["model"] == "sparse":
        return ta.sparse_autoencoder(sizes, flags["penalty"], rho=flags["rho"],
                                     beta=flags["beta"], l1=flags["l1"],
                                     weight_decay=flags["weight_decay"], rng=rng)
    return ta.dense_autoencoder(sizes, rng=rng)


def adam(model, flags):
    """The run's Adam, betas (0.9, --adam-beta2). --weight-decay is Adam's own (PyTorch's:
    g <- g + lambda p for every parameter) except for a sparse model, whose penalty holds it
    (UFLDL's, weights only)."""
    import tinyae as ta
    decay = 0.0 if flags["model"] == "sparse" else flags["weight_decay"]
    return ta.Adam(model.parameters(), lr=flags["lr"], betas=(0.9, flags["adam_beta2"]),
                   weight_decay=decay)


def model_and_state(flags, ckpt):
    """(model, optimizer, history): new from the flags, or continued from ``ckpt``."""
    from .. import io
    from ..train.loop import History
    if ckpt is None:
        model = build_model(flags)
        return model, adam(model, flags), History()
    model = io.load(ckpt)                               # checks the config like tinyae.load
    optimizer = adam(model, flags)
    if ckpt.optim:
        try:
            optimizer.load_state_dict(ckpt.optim)
        except (ValueError, KeyError) as exc:
            raise io.CheckpointError(f"{ckpt.path!r}: its optimiser state does not fit ({exc}); "
                                     "it cannot be resumed exactly.") from None
    history = checked_history(ckpt)
    history.stopped = None                              # this run says why it stops, if it does
    return model, optimizer, history


def checked_history(ckpt):
    """The checkpoint's training history, checked field by field."""
    from ..io.checkpoint import CheckpointError
    from ..train.loop import History
    d = ckpt.extra.get("history") or {}
    try:
        history = History.from_dict(d)
        for r in history.records:
            numbers = (r.loss, r.seconds, r.lr, r.reconstruction, r.penalty) + tuple(
                v for v in (r.val_loss, r.val_penalty) if v is not None)
            if type(r.epoch) is not int or not isinstance(r.step_lr, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in numbers + tuple(r.step_lr)):
                raise TypeError(f"record {r}")
            if not all(math.isfinite(v) for v in numbers + tuple(r.step_lr)):
                raise ValueError(f"epoch {r.epoch} holds NaN or an infinite value")
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{ckpt.path!r}: the training history it records is malformed "
                              f"({type(exc).__name__}: {str(exc)[:80]}); the file was altered.") from None
    return history
