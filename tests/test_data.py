import gzip
import hashlib
import http.server
import os
import struct
import threading
from functools import partial

import numpy as np
import pytest

from tinyae.data import DataError, Dataset, read_idx
from tinyae.data import mnist as data
from tinyae.data.digits import load_builtin_digits


def write_idx(path, array, magic_type=0x08, compress=True, cut=0):
    raw = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    raw = raw[:len(raw) - cut] if cut else raw
    (gzip.open if compress else open)(path, "wb").write(raw)
    return path


# --- real MNIST ----------------------------------------------------------------------
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_train(mnist_dir):
    X, y = data.load_mnist("train", root=mnist_dir, download=False)
    assert X.shape == (60000, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 1
    assert np.bincount(y).tolist() == TRAIN_COUNTS
    raw, _ = data.load_mnist("train", root=mnist_dir, download=False, flatten=False)
    assert raw.shape == (60000, 28, 28) and raw.dtype == np.uint8
    assert raw.mean() == pytest.approx(33.318, abs=5e-4)


def test_mnist_test_split_via_env(mnist_dir, monkeypatch):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    raw, y = data.load_mnist("test", download=False, flatten=False)
    assert raw.shape == (10000, 28, 28) and np.bincount(y).tolist() == TEST_COUNTS
    assert raw.mean() == pytest.approx(33.791, abs=5e-4)


def test_bad_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_mnist("valid")


# --- where files live ----------------------------------------------------------------
def test_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(tmp_path / "env"))
    assert data.data_dir(data.MNIST, tmp_path / "arg") == tmp_path / "arg"
    assert data.data_dir(data.MNIST) == tmp_path / "env"
    assert data.data_dir(data.FASHION_MNIST) == tmp_path / "env" / "fashion-mnist"
    monkeypatch.delenv("TINYAE_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_dir(data.MNIST) == tmp_path / "cache" / "tinyae" / "mnist"


# --- IDX errors ----------------------------------------------------------------------
def test_read_idx_round_trip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.gz", a)), a)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.idx", a, compress=False)), a)


def test_truncated_idx(tmp_path):
    path = write_idx(tmp_path / "t.gz", np.zeros((4, 5, 5)), cut=7)
    with pytest.raises(DataError, match=r"t.gz: header says shape \(4, 5, 5\).*truncated"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    path = write_idx(tmp_path / "g.gz", np.zeros((50, 28, 28)))
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError, match="g.gz.*truncated or corrupt"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "m.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x08not an idx file")
    with pytest.raises(DataError, match="m.gz: wrong magic number"):
        read_idx(path)


def fake_dataset(folder, n_images=6, n_labels=6):
    """Four tiny IDX files with MNIST's names, and a Dataset with their checksums."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 0), ("t10k", 1)):
        files[f"{split}-images-idx3-ubyte.gz"] = rng.integers(0, 256, (n_images + n, 28, 28))
        files[f"{split}-labels-idx1-ubyte.gz"] = rng.integers(0, 10, n_labels + n)
    checksums = {}
    for name, arr in files.items():
        write_idx(folder / name, arr)
        checksums[name] = "sha256:" + hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return Dataset("Fake", "", checksums, (), "test data")


def test_image_label_count_mismatch(tmp_path):
    ds = fake_dataset(tmp_path, n_images=6, n_labels=5)
    with pytest.raises(DataError, match="6 images but .* has 5 labels"):
        data._load(ds, "train", tmp_path, False, True, False)


def test_checksum_mismatch(tmp_path):
    ds = fake_dataset(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz is corrupt .sha256 checksum mismatch.: its checksum is [0-9a-f]{64}, but the published file.s is [0-9a-f]{64}"):
        data.ensure_files(ds, tmp_path, download_missing=False)


def test_a_split_needs_and_checks_only_its_own_files(tmp_path):
    ds = fake_dataset(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x00" * 10)   # corrupt train file
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()                    # and a missing one
    X, y = data._load(ds, "test", tmp_path, False, True, False)
    assert X.shape == (7, 784) and y.shape == (7,)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is corrupt .sha256 checksum mismatch"):
        data._load(ds, "train", tmp_path, False, True, False)


def test_missing_without_download(tmp_path):
    with pytest.raises(DataError, match="missing and download=False.*Put the four files"):
        data.load_mnist(root=tmp_path, download=False)


# --- downloading from local mirrors --------------------------------------------------
@pytest.fixture
def mirrors(tmp_path):
    """A server on 127.0.0.1: /good/ serves the files, /bad/ serves corrupt copies."""
    source = tmp_path / "source"
    ds = fake_dataset(source)
    bad = tmp_path / "served" / "bad"
    bad.mkdir(parents=True)
    os.symlink(source, tmp_path / "served" / "good")
    for name in ds.files:
        blob = bytearray((source / name).read_bytes())
        blob[-10] ^= 0xFF
        (bad / name).write_bytes(bytes(blob))
    handler = partial(QuietHandler, directory=str(tmp_path / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    refused = "http://127.0.0.1:9/"                    # the discard port: nothing listens
    yield ds, refused, base + "/bad/", base + "/good/"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_tries_mirrors_in_turn(tmp_path, mirrors):
    ds, refused, bad, good = mirrors
    dest = tmp_path / "dest"
    folder = data.ensure_files(ds, dest, mirrors=(refused, bad, good), progress=False)
    assert sorted(os.listdir(folder)) == sorted(ds.files)          # no stray temporary files
    for name, checksum in ds.files.items():
        data.verify(folder / name, checksum)
    X, y = data._load(ds, "train", dest, False, True, False)
    assert X.shape == (6, 784) and y.shape == (6,)


def test_all_mirrors_bad(tmp_path, mirrors):
    ds, refused, bad, _ = mirrors
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as info:
        data.ensure_files(ds, dest, mirrors=(refused, bad), progress=False)
    msg = str(info.value)
    assert refused in msg and bad in msg and "checksum mismatch" in msg
    assert "URLError" in msg and str(dest) in msg and "by hand" in msg
    assert not dest.exists()                # nothing half-written, no empty folder left behind


def test_offline_error_lists_mirrors(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("network is disabled in this test")
    monkeypatch.setattr(data, "urlopen", offline)
    with pytest.raises(DataError, match="network is disabled") as info:
        data.load_mnist(root=tmp_path, progress=False)
    for base in data.MNIST.mirrors:
        assert base in str(info.value)


# --- built-in digits -----------------------------------------------------------------
def test_builtin_digits():
    X, y = load_builtin_digits("test", n=300)
    X2, y2 = load_builtin_digits("test", n=300)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == (300, 784) and X.dtype == np.float32 and y.dtype == np.int64
    assert 0 <= X.min() and X.max() <= 1 and set(y.tolist()) == set(range(10))
    assert 0.05 < X.mean() < 0.3                           # ink on a dark background, like MNIST
    raw, _ = load_builtin_digits("test", n=10, flatten=False)
    assert raw.shape == (10, 28, 28) and raw.dtype == np.uint8
    Xtr, _ = load_builtin_digits("train", n=300)
    assert not np.array_equal(Xtr, X)


def test_fashion_mnist_uses_its_own_folder_and_checksums(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"Fashion-MNIST: .*fashion-mnist.*missing"):
        data.load_fashion_mnist(download=False)
    assert all(c.startswith("md5:") for c in data.FASHION_MNIST.files.values())
