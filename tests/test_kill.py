"""kill -9 during checkpoint writes: the checkpoint always loads, and no temp file survives."""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

import tinyae as ta

WRITER = r"""
import sys
import numpy as np
import tinyae as ta
model = ta.dense_autoencoder((784, 256, 2), rng=np.random.default_rng(0))
opt = ta.Adam(model.parameters())
path = sys.argv[1]
ta.save(model, path, optimizer=opt, extra={"k": 0})
print("ready", flush=True)
k = 0
while True:                     # nothing but checkpoint writes, each one different
    k += 1
    model.encoder[0].params["W"][0, 0] = k
    ta.save(model, path, optimizer=opt, extra={"k": k})
"""


def test_kill_9_at_random_points_of_a_checkpoint_write(tmp_path):
    path = tmp_path / "last.npz"
    rng = random.Random(13)
    caught_mid_write = 0
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        ckpt = ta.io.read_checkpoint(path)                  # always a whole checkpoint
        model = ta.load(ckpt)
        assert model.encoder[0].params["W"][0, 0] == ckpt.extra["k"] or ckpt.extra["k"] == 0
        temps = glob.glob(str(tmp_path / ".last.npz.*.tmp"))
        caught_mid_write += bool(temps)
        ta.save(model, tmp_path / "other.npz")             # the next write to the folder ...
        assert glob.glob(str(tmp_path / ".*.tmp")) == []    # ... removes the dead writer's temp
    assert caught_mid_write >= 1                          # the kills did land inside writes
    assert sorted(os.listdir(tmp_path)) == ["last.npz", "other.npz"]
    assert np.isfinite(ta.load(path).encoder[0].params["W"]).all()
