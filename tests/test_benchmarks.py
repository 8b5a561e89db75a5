"""The benchmarks' own model builders, checked in a child process (their common module
points TINYAE_DATA_DIR at ../shared, which must not leak into the other tests)."""
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

CHECK_RECIPE_BUILD = """
import sys, types
import numpy as np
sys.path.insert(0, sys.argv[1])
import bench_recipe as br
import tinyae as ta

def args(**kw):
    return types.SimpleNamespace(**{"activation": "relu", "init": "he", "init_part": "both",
                                    "hidden_bias": None, **kw})

def dense(part):
    return [layer for layer in part.layers if isinstance(layer, ta.Dense)]

he = br.build(args(), 3)
same = ta.dense_autoencoder(rng=np.random.default_rng(3))
for a, b in zip(he.parameters(), same.parameters()):
    assert np.array_equal(a[1], b[1]), a[0]                   # --init he: the model's own

glorot = br.build(args(init="glorot"), 3)
for layer in dense(glorot.encoder) + dense(glorot.decoder):
    fi, fo = layer.params["W"].shape
    W, a = layer.params["W"], np.sqrt(6 / (fi + fo))
    assert np.abs(W).max() <= a and np.abs(W).max() > 0.9 * a and W.std() < 0.7 * a, (fi, fo)
    assert not layer.params["b"].any()                        # biases stay 0
first = dense(glorot.decoder)[0].params["W"]                  # 2 -> 64: He's variance is 1
assert first.shape == (2, 64) and first.std() < 0.3

enc = br.build(args(init="glorot", init_part="encoder"), 3)
for a, b in zip(dense(enc.decoder), dense(he.decoder)):
    assert np.array_equal(a.params["W"], b.params["W"])     # the other part untouched
assert not np.array_equal(dense(enc.encoder)[0].params["W"], dense(he.encoder)[0].params["W"])

torch = br.build(args(init="torch"), 3)
b = dense(torch.encoder)[0].params["b"]
assert b.any() and np.abs(b).max() <= 1 / np.sqrt(784)      # nn.Linear draws biases too
biased = br.build(args(init="torch", hidden_bias=0.01), 3)
assert (dense(biased.encoder)[0].params["b"] == np.float32(0.01)).all()
print("ok")
"""


def test_bench_recipe_builds_the_starts_it_names():
    env = {k: v for k, v in os.environ.items() if k != "TINYAE_DATA_DIR"}
    done = subprocess.run([sys.executable, "-c", CHECK_RECIPE_BUILD, str(BENCHMARKS)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
