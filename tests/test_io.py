import json
import os

import numpy as np
import pytest

import tinyae as ta
from tinyae.io import CheckpointError, load_weights


@pytest.fixture
def model():
    return ta.dense_autoencoder((12, 8, 2), activation="leaky_relu", rng=np.random.default_rng(0))


def test_save_load_gives_identical_outputs(tmp_path, model, rng):
    path = ta.save(model, tmp_path / "m")
    assert path.endswith("m.npz") and os.listdir(tmp_path) == ["m.npz"]   # no temp file left
    loaded = ta.load(path)
    X = rng.random((5, 12), dtype=np.float32)
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
    assert loaded.config() == model.config()
    assert isinstance(loaded.encoder[1], ta.LeakyReLU)


def test_load_takes_a_checkpoint_already_read(tmp_path, model, rng):
    ckpt = ta.io.read_checkpoint(ta.save(model, tmp_path / "m"))
    X = rng.random((3, 12), dtype=np.float32)
    np.testing.assert_array_equal(ta.load(ckpt).forward(X), model.forward(X))


def test_float64_model_round_trip(tmp_path, rng):
    model = ta.dense_autoencoder((5, 3), dtype=np.float64, rng=rng)
    assert ta.load(ta.save(model, tmp_path / "m.npz")).dtype == np.float64


def test_checkpoint_has_no_pickled_objects(tmp_path, model):
    path = ta.save(model, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
        config = json.loads(str(z["__config__"]))
    assert config["format"] == "tinyae-checkpoint" and config["model"]["dtype"] == "float32"


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    np.savez(path, **arrays)


def test_missing_array(tmp_path, model):
    path = ta.save(model, tmp_path / "m.npz")
    _rewrite(path, lambda a: a.pop("param/decoder.0.W"))
    with pytest.raises(CheckpointError, match="missing.*decoder.0.W"):
        ta.load(path)


def test_misshaped_array(tmp_path, model):
    path = ta.save(model, tmp_path / "m.npz")
    _rewrite(path, lambda a: a.update({"param/encoder.0.W": np.zeros((3, 3), np.float32)}))
    with pytest.raises(CheckpointError, match=r"encoder.0.W is stored as float32 \(3, 3\) but the config needs float \(12, 8\)"):
        ta.load(path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"hello, not a zip")
    with pytest.raises(CheckpointError, match="not a tinyae checkpoint"):
        ta.load(junk)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros(3))
    with pytest.raises(CheckpointError, match="no __config__"):
        ta.load(plain)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ta.load(tmp_path / "absent.npz")


def test_newer_format_version(tmp_path, model):
    path = ta.save(model, tmp_path / "m.npz")

    def bump(a):
        cfg = json.loads(str(a["__config__"]))
        cfg["format_version"] = 99
        a["__config__"] = np.array(json.dumps(cfg))
    _rewrite(path, bump)
    with pytest.raises(CheckpointError, match="format 99.*upgrade"):
        ta.load(path)


def test_weights_into_a_different_architecture(tmp_path, model):
    path = ta.save(model, tmp_path / "m.npz")
    other = ta.dense_autoencoder((12, 6, 2), rng=np.random.default_rng(1))
    with pytest.raises(CheckpointError, match="different architecture"):
        load_weights(other, path)


def test_failed_write_leaves_nothing(tmp_path, model, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        ta.save(model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_written_by_tinyae_0_1_0_still_loads_and_resumes():
    """tests/data holds a checkpoint saved by the 0.1.0 code (before the plain/fast split)."""
    from pathlib import Path

    from tinyae.train import History, fit
    data = Path(__file__).parent / "data"
    ckpt = ta.io.read_checkpoint(data / "checkpoint_v0.1.0.npz")
    model = ta.load(ckpt)
    X = np.random.default_rng(1).random((32, 16), dtype=np.float32)   # the data it was trained on
    np.testing.assert_allclose(model.encode(X[:4]), np.load(data / "checkpoint_v0.1.0_codes.npy"),
                               rtol=1e-5, atol=1e-6)
    assert isinstance(model.encoder[1], ta.LeakyReLU)
    opt = ta.Adam(model.parameters())
    opt.load_state_dict(ckpt.optim)
    history = History.from_dict(ckpt.extra["history"])
    fit(model, X, epochs=3, batch_size=8, optimizer=opt, history=history, progress=False)
    assert opt.t == 12 and len(history.records) == 3
