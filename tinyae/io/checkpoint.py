"""Checkpoints: one ``.npz`` of arrays plus a JSON config, never pickle.

Layout of the archive (every entry a plain array, loaded with allow_pickle=False):

    __config__            0-d unicode array: JSON with format, versions, architecture
    param/<name>          every model parameter, e.g. param/encoder.0.W
    optim/<key>           optimiser state, when saved (Adam's t, m.<name>, v.<name>)

The config's "schedule" entry holds a learning-rate schedule's state_dict (JSON), when saved.

Writes go to a temporary file in the target folder, then ``os.replace``, so a
crash never leaves a half-written checkpoint under the real name.

Reading a file someone else made is bounded: the config is checked and the
expected shape of every array worked out from it (``checkpoint_check``), then
compared with the shapes in the archive's .npy headers and with the sizes the
zip declares, all before one array is loaded or one layer built. A checkpoint
can therefore cost at most the memory of the model it describes, and that
model is capped (``models.MAX_PARAMETERS``).
"""
import errno
import json
import os
import secrets
import socket
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..version import __version__
from ..models.variants import MODELS, model_from_config
from ..nn import init as initialisers
from .check import (MAX_MEMBERS, CheckpointError, check_members, expected_arrays,
                    parse_config)
from .safety import describe, kind_of, regular_file

FORMAT = "tinyae-checkpoint"
FORMAT_VERSION = 1
__all__ = ["CheckpointError", "atomic_write", "save", "read_checkpoint", "load", "load_weights"]


def atomic_write(path, write):
    """Call ``write(fileobj)`` on a temporary file, then rename it to ``path``.

    The temporary file is created with mode 0666 less the umask (the mode any new
    file gets), named ``.<name>.<host>-<pid>.<random>.tmp``; temporary files left in
    the folder by a process of this machine that no longer runs (killed mid-write)
    are removed first.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    for parent in (folder, *_parents(folder)):
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), parent)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(folder)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{_writer()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        exc.filename = path                     # the user knows the file, not our temp name
        raise exc from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp):
            exc.filename = path                 # "disk full" says which file it was writing
        raise


def _parents(folder):
    while os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
        yield folder


def _writer():
    """``<host>-<pid>``: who writes a temporary file (a shared folder may see other machines)."""
    host = socket.gethostname().replace(".", "_") or "host"
    return f"{host}-{os.getpid()}"


def alive(pid):
    """Whether process ``pid`` of this machine still runs (a lock's or a temporary file's writer)."""
    if pid <= 0:                      # never signal a process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:           # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder):
    """Delete this machine's ``.*.<host>-<pid>.<hex>.tmp`` files in ``folder`` whose writer has gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    host = _writer().rsplit("-", 1)[0]
    for name in names:
        parts = name.split(".")
        if not (name.startswith(".") and len(parts) >= 5 and parts[-1] == "tmp"):
            continue
        writer_host, _, pid = parts[-3].rpartition("-")
        if writer_host == host and pid.isdigit() and not alive(int(pid)):
            try:
                os.remove(os.path.join(folder, name))
            except OSError:
                pass                            # another process cleaned it up first


def save(model, path, *, optimizer=None, extra=None, schedule=None):
    """Save ``model`` (and optionally ``optimizer`` and ``schedule`` state and JSON ``extra``).

    ``.npz`` is appended when missing. Returns the path written. Weights that
    are NaN or infinite are refused: such a checkpoint could never be used.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    for name, p, _ in model.parameters():
        if not np.isfinite(p).all():
            raise ValueError(f"not saving {path!r}: parameter {name} has NaN or infinite values "
                             "(the training diverged); a smaller learning rate usually helps.")
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "tinyae_version": __version__,
              "model": model.config(), "optimizer": None, "extra": extra or {},
              "schedule": None if schedule is None else schedule.state_dict()}
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

    @property
    def schedule(self):
        """The saved schedule's state_dict, or None."""
        return self.config.get("schedule")


