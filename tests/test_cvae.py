"""The conditional VAE: labels in the rows, gradients, training, checkpoints, the CLI's cvae."""
import json

import crafted
import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import main
from tinyae.data.digits import load_builtin_digits
from tinyae.evaluate.cvae_eval import PixelKNN, sample_accuracy
from tinyae.export import ExportError, to_onnx
from tinyae.gradcheck import check_model
from tinyae.io import CheckpointError
from tinyae.models.cvae import ConditionalVAE, conditional_vae, one_hot, with_labels
from tinyae.models.vae import BernoulliNLL
from tinyae.train import fit


def small_cvae(seed=0, sizes=(12, 7, 5, 3), k=4, dtype=np.float64):
    return conditional_vae(sizes, n_classes=k, rng=np.random.default_rng(seed), dtype=dtype)


def test_one_hot_and_rows():
    assert one_hot(np.array([2, 0]), 3).tolist() == [[0, 0, 1], [1, 0, 0]]
    XY = with_labels(np.ones((2, 4), np.float32), np.array([1, 3]), 4)
    assert XY.dtype == np.float32 and XY.shape == (2, 8)
    assert XY[:, 4:].tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]]


@pytest.mark.parametrize("labels", [np.array([0, 4]), np.array([-1, 0]), np.array([0.5, 1.0]),
                                    np.zeros((2, 1), int)])
def test_bad_labels_are_refused_with_the_range(labels):
    with pytest.raises(ValueError, match="whole numbers from 0 to 3"):
        with_labels(np.ones((2, 4)), labels, 4)


