"""Resume is exact: uninterrupted == Ctrl-C + resume == kill -9 + resume, bit for bit.

Each run is the real ``tinyae train`` in a subprocess (so the backend is chosen by
TINYAE_BACKEND as a user would), interrupted at a chosen optimiser step by the
driver below: SIGINT as from Ctrl-C, or SIGKILL as from ``kill -9``. The figures
and metrics after training are skipped; they do not touch the checkpoint's weights.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinyae as ta

DRIVER = r"""
import json, os, signal, sys
from tinyae.cli import commands as cli
from tinyae.evaluate import metrics
from tinyae.train import loop as train
cli._figures = lambda *a, **k: None
metrics.evaluate_autoencoder = lambda *a, **k: dict.fromkeys(
    ["test_mse_per_pixel", "pca2_test_mse_per_pixel", "knn5_accuracy_latent",
     "knn5_accuracy_pca2"], 0.0)
training_path = train._training_path
for signame, at_step, argv in json.loads(sys.argv[1]):
    def hooked(*args, signame=signame, at_step=at_step):
        path, count = training_path(*args), [0]
        update = path.step                  # the optimiser step of this backend's path
        def step():
            update()
            count[0] += 1
            if count[0] == at_step:
                os.kill(os.getpid(), getattr(signal, signame))
        path.step = step
        return path
    train._training_path = hooked if signame else training_path
    code = cli.main(argv)
    if code:
        sys.exit(code)
"""
FLAGS = ["--data", "mnist", "--limit", "600", "--sizes", "784,32,2", "--batch-size", "64",
         "--epochs", "3", "--lr", "3e-3", "--seed", "5", "--validation", "0.2", "--quiet",
         "--threads", "1"]          # bit-exact reruns need a fixed BLAS thread count
STEPS_PER_EPOCH = 8                     # 480 training images (600 less 20%) in batches of 64


def drive(runs, backend, cwd):
    env = {**os.environ, "TINYAE_BACKEND": backend}
    return subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def state(path):
    ckpt = ta.io.read_checkpoint(path)
    records = [(r["epoch"], r["loss"], r["val_loss"], r["lr"])
               for r in ckpt.extra["history"]["records"]]
    return ckpt, records


@pytest.mark.parametrize("backend,model", [("numpy", "ae"), ("numba", "ae"), ("numba", "vae"),
                                           ("numba", "denoising")])
def test_interrupted_and_resumed_equals_uninterrupted(backend, model, tmp_path, mnist_dir,
                                                      monkeypatch):
    """Random draws inside training (a VAE's eps, a denoising model's noise) repeat too."""
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    flags = [*FLAGS, "--model", model]
    ctrl_c_at = STEPS_PER_EPOCH + 3                         # epoch 2, step 3
    kill_at = 2 * STEPS_PER_EPOCH + 5                       # epoch 3, step 5
    r = drive([[None, 0, ["train", *flags, "--out", "A"]],
               ["SIGINT", ctrl_c_at, ["train", *flags, "--out", "B"]],
               [None, 0, ["train", "--resume", "B/last.npz", "--out", "B2", "--quiet"]]],
              backend, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "interrupted (Ctrl-C) in epoch 2, step 3" in r.stderr
    killed = drive([["SIGKILL", kill_at, ["train", *flags, "--out", "C"]]], backend, tmp_path)
    assert killed.returncode == -9
    r = drive([[None, 0, ["train", "--resume", "C/last.npz", "--quiet"]]], backend, tmp_path)
    assert r.returncode == 0, r.stderr
    (c2,) = [p for p in (tmp_path / "runs").iterdir()]     # --resume wrote to a new run folder

    straight, straight_records = state(tmp_path / "A" / "last.npz")
    assert len(straight_records) == 3
    _, b_records = state(tmp_path / "B" / "last.npz")       # whole epochs only
    _, c_records = state(tmp_path / "C" / "last.npz")
    assert len(b_records) == 1 and len(c_records) == 2
    for resumed_path in (tmp_path / "B2" / "last.npz", c2 / "last.npz"):
        resumed, records = state(resumed_path)
        assert records == straight_records
        for group in ("params", "optim"):
            a, b = getattr(straight, group), getattr(resumed, group)
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(b[k], a[k], err_msg=f"{resumed_path}: {k}")
        assert resumed.extra["args"] == straight.extra["args"]     # every flag restored


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c_keep_the_work_and_exit_non_zero(
        signame, code, tmp_path, mnist_dir, monkeypatch):
    """`kill` or a closed terminal mid-epoch: the epoch goes back to its start, last.npz
    holds the finished epochs and says why the run stopped, the command exits 128 + signal
    without evaluating, and a resumed run equals the uninterrupted one."""
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    r = drive([[signame, STEPS_PER_EPOCH + 3, ["train", *FLAGS, "--out", "B"]]], "numba",
              tmp_path)
    assert r.returncode == code, r.stderr
    assert f"interrupted ({signame}) in epoch 2, step 3" in r.stderr
    assert f"stopped by {signame}" in r.stderr and "--resume" in r.stderr
    ckpt, records = state(tmp_path / "B" / "last.npz")
    assert len(records) == 1
    assert ckpt.extra["history"]["stopped"].startswith(f"interrupted ({signame})")
    assert not (tmp_path / "B" / "metrics.json").exists()
    r = drive([[None, 0, ["train", *FLAGS, "--out", "A"]],
               [None, 0, ["train", "--resume", "B/last.npz", "--out", "B2", "--quiet"]]],
              "numba", tmp_path)
    assert r.returncode == 0, r.stderr
    assert state(tmp_path / "B2" / "last.npz")[1] == state(tmp_path / "A" / "last.npz")[1]


def test_sigterm_during_the_evaluation_says_where_the_model_is(tmp_path, mnist_dir):
    driver = r"""
import os, signal, sys
from tinyae.cli import commands as cli
from tinyae.evaluate import metrics
def evaluate(*a, **k):
    os.kill(os.getpid(), signal.SIGTERM)        # arrives while the metrics are computed
    raise AssertionError("SIGTERM should have ended the command")
metrics.evaluate_autoencoder = evaluate
sys.exit(cli.main(sys.argv[1:]))
"""
    env = {**os.environ, "TINYAE_DATA_DIR": str(mnist_dir)}
    r = subprocess.run([sys.executable, "-c", driver, "train", *FLAGS, "--epochs", "1",
                        "--out", "E"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 143, r.stderr
    assert r.stderr.splitlines()[-1].startswith("tinyae train: stopped by SIGTERM; the trained "
                                                "model is in")
    assert state(tmp_path / "E" / "last.npz")[1]          # one finished epoch, saved
    assert not (tmp_path / "E" / "metrics.json").exists()
    # the line names the command that makes what is missing; it makes them from the checkpoint
    assert f"tinyae evaluate {os.path.join('E', 'last.npz')}" in r.stderr.splitlines()[-1]
    r = subprocess.run([sys.executable, "-m", "tinyae", "evaluate", "E/last.npz"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "E" / "metrics.json").read_text())
    assert m["epochs"] == 1 and m["data"] == "mnist" and 0 < m["test_mse_per_pixel"] < 1
    assert 0 < m["pca2_test_mse_per_pixel"] < 1 and 0 <= m["knn5_accuracy_latent"] <= 1
    for name in ("history.json", "history.csv", "reconstructions.png", "latent.png", "loss.png"):
        assert (tmp_path / "E" / name).stat().st_size > 0
