"""Formulas several classes share, written once: the sigmoid, BCE from logits, a dtype's epsilon.

Each is a plain NumPy function; the layers, losses, penalties, the VAE and
autograd's Tensor call these instead of writing their own.
"""
import numpy as np


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp only ever sees -|x|.

    For x >= 0 that is 1 / (1 + e), for x < 0 the same value written e / (1 + e),
    with e = exp(-|x|) in (0, 1].
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)


def bce_with_logits(z, t):
    """Binary cross-entropy of targets ``t`` and probabilities sigmoid(z), elementwise:

        -t log s(z) - (1 - t) log(1 - s(z)) = max(z, 0) - z t + log(1 + exp(-|z|))

    exact for any logit (no clipping, no overflow). Its derivative is s(z) - t.
    """
    return np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))


def eps_for(dtype):
    """A clip margin for probabilities: 1 - eps stays below 1 in ``dtype``
    (1e-7 for float32 and smaller, 1e-12 for float64)."""
    dtype = np.dtype(dtype)
    return dtype.type(1e-7 if np.finfo(dtype).bits <= 32 else 1e-12)
