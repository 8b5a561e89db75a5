import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyae.cli import commands as cli
from tinyae.data import mnist as data


def run(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    """One small MNIST run shared by the tests below."""
    out = tmp_path_factory.mktemp("run")
    os.environ["TINYAE_DATA_DIR"] = str(mnist_dir)
    code = cli.main(["train", "--data", "mnist", "--epochs", "1", "--limit", "1000",
                     "--sizes", "784,64,2", "--batch-size", "32", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_train_writes_everything(trained):
    names = {"last.npz", "best.npz", "history.json", "history.csv", "metrics.json", "loss.png",
             "reconstructions.png", "latent.png", "grid.png", "interpolation.png"}
    assert names <= set(os.listdir(trained))
    m = json.loads((trained / "metrics.json").read_text())
    for key in ("test_mse_per_pixel", "test_bce_per_image", "pca2_test_mse_per_pixel",
                "knn5_accuracy_latent", "knn5_accuracy_pca2"):
        assert np.isfinite(m[key])
    assert 0 < m["test_mse_per_pixel"] < 0.2 and m["data"] == "mnist"
    assert len(json.loads((trained / "history.json").read_text())["records"]) == 1


def test_info(trained, capsys):
    code, out, _ = run(["info", str(trained / "last.npz")], capsys)
    assert code == 0 and "Total params" in out and "test_mse_per_pixel" in out and "epoch" in out


def test_encode_decode_interpolate(trained, tmp_path, capsys):
    ckpt = str(trained / "last.npz")
    codes = tmp_path / "codes.npy"
    code, out, _ = run(["encode", ckpt, "--limit", "50", "-o", str(codes),
                        "--labels", str(tmp_path / "y.npy")], capsys)
    assert code == 0
    Z = np.load(codes, allow_pickle=False)
    assert Z.shape == (50, 2) and np.load(tmp_path / "y.npy").shape == (50,)
    png = tmp_path / "dec.png"
    assert run(["decode", ckpt, str(codes), "-o", str(png)], capsys)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for extra in ([], ["--slerp"]):
        strip = tmp_path / f"i{len(extra)}.png"
        code, _, _ = run(["interpolate", ckpt, "--from", "0", "--to", "5", "--steps", "6",
                          "-o", str(strip)] + extra, capsys)
        assert code == 0 and strip.exists()
    code, _, err = run(["interpolate", ckpt, "--from", "0", "--to", "99999"], capsys)
    assert code == 1 and "out of range" in err


def test_resume(trained, tmp_path, capsys):
    out = tmp_path / "resumed"
    code, _, _ = run(["train", "--resume", str(trained / "last.npz"), "--epochs", "2",
                      "--limit", "1000", "--out", str(out), "--quiet"], capsys)
    assert code == 0
    records = json.loads((out / "history.json").read_text())["records"]
    assert [r["epoch"] for r in records] == [1, 2]


def test_missing_and_corrupt_checkpoint(tmp_path, capsys):
    code, _, err = run(["info", str(tmp_path / "nope.npz")], capsys)
    assert code == 1 and err.count("\n") == 1 and "no checkpoint" in err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    code, _, err = run(["info", str(bad)], capsys)
    assert code == 1 and err.count("\n") == 1 and "not a tinyae checkpoint" in err


@pytest.mark.parametrize("sub", [[], ["train"], ["encode"], ["decode"], ["interpolate"], ["info"]])
def test_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(sub + ["--help"])
    assert e.value.code == 0 and "usage: tinyae" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["train", "--epochs", "0"], ["train", "--sizes", "a,b"],
                                  ["train", "--data", "cifar"], ["frobnicate"]])
def test_bad_arguments_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(args)
    assert e.value.code == 2 and "error" in capsys.readouterr().err


def test_offline_default_uses_builtin_digits(tmp_path, monkeypatch, capsys):
    def offline(*a, **k):
        raise OSError("network disabled by the test")
    monkeypatch.setattr(data, "urlopen", offline)
    monkeypatch.setenv("TINYAE_DATA_DIR", str(tmp_path / "empty"))
    code, out, err = run(["train", "--epochs", "1", "--limit", "500", "--sizes", "784,32,2",
                          "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 0
    assert data.FALLBACK_NOTE in err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["data"] == "builtin"
    code, _, err = run(["train", "--data", "mnist", "--epochs", "1", "--quiet",
                        "--out", str(tmp_path / "run2")], capsys)
    assert code == 1 and "could not download MNIST" in err


def test_console_script_and_module():
    r = subprocess.run([sys.executable, "-m", "tinyae", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "train" in r.stdout and "interpolate" in r.stdout


def test_too_few_images_or_steps_are_refused_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--data", "builtin", "--limit", "1"])
    assert exit_.value.code == 2
    assert "1 images are too few" in capsys.readouterr().err
    code, _, err = run(["train", "--data", "builtin", "--limit", "12", "--epochs", "1",
                        "--out", "r"], capsys)
    assert code == 1 and "is one step, and the one-cycle schedule needs at least 2" in err
    assert not (tmp_path / "r" / "last.npz").exists()
