"""Weight initialisers: ``init(shape, rng, dtype) -> array``.

Both keep the variance of activations roughly constant from layer to layer,
so deep stacks neither explode nor vanish at the start of training.

    he       N(0, 2 / fan_in)                  for ReLU-like layers
    glorot   U(-a, a), a = sqrt(6 / (fan_in + fan_out))   for tanh, sigmoid, linear
"""
import numpy as np


def he(shape, rng, dtype=np.float32):
    """He (Kaiming) normal init; ``shape`` is (fan_in, fan_out)."""
    fan_in = shape[0]
    w = rng.standard_normal(shape)
    w *= np.sqrt(2.0 / fan_in)          # in place: one float64 array at a time, same numbers
    return w.astype(dtype, copy=False)


def glorot(shape, rng, dtype=np.float32):
    """Glorot (Xavier) uniform init; ``shape`` is (fan_in, fan_out)."""
    a = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-a, a, size=shape).astype(dtype, copy=False)


INITIALISERS = {"he": he, "glorot": glorot}


def get(name):
    """The initialiser called ``name``."""
    try:
        return INITIALISERS[name]
    except KeyError:
        raise ValueError(f"unknown init {name!r}; choose one of {sorted(INITIALISERS)}") from None
