"""The one seam for the hot paths: dense forward/backward, MSE, Adam, batch gather.

Layers and optimisers call the functions below; each forwards to the active
backend module, which has the same function names and signatures:

    "numpy"  tinyae.kernels.reference   plain NumPy, the definition
    "numba"  tinyae.kernels.fast        Numba versions, tested against it

The backend is chosen on first use, not at import (importing Numba costs
about half a second): ``TINYAE_BACKEND`` if set, else "numba" when Numba can
be imported, else "numpy" with a one-time notice. ``set_backend`` switches.
"""
import os
import warnings

from . import reference
from .reference import ACTIVATIONS

BACKENDS = ("numpy", "numba")
_active = None          # the backend module, resolved on first use


def _load(name):
    if name == "numpy":
        return reference
    if name == "numba":
        from . import fast  # ImportError when Numba is missing
        return fast
    raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")


def set_backend(name: str) -> None:
    """Use backend ``name`` ("numpy" or "numba") from now on."""
    global _active
    _active = _load(name)


def get_backend() -> str:
    """The name of the active backend, resolving the default if needed."""
    return "numpy" if _backend() is reference else "numba"


def _backend():
    global _active
    if _active is None:
        name = os.environ.get("TINYAE_BACKEND", "").strip().lower()
        if name:
            _active = _load(name)
        else:
            try:
                _active = _load("numba")
            except ImportError as exc:
                warnings.warn(f"tinyae: Numba is not available ({exc}); using the NumPy "
                              "reference kernels, which are correct but slower.", stacklevel=3)
                _active = reference
    return _active


def act_forward(z, act, alpha=0.0, out=None):
    return _backend().act_forward(z, act, alpha, out)


def act_backward(y, dy, act, alpha=0.0):
    return _backend().act_backward(y, dy, act, alpha)


def dense_forward(x, W, b, act="identity", alpha=0.0, out=None):
    return _backend().dense_forward(x, W, b, act, alpha, out)


def dense_backward(x, W, y, dy, dW, db, act="identity", alpha=0.0, need_dx=True,
                   accumulate=True, dx_out=None):
    return _backend().dense_backward(x, W, y, dy, dW, db, act, alpha, need_dx, accumulate,
                                     dx_out)


def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, weight_decay=0.0):
    return _backend().adam_update(p, g, m, v, lr, beta1, beta2, eps, t, weight_decay)


def mse_grad(pred, target, out=None):
    return _backend().mse_grad(pred, target, out)


def gather_rows(X, idx, out=None):
    return _backend().gather_rows(X, idx, out)


for _f in (act_forward, act_backward, dense_forward, dense_backward, adam_update, mse_grad,
           gather_rows):
    _f.__doc__ = getattr(reference, _f.__name__).__doc__
del _f

__all__ = ["ACTIVATIONS", "BACKENDS", "set_backend", "get_backend", "act_forward",
           "act_backward", "dense_forward", "dense_backward", "adam_update", "mse_grad",
           "gather_rows"]
