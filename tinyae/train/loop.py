"""fit(): mini-batch training, the loop of the whole package, read top to bottom.

One step is the whole algorithm:

    xb = X[batch]                       gather a mini-batch       (B, D)
    xin = model.corrupt(xb, rng)        only a denoising model has it; else xin = xb
    L  = loss(model.forward(xin), xb)   reconstruct and compare with the clean batch
         + model.penalty()              the model's own term (0 for a plain autoencoder)
    model.backward(dL/dX')              chain rule, layer by layer (the model adds its
    optimizer.step()                    penalty's gradient itself); move every weight

``fit`` runs that step on one of two paths with the same numbers: "numba"
(the default, ``tinyae.fast``: fused kernels, reused buffers) or "numpy" (the
plain layers, exactly as you read them). ``backend=`` or ``TINYAE_BACKEND``
chooses. What surrounds the step lives beside this file: ``history`` (the
records), ``callbacks`` (early stopping, checkpoints), ``stops`` (Ctrl-C and
other signals, going back to an epoch's start), ``progress`` (the bar and the
epoch lines) and ``threads`` (BLAS threads, measured).
"""
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..models.autoencoder import model_penalty, target_of
from ..nn import schedules
from ..nn.layers import as_float_batch, input_width
from ..nn.losses import MSE
from ..nn.optim import Adam
from .callbacks import Checkpointer, EarlyStopper, EarlyStopping  # noqa: F401 (public here too)
from .history import EpochRecord, History, comparable_val_losses  # noqa: F401
from ..progress import Progress, interactive  # noqa: F401
from .stops import (EpochStart, Stop, StepFailed, TrainingDiverged, broken,  # noqa: F401
                    diverged, interrupted, own_rng)
