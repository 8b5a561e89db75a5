"""Reconstruction losses: ``forward(pred, target) -> float``, ``backward() -> dpred``.

Both reduce by the mean over *all* elements (batch and features). A sum
reduction would make the gradient N*D times larger, so the same learning
rate would take N*D times larger steps; with Adam the step size barely
depends on the gradient's scale, with SGD it does, fully.
"""
import numpy as np

from .functional import bce_with_logits, eps_for, sigmoid


class ForwardCache:
    """What a loss and a penalty share: ``backward`` reads what ``forward`` saved, and
    ``config`` names the class (subclasses add their settings)."""

    def _saved(self):
        if getattr(self, "_cache", None) is None:
            raise RuntimeError(f"{type(self).__name__}.backward() was called before forward()")
        return self._cache

    def config(self):
        return {"type": type(self).__name__}


class Loss(ForwardCache):
    """Shared checks: matching shapes, and backward only after forward."""

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def _check(self, pred, target):
        pred, target = np.asarray(pred), np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"{type(self).__name__}: pred has shape {pred.shape} but target has "
                             f"shape {target.shape}; they must match element for element.")
        if not np.issubdtype(pred.dtype, np.floating):
            raise TypeError(f"{type(self).__name__}: pred must be floating point, got {pred.dtype}")
        if pred.size == 0:
            raise ValueError(f"{type(self).__name__}: pred is empty (shape {pred.shape}); the "
                             "mean of no elements is undefined, so pass at least one sample.")
        return pred, target.astype(pred.dtype, copy=False)


class MSE(Loss):
    """Mean squared error, the seed's l(X, X') = 1/n sum ||x_i - x'_i||^2.

    forward:   L = mean((pred - target)^2)        over all N*D elements
    backward:  dpred = 2 (pred - target) / (N*D)
    """

    def forward(self, pred, target) -> float:
        pred, target = self._check(pred, target)
        diff = pred - target
        self._cache = (diff,)
        return float(np.mean(diff ** 2))

    def backward(self):
        diff, = self._saved()
        return 2 * diff / diff.size


class BCE(Loss):
    """Binary cross-entropy, stable for any finite input.

    With probabilities p (``from_logits=False``), p is clipped to
    [eps, 1 - eps] (eps suited to the dtype) so log never sees 0:
        L = -mean(t log p + (1 - t) log(1 - p))
        dp = (p - t) / (p (1 - p)) / (N*D)
    With logits z (``from_logits=True``, preferred: exact and never clipped):
        L = mean(max(z, 0) - z t + log(1 + exp(-|z|)))
        dz = (sigmoid(z) - t) / (N*D)
    """

    def __init__(self, from_logits: bool = False):
        self.from_logits = bool(from_logits)

    def forward(self, pred, target) -> float:
        pred, target = self._check(pred, target)
        if self.from_logits:
            z = pred
            self._cache = (z, target)
            return float(np.mean(bce_with_logits(z, target)))
        eps = eps_for(pred.dtype)
        p = np.clip(pred, eps, 1 - eps)
        self._cache = (p, target)
        return float(-np.mean(target * np.log(p) + (1 - target) * np.log1p(-p)))

    def backward(self):
        x, t = self._saved()
        if self.from_logits:
            return (sigmoid(x) - t) / x.size
        return (x - t) / (x * (1 - x)) / x.size

    def config(self):
        return {"type": "BCE", "from_logits": self.from_logits}


LOSSES = {"mse": MSE, "bce": BCE}
