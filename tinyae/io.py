"""Checkpoints: one ``.npz`` of arrays plus a JSON config, never pickle.

Layout of the archive (every entry a plain array, loaded with allow_pickle=False):

    __config__            0-d unicode array: JSON with format, versions, architecture
    param/<name>          every model parameter, e.g. param/encoder.0.W
    optim/<key>           optimiser state, when saved (Adam's t, m.<name>, v.<name>)

Writes go to a temporary file in the target folder, then ``os.replace``, so a
crash never leaves a half-written checkpoint under the real name.
"""
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

FORMAT = "tinyae-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that cannot be loaded as a tinyae checkpoint for this model."""


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file, then rename it to ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save(model, path, *, optimizer=None, extra=None):
    """Save ``model`` (and optionally ``optimizer`` state and JSON ``extra``) to ``path``.

    ``.npz`` is appended when missing. Returns the path written.
    """
    from . import __version__
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "tinyae_version": __version__,
              "model": model.config(), "optimizer": None, "extra": extra or {}}
    arrays = {f"param/{name}": p for name, p, _ in model.parameters()}
    if optimizer is not None:
        config["optimizer"] = {"type": type(optimizer).__name__, "lr": optimizer.lr}
        arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays["__config__"] = np.array(json.dumps(config))
    atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


@dataclass
class Checkpoint:
    """What ``read_checkpoint`` found: the config and the raw arrays."""
    path: str
    config: dict
    params: dict = field(default_factory=dict)
    optim: dict = field(default_factory=dict)

    @property
    def extra(self):
        return self.config.get("extra") or {}


def read_checkpoint(path) -> Checkpoint:
    """Read and validate the archive at ``path`` without building a model."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"{path!r} is not a tinyae checkpoint (not a readable .npz "
                              f"archive: {exc}); save one with tinyae.save(model, path).") from None
    if not isinstance(arrays, dict) or "__config__" not in arrays:
        raise CheckpointError(f"{path!r} is an .npz archive but not a tinyae checkpoint "
                              "(it has no __config__ entry).")
    try:
        config = json.loads(str(arrays.pop("__config__")))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path!r}: the checkpoint's config is not valid JSON ({exc})") from None
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a tinyae checkpoint (format {config.get('format')!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path!r} uses checkpoint format {version}, but this tinyae reads "
                              f"format {FORMAT_VERSION} and older; upgrade tinyae "
                              "(pip install -U tinyae).")
    ckpt = Checkpoint(path, config)
    for key, arr in arrays.items():
        group, _, name = key.partition("/")
        {"param": ckpt.params, "optim": ckpt.optim}.get(group, {})[name] = arr
    return ckpt


def load_weights(model, ckpt):
    """Copy the parameters of ``ckpt`` into ``model``, checking names and shapes."""
    if not isinstance(ckpt, Checkpoint):
        ckpt = read_checkpoint(ckpt)
    expected = {name: p for name, p, _ in model.parameters()}
    missing = [n for n in expected if n not in ckpt.params]
    unknown = [n for n in ckpt.params if n not in expected]
    saved = (ckpt.config.get("model") or {}).get("type")
    if saved and saved != type(model).__name__ and (missing or unknown):
        raise CheckpointError(f"{ckpt.path!r} holds a model of type {saved}, but this model is "
                              f"of type {type(model).__name__}, with other parameters "
                              f"({len(missing)} missing, {len(unknown)} unexpected); build the "
                              "saved kind with tinyae.load(path)")
    if missing or unknown:
        raise CheckpointError(f"{ckpt.path!r} does not fit this model: missing {missing or 'none'}, "
                              f"unexpected {unknown or 'none'}. It was saved from a different "
                              "architecture; build the model from the checkpoint with tinyae.load().")
    for name, p in expected.items():
        arr = ckpt.params[name]
        if arr.shape != p.shape:
            raise CheckpointError(f"{ckpt.path!r}: {name} has shape {arr.shape} but the model "
                                  f"needs {p.shape}; the checkpoint is from a different architecture.")
        p[...] = arr
    return model


def load(path):
    """Build the model saved at ``path`` (or in a ``Checkpoint`` already read) with its weights."""
    from .variants import MODELS, model_from_config
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    cfg = ckpt.config.get("model") or {}
    if cfg.get("type") not in MODELS:
        raise CheckpointError(f"{ckpt.path!r} holds a model of type {cfg.get('type')!r}, "
                              f"which tinyae.load cannot build (it builds {sorted(MODELS)})")
    try:
        model = model_from_config(cfg, rng=np.random.default_rng(0))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt.path!r}: the model config cannot be built ({exc})") from None
    return load_weights(model, ckpt)