from .threads import blas_threads


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
            ``tinyae.train.threads``. The caller's setting is restored on return.
        schedule: None (constant lr), a ``tinyae.nn.schedules`` name such as
            "onecycle" (built over all ``epochs`` with the optimiser's lr as the
            peak) or a ``Schedule``; it sets ``optimizer.lr`` after every step.
    """
    X, Xv = _training_data(model, X, validation, seed, epochs, batch_size)
    optimizer = optimizer or Adam(model.parameters(), lr=1e-3)
    _check_lr(optimizer.lr)
    loss = loss or getattr(model, "default_loss", MSE)()
    history = history or History()
    path = _training_path(model, loss, optimizer, resolve_backend(backend))
    steps = math.ceil(len(X) / batch_size)
    schedule = _schedule(schedule, optimizer, epochs, steps, len(history.records))
    batch = np.empty((min(batch_size, len(X)), X.shape[1]), X.dtype)   # reused by full steps
    stopper, show = EarlyStopper(early_stopping), Progress(progress, epochs, steps)
    # What a step's time depends on: the next fit of this model keeps this one's thread count.
    key = (batch_size, type(path.model).__name__,
           tuple((p.shape, p.dtype.str) for _, p, _ in model.parameters()))
    with Stop() as stop, blas_threads(threads, key) as chooser, own_rng(path.model) as draws:
        for epoch in range(len(history.records) + 1, epochs + 1):
            began, start = time.perf_counter(), EpochStart(model, optimizer, schedule)
            # One generator per (seed, epoch): a resumed run shuffles and draws as the first.
            order = (np.random.default_rng([seed, epoch]).permutation(len(X)) if shuffle
                     else np.arange(len(X)))
            noise = np.random.default_rng([seed, epoch, 1])         # a denoising model's
            if draws:
                path.model.rng = np.random.default_rng([seed, epoch, 2])   # a VAE's eps
            show.start(epoch)
            try:
                run = _epoch(path, X, order, batch, noise, optimizer, schedule, chooser, stop,
                             show)
                why = broken(path.model, X)     # the epoch's last update is not checked yet
                if why:
                    raise StepFailed(run.steps, why)
            except StepFailed as failed:
                start.go_back()
                raise diverged(epoch, failed, optimizer) from None
            finally:
                show.close()
            if stop.requested:                  # a resumed run repeats this epoch whole
                start.go_back()
                history.stopped = interrupted(stop.name, epoch, run.steps)
                break
            val, val_penalty = (loss_terms(path.model, Xv, path.loss) if Xv is not None
                                else (None, None))
            record = EpochRecord(epoch, (run.total + run.penalty) / len(X),
                                 None if val is None else val + val_penalty,
                                 time.perf_counter() - began, run.step_lr[-1], chooser.threads,
                                 reconstruction=run.total / len(X),
                                 penalty=run.penalty / len(X), step_lr=run.step_lr,
                                 val_penalty=val_penalty, matmul=path.matmul)
            history.records.append(record)
            show.epoch(record)
            for cb in callbacks:
                cb(model, optimizer, history)
            if stopper.stop(model, record):
                history.stopped = stopper.why(epoch)
                break
    return history


@dataclass
class _Run:
    """One epoch's sums: reconstruction and penalty (each step's mean times its images)."""
    total: float = 0.0
    penalty: float = 0.0
    steps: int = 0
    step_lr: list = field(default_factory=list)       # the lr each step used


def _epoch(path, X, order, batch, noise, optimizer, schedule, chooser, stop, show):
    """One pass over X in mini-batches of ``len(batch)``: the step, repeated."""
    model, loss = path.model, path.loss
    corrupt = getattr(model, "corrupt", None)            # a denoising model's noise
    run, seen = _Run(), 0
    # Overflow is divergence: raise at once instead of warning on every step.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for begin in range(0, len(X), len(batch)):
            run.steps += 1
            idx = order[begin:begin + len(batch)]
            xb = path.gather(X, idx, batch)
            model.zero_grad()               # the model's: lets a fast Dense skip the fill
            chooser.begin()                 # BLAS threads for this step; start its clock
            try:
                xin = xb if corrupt is None else corrupt(xb, noise)
                value = loss.forward(model.forward(xin), target_of(model, xb))
                penalty = model_penalty(model)
                if not math.isfinite(value + penalty):
                    raise FloatingPointError(f"the loss became {value + penalty}")
                model.backward(loss.backward())
                path.step()
            except FloatingPointError as exc:
                raise StepFailed(run.steps, exc) from None
            chooser.end(len(idx))
            run.total, run.penalty = run.total + value * len(idx), run.penalty + penalty * len(idx)
            seen += len(idx)
            run.step_lr.append(optimizer.lr)        # the lr this step used
            if schedule is not None:
                schedule.step()                     # sets optimizer.lr for the next step
            show.step((run.total + run.penalty) / seen, chooser.current)
            if stop.requested:
                break
    return run


# --- what fit checks and builds before the first step ----------------------------------
def _training_data(model, X, validation, seed, epochs, batch_size):
    """(X, validation array or None), checked, X contiguous in the model's dtype."""
    for name, value, least in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"fit(): {name} must be a whole number >= {least}, got {value!r}")
    width = getattr(model, "input_width", None) or input_width(model)   # None: any width
    X = check_data(X, width)
    X, Xv = _split_validation(X, validation, seed)
    if len(X) == 0:
        raise ValueError(f"fit(): validation={validation!r} leaves no images to train on; "
                         "hold out a smaller fraction, or pass more images")
    if Xv is not None:
        Xv = check_data(Xv, width, "validation")
    return np.ascontiguousarray(X, dtype=_dtype(model)), Xv


def _check_lr(lr):
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"fit(): the learning rate must be finite and > 0, got {lr}")


def _schedule(schedule, optimizer, epochs, steps, done):
    """A schedule name built over the whole run (a resumed run starts where its curve left
    off), a Schedule as it is, or None."""
    if isinstance(schedule, str):
        schedule = schedules.build(schedule, optimizer, max(1, epochs * steps))
        schedule.go_to(done * steps)
    return schedule


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
    matmul: str | None = None      # the fast path's matmul library, recorded in each epoch


def _training_path(model, loss, optimizer, backend):
    if backend == "numpy":
        return _Path(model, loss, optimizer.step, lambda X, idx, out: np.take(X, idx, axis=0))
    from .. import fast             # here, not at the top: it imports Numba (a second or two)
    return _Path(fast.accelerate(model), fast.fast_loss(loss), fast.fast_step(optimizer),
                 fast.gather_rows, fast.blas.library())


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
        reconstruction += loss.forward(model.forward(xb), target_of(model, xb)) * len(xb)
        penalty += model_penalty(model) * len(xb)
    return reconstruction / len(X), penalty / len(X)


def _dtype(model):
    """The model's dtype: its ``dtype``, else its first parameter's (float32 without any)."""
    dtype = getattr(model, "dtype", None)
    if dtype is None:
        dtype = next((p.dtype for _, p, _ in model.parameters()), np.float32)
    return dtype
