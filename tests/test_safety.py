"""The bad-input table: each hostile input or fault gets one clear error, exit code 1 (2 for
argparse), no traceback, and no file changed."""
import errno
import hashlib
import os
import subprocess
import sys
import time
import tracemalloc

import crafted
import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import commands as cli
from tinyae.cli.flags import RunError
from tinyae.data import DataError
from tinyae.data import mnist as data
from tinyae.io import CheckpointError
from tinyae.io.safety import UnsafePathError


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A working folder with a checkpoint, codes, a PNG and a text file; cwd is inside it."""
    monkeypatch.chdir(tmp_path)
    model = crafted.small_model()
    ta.save(model, tmp_path / "ck.npz", optimizer=ta.Adam(model.parameters()),
            extra={"args": {"data": "builtin", "sizes": [784, 16, 2], "epochs": 2,
                            "batch_size": 64, "lr": 1e-3, "seed": 0, "limit": 300,
                            "validation": "none"}})
    np.save(tmp_path / "codes.npy", np.zeros((5, 2), np.float32))
    (tmp_path / "picture.png").write_bytes(crafted.PNG)
    (tmp_path / "notes.png").write_bytes(crafted.TEXT)
    (tmp_path / "sub").mkdir()
    return tmp_path


def snapshot(folder):
    """{relative path: (sha256, mode)} of every file under ``folder``."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            if os.path.isfile(p):
                out[os.path.relpath(p, folder)] = (hashlib.sha256(open(p, "rb").read()).hexdigest(),
                                                   os.stat(p).st_mode)
    return out


def _write(name, content):
    def setup(ws):
        (ws / name).write_bytes(content() if callable(content) else content)
    return setup


def _fifo(name):
    return lambda ws: os.mkfifo(ws / name)


def _link(name, target, hard=False):
    return lambda ws: (os.link if hard else os.symlink)(ws / target, ws / name)


def _codes(name, array):
    return lambda ws: np.save(ws / name, array)


def _lock(ws):
    (ws / "busy").mkdir()
    (ws / "busy" / ".tinyae-run.lock").write_text(f"{os.getppid()}\n")   # a live process


def _in_run_folder(ws):
    (ws / "run").mkdir()
    (ws / "run" / "last.npz").write_bytes((ws / "ck.npz").read_bytes())


def _earlier_run(ws):
    (ws / "old").mkdir()
    ta.save(crafted.small_model(1), ws / "old" / "last.npz")


