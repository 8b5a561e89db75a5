"""Output buffers that training reuses from step to step.

By default every layer returns a new array, so a result you keep is never
overwritten. Inside ``reusing()`` (``fit`` trains inside it) layers and
losses write into arrays they keep from the previous call of the same
shape instead: a fresh array of a few hundred KiB costs page faults that
take longer than the arithmetic that fills it (benchmarks/README.md).

For the same reason ``Dense.zero_grad`` does not fill its gradients with
zeros inside ``reusing()``: in a training step the next backward pass
overwrites them (it writes rather than adds right after ``zero_grad``).
"""
from contextlib import contextmanager

import numpy as np

_active = False


@contextmanager
def reusing():
    """Within this block, ``buffer()`` hands out reused arrays."""
    global _active
    before, _active = _active, True
    try:
        yield
    finally:
        _active = before


def active() -> bool:
    """True inside ``reusing()``."""
    return _active


def buffer(owner, name, shape, dtype):
    """``owner``'s reusable array ``name`` of this shape, or None outside ``reusing()``.

    ``owner`` keeps its buffers in a ``_buffers`` dict; a new shape replaces the old array.
    """
    if not _active:
        return None
    store = owner.__dict__.setdefault("_buffers", {})
    buf = store.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = store[name] = np.empty(shape, dtype)
    return buf
