"""fit(): mini-batch training with shuffling, validation, early stopping and a progress bar.

One step is the whole algorithm of the package:

    xb = X[batch]                       gather a mini-batch       (B, D)
    xin = model.corrupt(xb, rng)        only a denoising model has it; else xin = xb
    L  = loss(model.forward(xin), xb)   reconstruct and compare with the clean batch
         + model.penalty()              the model's own term (0 for a plain autoencoder)
    model.backward(dL/dX')              chain rule, layer by layer (the model adds its
    optimizer.step()                    penalty's gradient itself); move every weight

``fit`` runs that step on one of two paths with the same numbers: "numba"
(the default, ``tinyae.fast``: fused kernels, reused buffers) or "numpy" (the
plain layers, exactly as you read them). ``backend=`` or ``TINYAE_BACKEND``
chooses.
"""
import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..models.autoencoder import model_penalty
from ..nn import schedules
from ..nn.layers import as_float_batch, input_width
from ..nn.losses import MSE
from ..nn.optim import Adam
from .threads import blas_threads


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class EpochRecord:
    """One epoch: ``loss`` = ``reconstruction`` + ``penalty`` (means over the training images).

    ``val_loss`` is the same sum on the validation images (after the epoch's last step), so
    the two curves compare; ``val_penalty`` is its penalty term (0 for a model without
    one). Records saved before tinyae counted the penalty in ``val_loss`` have
    ``val_penalty`` None, as do epochs without validation.
    """
    epoch: int
    loss: float
    val_loss: float | None
    seconds: float
    lr: float                           # the lr of the epoch's last step
    threads: int | None = None      # BLAS threads at the end of the epoch (tinyae.threads)
    reconstruction: float | None = None        # None in records saved before the split
    penalty: float = 0.0
    step_lr: list = field(default_factory=list)     # the lr of each step of the epoch
    val_penalty: float | None = None

    @property
    def whole_val_loss(self):
        """``val_loss`` when it holds reconstruction + penalty, else None (no validation, or
        an older record of a model with a penalty: its val_loss is the reconstruction alone)."""
        return self.val_loss if self.val_penalty is not None or not self.penalty else None

    def __post_init__(self):
        if self.reconstruction is None:
            self.reconstruction = self.loss - self.penalty


@dataclass
class History:
    """Per-epoch records; ``stopped`` says why training ended early, if it did."""
    records: list = field(default_factory=list)
    stopped: str | None = None

    @property
    def loss(self):
        return [r.loss for r in self.records]

    @property
    def val_loss(self):
        return [r.val_loss for r in self.records]

    def to_dict(self):
        return {"records": [asdict(r) for r in self.records], "stopped": self.stopped}

    @classmethod
    def from_dict(cls, d):
        return cls([EpochRecord(**r) for r in d.get("records", [])], d.get("stopped"))

    def to_csv(self):
        lines = ["epoch,loss,val_loss,seconds,lr,reconstruction,penalty,threads,val_penalty"]
        for r in self.records:
            val = "" if r.val_loss is None else f"{r.val_loss:.8g}"
            val_penalty = "" if r.val_penalty is None else f"{r.val_penalty:.8g}"
            threads = "" if r.threads is None else r.threads
            lines.append(f"{r.epoch},{r.loss:.8g},{val},{r.seconds:.4f},{r.lr:.6g},"
                         f"{r.reconstruction:.8g},{r.penalty:.8g},{threads},{val_penalty}")
        return "\n".join(lines) + "\n"


