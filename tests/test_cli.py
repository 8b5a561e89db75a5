import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import peak_memory

import tinyae as ta

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


def test_evaluate_makes_the_runs_metrics_and_figures_again(trained, tmp_path, capsys):
    """`tinyae evaluate` measures a checkpoint as the end of `tinyae train` did (same data,
    --limit, seed: the same metrics), writes nothing over what is there without --force,
    and leaves the checkpoint as it was."""
    ckpt = trained / "last.npz"
    before = ckpt.read_bytes()
    code, _, err = run(["evaluate", str(ckpt)], capsys)        # the run's folder holds them
    assert code == 1 and "metrics.json" in err and "--force" in err
    out = tmp_path / "again"
    code, _, err = run(["evaluate", str(ckpt), "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text()) == \
        json.loads((trained / "metrics.json").read_text())
    assert (out / "history.json").read_text() == (trained / "history.json").read_text()
    for name in cli.FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stamp = (out / "metrics.json").stat().st_mtime_ns
    assert run(["evaluate", str(ckpt), "--out", str(out)], capsys)[0] == 1
    assert (out / "metrics.json").stat().st_mtime_ns == stamp
    assert run(["evaluate", str(ckpt), "--out", str(out), "--force"], capsys)[0] == 0
    assert ckpt.read_bytes() == before


def test_a_100_by_100_grid_is_written_pixel_for_pixel_in_bounded_memory(trained, tmp_path):
    """decode --max-images 0 of 10,000 codes (the documented maximum) writes one grey PNG of
    100 x 100 images, 29 pixels apart, and its process peaks under 1 GB (it took 3.5 GB)."""
    from PIL import Image
    np.save(tmp_path / "codes.npy", np.random.default_rng(0).normal(size=(10_000, 2))
            .astype(np.float32))
    peak, _ = peak_memory("decode", trained / "last.npz", tmp_path / "codes.npy",
                          "--max-images", "0", "-o", tmp_path / "d.png")
    assert peak < 2**30, peak
    image = Image.open(tmp_path / "d.png")
    assert image.size == (100 * 29 - 1, 100 * 29 - 1) and image.mode == "L"
    pixels = np.asarray(image)
    assert pixels[28::29, :].min() == 255 and pixels[:28, :28].std() > 0   # white gaps, digits


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


@pytest.mark.parametrize("sub", [[], ["train"], ["encode"], ["decode"], ["interpolate"], ["info"],
                                 ["evaluate"]])
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


def test_sample_from_one_image_and_out_of_memory_are_one_line_errors(trained, tmp_path, capsys,
                                                                     monkeypatch):
    code, _, err = run(["sample", str(trained / "last.npz"), "--limit", "1",
                        "-o", str(tmp_path / "s.png")], capsys)
    assert code == 1 and err.strip() == ("tinyae sample: error: a Gaussian is fitted to the "
                                         "codes of at least 2 images; got 1: use more images "
                                         "(a larger --limit)")
    assert not (tmp_path / "s.png").exists()

    def no_memory(*a, **k):
        raise MemoryError
    monkeypatch.setattr(cli.io, "load_codes", no_memory)
    np.save(tmp_path / "z.npy", np.zeros((3, 2), np.float32))
    code, _, err = run(["decode", str(trained / "last.npz"), str(tmp_path / "z.npy"),
                        "-o", str(tmp_path / "d.png")], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("tinyae decode: error: out of memory") and "--batch-size" in err


def test_resuming_a_finished_annealed_run_says_more_epochs_would_not_train(trained, tmp_path,
                                                                          capsys):
    """The run ended its one-cycle schedule at lr ~0: asking for more --epochs alone would
    train at that lr, so the refusal says how to go on instead, and that way works."""
    ckpt = str(trained / "last.npz")
    code, _, err = run(["train", "--resume", ckpt, "--out", str(tmp_path / "a")], capsys)
    assert code == 1 and "schedule has brought the lr down to" in err
    assert "--override --schedule none --lr 1e-4" in err and not (tmp_path / "a").exists()
    code, _, err = run(["train", "--resume", ckpt, "--epochs", "2", "--override", "--schedule",
                        "none", "--lr", "1e-4", "--out", str(tmp_path / "b"), "--quiet"], capsys)
    assert code == 0, err


def test_interpolate_draws_the_originals_and_each_steps_t(trained, tmp_path, capsys, monkeypatch):
    """As the run's own interpolation.png: the two images at the ends, t labels between."""
    from tinyae.viz import plot
    drawn = []
    real = plot.image_strip
    monkeypatch.setattr(plot, "image_strip", lambda images, **k: drawn.append((images, k))
                        or real(images, **k))
    code, _, err = run(["interpolate", str(trained / "last.npz"), "--from", "0", "--to", "5",
                        "--steps", "4", "-o", str(tmp_path / "i.png")], capsys)
    assert code == 0, err
    images, kwargs = drawn[0]
    assert kwargs["labels"] == ["image 0", "t=0", "t=0.33", "t=0.67", "t=1", "image 5"]
    X = ta.data.load_dataset("mnist", "test", 1000, progress=False)[0]
    np.testing.assert_array_equal(images[0], X[0])
    np.testing.assert_array_equal(images[-1], X[5])
    assert len(images) == 6 and (tmp_path / "i.png").stat().st_size > 0


def test_evaluate_refuses_weights_that_overflow_before_writing(trained, tmp_path, capsys):
    model = ta.load(trained / "last.npz")
    for _, p, _ in model.parameters():
        p *= 1e18                                   # finite, but products overflow float32
    ta.save(model, tmp_path / "huge.npz")
    code, _, err = run(["evaluate", str(tmp_path / "huge.npz"), "--data", "mnist", "--out",
                        str(tmp_path / "ev")], capsys)
    assert code == 1 and "reconstructions of a probe batch would be NaN or infinite" in err
    assert "Warning" not in err and not (tmp_path / "ev").exists()
