"""What `tinyae` prints: a bar on a terminal, plain lines in a log, --quiet, --help, --version, info."""
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import commands as cli

TRAIN = [sys.executable, "-m", "tinyae", "train", "--data", "builtin", "--limit", "300",
         "--epochs", "2", "--sizes", "784,16,2", "--batch-size", "10"]


def test_piped_log_has_one_line_per_epoch_and_the_evaluation(tmp_path):
    r = subprocess.run(TRAIN + ["--out", str(tmp_path / "run")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr                                  # no progress-bar frames in a log
    lines = r.stderr.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert any(line.startswith("evaluating the last model on 300 training") for line in lines)
    assert any(line.startswith("evaluated and drew the figures in ") for line in lines)
    assert "test MSE per pixel" in r.stdout


def test_terminal_gets_the_progress_bar(tmp_path):
    pty, fcntl, termios = (pytest.importorskip(m) for m in ("pty", "fcntl", "termios"))   # Unix
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))   # a 100-column terminal
    r = subprocess.run(TRAIN + ["--out", str(tmp_path / "run")], stdout=subprocess.PIPE,
                       stderr=follower, timeout=300)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:                                          # the terminal closed
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert r.returncode == 0
    assert b"\r" in seen and b"step/s" in seen and b"epoch 2/2  loss" in seen


def test_quiet_prints_only_the_result(tmp_path):
    r = subprocess.run(TRAIN + ["--out", str(tmp_path / "run"), "--quiet"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("test MSE per pixel") and "wrote" in r.stdout


def test_help_gives_every_default(capsys):
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert "explore" in commands
    for name, sub in commands.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help" and action.default not in (None, False):
                assert "default" in (action.help or ""), f"tinyae {name} {action.option_strings[0]}"
            if action.option_strings and action.default is None and not action.required \
                    and action.dest != "help":
                assert "default" in (action.help or ""), f"tinyae {name} {action.option_strings[0]}"


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"tinyae {ta.__version__}"


def test_info_says_which_epoch_best_holds(tmp_path, capsys):
    model = ta.dense_autoencoder((784, 8, 2), rng=np.random.default_rng(0))
    records = [{"epoch": e, "loss": 0.1, "val_loss": v, "seconds": 1.0, "lr": 1e-3}
               for e, v in ((1, 0.09), (2, 0.07), (3, 0.08))]
    best = ta.save(model, tmp_path / "best.npz", extra={"args": {"epochs": 20},
                                                        "history": {"records": records[:2]}})
    last = ta.save(model, tmp_path / "last.npz", extra={"args": {"epochs": 20},
                                                        "history": {"records": records}})
    assert cli.main(["info", best]) == 0
    assert "holds the weights after epoch 2 of 20 (validation loss 0.07000, the lowest" \
        in capsys.readouterr().out
    assert cli.main(["info", last]) == 0
    out = capsys.readouterr().out
    assert "after epoch 3 of 20" in out and "lowest" not in out


def test_max_images_must_not_be_negative(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["decode", "m.npz", "c.npy", "--max-images", "-3"])
    assert e.value.code == 2 and "must be >= 0" in capsys.readouterr().err
