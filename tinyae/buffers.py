"""Output buffers that training reuses from step to step.

By default every layer returns a new array, so a result you keep is never
overwritten. Inside ``reusing()`` (``fit`` trains inside it) layers and
losses write into arrays they keep from the previous call of the same
shape instead: a fresh array of a few hundred KiB costs page faults that
take longer than the arithmetic that fills it (benchmarks/README.md).

For the same reason ``Sequential.zero_grad`` does not fill its Dense
layers' gradients with zeros inside ``reusing()``: its next backward pass
runs every layer's backward, and each Dense then writes its gradients
rather than adding to them.
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
