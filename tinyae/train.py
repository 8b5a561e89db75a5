"""fit(): mini-batch training with shuffling, validation, early stopping and a progress bar.

One step is the whole algorithm of the package:

    xb = X[batch]                       gather a mini-batch       (B, D)
    xin = model.corrupt(xb, rng)        only a denoising model has it; else xin = xb
    L  = loss(model.forward(xin), xb)   reconstruct and compare with the clean batch
         + model.penalty()              the model's own term (0 for a plain autoencoder)
    model.backward(dL/dX')              chain rule, layer by layer (the model adds its
    optimizer.step()                    penalty's gradient itself); move every weight
"""
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import buffers, kernels
from .layers import as_float_batch
from .losses import MSE
from .optim import Adam


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


@dataclass
class EpochRecord:
    """One epoch: ``loss`` = ``reconstruction`` + ``penalty`` (means over the training images).

    ``val_loss`` is the reconstruction loss on the validation images.
    """
    epoch: int
    loss: float
    val_loss: float | None
    seconds: float
    lr: float
    reconstruction: float | None = None        # None in records saved before the split
    penalty: float = 0.0

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
        lines = ["epoch,loss,val_loss,seconds,lr,reconstruction,penalty"]
        for r in self.records:
            val = "" if r.val_loss is None else f"{r.val_loss:.8g}"
            lines.append(f"{r.epoch},{r.loss:.8g},{val},{r.seconds:.4f},{r.lr:.6g},"
                         f"{r.reconstruction:.8g},{r.penalty:.8g}")
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

    def __init__(self, folder, extra=None, history=None):
        self.folder, self.extra = Path(folder), dict(extra or {})
        self.folder.mkdir(parents=True, exist_ok=True)
        self.best = min((v for v in (history.val_loss if history else []) if v is not None),
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
        from .io import save
        save(model, self.folder / name, optimizer=optimizer,
             extra={**self.extra, "history": history.to_dict()})


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


def evaluate(model, X, loss=None, batch_size=1024):
    """Mean loss of ``model`` on ``X`` (batched, so memory stays small)."""
    loss = loss or MSE()
    total = 0.0
    for i in range(0, len(X), batch_size):
        xb = X[i:i + batch_size]
        total += loss.forward(model.forward(xb), xb) * len(xb)
    return total / len(X)


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


def _snapshot(model):
    return [p.copy() for _, p, _ in model.parameters()]


def _restore(model, snapshot):
    for (_, p, _), s in zip(model.parameters(), snapshot):
        p[...] = s


def fit(model, X, *, epochs: int, batch_size: int = 256, optimizer=None, loss=None,
        validation=None, seed: int = 0, shuffle: bool = True, early_stopping=None,
        callbacks=(), progress: bool = True, history: History | None = None) -> History:
    """Train ``model`` to reconstruct ``X``; returns the ``History``.

    Args:
        X: (N, D) float data, finite.
        epochs: total epochs; with ``history`` from an earlier run, training
            continues from ``len(history.records)`` up to ``epochs``.
        optimizer: default ``Adam(model.parameters(), lr=1e-3)``.
        loss: default ``model.default_loss()`` when the model names one (a VAE:
            ``BernoulliNLL``), else ``MSE()``.
        validation: None, a fraction of X to hold out, or a validation array
            (or a 1-tuple holding one).
        seed: the shuffling seed; the same seed and data give the same run.
        early_stopping: None, a patience (int) or an ``EarlyStopping``.
        callbacks: callables ``cb(model, optimizer, history)`` run after each epoch.
        progress: show a tqdm bar with the running loss.
    """
    width = model.input_width
    X = check_data(X, width)
    X, Xv = _split_validation(X, validation, seed)
    if Xv is not None:
        Xv = check_data(Xv, width, "validation")
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"need batch_size >= 1 and epochs >= 0, got {batch_size} and {epochs}")
    X = np.ascontiguousarray(X, dtype=model.dtype)
    optimizer = optimizer or Adam(model.parameters(), lr=1e-3)
    loss = loss or getattr(model, "default_loss", MSE)()
    if isinstance(early_stopping, int):
        early_stopping = EarlyStopping(patience=early_stopping)
    history = history or History()
    n, steps = len(X), math.ceil(len(X) / batch_size)
    batch = np.empty((min(batch_size, n), X.shape[1]), X.dtype)    # reused by every full step
    best, best_weights, waited = math.inf, None, 0

    from tqdm.auto import tqdm
    with _CtrlC() as ctrl_c:
        for epoch in range(len(history.records) + 1, epochs + 1):
            start, good = time.perf_counter(), _snapshot(model)
            # One generator per (seed, epoch): a resumed run shuffles as the original did.
            order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
            bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", disable=not progress,
                       leave=False, unit="step")
            try:
                with buffers.reusing():     # outputs never leave the step: reuse their arrays
                    noise_rng = np.random.default_rng([seed, epoch, 1])   # denoising only
                    total, penalty, step = _epoch(model, X, order, batch, loss, optimizer, bar,
                                                  ctrl_c, noise_rng)
                    val = evaluate(model, Xv, loss) if Xv is not None and not ctrl_c.pressed else None
            except _StepFailed as failed:
                _diverged(model, good, epoch, failed.step, failed.why, optimizer)
            finally:
                bar.close()
            if ctrl_c.pressed:
                history.stopped = f"interrupted (Ctrl-C) in epoch {epoch}, step {step}"
                break
            record = EpochRecord(epoch, (total + penalty) / n, val, time.perf_counter() - start,
                                 optimizer.lr, total / n, penalty / n)
            history.records.append(record)
            if progress:
                terms = (f" = reconstruction {record.reconstruction:.5f} + penalty "
                         f"{record.penalty:.5f}" if penalty else "")
                tqdm.write(f"epoch {epoch}/{epochs}  loss {record.loss:.5f}{terms}"
                           + ("" if val is None else f"  val_loss {val:.5f}")
                           + f"  ({history.records[-1].seconds:.1f} s)", file=sys.stderr)
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


