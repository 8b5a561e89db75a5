"""MNIST and Fashion-MNIST from the original IDX files: find, download, verify, read.

Where the files live (first that is set):
  1. the ``root`` argument,
  2. ``$TINYAE_DATA_DIR`` (MNIST's four files in it, Fashion-MNIST in its
     ``fashion-mnist`` subfolder),
  3. the user cache, ``$XDG_CACHE_HOME/tinyae/<dataset>`` (``~/.cache/tinyae``).

Every file is checked against its published digest before use. A missing
file is downloaded from each mirror in turn: streamed to a temporary file in
the same folder, verified, then renamed, so a failed or corrupt download
never leaves a file under the real name.
"""
import gzip
import hashlib
import math
import os
import stat
import struct
import sys
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..progress import interactive
from .digits import load_builtin_digits


class DataError(ValueError):
    """A data file that is missing, corrupt, or not what its name says."""


class DataUnavailable(DataError):
    """The files are not on this machine and could not be downloaded (nothing is corrupt)."""

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason            # one short line for the offline fallback's note


@dataclass(frozen=True)
class Dataset:
    name: str
    subdir: str                 # folder name under the cache (and under TINYAE_DATA_DIR)
    files: dict                 # file name -> "sha256:<hex>" or "md5:<hex>"
    mirrors: tuple              # base URLs, tried in order
    licence: str


MNIST = Dataset(
    "MNIST", "", {
        "train-images-idx3-ubyte.gz": "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    ("https://ossci-datasets.s3.amazonaws.com/mnist/",          # torchvision's mirror
     "https://storage.googleapis.com/cvdf-datasets/mnist/",     # TensorFlow tutorials' mirror
     "http://yann.lecun.com/exdb/mnist/"),                      # the original home
    "MNIST by Y. LeCun, C. Cortes and C. Burges, CC BY-SA 3.0")

FASHION_MNIST = Dataset(
    "Fashion-MNIST", "fashion-mnist", {                            # MD5s published with the data
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    },
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",   # torchvision's mirror
     "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),  # Keras' mirror
    "Fashion-MNIST by Zalando Research, MIT licence")

SPLITS = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}

# Tests replace this to simulate a machine without network.
urlopen = urllib.request.urlopen


# --- reading IDX ---------------------------------------------------------------------
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


MAX_IDX_BYTES = 1 << 30            # 1 GiB of data; MNIST's largest file holds 47 MB


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into an array, checking header and length.

    Header: two zero bytes, a type code, the rank r, then r big-endian uint32
    dimensions; the data follow, exactly prod(dims) items. Only what the header
    declares is read (at most ``MAX_IDX_BYTES``), so a corrupt file cannot fill memory.
    """
    path = Path(path)
    _regular(path)
    kind = "gzip" if path.suffix == ".gz" else "IDX"
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_DTYPES:
                raise DataError(f"{path}: wrong magic number {head.hex() or '(empty file)'}; "
                                "this is not an IDX file.")
            rank = head[3]
            dims_raw = f.read(4 * rank)
            if rank < 1 or len(dims_raw) < 4 * rank:
                raise DataError(f"{path}: IDX header is cut short (rank {rank}).")
            dims = struct.unpack(f">{rank}I", dims_raw)
            dtype = np.dtype(IDX_DTYPES[head[2]])
            expected = math.prod(dims) * dtype.itemsize
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path}: header says shape {dims} ({expected:,} bytes), more "
                                f"than the {MAX_IDX_BYTES:,} tinyae reads; the file is corrupt.")
            raw = f.read(expected + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: cannot be read as {kind} ({exc}); the file is truncated or "
                        "corrupt: delete it and download it again.") from None
    if len(raw) != expected:
        held = f"{len(raw):,}" if len(raw) <= expected else "more"
        raise DataError(f"{path}: header says shape {dims} ({expected:,} data bytes) but the file "
                        f"holds {held}; it is truncated or corrupt.")
    return np.frombuffer(raw, dtype=dtype).reshape(dims)


def _regular(path):
    """A data file must be an ordinary file: a FIFO would block, /dev/zero never end."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path} is not a regular file (a folder, device or pipe); point "
                        "TINYAE_DATA_DIR at a folder holding the IDX .gz files themselves.")


def _umask_mode():
    """0666 less the process umask: the mode a newly created file gets."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# --- finding and verifying files -----------------------------------------------------
def data_dir(dataset=MNIST, root=None) -> Path:
    """The folder that holds (or will hold) ``dataset``'s files."""
    if root is not None:
        return Path(root)
    env = os.environ.get("TINYAE_DATA_DIR")
    if env:
        return Path(env) / dataset.subdir
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tinyae" / (dataset.subdir or "mnist")


def file_digest(path, algorithm) -> str:
    _regular(path)
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path, checksum):
    """Raise ``DataError`` unless the file's digest equals ``checksum`` ("sha256:<hex>")."""
    algorithm, want = checksum.split(":")
    got = file_digest(path, algorithm)
    if got != want:
        raise DataError(f"{path} is corrupt ({algorithm} checksum mismatch): its checksum is "
                        f"{got}, but the published file's is {want}. Delete it (it is "
                        "downloaded again when needed) or replace it with the original file.")