def test_rows_and_labels_must_pair():
    with pytest.raises(ValueError, match="one label per row"):
        with_labels(np.ones((3, 4)), np.array([0, 1]), 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_whole_model_gradient_check_including_the_label_columns(seed):
    model = small_cvae(seed)
    rng = np.random.default_rng(seed + 10)
    X, y = rng.random((6, 12)), rng.integers(0, 4, 6)
    model.fixed_eps = rng.standard_normal((6, 3))
    report = check_model(model, BernoulliNLL(), with_labels(X, y, 4), X)
    assert report.passed and report.max_error < 1e-6, report


def test_the_decoder_is_told_the_label():
    """Same code, other label: other logits; the encoder's code changes with the label too."""
    model = small_cvae()
    z = np.zeros((2, 3))
    a = model.logits(z, one_hot(np.array([0, 0]), 4))
    b = model.logits(z, one_hot(np.array([0, 1]), 4))
    assert np.allclose(a[0], b[0]) and not np.allclose(a[1], b[1])
    assert model.decode(z, 1).shape == (2, 12) and model.decode(z[0], 2).shape == (12,)
    with pytest.raises(ValueError, match="2 codes but 3 labels"):
        model.decode(z, [0, 1, 2])
    with pytest.raises(ValueError, match="one-hot labels"):
        model.logits(z)


def test_bad_construction_is_refused():
    with pytest.raises(ValueError, match="n_classes must be a whole number >= 2"):
        conditional_vae((12, 5, 3), n_classes=1)
    body, mu, lv, dec = (small_cvae().encoder, small_cvae().mu_head, small_cvae().logvar_head,
                         conditional_vae((12, 7, 5, 3), n_classes=5).decoder)
    with pytest.raises(ValueError, match="the decoder reads 8 numbers"):
        ConditionalVAE(body, mu, lv, dec, n_classes=4)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_fit_trains_on_rows_with_labels(backend):
    X, y = load_builtin_digits("train", n=600)[:2]
    model = conditional_vae((784, 64, 2), rng=np.random.default_rng(0))
    history = fit(model, with_labels(X, y), epochs=4, batch_size=64, progress=False,
                  backend=backend, validation=0.1)
    losses = [r.loss for r in history.records]
    assert losses[-1] < 0.9 * losses[0] and history.records[-1].val_loss is not None


def test_backends_agree_on_one_step():
    X, y = load_builtin_digits("train", n=64)[:2]
    runs = []
    for backend in ("numpy", "numba"):
        model = conditional_vae((784, 32, 2), rng=np.random.default_rng(3))
        fit(model, with_labels(X, y), epochs=1, batch_size=64, progress=False, backend=backend)
        runs.append(np.concatenate([p.ravel() for _, p, _ in model.parameters()]))
    assert np.allclose(runs[0], runs[1], rtol=1e-4, atol=1e-5)


def test_plain_rows_get_a_clear_error():
    X = load_builtin_digits("train", n=32)[0]
    with pytest.raises(ValueError, match="794"):
        fit(conditional_vae((784, 16, 2)), X, epochs=1, progress=False)


def test_save_load_round_trip(tmp_path):
    model = conditional_vae((784, 16, 2), beta=0.5, rng=np.random.default_rng(0))
    ta.save(model, tmp_path / "c.npz")
    back = ta.load(tmp_path / "c.npz")
    assert isinstance(back, ConditionalVAE) and back.n_classes == 10 and back.beta == 0.5
    rng = [np.random.default_rng(1), np.random.default_rng(1)]
    assert np.array_equal(back.sample(5, 7, rng[0]), model.sample(5, 7, rng[1]))


@pytest.mark.parametrize("change, why", [
    (lambda c: c["model"].update(n_classes=9), "does not take|does not fit|shape|features"),
    (lambda c: c["model"].update(n_classes=1.5), "n_classes"),
    (lambda c: c["model"].pop("n_classes"), "n_classes|not valid"),
])
def test_a_crafted_checkpoint_is_refused(tmp_path, change, why):
    ta.save(conditional_vae((784, 16, 2), rng=np.random.default_rng(0)), tmp_path / "c.npz")
    crafted.edit_config(tmp_path / "c.npz", change)
    with pytest.raises(CheckpointError, match=why):
        ta.load(tmp_path / "c.npz")


def test_pixel_knn_is_a_majority_of_the_nearest():
    ref = np.array([[0.0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]])
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert PixelKNN(ref, labels, k=3)(np.array([[0.2, 0.2], [9, 9], [1, 1]])).tolist() == [0, 1, 0]


def test_sample_accuracy_is_measured_per_digit():
    class Fixed:                    # draws the image of digit d as its reference image d
        n_classes = 3

        def sample(self, n, d, rng):
            return np.repeat(np.eye(3)[[d]], n, 0) if d != 2 else np.zeros((n, 3))
    classify = PixelKNN(np.eye(3), np.arange(3), k=1)
    assert sample_accuracy(Fixed(), classify, n=4) == {0: 1.0, 1: 1.0, 2: 0.0}


def test_export_refuses_a_conditional_model(tmp_path):
    with pytest.raises(ExportError, match="one-hot label"):
        to_onnx(conditional_vae((784, 16, 2)), tmp_path / "c.onnx")
    assert not (tmp_path / "c.onnx").exists()


@pytest.mark.slow                     # 11 s: CI runs it after the main suite (conftest.py)
def test_cli_train_evaluate_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "cvae", "--data", "builtin", "--limit", "400", "--sizes",
                 "784,64,2", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_neg_elbo_per_image"] == pytest.approx(
        m["test_reconstruction_per_image"] + m["test_kl_per_image"])
    assert set(m["sample_accuracy_per_digit"]) == {str(d) for d in range(10)}
    assert 0 <= m["sample_accuracy_min"] <= m["sample_accuracy_mean"] <= 1
    for name in ("digits.png", "styles.png", "latent.png", "reconstructions.png", "loss.png"):
        assert (out / name).stat().st_size > 1000, name
    ckpt = ta.io.read_checkpoint(out / "last.npz")
    assert ckpt.extra["args"]["model"] == "cvae" and ckpt.extra["args"]["sizes"] == [784, 64, 2]
    # tinyae evaluate makes the same numbers; resume keeps the kind.
    assert main(["evaluate", str(out / "last.npz"), "--out", str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text()) == m
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--limit", "400",
                 "--out", str(tmp_path / "more"), "--quiet"]) == 0
    assert isinstance(ta.load(tmp_path / "more" / "last.npz"), ConditionalVAE)
    capsys.readouterr()
    assert main(["sample", str(out / "last.npz"), "--digit", "7", "-n", "9",
                 "-o", str(tmp_path / "s.png")]) == 0
    assert "9 samples of the digit 7" in capsys.readouterr().out
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert main(["info", str(out / "last.npz")]) == 0
    assert "10 classes" in capsys.readouterr().out


def test_cli_bad_input(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "cvae", "--data", "builtin", "--limit", "100", "--sizes",
                 "784,16,2", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    ckpt = str(out / "last.npz")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:                # the flag's parser: before any work
        main(["sample", ckpt, "--digit", "10"])
    assert e.value.code == 2 and "wants a digit 0-9, got '10'" in capsys.readouterr().err
    assert main(["sample", ckpt, "-o", str(tmp_path / "a.png")]) == 1
    assert "add --digit D" in capsys.readouterr().err
    for command in (["encode", ckpt, "-o", str(tmp_path / "z.npy")], ["explore", ckpt],
                    ["robustness", ckpt], ["anomaly", ckpt, "--digit", "3"]):
        assert main(command) == 1, command
        assert "holds a conditional VAE" in capsys.readouterr().err, command
    plain = tmp_path / "plain"
    assert main(["train", "--data", "builtin", "--limit", "100", "--sizes", "784,16,2",
                 "--epochs", "2", "--out", str(plain), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(plain / "last.npz"), "--digit", "3",
                 "-o", str(tmp_path / "b.png")]) == 1
    assert "--digit needs a conditional VAE" in capsys.readouterr().err
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
