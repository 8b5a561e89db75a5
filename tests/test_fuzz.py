"""Fuzzing the readers: whatever the bytes, only tinyae's own errors may escape.

A few hundred examples each (hypothesis); the inputs are mutations of valid files,
so most of them get past the first check and exercise the deeper ones.
"""
import gzip
import json
import struct

import crafted
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyae as ta
from tinyae.cli.flags import RunError
from tinyae.cli.flags import resume as resume_flags
from tinyae.cli.runs import checked_history
from tinyae.data import DataError, read_idx
from tinyae.io import CheckpointError

FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def mutate(data, edits):
    """Apply (position, kind, value) edits: overwrite a byte, cut the file, or insert bytes."""
    data = bytearray(data)
    for pos, kind, value in edits:
        if not data:
            break
        pos %= len(data)
        if kind == 0:
            data[pos] = value[0] if value else data[pos] ^ 0xFF
        elif kind == 1:
            del data[pos:]
        else:
            data[pos:pos] = value
    return bytes(data)


edits = st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 2), st.binary(max_size=8)),
                 min_size=1, max_size=4)


# --- IDX ------------------------------------------------------------------------------
IDX = bytes([0, 0, 8, 3]) + struct.pack(">3I", 5, 4, 3) + bytes(range(60))


@FUZZ
@given(edits=edits, compress=st.booleans())
def test_idx_reader(tmp_path, edits, compress):
    path = tmp_path / ("f.gz" if compress else "f.idx")
    raw = gzip.compress(IDX, mtime=0) if compress else IDX
    path.write_bytes(mutate(raw, edits))
    try:
        a = read_idx(path)
    except DataError:
        return
    assert a.size * a.itemsize == len(a.tobytes()) <= 1 << 30


# --- checkpoint bytes -----------------------------------------------------------------
SMALL = crafted.checkpoint_bytes(crafted.small_model(sizes=(6, 3, 2)))


@FUZZ
@given(edits=edits)
def test_checkpoint_bytes(tmp_path, edits):
    path = tmp_path / "c.npz"
    path.write_bytes(mutate(SMALL, edits))
    try:
        model = ta.load(path)
    except CheckpointError:
        return
    assert all(np.isfinite(p).all() for _, p, _ in model.parameters())


# --- checkpoint JSON ------------------------------------------------------------------
CONFIG, ARRAYS = crafted.read_npz(crafted.checkpoint_bytes(
    crafted.small_model(sizes=(6, 3, 2)),
    extra={"args": {"data": "builtin", "sizes": [6, 3, 2], "epochs": 2, "batch_size": 8,
                    "lr": 1e-3, "seed": 0, "limit": None, "validation": "test"},
           "history": {"records": [{"epoch": 1, "loss": 0.5, "val_loss": None, "seconds": 1.0,
                                    "lr": 1e-3}], "stopped": None},
           "metrics": {"test_mse_per_pixel": 0.1}}))


def _paths(node, prefix=()):
    """Every place in the JSON tree where a value can be replaced."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        yield from _paths(v, prefix + (k,))


PATHS = [p for p in _paths(CONFIG) if p]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10**12) | st.floats(allow_nan=False)
    | st.text(max_size=12) | st.sampled_from(["Dense", "Sequential", "ReLU", "LeakyReLU", "Adam",
                                              "float64", "int8", "Autoencoder"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8)


def _replace(config, path, value):
    config = json.loads(json.dumps(config))
    node = config
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return config


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), json_values), min_size=1, max_size=3))
def test_checkpoint_json(tmp_path, changes):
    config = CONFIG
    for path, value in changes:
        try:
            config = _replace(config, path, value)
        except (KeyError, IndexError, TypeError):
            pass                                 # an earlier change removed that place
    file = tmp_path / "c.npz"
    file.write_bytes(crafted.npz_bytes(config, ARRAYS))
    try:
        ckpt = ta.io.read_checkpoint(file)
        model = ta.load(ckpt)
        checked_history(ckpt)
        resume_flags(ckpt.extra.get("args", {}), {}, path="c.npz")
    except (CheckpointError, RunError):
        return
    assert model.input_width == 6