@dataclass
class EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best`` the model ends with the weights of its best epoch.
    """
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True


class Checkpointer:
    """Callback: save ``last.npz`` after every epoch, ``best.npz`` when the validation loss improves.

    Both hold the optimiser state and the history, so ``--resume`` can continue.
    ``extra`` (JSON-ready) goes into every checkpoint.
    """

    def __init__(self, folder, extra=None, history=None, schedule=None):
        self.folder, self.extra, self.schedule = Path(folder), dict(extra or {}), schedule
        self.folder.mkdir(parents=True, exist_ok=True)
        self.best = min(comparable_val_losses(history.records if history else []),
                        default=math.inf)

    def __call__(self, model, optimizer, history):
        self.save_last(model, optimizer, history)
        val = history.records[-1].val_loss
        if val is not None and val < self.best:
            self.best = val
            self._save(model, optimizer, history, "best.npz")

    def save_last(self, model, optimizer, history):
        self._save(model, optimizer, history, "last.npz")

    def _save(self, model, optimizer, history, name):
        from ..io.checkpoint import save
        save(model, self.folder / name, optimizer=optimizer, schedule=self.schedule,
             extra={**self.extra, "history": history.to_dict()})


def comparable_val_losses(records):
    """Each record's ``whole_val_loss`` that is not None: the ones a new epoch's compares with
    (an older record's reconstruction alone would be lower than today's sums)."""
    return [r.whole_val_loss for r in records if r.whole_val_loss is not None]


def check_data(X, width, name="X"):
    """X as a float32/64 (N, width) array with only finite values, else a clear error."""
    X = np.asarray(X)
    X = as_float_batch(X, width, X.dtype, f"fit(): {name}")
    # A NaN or inf spreads into the sum, so a finite sum proves every value finite without
    # an array of flags (and in X's own dtype: a float64 sum took 3x as long). Huge finite
    # values can overflow the sum, so a non-finite one is only a reason to look row by row.
    with np.errstate(over="ignore"):
        finite = np.isfinite(X.sum())
    rows = [] if finite else np.nonzero(~np.isfinite(X).all(axis=1))[0]
    if len(rows):
        raise ValueError(f"fit(): {name} has NaN or infinite values in {len(rows)} rows (first: "
                         f"{rows[:5].tolist()}); clean or drop them first, e.g. "
                         f"{name}[np.isfinite({name}).all(axis=1)].")
    if len(X) == 0:
        raise ValueError(f"fit(): {name} is empty")
    return X


def _split_validation(X, validation, seed):
    if validation is None:
        return X, None
    if isinstance(validation, float):
        if not 0 < validation < 1:
            raise ValueError(f"validation fraction must be in (0, 1), got {validation}")
        order = np.random.default_rng([seed, 99]).permutation(len(X))
        n_val = max(1, int(round(len(X) * validation)))
        return X[order[n_val:]], X[order[:n_val]]
    if isinstance(validation, tuple):
        validation = validation[0]
    return X, validation


BACKENDS = ("numba", "numpy")


def resolve_backend(backend=None) -> str:
    """The training path to use: ``backend``, else ``TINYAE_BACKEND``, else "numba".

    Without Numba installed the default falls back to "numpy" with a notice;
    asking for "numba" explicitly is then an error.
    """
    name = backend or os.environ.get("TINYAE_BACKEND", "").strip().lower() or None
    if name not in (None,) + BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS} "
                         "(argument backend= or the TINYAE_BACKEND variable)")
    if name == "numpy":
        return name
    try:
        import tinyae.fast  # noqa: F401  (imports Numba)
    except ImportError as exc:
        if name == "numba":
            raise ImportError(f"backend 'numba' needs Numba ({exc}); pip install numba, "
                              "or train on the plain path with backend='numpy'") from exc
        warnings.warn(f"tinyae: Numba is not available ({exc}); training on the plain NumPy "
                      "path, which gives the same numbers more slowly.", stacklevel=3)
        return "numpy"
    return "numba"


@dataclass
class _Path:
    """What one training step calls: the model, the loss, the update and the batch gather."""
    model: object
    loss: object
    step: Callable
    gather: Callable


def _training_path(model, loss, optimizer, backend):
    if backend == "numpy":
        return _Path(model, loss, optimizer.step, lambda X, idx, out: np.take(X, idx, axis=0))
    from .. import fast
    return _Path(fast.accelerate(model), fast.fast_loss(loss), fast.fast_step(optimizer),
                 fast.gather_rows)


def evaluate(model, X, loss=None, batch_size=1024):
    """Mean objective of ``model`` on ``X``: ``loss`` plus the model's penalty (0 without one).

    The sum a training record's ``loss`` holds, so the two compare.
    """
    return sum(loss_terms(model, X, loss, batch_size))


def loss_terms(model, X, loss=None, batch_size=1024):
    """(mean reconstruction loss, mean penalty) of ``model`` on ``X``, in batches so memory
    stays small; each batch's terms weigh by its number of images."""
    loss = loss or getattr(model, "default_loss", MSE)()      # as fit's default
    reconstruction = penalty = 0.0
    for i in range(0, len(X), batch_size):
        xb = X[i:i + batch_size]
        reconstruction += loss.forward(model.forward(xb), xb) * len(xb)
        penalty += model_penalty(model) * len(xb)
    return reconstruction / len(X), penalty / len(X)


