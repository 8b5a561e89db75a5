"""Training runs: their folders, and what ``--resume`` brings back.

One training run writes into a folder at a time.

A run claims its folder by creating ``.tinyae-run.lock`` exclusively (O_EXCL)
with its process id inside; a second run into the same folder is refused and
told that pid. A lock left by a run that was killed (its pid is gone) is taken
over. Default folders are ``runs/<timestamp>``, created with ``mkdir`` (which
fails when the folder exists), adding ``-2``, ``-3``... until one is new, so two
runs started in the same second never share one.

What a run starts from: a new model of its kind (``tinyae.models.kinds``) and
its Adam, or the model, optimiser state and history of a checkpoint. Which
flags it runs with is ``cli/flags.py``'s business.
"""
import math
import os
import socket
import time
from pathlib import Path

import numpy as np

from ..io import checkpoint as io
from ..io.checkpoint import CheckpointError, alive
from ..io.safety import UnsafePathError
from ..models.kinds import KINDS
from ..nn.layers import Dense, Sequential
from ..nn.optim import Adam
from ..train.history import History

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


# --- the model, optimiser and history a run starts from ------------------------------
def encoder_sizes(model, default):
    """The --sizes of a dense autoencoder: its encoder's widths (``default`` for other models).

    A VAE's encoder is its body; its code width is that of its mu head. A conditional VAE's
    first width is its image's (the encoder reads the one-hot label too).
    """
    layers = model.encoder if isinstance(model.encoder, Sequential) else [model.encoder]
    if any(getattr(layer, "params", None) and not isinstance(layer, Dense) for layer in layers):
        return [model.input_width, model.latent_width]      # convolutions: input and code
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    dense += [model.mu_head] if isinstance(getattr(model, "mu_head", None), Dense) else []
    if not dense:
        return list(default)
    return ([dense[0].in_features - getattr(model, "n_classes", 0)]
            + [d.out_features for d in dense])


def build_model(flags):
    """A new model of kind ``flags["model"]`` (``tinyae.models.kinds.KINDS``) from the flags.

    A stacked model is a dense autoencoder here; the run trains its levels greedily
    (``tinyae.train.stacked.pretrain``) before ``fit`` fine-tunes it.
    """
    return KINDS[flags["model"]].build(flags, np.random.default_rng(flags["seed"]))


def adam(model, flags):
    """The run's Adam, betas (0.9, --adam-beta2). --weight-decay is Adam's own (PyTorch's:
    g <- g + lambda p for every parameter) unless the model holds it (a sparse model's
    penalty: UFLDL's, weights only)."""
    held = "weight_decay" in KINDS[flags["model"]].in_model
    return Adam(model.parameters(), lr=flags["lr"], betas=(0.9, flags["adam_beta2"]),
                weight_decay=0.0 if held else flags["weight_decay"])


def model_and_state(flags, ckpt):
    """(model, optimizer, history): new from the flags, or continued from ``ckpt``."""
    if ckpt is None:
        model = build_model(flags)
        return model, adam(model, flags), History()
    model = io.load(ckpt, release=True)     # checks the config like tinyae.load; weights held once
    optimizer = adam(model, flags)
    if ckpt.optim:
        try:
            optimizer.load_state_dict(ckpt.optim)
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{ckpt.path!r}: its optimiser state does not fit ({exc}); "
                                     "it cannot be resumed exactly.") from None
    history = checked_history(ckpt)
    history.stopped = None                              # this run says why it stops, if it does
    return model, optimizer, history


def checked_history(ckpt):
    """The checkpoint's training history, checked field by field."""
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