def read_checkpoint(path, optimizer: bool = True) -> Checkpoint:
    """Read and validate the archive at ``path`` without building a model.

    ``optimizer=False`` leaves the optimiser's moment arrays unread (their headers
    are still checked, and its step count read): a command that only uses the
    model then needs about a third of the memory.
    Raises ``CheckpointError`` for anything that is not a sound tinyae
    checkpoint, ``FileNotFoundError`` when there is no file.
    """
    path = regular_file(os.fspath(path), "checkpoint")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            _check_directory(f, path)
        with zipfile.ZipFile(path) as z:
            config, shapes = _read_config(z, path)
            ckpt = Checkpoint(path, config)
            for key, (info, shape) in shapes.items():
                group, _, name = key.partition("/")
                if group == "optim" and not optimizer and shape != ():
                    continue            # a moment array; the step count t is still checked
                with z.open(info) as f:
                    arr = np.lib.format.read_array(f, allow_pickle=False)
                    if f.read(1):
                        raise CheckpointError(f"{path!r}: {key} holds more bytes than its header says")
                if arr.dtype.kind in "iu" and (arr < 0).any():      # Adam's step count t
                    raise CheckpointError(f"{path!r}: {key} is negative; the file was altered.")
                if not np.isfinite(arr).all():
                    raise CheckpointError(f"{path!r}: {key} has NaN or infinite values (from a "
                                          "diverged run of an older tinyae, or altered); use an "
                                          "earlier checkpoint.")
                {"param": ckpt.params, "optim": ckpt.optim}[group][name] = arr
    except zipfile.BadZipFile as exc:
        kind = kind_of(head)
        if kind != "npz":
            raise CheckpointError(f"{path!r} is not a tinyae checkpoint: it is {describe(kind)}, "
                                  "not a .npz archive. Save one with tinyae.save(model, path) "
                                  "or tinyae train.") from None
        raise CheckpointError(f"{path!r} is a damaged zip archive ({exc}); the file is truncated "
                              "or corrupt: use another checkpoint.") from None
    except (OSError, EOFError, RuntimeError, NotImplementedError, zlib.error, ValueError,
            KeyError, TypeError, OverflowError, RecursionError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        if isinstance(exc, OSError) and exc.filename:
            raise                               # the file itself could not be read
        raise CheckpointError(f"{path!r}: the archive cannot be read ({type(exc).__name__}: "
                              f"{exc}); it is corrupt or not made by tinyae.") from None
    return ckpt


def _check_directory(f, path):
    """Refuse an archive whose directory lists more entries (or bytes) than a checkpoint has,
    from its end record alone: zipfile would read the whole directory into memory first."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - (1 << 16) - 22))
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")                     # end of central directory
    if at < 0 or len(tail) - at < 22:
        return                                          # not a zip: zipfile says so below
    entries, directory_bytes = struct.unpack("<HI", tail[at + 10:at + 16])
    locator = tail.rfind(b"PK\x06\x07", 0, at)           # ZIP64: the counts live further back
    if locator >= 0 and len(tail) - locator >= 20:
        (end64,) = struct.unpack("<Q", tail[locator + 8:locator + 16])
        if end64 + 56 <= size:
            f.seek(end64)
            record = f.read(56)
            if record[:4] == b"PK\x06\x06":
                entries, directory_bytes = struct.unpack("<QQ", record[32:48])
    if entries > MAX_MEMBERS or directory_bytes > MAX_MEMBERS * 1024:
        raise CheckpointError(f"{path!r}: its zip directory lists {entries:,} entries "
                              f"({directory_bytes:,} bytes), more than a checkpoint has; the "
                              "file was altered or is not from tinyae.")


def _read_config(z, path):
    """(config dict, {key: (ZipInfo, shape)}) with every member checked against the config."""
    headers = {}
    for info in z.infolist():
        if not info.filename.endswith(".npy") or info.filename[:-4] in headers:
            raise CheckpointError(f"{path!r}: unexpected archive member {info.filename!r}; "
                                  "this is not a tinyae checkpoint.")
        with z.open(info) as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise CheckpointError(f"{path!r}: {info.filename} uses .npy format {version}, "
                                      "which tinyae does not write")
            shape, _, dtype = read_header(f)
            header_bytes = f.tell()
        headers[info.filename[:-4]] = (info, shape, dtype, header_bytes)
    if "__config__" not in headers:
        raise CheckpointError(f"{path!r} is an .npz archive but not a tinyae checkpoint "
                              "(it has no __config__ entry).")
    check_members(path, headers)                 # sizes declared in the zip against the headers
    info, shape, dtype, _ = headers["__config__"]
    with z.open(info) as f:
        text = str(np.lib.format.read_array(f, allow_pickle=False))
    config = parse_config(path, text, FORMAT, FORMAT_VERSION)
    expected = expected_arrays(path, config)
    shapes = {}
    for key, (info, shape, dtype, _) in headers.items():
        if key == "__config__":
            continue
        group, _, name = key.partition("/")
        want = expected.get(key)
        if want is None:
            raise CheckpointError(f"{path!r}: array {key!r} does not belong to the model its "
                                  "config describes; the file was altered or is not from tinyae.")
        want_shape, kinds = want
        if tuple(shape) != want_shape or dtype.kind not in kinds or dtype.itemsize not in (4, 8) \
                or dtype.hasobject:
            raise CheckpointError(f"{path!r}: {key} is stored as {dtype} {tuple(shape)} but the "
                                  f"config needs {'float' if 'f' in kinds else 'integer'} "
                                  f"{want_shape}; the file was altered or is corrupt.")
        shapes[key] = (info, shape)
    missing = [k for k in expected if k not in shapes]
    if missing:
        raise CheckpointError(f"{path!r} does not fit the model its config describes: missing "
                              f"{missing}. The file is incomplete or was altered.")
    return config, shapes


def load_weights(model, ckpt, release=False):
    """Copy the parameters of ``ckpt`` into ``model``, checking names and shapes.

    ``release``: drop each array from ``ckpt.params`` once copied, so that the weights are
    held once (in the model), not twice, by the time the last one is copied."""
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
        if release:
            del ckpt.params[name], arr
    return model


def load(path, release=False):
    """Build the model saved at ``path`` (or in a ``Checkpoint`` already read) with its weights.

    ``release``: a ``Checkpoint`` passed in gives its arrays up to the model (its ``params``
    are emptied); a path is always read this way."""
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path)
    cfg = ckpt.config.get("model") or {}
    if cfg.get("type") not in MODELS:
        raise CheckpointError(f"{ckpt.path!r} holds a model of type {cfg.get('type')!r}, "
                              f"which tinyae.load cannot build (it builds {sorted(MODELS)})")
    try:
        with initialisers.skipped():        # the weights are about to be loaded: no draw
            model = model_from_config(cfg, rng=np.random.default_rng(0))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{ckpt.path!r}: the model config cannot be built ({exc})") from None
    return load_weights(model, ckpt, release=release or not isinstance(path, Checkpoint))


def read_model(path, conditional=False):
    """(checkpoint, model) for a command that uses a saved model: the optimiser's moments
    are left unread and the weights are handed to the model (held once); the checkpoint
    keeps its config and extra (flags, history, metrics). A conditional model (one that
    reads a label beside each image) is refused unless the command says it can give one."""
    ckpt = read_checkpoint(path, optimizer=False)
    model = load(ckpt, release=True)
    if getattr(model, "n_classes", None) is not None and not conditional:
        raise ValueError(f"{os.fspath(path)!r} holds a conditional VAE (--model cvae): its "
                         "encoder and decoder read a digit label beside each image, which this "
                         "command does not give. Use tinyae sample CKPT --digit D for its "
                         "images, tinyae evaluate or tinyae info for its numbers, or "
                         "tinyae.load() in Python")
    return ckpt, model


MAX_CODES = 10_000          # codes decoded at once by `tinyae decode` (a 100 x 100 grid)


def load_codes(path, width, max_codes=MAX_CODES):
    """Latent codes (N, width) from a .npy file, checked from its header before loading.

    Refuses files that are not .npy arrays (saying what they are), other widths,
    non-numeric or non-finite values, no codes and more than ``max_codes``.
    """
    path = regular_file(os.fspath(path), "codes file")
    fix = "expected a .npy array of shape (N, latent size), e.g. from tinyae encode"
    with open(path, "rb") as f:
        kind = kind_of(f.read(16))
        if kind != "npy":
            raise ValueError(f"{path!r} is {describe(kind)}, not a .npy array; {fix}.")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}[version](f)
        except (ValueError, KeyError, SyntaxError) as exc:
            raise ValueError(f"{path!r}: the .npy header cannot be read ({exc}); {fix}.") from None
        if len(shape) not in (1, 2) or shape[-1] != width or dtype.kind not in "fiu":
            raise ValueError(f"{path!r} holds {dtype} {shape}; {fix} ({width} for this model).")
        n = 1 if len(shape) == 1 else shape[0]
        if not 1 <= n <= max_codes:
            raise ValueError(f"{path!r} holds {n:,} codes; decode takes 1 to {max_codes:,} at once "
                             "(slice the array first, e.g. np.save(path, Z[:100])).")
        f.seek(0)
        try:
            Z = np.load(f, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise ValueError(f"{path!r} is truncated or corrupt ({exc}); {fix}.") from None
    if not np.isfinite(Z).all():
        raise ValueError(f"{path!r} has NaN or infinite codes; decode finite codes only.")
    return np.atleast_2d(Z)
