"""Weight initialisers: ``init(shape, rng, dtype) -> array``.

Both keep the variance of activations roughly constant from layer to layer,
so deep stacks neither explode nor vanish at the start of training.

    he       N(0, 2 / fan_in)                  for ReLU-like layers
    glorot   U(-a, a), a = sqrt(6 / (fan_in + fan_out))   for tanh, sigmoid, linear
    torch    U(-a, a), a = 1 / sqrt(fan_in), the bias too: what torch.nn.Linear and Conv2d
             start from (a variance of 1 / (3 fan_in), a sixth of He's)

The biases start at 0, except under "torch" (``bias``).

``shape`` is a Dense weight's (fan_in, fan_out) or a convolution kernel's
(out_channels, in_channels, kh, kw), whose fans count the kernel's taps.
"""
import contextlib
import contextvars

import numpy as np


def fans(shape):
    """(fan_in, fan_out): inputs and outputs each weight meets, for a 2-D or 4-D ``shape``."""
    if len(shape) == 4:                           # (out, in, kh, kw): kh kw taps per channel
        taps = shape[2] * shape[3]
        return shape[1] * taps, shape[0] * taps
    return shape[0], shape[1]


def he(shape, rng, dtype=np.float32):
    """He (Kaiming) normal init."""
    fan_in = fans(shape)[0]
    w = rng.standard_normal(shape)
    w *= np.sqrt(2.0 / fan_in)          # in place: one float64 array at a time, same numbers
    return w.astype(dtype, copy=False)


def glorot(shape, rng, dtype=np.float32):
    """Glorot (Xavier) uniform init."""
    a = np.sqrt(6.0 / sum(fans(shape)))
    return rng.uniform(-a, a, size=shape).astype(dtype, copy=False)


def torch_uniform(shape, rng, dtype=np.float32):
    """PyTorch's start for Linear and Conv weights: kaiming_uniform(a=sqrt(5)), U(+-1/sqrt(fan_in))."""
    a = 1 / np.sqrt(fans(shape)[0])
    return rng.uniform(-a, a, size=shape).astype(dtype, copy=False)


INITIALISERS = {"he": he, "glorot": glorot, "torch": torch_uniform}
# True inside ``skipped()``; a context variable, so each thread (and task) has its own.
_skipping = contextvars.ContextVar("tinyae_init_skipped", default=False)


def zeros(shape, rng, dtype=np.float32):
    """All zeros: pages the OS hands out as they are first written (no memory before)."""
    return np.zeros(shape, dtype)


@contextlib.contextmanager
def skipped():
    """Inside, every initialiser gives ``zeros``: for a model built only to have its weights
    loaded (``tinyae.load``), a random draw would be wasted time and, for a large model,
    twice its weights in memory (the float64 draw). Other threads are not affected."""
    token = _skipping.set(True)
    try:
        yield
    finally:
        _skipping.reset(token)


def bias(name, shape, n, rng, dtype=np.float32):
    """The starting bias (n,) of a layer whose weight ``shape`` was drawn by ``name``: zeros,
    or under "torch" U(+-1/sqrt(fan_in)), drawn after the weight as PyTorch draws it."""
    if name != "torch" or _skipping.get():
        return np.zeros(n, dtype)
    a = 1 / np.sqrt(fans(shape)[0])
    return rng.uniform(-a, a, size=n).astype(dtype, copy=False)


def get(name):
    """The initialiser called ``name`` (``zeros`` inside ``skipped()``)."""
    try:
        init = INITIALISERS[name]
    except KeyError:
        raise ValueError(f"unknown init {name!r}; choose one of {sorted(INITIALISERS)}") from None
    return zeros if _skipping.get() else init