class _CtrlC:
    """Turn the first Ctrl-C into a flag checked between steps (a second one interrupts)."""

    def __enter__(self):
        self.pressed = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


@contextlib.contextmanager
def _own_rng(model):
    """Yields whether ``model`` draws from its own generator (a VAE's ``rng``), which fit
    reseeds every epoch; gives the model back the caller's generator at the end."""
    rng = getattr(model, "rng", None)
    draws = isinstance(rng, np.random.Generator)
    try:
        yield draws
    finally:
        if draws:
            model.rng = rng


def _snapshot(model, optimizer=None):
    weights = [p.copy() for _, p, _ in model.parameters()]
    if optimizer is None:
        return weights
    return weights, {k: np.array(v, copy=True) for k, v in optimizer.state_dict().items()}


def _restore(model, snapshot, optimizer=None):
    if optimizer is not None:
        snapshot, state = snapshot
        optimizer.load_state_dict(state)
    for (_, p, _), s in zip(model.parameters(), snapshot):
        p[...] = s


def _broken(model, xb):
    """Why the weights cannot be kept (non-finite weights or probe output), or None."""
    for name, p, _ in model.parameters():
        if not np.isfinite(p).all():
            return f"{name} became NaN or infinite"
    with np.errstate(all="ignore"):
        if not np.isfinite(model.forward(xb[:8])).all():
            return "the model's output became NaN or infinite"
    return None


