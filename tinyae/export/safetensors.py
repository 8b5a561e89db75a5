"""State dicts as safetensors files: a model written out, a file read back into a model.

A safetensors file is 8 bytes (n, little-endian), n bytes of JSON naming each
tensor's dtype, shape and byte range, then the raw data: no pickle, so reading
one cannot run code. Reading checks the header against the model it should
fit (names, shapes, dtypes) before one tensor is loaded or a model is built,
so a file can cost at most the memory of that model.
"""
import json
import os

import numpy as np

from ..io.checkpoint import Checkpoint, atomic_write, load, read_checkpoint
from ..io.safety import describe, kind_of, regular_file
from ..models.variants import model_from_config
from ..version import __version__
from .files import need, refuse_existing
from .rules import ExportError
from .torch_names import check_state, load_state, signature, state_dict

MAX_HEADER = 100_000_000        # bytes of JSON: about 100 per tensor, for any real model far fewer
DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64",
          "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def to_safetensors(model, path, *, force: bool = False):
    """Write ``model``'s state dict in PyTorch's names and layouts to ``path``; returns it.

    ``torch_module.load_state_dict(safetensors.torch.load_file(path), strict=True)``
    then loads it into the equivalent module (``tinyae.export.to_torch``).
    """
    st = need("safetensors.numpy", "writing a safetensors file")
    state = state_dict(model)                  # a layer without a PyTorch equivalent stops here
    for name, a in state.items():
        if not np.isfinite(a).all():
            raise ExportError(f"{name} has NaN or infinite values (the training diverged); "
                              "export a checkpoint from before")
    metadata = {"format": "pt", "producer": f"tinyae {__version__}",
                "tinyae_model": json.dumps(model.config())}
    refuse_existing(path, force)
    atomic_write(path, lambda f: f.write(st.save(state, metadata=metadata)))
    return path


def from_safetensors(path, like):
    """A new tinyae model of ``like``'s architecture with the weights in the safetensors file.

    Args:
        path: a state dict in PyTorch's names and layouts (``to_safetensors``, or
            ``safetensors.torch.save_file(module.state_dict(), path)``).
        like: a tinyae model, a ``Checkpoint`` or a checkpoint's path: the architecture.
    Raises ``ExportError`` naming the key when the names, shapes or dtypes differ.
    """
    template, described = _template(like)
    check_state(signature(template), read_header(path), repr(os.fspath(path)), described)
    state = _load(path)
    model = _fresh(template) if template is like else template    # never the caller's model
    return load_state(model, state)


def _template(like):
    """(model, how to name it in a message) for a model, a Checkpoint or a checkpoint's path."""
    if hasattr(like, "parameters"):
        return like, f"the given {type(like).__name__}"
    ckpt = like if isinstance(like, Checkpoint) else read_checkpoint(like, optimizer=False)
    model = load(ckpt)                         # a new model: its weights are replaced below
    return model, f"the {type(model).__name__} of {ckpt.path!r}"


def _fresh(model):
    """A new model of ``model``'s architecture (the template given is left alone)."""
    return model_from_config(model.config(), rng=np.random.default_rng(0))


def read_header(path):
    """{tensor name: (shape, dtype name)} from the header of the safetensors file at ``path``."""
    path = regular_file(os.fspath(path), "safetensors state dict")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        if not 2 <= n <= min(size - 8, MAX_HEADER):
            raise _not_safetensors(path, head)
        text = f.read(n)
    try:
        header = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _not_safetensors(path, head) from None
    if not isinstance(header, dict):
        raise _not_safetensors(path, head)
    return {name: _entry(path, name, entry) for name, entry in header.items()
            if name != "__metadata__"}


def _entry(path, name, entry):
    shape = entry.get("shape") if isinstance(entry, dict) else None
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)
            and isinstance(entry.get("dtype"), str)):
        raise ExportError(f"{path!r}: the header entry of {name!r} is malformed (no shape "
                          "or dtype); the file is corrupt: export it again")
    return tuple(shape), DTYPES.get(entry["dtype"], entry["dtype"])


def _not_safetensors(path, head):
    return ExportError(f"{path!r} is not a safetensors state dict (it is "
                       f"{describe(kind_of(head))}); give a .safetensors file written by "
                       "tinyae export --to safetensors or safetensors.torch.save_file")


def _load(path):
    """The tensors of ``path`` (its header already checked), each finite."""
    st = need("safetensors.numpy", "reading a safetensors file")
    damaged = need("safetensors", "reading a safetensors file").SafetensorError
    try:
        state = st.load_file(path)
    except damaged as exc:              # the data disagrees with the header: cut short, altered
        raise ExportError(f"{path!r} is a damaged safetensors file ({exc}); export it "
                          "again") from None
    for name, a in state.items():
        if not np.isfinite(a).all():
            raise ExportError(f"{path!r}: {name} has NaN or infinite values (the training "
                              "diverged); save the weights from an earlier step")
    return state