class _StepFailed(Exception):
    def __init__(self, step, why):
        self.step, self.why = step, why


def _epoch(model, X, order, batch, loss, optimizer, bar, ctrl_c, noise_rng):
    """One pass over X in mini-batches of ``len(batch)``.

    Returns (summed reconstruction loss, summed penalty, steps done); sums weight
    each step's mean by its number of images.
    """
    corrupt = getattr(model, "corrupt", None)            # a denoising model's noise
    total, penalties, seen, step = 0.0, 0.0, 0, 0
    # Overflow is divergence: raise at once instead of warning on every step.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for start in range(0, len(X), len(batch)):
            step += 1
            idx = order[start:start + len(batch)]
            xb = kernels.gather_rows(X, idx, batch if len(idx) == len(batch) else None)
            model.zero_grad()               # the model's: lets Dense write its first gradient
            try:
                xin = xb if corrupt is None else corrupt(xb, noise_rng)
                value = loss.forward(model.forward(xin), xb)
                penalty = model_penalty(model)
                if not math.isfinite(value + penalty):
                    raise FloatingPointError(f"the loss became {value + penalty}")
                model.backward(loss.backward(), need_dx=False)
                optimizer.step()
            except FloatingPointError as exc:
                raise _StepFailed(step, exc) from None
            total, seen = total + value * len(idx), seen + len(idx)
            penalties += penalty * len(idx)
            if not bar.disable:
                bar.update()
                bar.set_postfix(loss=f"{(total + penalties) / seen:.4f}", refresh=False)
            if ctrl_c.pressed:
                break
    return total, penalties, step


def model_penalty(model) -> float:
    """``model.penalty()`` for its last forward, or 0.0 for a model without one."""
    penalty = getattr(model, "penalty", None)
    return 0.0 if penalty is None else float(penalty())


def _diverged(model, good, epoch, step, why, optimizer):
    finite = all(np.isfinite(p).all() for _, p, _ in model.parameters())
    if not finite:                        # the last update broke the weights: go back
        _restore(model, good)
    kept = "the last good step's weights" if finite else "the weights from the start of the epoch"
    raise TrainingDiverged(f"training diverged at epoch {epoch}, step {step} ({why}); the model "
                           f"keeps {kept}. Try a smaller learning rate (now lr={optimizer.lr:g}, "
                           "e.g. --lr 1e-4).")