def fit(model, X, *, epochs: int, batch_size: int = 256, optimizer=None, loss=None,
        validation=None, seed: int = 0, shuffle: bool = True, early_stopping=None,
        callbacks=(), progress: bool = True, history: History | None = None,
        backend: str | None = None, threads: int | str | None = None,
        schedule=None) -> History:
    """Train ``model`` to reconstruct ``X``; returns the ``History``.

    The objective is ``loss(model(xin), xb) + model.penalty()`` per mini-batch
    xb, where ``xin = model.corrupt(xb, rng)`` for a model that has ``corrupt``
    (a denoising autoencoder) and ``xb`` otherwise; each epoch's record keeps
    the reconstruction and penalty terms apart (``loss`` is their sum).

    Args:
        X: (N, D) float data, finite.
        epochs: total epochs; with ``history`` from an earlier run, training
            continues from ``len(history.records)`` up to ``epochs``.
        optimizer: default ``Adam(model.parameters(), lr=1e-3)``.
        loss: default ``model.default_loss()`` when the model names one (a VAE:
            ``BernoulliNLL``), else ``MSE()``.
        validation: None, a fraction of X to hold out, or a validation array
            (or a 1-tuple holding one).
        seed: seeds each epoch's shuffle, a denoising model's noise and a VAE's
            eps (the model's ``rng`` is reseeded per epoch, then given back), so
            a resumed run repeats the epochs it resumes; the same seed and data
            give the same run: bit for bit with a fixed ``threads`` count, to
            float rounding with "auto" (OpenBLAS's sums depend on how many
            threads share them).
        early_stopping: None, a patience (int) or an ``EarlyStopping``.
        callbacks: callables ``cb(model, optimizer, history)`` run after each epoch.
        progress: report each epoch: a tqdm bar with the running loss on a
            terminal or in a notebook, and one line per finished epoch (the only
            output when stderr goes to a file or pipe, so a log holds no bar frames).
        backend: "numba" (fast path) or "numpy" (plain layers); default
            ``TINYAE_BACKEND`` or "numba". Same numbers, different speed.
        threads: BLAS threads for the matmuls: a count, or "auto" (the
            default, or ``TINYAE_THREADS``): measured while training, see
            ``tinyae.threads``. The caller's setting is restored on return.
        schedule: None (constant lr), a ``tinyae.schedules`` name such as
            "onecycle" (built over all ``epochs`` with the optimiser's lr as the
            peak) or a ``Schedule``; it sets ``optimizer.lr`` after every step.
    """
    width = getattr(model, "input_width", None) or input_width(model)   # None: any width
    X = check_data(X, width)
    X, Xv = _split_validation(X, validation, seed)
    if Xv is not None:
        Xv = check_data(Xv, width, "validation")
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"need batch_size >= 1 and epochs >= 0, got {batch_size} and {epochs}")
    X = np.ascontiguousarray(X, dtype=_dtype(model))
    optimizer = optimizer or Adam(model.parameters(), lr=1e-3)
    if not (isinstance(optimizer.lr, (int, float)) and math.isfinite(optimizer.lr) and optimizer.lr > 0):
        raise ValueError(f"fit(): the learning rate must be finite and > 0, got {optimizer.lr}")
    loss = loss or getattr(model, "default_loss", MSE)()
    if isinstance(early_stopping, int):
        early_stopping = EarlyStopping(patience=early_stopping)
    history = history or History()
    path = _training_path(model, loss, optimizer, resolve_backend(backend))
    n, steps = len(X), math.ceil(len(X) / batch_size)
    if isinstance(schedule, str):       # a resumed run starts where its curve left off
        schedule = schedules.build(schedule, optimizer, max(1, epochs * steps))
        schedule.go_to(len(history.records) * steps)
    batch = np.empty((min(batch_size, n), X.shape[1]), X.dtype)    # reused by every full step
    best, best_weights, waited = math.inf, None, 0

    live = interactive()
    if live:
        from tqdm.auto import tqdm  # a widget in Jupyter, text frames on a terminal
    else:
        from tqdm import tqdm  # disabled: only the epoch lines are printed
    with _CtrlC() as ctrl_c, blas_threads(threads) as chooser, _own_rng(path.model) as draws:
        for epoch in range(len(history.records) + 1, epochs + 1):
            # Start-of-epoch weights and optimiser state: what a diverged or interrupted epoch
            # goes back to, so that a resumed run repeats the epoch exactly.
            start, good = time.perf_counter(), _snapshot(model, optimizer)
            t0 = schedule.t if schedule is not None else None       # the lr curve goes back too
            # One generator per (seed, epoch): a resumed run shuffles as the original did.
            order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
            bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", disable=not (progress and live),
                       leave=False, unit="step")
            try:
                noise_rng = np.random.default_rng([seed, epoch, 1])   # denoising only
                if draws:           # a VAE's eps: a resumed epoch draws the same ones too
                    path.model.rng = np.random.default_rng([seed, epoch, 2])
                total, penalty, step, step_lr = _epoch(path, X, order, batch, bar, ctrl_c,
                                                       chooser, noise_rng, optimizer, schedule)
                why = _broken(path.model, X)    # the epoch's last update has not been checked yet
                if why:
                    raise _StepFailed(step, why)
                val_reconstruction, val_penalty = (
                    loss_terms(path.model, Xv, path.loss) if Xv is not None
                    and not ctrl_c.pressed else (None, None))
                val = None if val_penalty is None else val_reconstruction + val_penalty
            except _StepFailed as failed:
                if schedule is not None:
                    schedule.go_to(t0)
                _diverged(model, good, epoch, failed.step, failed.why, optimizer)
            finally:
                bar.close()
            if ctrl_c.pressed:
                _restore(model, good, optimizer)
                if schedule is not None:
                    schedule.go_to(t0)
                history.stopped = (f"interrupted (Ctrl-C) in epoch {epoch}, step {step}; the model "
                                   f"holds the weights from the start of epoch {epoch}, so a "
                                   "resumed run repeats that epoch from its start")
                break
            record = EpochRecord(epoch, (total + penalty) / n, val, time.perf_counter() - start,
                                 step_lr[-1], chooser.threads, reconstruction=total / n,
                                 penalty=penalty / n, step_lr=step_lr, val_penalty=val_penalty)
            history.records.append(record)
            if progress:
                terms = (f" = reconstruction {record.reconstruction:.5f} + penalty "
                         f"{record.penalty:.5f}" if penalty else "")
                tqdm.write(f"epoch {epoch}/{epochs}  loss {record.loss:.5f}{terms}"
                           + ("" if val is None else f"  val_loss {val:.5f}")
                           + f"  ({history.records[-1].seconds:.1f} s, {chooser.threads} BLAS "
                           + f"thread{'s' * (chooser.threads != 1)})", file=sys.stderr)
            for cb in callbacks:
                cb(model, optimizer, history)
            if early_stopping is not None:
                monitored = val if val is not None else record.loss
                if monitored < best - early_stopping.min_delta:
                    best, waited = monitored, 0
                    best_weights = _snapshot(model) if early_stopping.restore_best else None
                else:
                    waited += 1
                    if waited >= early_stopping.patience:
                        history.stopped = (f"early stopping after epoch {epoch}: no improvement "
                                           f"for {waited} epochs")
                        if best_weights is not None:
                            _restore(model, best_weights)
                        break
    return history


