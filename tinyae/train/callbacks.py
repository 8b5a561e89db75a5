"""What ``fit`` does around the step, as small pieces: stop early, save checkpoints.

A callback is any ``cb(model, optimizer, history)`` run after each epoch.
"""
import math
from dataclasses import dataclass
from pathlib import Path

from ..io.checkpoint import save
from .history import comparable_val_losses
from .stops import restore, snapshot


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
        save(model, self.folder / name, optimizer=optimizer, schedule=self.schedule,
             extra={**self.extra, "history": history.to_dict()})


class EarlyStopper:
    """Applies an ``EarlyStopping`` (or a patience) after each epoch; None never stops."""

    def __init__(self, rule):
        self.rule = EarlyStopping(patience=rule) if isinstance(rule, int) else rule
        self.best, self.best_weights, self.waited = math.inf, None, 0

    def stop(self, model, record):
        """Whether to stop after ``record``'s epoch; restores the best weights when it does."""
        if self.rule is None:
            return False
        monitored = record.val_loss if record.val_loss is not None else record.loss
        if monitored < self.best - self.rule.min_delta:
            self.best, self.waited = monitored, 0
            self.best_weights = snapshot(model) if self.rule.restore_best else None
            return False
        self.waited += 1
        if self.waited < self.rule.patience:
            return False
        if self.best_weights is not None:
            restore(model, self.best_weights)
        return True

    def why(self, epoch):
        return f"early stopping after epoch {epoch}: no improvement for {self.waited} epochs"