# (id, setup, argv, error type, message fragment)
TABLE = [
    # 1. outputs never destroy inputs
    ("encode -o the checkpoint", None, ["encode", "ck.npz", "-o", "ck.npz"],
     UnsafePathError, "should end in .npy"),
    ("encode -o a symlink to the checkpoint", _link("c.npy", "ck.npz"),
     ["encode", "ck.npz", "-o", "c.npy"], UnsafePathError, "is an input of this command"),
    ("decode -o a hard link to the codes", _link("h.png", "codes.npy", hard=True),
     ["decode", "ck.npz", "codes.npy", "-o", "h.png"], UnsafePathError, "is an input"),
    ("decode -o the checkpoint", None, ["decode", "ck.npz", "codes.npy", "-o", "ck.npz"],
     UnsafePathError, "should end in .png"),
    ("encode -o and --labels the same", None,
     ["encode", "ck.npz", "-o", "same.npy", "--labels", "same.npy"], UnsafePathError,
     "--labels and -o are the same file"),
    ("interpolate -o a text file", None,
     ["interpolate", "ck.npz", "--from", "0", "--to", "1", "-o", "notes.png"], UnsafePathError,
     "exists and is a text file, not a PNG image"),
    ("encode -o a folder", lambda ws: (ws / "dir.npy").mkdir(),
     ["encode", "ck.npz", "-o", "dir.npy"], UnsafePathError, "is a folder"),
    ("encode without -o over codes.npy", None, ["encode", "ck.npz", "--data", "builtin"],
     UnsafePathError, "'codes.npy' (the default -o) already exists"),
    ("decode without -o over decoded.png", _write("decoded.png", crafted.PNG),
     ["decode", "ck.npz", "codes.npy"], UnsafePathError, "already exists; give -o a new name"),
    # 2. run folders
    ("train --resume into its own folder", _in_run_folder,
     ["train", "--resume", "run/last.npz", "--out", "run", "--force"], UnsafePathError,
     "'run/last.npz' is an input of this command"),
    ("train into a busy folder", _lock, ["train", "--out", "busy"], UnsafePathError,
     f"in use by another tinyae run (pid {os.getppid()})"),
    ("train over an earlier run", _earlier_run, ["train", "--out", "old"], UnsafePathError,
     "already holds an earlier run's files (last.npz)"),
    ("train into a folder whose latent.png is not a PNG", _write("latent.png", crafted.TEXT),
     ["train", "--out", "."], UnsafePathError, "latent.png' exists and is a text file"),
    ("train --out is a file", None, ["train", "--out", "codes.npy", "--data", "builtin"],
     FileExistsError, "codes.npy: it exists already"),
    # 3. bounded work
    ("info on a FIFO", _fifo("fifo.npz"), ["info", "fifo.npz"], UnsafePathError,
     "not a regular file"),
    ("info on /dev/zero", None, ["info", "/dev/zero"], UnsafePathError, "not a regular file"),
    ("info on a folder", None, ["info", "sub"], UnsafePathError, "is a folder"),
    ("decode codes from a FIFO", _fifo("z.npy"), ["decode", "ck.npz", "z.npy", "-o", "o.png"],
     UnsafePathError, "not a regular file"),
    ("info on an 11 KB huge-Dense checkpoint", _write("huge.npz", crafted.huge_dense_checkpoint),
     ["info", "huge.npz"], CheckpointError, "more than tinyae's limit of 100,000,000"),
    ("info on an inflating member", _write("bomb.npz", crafted.inflating_checkpoint),
     ["info", "bomb.npz"], CheckpointError, "param/encoder.0.W is stored as float32 (104857600,)"),
    ("info on a member lying about its size", _write("lie.npz", crafted.lying_size_checkpoint),
     ["info", "lie.npz"], CheckpointError, "damaged zip archive (Bad CRC-32"),
    ("decode zero codes", _codes("z.npy", np.zeros((0, 2), np.float32)),
     ["decode", "ck.npz", "z.npy", "-o", "o.png"], ValueError, "holds 0 codes; decode takes 1 to"),
    ("decode 20,000 codes", _codes("z.npy", np.zeros((20000, 2), np.float32)),
     ["decode", "ck.npz", "z.npy", "-o", "o.png", "--max-images", "0"], ValueError,
     "decode at most 10,000 at once"),
    ("decode 2,000 codes in 1 column", None,
     ["decode", "ck.npz", "big.npy", "-o", "o.png", "--columns", "1", "--max-images", "0"],
     ValueError,
     "more than 100 rows; use --columns 20"),
    ("decode NaN codes", _codes("z.npy", np.full((3, 2), np.nan)),
     ["decode", "ck.npz", "z.npy", "-o", "o.png"], ValueError, "NaN or infinite codes"),
    ("decode codes of another width", _codes("z.npy", np.zeros((3, 5))),
     ["decode", "ck.npz", "z.npy", "-o", "o.png"], ValueError, "(2 for this model)"),
    ("decode codes that are a PNG", None, ["decode", "ck.npz", "picture.png", "-o", "o.png"],
     ValueError, "is a PNG image, not a .npy array"),
    ("decode codes that are pickled", _codes("z.npy", np.array([{"a": 1}], dtype=object)),
     ["decode", "ck.npz", "z.npy", "-o", "o.png"], ValueError, "holds object"),
    # crafted checkpoints
    ("info on a text file named .npz", _write("t.npz", crafted.TEXT), ["info", "t.npz"],
     CheckpointError, "it is a text file, not a .npz archive"),
    ("info on a PNG named .npz", _write("p.npz", crafted.PNG), ["info", "p.npz"],
     CheckpointError, "it is a PNG image, not a .npz archive"),
    ("info on an encrypted zip",
     _write("e.npz", lambda: crafted.set_zip_flags(crafted.checkpoint_bytes(), encrypted=True)),
     ["info", "e.npz"], CheckpointError, "is encrypted"),
    ("info on an unknown compression",
     _write("m.npz", lambda: crafted.set_zip_flags(crafted.checkpoint_bytes(), method=99)),
     ["info", "m.npz"], CheckpointError, "compression method is not supported"),
    ("info on int weights",
     _write("i.npz", lambda: crafted.with_array("param/encoder.0.W", np.zeros((784, 16), np.int64))),
     ["info", "i.npz"], CheckpointError, "stored as int64 (784, 16) but the config needs float"),
    ("info on a negative Adam step count",
     _write("t.npz", lambda: crafted.with_array("optim/t", np.array(-1))),
     ["info", "t.npz"], CheckpointError, "optim/t is negative"),
    ("info on NaN weights",
     _write("n.npz", lambda: crafted.with_array("param/decoder.0.b", np.full(16, np.nan, np.float32))),
     ["info", "n.npz"], CheckpointError, "param/decoder.0.b has NaN or infinite values"),
    ("info on deeply nested JSON", _write("j.npz", lambda: crafted.npz_bytes("[" * 50000, {})),
     ["info", "j.npz"], CheckpointError, "config is not valid JSON"),
    ("info on a history without loss",
     _write("h.npz", lambda: crafted.with_config(
         lambda c: c["extra"].update(history={"records": [{"epoch": 1}]}))),
     ["info", "h.npz"], CheckpointError, "the training history it records is malformed"),
    ("info on a string layer width",
     _write("w.npz", lambda: crafted.with_config(
         lambda c: c["model"]["encoder"]["layers"][0].update(in_features="784"))),
     ["info", "w.npz"], CheckpointError, "a Dense config needs in_features"),
    # 4. training numbers and resume
    ("train --resume with a conflicting --lr", None,
     ["train", "--resume", "ck.npz", "--lr", "0.01"], RunError,
     "--lr 0.01 conflicts with the 0.001 that 'ck.npz' was trained with"),
    ("train --resume with other --sizes", None,
     ["train", "--resume", "ck.npz", "--sizes", "784,8,2"], RunError, "--sizes 784,8,2 differs from the 784,16,2"),
    ("train --resume with a conflicting --limit", None,
     ["train", "--resume", "ck.npz", "--limit", "500"], RunError, "--limit 500 conflicts"),
]
ARGPARSE = [
    ("train --lr inf", ["train", "--lr", "inf"], "must be finite and > 0"),
    ("train --lr nan", ["train", "--lr", "nan"], "must be finite and > 0"),
    ("decode --columns 100000", ["decode", "ck.npz", "codes.npy", "--columns", "100000"],
     "must be at most 100"),
    ("interpolate --steps 100000", ["interpolate", "ck.npz", "--from", "0", "--to", "1",
                                    "--steps", "100000"], "must be at most 100"),
    ("interpolate --steps 1", ["interpolate", "ck.npz", "--from", "0", "--to", "1",
                               "--steps", "1"], "needs at least 2 steps"),
    ("train --epochs 10**9", ["train", "--epochs", str(10**9)], "must be at most 100,000"),
    ("train --seed -1", ["train", "--seed", "-1"], "wants a whole number >= 0"),
]