def _dtype(model):
    """The model's dtype: its ``dtype``, else its first parameter's (float32 without any)."""
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        dtype = next((p.dtype for _, p, _ in model.parameters()), np.float32)
    return dtype


def interactive():
    """True when a progress bar can redraw itself for someone watching: stderr is a
    terminal, or this is a live Jupyter notebook with ipywidgets (without them tqdm
    would print every frame into the notebook).

    A notebook executed without a person at it (nbclient, ``jupyter nbconvert
    --execute``, ``jupytext --execute``, papermill) gets no bar: nobody watches it,
    and each bar would stay in the saved notebook as an empty widget box. Those
    runners send their cells with ``allow_stdin=False`` (they cannot answer
    ``input()``); a live front end (JupyterLab, Notebook, VS Code) sends True.
    """
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    from importlib.util import find_spec
    if not (shell is not None and "IPKernelApp" in getattr(shell, "config", {})
            and find_spec("ipywidgets") is not None):
        return False
    try:                                    # the request that runs this cell (ipykernel >= 6)
        request = shell.kernel.get_parent()
    except Exception:                       # an older or unusual kernel: assume a person
        return True
    return bool((request or {}).get("content", {}).get("allow_stdin", True))


class _StepFailed(Exception):
    def __init__(self, step, why):
        self.step, self.why = step, why


def _epoch(path, X, order, batch, bar, ctrl_c, chooser, noise_rng, optimizer, schedule=None):
    """One pass over X in mini-batches of ``len(batch)``.

    Returns (summed reconstruction loss, summed penalty, steps done, the lr of each step);
    sums weight each step's mean by its number of images.
    """
    model, loss = path.model, path.loss
    corrupt = getattr(model, "corrupt", None)            # a denoising model's noise
    total, penalties, seen, step, step_lr = 0.0, 0.0, 0, 0, []
    # Overflow is divergence: raise at once instead of warning on every step.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for start in range(0, len(X), len(batch)):
            step += 1
            idx = order[start:start + len(batch)]
            xb = path.gather(X, idx, batch)
            model.zero_grad()               # the model's: lets a fast Dense skip the fill
            chooser.begin()                 # BLAS threads for this step; start its clock
            try:
                xin = xb if corrupt is None else corrupt(xb, noise_rng)
                value = loss.forward(model.forward(xin), xb)
                penalty = model_penalty(model)
                if not math.isfinite(value + penalty):
                    raise FloatingPointError(f"the loss became {value + penalty}")
                model.backward(loss.backward())
                path.step()
            except FloatingPointError as exc:
                raise _StepFailed(step, exc) from None
            chooser.end(len(idx))
            total, seen = total + value * len(idx), seen + len(idx)
            penalties += penalty * len(idx)
            step_lr.append(optimizer.lr)            # the lr this step used
            if schedule is not None:
                schedule.step()                     # sets optimizer.lr for the next step
            if not bar.disable:
                bar.update()
                bar.set_postfix(loss=f"{(total + penalties) / seen:.4f}", threads=chooser.current,
                                refresh=False)
            if ctrl_c.pressed:
                break
    return total, penalties, step, step_lr




def _diverged(model, good, epoch, step, why, optimizer):
    _restore(model, good, optimizer)
    raise TrainingDiverged(f"training diverged at epoch {epoch}, step {step} ({why}); the model "
                           f"and optimiser are back at the start of epoch {epoch} (weights "
                           f"all finite). Try a smaller learning rate (now lr={optimizer.lr:g}, "
                           "e.g. --lr 1e-4).")