def download(url, dest, checksum, progress=True, timeout=30):
    """Stream ``url`` to ``dest`` through a temporary file; verify, then rename."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with _progress_bar(total, dest.name, progress) as bar:     # closed on failure too
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        verify(tmp, checksum)
        os.chmod(tmp, _umask_mode())        # mkstemp makes it private; a data file is not
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _progress_bar(total, name, enabled):
    """A byte-count bar on a terminal or in Jupyter; nothing in a log (no carriage-return frames)."""
    from tqdm.auto import tqdm          # tqdm only when a download starts (it imports IPython's parts)
    live = enabled and interactive()
    if enabled and not live:                 # a log gets one line instead of the frames
        print(f"downloading {name}" + (f" ({total:,} bytes)" if total else ""), file=sys.stderr)
    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}",
                disable=not live, leave=False)


def ensure_files(dataset=MNIST, root=None, download_missing=True, mirrors=None, progress=True,
                 names=None):
    """Return the folder with ``dataset``'s files (or only ``names``) present and verified.

    Raises ``DataUnavailable`` when a file is missing and cannot be downloaded
    (leaving no folder it created behind), ``DataError`` when a file is corrupt.
    """
    folder = data_dir(dataset, root)
    mirrors = dataset.mirrors if mirrors is None else tuple(mirrors)
    for name in dataset.files if names is None else names:
        checksum = dataset.files[name]
        path = folder / name
        if path.exists():
            verify(path, checksum)
            continue
        if not download_missing:
            raise DataUnavailable(f"{dataset.name}: {path} is missing and download=False. Put the "
                                  f"four files {sorted(dataset.files)} in {folder} (or set "
                                  "TINYAE_DATA_DIR).", f"{path} is missing")
        created = _make_folder(folder)
        failures = []
        for base in mirrors:
            try:
                download(base + name, path, checksum, progress)
                break
            except Exception as exc:                # any failure: note it, try the next mirror
                failures.append(f"  {base + name}: {type(exc).__name__}: {exc}")
        else:
            for d in reversed(created):             # leave no empty cache folder behind
                try:
                    d.rmdir()
                except OSError:
                    break
            raise DataUnavailable(
                f"could not download {dataset.name} file {name}; tried:\n" + "\n".join(failures)
                + f"\nDownload the files by hand and put them in {folder} "
                  "(or point TINYAE_DATA_DIR at a folder that has them).",
                f"{name} is not in {folder} and could not be downloaded"
                + (f" ({failures[0].split(': ', 1)[1]})" if failures else ""))
    return folder


def _make_folder(folder):
    """mkdir -p ``folder``; returns the folders it created, outermost first."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _load(dataset, split, root, download, flatten, progress):
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    image_file, label_file = SPLITS[split]
    folder = ensure_files(dataset, root, download, progress=progress, names=SPLITS[split])
    images, labels = read_idx(folder / image_file), read_idx(folder / label_file)
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{folder / image_file}: expected images (N, 28, 28) and labels (N,), got "
                        f"{images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{folder}: {image_file} has {len(images)} images but {label_file} has "
                        f"{len(labels)} labels; one of the files is wrong.")
    labels = labels.astype(np.int64)
    if not flatten:
        return images, labels
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255), labels


def load_mnist(split="train", root=None, download=True, flatten=True, progress=True):
    """MNIST ``split`` as (images, labels).

    Returns float32 images in [0, 1] of shape (N, 784) (``flatten=False``:
    the raw uint8 (N, 28, 28)) and int64 labels (N,). N is 60,000 for
    "train" and 10,000 for "test".
    """
    return _load(MNIST, split, root, download, flatten, progress)


def load_fashion_mnist(split="train", root=None, download=True, flatten=True, progress=True):
    """Fashion-MNIST, the same shapes and types as ``load_mnist``."""
    return _load(FASHION_MNIST, split, root, download, flatten, progress)


FALLBACK_NOTE = ("using the built-in digits instead. To train on MNIST, put its four IDX .gz "
                 "files in a folder and set TINYAE_DATA_DIR to it (or go online); "
                 "--data mnist refuses to fall back.")


def load_dataset(kind, split, limit=None, progress=True):
    """(images, labels, name) for ``kind`` in "auto", "mnist", "fashion", "builtin".

    "auto" is MNIST when it can be found or downloaded, else the built-in
    digits (saying so on stderr); "mnist" never falls back. ``limit`` keeps
    the first images only.
    """
    if kind == "builtin":
        (X, y), name = load_builtin_digits(split), "builtin"
    elif kind == "fashion":
        (X, y), name = load_fashion_mnist(split, progress=progress), "fashion"
    elif kind in ("auto", "mnist"):
        try:
            (X, y), name = load_mnist(split, progress=progress), "mnist"
        except DataUnavailable as exc:          # absent: fall back; corrupt files are an error
            if kind == "mnist":
                raise
            print(f"MNIST not available: {exc.reason}; {FALLBACK_NOTE}", file=sys.stderr)
            (X, y), name = load_builtin_digits(split), "builtin"
    else:
        raise ValueError(f"unknown data set {kind!r}; choose auto, mnist, fashion or builtin")
    return (X[:limit], y[:limit], name) if limit else (X, y, name)