@pytest.mark.parametrize("case", [c for c in TABLE if c[3] is not None], ids=lambda c: c[0])
def test_bad_input_table(case, ws, capsys):
    _, setup, argv, etype, fragment = case
    if setup:
        setup(ws)
    if "big.npy" in argv:
        np.save(ws / "big.npy", np.zeros((2000, 2), np.float32))
    before = snapshot(ws)
    with pytest.raises(etype) as info:                       # the error's type, from the command
        args = cli.build_parser().parse_args(argv)
        args.run(args)
    assert fragment in cli.error_message(info.value)
    assert cli.main(argv) == 1                               # and from the command line:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err   # one line, no traceback
    assert err.startswith(f"tinyae {argv[0]}: error: ") and fragment in err
    assert snapshot(ws) == before                            # no file changed, none added


@pytest.mark.parametrize("case", ARGPARSE, ids=lambda c: c[0])
def test_bad_numbers_are_argparse_errors(case, ws, capsys):
    _, argv, fragment = case
    before = snapshot(ws)
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2 and fragment in capsys.readouterr().err
    assert snapshot(ws) == before


def test_debug_shows_the_traceback(ws, capsys):
    assert cli.main(["info", "notes.png", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "tinyae.io.check.CheckpointError" in err
    assert err.strip().splitlines()[-1].startswith("tinyae info: error: 'notes.png' is not a")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_goes_before_or_after_the_command(where, ws, capsys):
    argv = ["--debug", "info", "notes.png"] if where == "before" else ["info", "notes.png", "--debug"]
    assert cli.main(argv) == 1
    assert "Traceback" in capsys.readouterr().err
    assert cli.main(["info", "notes.png"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_reader_that_stops_early_is_not_an_error():
    """`tinyae info CKPT | head -1`: the closed pipe ends the command quietly, exit code 1.

    In a child process: the handler points the real stdout at /dev/null."""
    code = ("import errno, sys\n"
            "from tinyae.cli import commands as cli\n"
            "def info(args):\n"
            "    raise BrokenPipeError(errno.EPIPE, 'Broken pipe')\n"
            "cli.cmd_info = info\n"
            "sys.exit(cli.main(['info', 'notes.png']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr == "" and r.stdout == ""


@pytest.mark.parametrize("error", [IsADirectoryError, NotADirectoryError, PermissionError,
                                   FileExistsError])
def test_every_os_error_is_one_line_naming_the_file(error, ws, capsys, monkeypatch):
    code = {IsADirectoryError: errno.EISDIR, NotADirectoryError: errno.ENOTDIR,
            PermissionError: errno.EACCES, FileExistsError: errno.EEXIST}[error]

    def fail(path, **kwargs):
        raise error(code, os.strerror(code), str(path))
    monkeypatch.setattr(ta.io.checkpoint, "read_checkpoint", fail)     # what io.read_model calls
    assert cli.main(["info", "ck.npz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tinyae info: error: ck.npz: ") and err.count("\n") == 1
    assert cli.OS_FIXES[code] in err and "Traceback" not in err


def test_os_errors_are_one_line_naming_the_file(ws, capsys, monkeypatch):
    def full(f, arr, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(np, "save", full)
    before = snapshot(ws)
    assert cli.main(["encode", "ck.npz", "--data", "builtin", "--limit", "5", "-o", "z.npy"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "z.npy: the disk is full: free some space" in err
    assert snapshot(ws) == before                            # no half file, no temp file


def test_force_replaces_another_kind_but_never_an_input(ws, capsys):
    assert cli.main(["encode", "ck.npz", "--data", "builtin", "--limit", "5",
                     "-o", "picture.npy"]) == 0                 # new file: fine
    assert cli.main(["decode", "ck.npz", "codes.npy", "-o", "notes.png", "--force"]) == 0
    assert (ws / "notes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    os.symlink(ws / "codes.npy", ws / "c.png")
    assert cli.main(["decode", "ck.npz", "codes.npy", "-o", "c.png", "--force"]) == 1
    assert "is an input" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(ws / "codes.npy"), np.zeros((5, 2)))


def test_files_written_get_the_umask_mode(ws):
    old = os.umask(0o022)
    try:
        assert cli.main(["decode", "ck.npz", "codes.npy", "-o", "d.png"]) == 0
        path = ta.save(crafted.small_model(), ws / "m.npz")
    finally:
        os.umask(old)
    assert os.stat(ws / "d.png").st_mode & 0o777 == 0o644
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_stale_temporary_files_are_removed_on_the_next_write(ws):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = ta.io.checkpoint._writer().rsplit("-", 1)[0]
    stale = ws / f".last.npz.{host}-{dead}.0badc0de.tmp"
    mine = ws / f".other.npz.{host}-{os.getpid()}.12345678.tmp"     # a live writer's: kept
    remote = ws / f".last.npz.elsewhere-{dead}.0badc0de.tmp"        # another machine's: kept
    for f in (stale, mine, remote):
        f.write_bytes(b"half")
    ta.save(crafted.small_model(), ws / "m.npz")
    assert not stale.exists() and mine.exists() and remote.exists()


def test_model_size_bound_before_allocation():
    tracemalloc.start()
    with pytest.raises(ValueError, match=r"5,000,000,002 parameters, more than tinyae's limit "
                                         r"of 100,000,000"):
        ta.dense_autoencoder((10**9, 2))
    with pytest.raises(ValueError, match=r"Dense\(1000000, 1000000\) would have "
                                         r"1,000,001,000,000 parameters, more than"):
        ta.Dense(10**6, 10**6)                      # a layer built by hand is bounded too
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1e6


@pytest.mark.parametrize("make", [crafted.huge_dense_checkpoint, crafted.inflating_checkpoint,
                                  crafted.lying_size_checkpoint], ids=["huge", "inflating", "lying"])
def test_hostile_checkpoints_fail_fast_in_little_memory(make, tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(make())
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(CheckpointError):
        ta.load(path)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 2 and peak < 4e6, (seconds, peak)


def test_save_refuses_non_finite_weights(tmp_path):
    model = crafted.small_model()
    model.decoder[0].params["W"][0, 0] = np.inf
    with pytest.raises(ValueError, match="decoder.0.W has NaN or infinite values"):
        ta.save(model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# --- data files ------------------------------------------------------------------------
def test_corrupt_mnist_is_an_error_not_a_fallback(tmp_path, monkeypatch, capsys):
    for name in data.MNIST.files:
        (tmp_path / name).write_bytes(b"\x1f\x8b one flipped byte")
    monkeypatch.setenv("TINYAE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz is corrupt \(sha256 "
                                        r"checksum mismatch\): its checksum is [0-9a-f]{64}, but "
                                        r"the published file's is 440fcabf"):
        data.load_dataset("auto", "train")
    assert cli.main(["train", "--out", str(tmp_path / "run")]) == 1
    assert "is corrupt" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_absent_mnist_falls_back_saying_why_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    def offline(*a, **k):
        raise OSError("network disabled by the test")
    monkeypatch.setattr(data, "urlopen", offline)
    cache = tmp_path / "cache"
    monkeypatch.delenv("TINYAE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    X, _, name = data.load_dataset("auto", "test", limit=10)
    err = capsys.readouterr().err
    assert name == "builtin" and len(X) == 10
    assert "MNIST not available: t10k-images-idx3-ubyte.gz is not in" in err
    assert "network disabled by the test" in err and "TINYAE_DATA_DIR" in err
    assert not cache.exists()                                # no empty cache folder left


def test_data_files_must_be_regular(tmp_path):
    os.mkfifo(tmp_path / "fifo.gz")
    with pytest.raises(DataError, match="not a regular file"):
        data.read_idx(tmp_path / "fifo.gz")
    with pytest.raises(DataError, match="not a regular file"):
        data.read_idx("/dev/zero")


def test_idx_header_cannot_ask_for_unbounded_memory(tmp_path):
    import gzip
    import struct
    path = tmp_path / "big.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 4_000_000, 28, 28) + bytes(100))
    tracemalloc.start()
    with pytest.raises(DataError, match="more than the 1,073,741,824 tinyae reads"):
        data.read_idx(path)
    assert tracemalloc.get_traced_memory()[1] < 1e6
    tracemalloc.stop()


def test_zlib_errors_are_data_errors(tmp_path):
    import gzip
    raw = bytes([0, 0, 8, 1]) + (1000).to_bytes(4, "big") + bytes(range(256)) * 4
    blob = bytearray(gzip.compress(raw[:1008]))
    blob[20] ^= 0xFF                                          # damage the deflate stream
    (tmp_path / "z.gz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="cannot be read as gzip"):
        data.read_idx(tmp_path / "z.gz")


# --- run folders ----------------------------------------------------------------------
def test_default_run_folders_never_collide(tmp_path):
    from tinyae.cli.runs import new_run_folder
    folders = [new_run_folder(tmp_path / "runs") for _ in range(3)]      # within one second
    assert len(set(folders)) == 3 and all(f.is_dir() for f in folders)


def test_a_busy_folder_names_the_other_run_and_a_dead_ones_lock_is_taken_over(tmp_path):
    from tinyae.cli.runs import LOCK, RunFolder
    (tmp_path / "run").mkdir()
    with RunFolder(tmp_path / "run"):
        r = subprocess.run([sys.executable, "-c", "from tinyae import cli; "
                            f"raise SystemExit(cli.main(['train', '--out', {str(tmp_path / 'run')!r}]))"],
                           capture_output=True, text=True)
        assert r.returncode == 1
        assert f"in use by another tinyae run (pid {os.getpid()})" in r.stderr
    assert not (tmp_path / "run" / LOCK).exists()                 # released on exit
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / "run" / LOCK).write_text(dead + "\n")
    with RunFolder(tmp_path / "run") as run:
        assert (tmp_path / "run" / LOCK).read_text().split()[0] == str(os.getpid())
        assert run.held
    (tmp_path / "run" / LOCK).write_text(dead + " another-machine\n")     # shared folder
    with pytest.raises(UnsafePathError, match=f"pid {dead} on another-machine.*delete"):
        RunFolder(tmp_path / "run").__enter__()


def test_divergence_in_the_cli_saves_no_broken_weights(tmp_path, mnist_dir, monkeypatch, capsys):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    code = cli.main(["train", "--data", "mnist", "--limit", "300", "--sizes", "784,16,2",
                     "--lr", "1e30", "--epochs", "2", "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "diverged at epoch 1" in err and "back at the start of epoch 1" in err
    assert not (tmp_path / "run").exists()               # nothing saved, no empty folder left


def test_resume_restores_every_flag_and_override_says_so(ws, mnist_dir, monkeypatch, capsys):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    monkeypatch.setattr(cli, "_figures", lambda *a, **k: None)     # not what is tested here
    monkeypatch.setattr("tinyae.evaluate.metrics.evaluate_autoencoder", lambda *a, **k: dict.fromkeys(
        ["test_mse_per_pixel", "pca2_test_mse_per_pixel", "knn5_accuracy_latent",
         "knn5_accuracy_pca2"], 0.0))
    base = ["train", "--data", "mnist", "--limit", "300", "--sizes", "784,16,2", "--epochs", "1",
            "--batch-size", "32", "--lr", "2e-3", "--seed", "4", "--validation", "none", "--quiet",
            "--threads", "1"]
    assert cli.main(base + ["--out", "a"]) == 0
    assert cli.main(["train", "--resume", "a/last.npz", "--epochs", "2", "--quiet"]) == 0
    (resumed,) = (ws / "runs").iterdir()                      # a new folder: a/ is untouched
    args = ta.io.read_checkpoint(resumed / "last.npz").extra["args"]
    assert args.pop("backend") in ("numpy", "numba")
    assert args == {"data": "mnist", "sizes": [784, 16, 2], "epochs": 2, "batch_size": 32,
                    "lr": 2e-3, "seed": 4, "limit": 300, "validation": "none", "threads": 1,
                    "model": "ae", "schedule": "onecycle", "warmup": None, "anneal": "linear",
                    "adam_beta2": 0.99, "weight_decay": 0.0, "hold_out": None, "loss": "mse"}
    assert len(ta.io.read_checkpoint(ws / "a" / "last.npz").extra["history"]["records"]) == 1
    capsys.readouterr()
    assert cli.main(["train", "--resume", "a/last.npz", "--epochs", "2", "--lr", "1e-3",
                     "--override", "--quiet", "--out", "b"]) == 0
    assert "--override: --lr is 0.001 now, 0.002 in 'a/last.npz'" in capsys.readouterr().err
    assert ta.io.read_checkpoint(ws / "b" / "last.npz").extra["args"]["lr"] == 1e-3
    umask = os.umask(0)
    os.umask(umask)
    for name in ("last.npz", "history.json", "metrics.json"):          # shared runs: umask mode
        assert os.stat(ws / "b" / name).st_mode & 0o777 == 0o666 & ~umask


def test_strings_from_a_checkpoint_reach_the_terminal_as_text(tmp_path, capsys):
    """An escape sequence in a checkpoint's version or metrics would recolour or clear the
    terminal; `tinyae info` shows it as an escape instead."""
    from crafted import edit_config
    path = tmp_path / "ck.npz"
    ta.save(ta.dense_autoencoder((16, 4, 2), rng=np.random.default_rng(0)), path,
            extra={"metrics": {"data": "\x1b[2J\x1b[31mred", "k\nforged: 9": 1.0}})

    def sneak(config):
        config["tinyae_version"] = "0.1\x1b]0;title\x07"
    edit_config(path, sneak)
    assert cli.main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J\\x1b[31mred" in out and "0.1\\x1b]0;title\\x07" in out
    assert "k\\nforged: 9: 1.0000" in out and "\nforged" not in out     # one metric, one line


def test_overflowing_weights_write_no_nan_codes_images_or_page(tmp_path, capsys, monkeypatch):
    """Finite weights near float32's limit make NaN codes; huge finite codes make NaN images:
    each command refuses with one line instead of writing them (or a blank page)."""
    monkeypatch.chdir(tmp_path)
    model = ta.dense_autoencoder((784, 8, 2), rng=np.random.default_rng(0))
    model.encoder[0].params["W"][...] = 3e38
    ta.save(model, "big.npz")
    for argv in (["encode", "big.npz", "--data", "builtin", "--limit", "20", "-o", "z.npy"],
                 ["explore", "big.npz", "--data", "builtin", "--limit", "20", "-o", "e.html"],
                 ["robustness", "big.npz", "--data", "builtin", "--limit", "20", "-o", "r.png"],
                 ["interpolate", "big.npz", "--data", "builtin", "--limit", "20", "--from", "0",
                  "--to", "1", "-o", "i.png"],
                 ["sample", "big.npz", "--data", "builtin", "--limit", "20", "-o", "s.png"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "NaN or infinite" in err and "nothing was written" in err, err
    assert not [p.name for p in tmp_path.iterdir() if p.suffix in (".npy", ".html", ".png")]
    ta.save(ta.dense_autoencoder((784, 8, 2), rng=np.random.default_rng(0)), "ok.npz")
    np.save("huge.npy", np.full((4, 2), 1e300))
    assert cli.main(["decode", "ok.npz", "huge.npy", "-o", "d.png"]) == 1
    assert "beyond float32's range" in capsys.readouterr().err
    assert not (tmp_path / "d.png").exists()


def test_numbers_read_from_a_checkpoint_have_the_flags_bounds(tmp_path, capsys, monkeypatch):
    """A crafted run length, a step counter past int64 or a NaN in the history: each is one
    line at --resume, before training, instead of a run that never ends, a checkpoint the
    run cannot save again, or a best.npz never written."""
    from crafted import edit_config, read_npz, npz_bytes
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--data", "builtin", "--limit", "40", "--epochs", "1",
                     "--schedule", "none", "--out", "a", "--quiet"]) == 0
    capsys.readouterr()

    def run_length(config):
        config["extra"]["args"]["epochs"] = 10 ** 12

    def nan_history(config):
        config["extra"]["history"]["records"][0]["loss"] = float("nan")
    for change, words in ((run_length, "--epochs 1000000000000 is not valid"),
                          (nan_history, "holds NaN or an infinite value")):
        (tmp_path / "b.npz").write_bytes((tmp_path / "a" / "last.npz").read_bytes())
        edit_config(tmp_path / "b.npz", change)
        assert cli.main(["train", "--resume", "b.npz", "--quiet"]) == 1
        assert words in capsys.readouterr().err
    config, arrays = read_npz((tmp_path / "a" / "last.npz").read_bytes())
    arrays["optim/t"] = np.array(2 ** 63 + 5, dtype=np.uint64)
    (tmp_path / "c.npz").write_bytes(npz_bytes(config, arrays))
    assert cli.main(["train", "--resume", "c.npz", "--quiet"]) == 1
    assert "not a step count" in capsys.readouterr().err


def test_a_zip_directory_of_too_many_entries_is_refused_before_it_is_read(tmp_path):
    """zipfile reads the whole central directory into memory on opening: the count in the
    archive's end record is checked first (ZIP64 too), so the cost stays a few kilobytes."""
    import io as stdio
    import zipfile
    from tinyae.io.check import MAX_MEMBERS
    for zip64 in (False, True):
        buf = stdio.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for i in range(MAX_MEMBERS + 1 if not zip64 else 70_000):   # > 65,535: ZIP64
                z.writestr(f"e{i}", b"")
        (tmp_path / "many.npz").write_bytes(buf.getvalue())
        tracemalloc.start()
        with pytest.raises(CheckpointError, match="zip directory lists"):
            ta.io.read_checkpoint(tmp_path / "many.npz")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 1 << 20, peak


def test_commands_that_only_use_the_model_leave_the_optimiser_unread(tmp_path):
    """`tinyae info` and the other read-only commands skip Adam's two arrays per weight: the
    memory of reading a checkpoint is then about that of its weights."""
    model = ta.dense_autoencoder((784, 512, 2), rng=np.random.default_rng(0))
    ta.save(model, tmp_path / "ck.npz", optimizer=ta.Adam(model.parameters()))
    full = ta.io.read_checkpoint(tmp_path / "ck.npz")
    light = ta.io.read_checkpoint(tmp_path / "ck.npz", optimizer=False)
    assert set(full.optim) > {"t"} and set(light.optim) == {"t"}    # t is still checked
    assert light.params.keys() == full.params.keys()
    tracemalloc.start()
    ta.io.load(ta.io.read_checkpoint(tmp_path / "ck.npz", optimizer=False))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    weights = sum(p.nbytes for _, p, _ in model.parameters())
    # read 1x, the model's weights and gradients 2x, one float64 initialiser array 2x
    # (the optimiser's arrays would add 2x more)
    assert peak < 4 * weights, (peak, weights)


def test_using_a_checkpoint_holds_its_weights_about_once(tmp_path):
    """tinyae info on a 25 M parameter checkpoint with Adam's state: its process peaks at
    about 1.6 times the weights above the import (the arrays read, given up one by one to a
    model built without a random draw; Adam's arrays left unread). It was 3.5 times."""
    from conftest import peak_memory
    model = ta.dense_autoencoder((784, 16000, 2), rng=np.random.default_rng(0))
    ta.save(model, tmp_path / "big.npz", optimizer=ta.Adam(model.parameters()))
    weights = sum(p.nbytes for _, p, _ in model.parameters())
    del model
    base, _ = peak_memory()
    peak, _ = peak_memory("info", tmp_path / "big.npz")
    assert peak - base < 1.75 * weights, (peak - base) / weights


def test_loading_draws_no_random_weights(monkeypatch, tmp_path):
    """The weights are overwritten at once: tinyae.load builds the model without drawing."""
    model = crafted.small_model()
    ta.save(model, tmp_path / "m.npz")

    def draw(*a, **k):
        raise AssertionError("an initialiser drew weights that were about to be replaced")
    monkeypatch.setitem(ta.nn.init.INITIALISERS, "he", draw)
    monkeypatch.setitem(ta.nn.init.INITIALISERS, "glorot", draw)
    loaded = ta.load(tmp_path / "m.npz")
    for (_, a, _), (_, b, _) in zip(model.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError, match="drew weights"):
        ta.Dense(3, 2)                              # outside loading, the initialiser runs
