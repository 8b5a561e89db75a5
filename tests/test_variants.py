"""Sparse and denoising autoencoders: penalties, gradients, the fit hooks, checkpoints."""
import numpy as np
import pytest

import tinyae as ta
from tinyae.data.digits import load_builtin_digits
from tinyae.gradcheck import check_model, check_penalty
from tinyae.models.variants import (DenoisingAutoencoder, SparseAutoencoder, denoising_autoencoder,
                                    sparse_autoencoder)
from tinyae.nn.penalties import KLSparsity, L1Activity
from tinyae.train import fit


# --- the penalties on their own ----------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(1, 3), (5, 4), (7, 11)])
def test_penalty_gradients(seed, shape):
    rng = np.random.default_rng(seed)
    sigmoid_code = rng.uniform(0.02, 0.98, shape)
    for penalty, Z in ((L1Activity(0.3), rng.standard_normal(shape)),
                       (KLSparsity(rho=0.05, beta=0.7), sigmoid_code),
                       (KLSparsity(rho=0.6, beta=2.0), sigmoid_code)):
        report = check_penalty(penalty, Z)
        assert report.max_error < 1e-7, (penalty, report)


def test_penalty_values_by_hand():
    Z = np.array([[0.5, -1.0], [0.0, 2.0]])
    assert L1Activity(0.1).forward(Z) == pytest.approx(0.1 * 3.5 / 2)
    kl = KLSparsity(rho=0.2, beta=3.0)
    Z = np.array([[0.1, 0.2], [0.3, 0.2]])                 # both units average 0.2 = rho
    assert kl.forward(Z) == pytest.approx(0.0, abs=1e-15)
    np.testing.assert_allclose(kl.backward(), 0, atol=1e-12)
    np.testing.assert_allclose(kl.mean_activation(), [0.2, 0.2])
    Z = np.full((4, 1), 0.5)                               # KL(0.2 || 0.5), by hand
    assert kl.forward(Z) == pytest.approx(3 * (0.2 * np.log(0.4) + 0.8 * np.log(1.6)))


def test_a_wrong_penalty_gradient_is_caught():
    class HalfL1(L1Activity):
        def backward(self):
            return super().backward() / 2                  # the classic forgotten factor
    Z = np.random.default_rng(0).standard_normal((4, 3))
    assert not check_penalty(HalfL1(0.5), Z).passed
    model = SparseAutoencoder(*_parts((6, 3), "relu"), HalfL1(0.5))
    X = np.random.default_rng(1).random((4, 6))
    assert not check_model(model, ta.MSE(), X, X).passed


def test_saturated_kl_code_stays_finite():
    Z = np.zeros((3, 2), np.float32)                       # every unit off: rho_hat = 0
    kl = KLSparsity(0.05, 1.0)
    assert np.isfinite(kl.forward(Z)) and np.isfinite(kl.backward()).all()


@pytest.mark.parametrize("make, msg", [
    (lambda: KLSparsity(rho=0), r"rho .* must be in \(0, 1\), got 0"),
    (lambda: KLSparsity(rho=1.5), r"rho .* must be in \(0, 1\), got 1.5"),
    (lambda: KLSparsity(rho=0.1, beta=-1), r"beta .* must be >= 0, got -1"),
    (lambda: L1Activity(-0.1), r"weight must be >= 0 .*got -0.1"),
    (lambda: L1Activity(float("nan")), r"weight must be >= 0 .*got nan"),
    (lambda: sparse_autoencoder(penalty="l2"), "penalty must be 'kl' or 'l1'"),
    (lambda: sparse_autoencoder(weight_decay=-1e-3), r"weight_decay .* >= 0 .*got -0.001"),
    (lambda: sparse_autoencoder(weight_decay=float("inf")), r"weight_decay .* >= 0 .*got inf"),
])
def test_bad_penalty_settings(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_kl_needs_a_sigmoid_code():
    with pytest.raises(ValueError, match="encoder must end in a Sigmoid"):
        SparseAutoencoder(*_parts((6, 3), "relu"), KLSparsity())
    with pytest.raises(RuntimeError, match="before forward"):
        KLSparsity().backward()


# --- whole models ------------------------------------------------------------------------
def _parts(sizes, code):
    base = ta.dense_autoencoder(sizes, rng=np.random.default_rng(0), dtype=np.float64)
    from tinyae.nn.layers import ACTIVATION_LAYERS
    return ta.Sequential(*base.encoder.layers, ACTIVATION_LAYERS[code]()), base.decoder


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("penalty", ["kl", "l1"])
@pytest.mark.parametrize("sizes, N", [((9, 5), 4), ((8, 6, 3), 5)])
@pytest.mark.parametrize("loss", [ta.MSE(), ta.BCE()])
def test_sparse_model_gradcheck(seed, penalty, sizes, N, loss):
    rng = np.random.default_rng(seed)
    # Large weights, so that a wrong penalty gradient would show far above 1e-6.
    model = sparse_autoencoder(sizes, penalty, rho=0.1, beta=0.5, l1=0.05, rng=rng,
                               dtype=np.float64)
    for _, p, _ in model.parameters():
        if p.ndim == 1:
            p[:] = rng.standard_normal(p.shape) * 0.1
    X = rng.random((N, sizes[0]))
    model.forward(X)
    assert model.penalty() > 1e-3                          # the penalty is really in the check
    report = check_model(model, loss, X, X)
    assert report.max_error < 1e-6, report


@pytest.mark.parametrize("penalty", ["kl", "l1"])
def test_weight_decay_value_and_gradient(penalty):
    """P = P_code(Z) + lambda/2 sum ||W||^2 over the weight matrices (not the biases),
    and its gradient lambda W, checked against finite differences of the whole model."""
    rng = np.random.default_rng(4)
    model = sparse_autoencoder((9, 6, 4), penalty, rho=0.1, beta=0.5, l1=0.05,
                               weight_decay=0.3, rng=rng, dtype=np.float64)
    for _, p, _ in model.parameters():
        if p.ndim == 1:
            p[:] = rng.standard_normal(p.shape) * 0.1
    X = rng.random((5, 9))
    model.forward(X)
    code_only = model.code_penalty.forward(model.Z)
    decay = 0.15 * sum(float((p ** 2).sum()) for n, p, _ in model.parameters() if n.endswith("W"))
    assert decay > 0.1 and model.penalty() == pytest.approx(code_only + decay, rel=1e-12)
    report = check_model(model, ta.MSE(), X, X)
    assert report.max_error < 1e-6, report

    class ForgetsTheDecay(SparseAutoencoder):
        def backward(self, dX):
            decay, self.weight_decay = self.weight_decay, 0.0
            try:
                return super().backward(dX)
            finally:
                self.weight_decay = decay

    wrong = ForgetsTheDecay(model.encoder, model.decoder, model.code_penalty, 0.3)
    assert not check_model(wrong, ta.MSE(), X, X).passed


def test_weight_decay_clears_the_weights_of_pixels_that_are_always_0(digits):
    """The reason for the decay: a pixel that is 0 in every image sends no gradient to its
    weights, so without decay they keep their random start (the noisy border in a drawing
    of the first layer); with it, Adam drives them to 0."""
    dead = digits.max(axis=0) == 0                                   # (784,) never inked
    assert dead.sum() > 50
    norms = {}
    for decay in (0.0, 7.7e-6):
        model = sparse_autoencoder((784, 64), "kl", weight_decay=decay,
                                   rng=np.random.default_rng(0))
        start = np.abs(model.encoder.layers[0].params["W"][dead]).mean()
        fit(model, digits, epochs=4, batch_size=50, progress=False, threads=1,
            optimizer=ta.Adam(model.parameters(), lr=3e-3))
        norms[decay] = np.abs(model.encoder.layers[0].params["W"][dead]).mean() / start
    assert norms[0.0] == 1.0                                          # untouched
    # Adam's steps are about lr = 3e-3 whatever the gradient's size, so the weights (|W| about
    # 0.04 at the start) reach 0 in about 15 steps and then hover within about lr of it.
    assert norms[7.7e-6] < 0.15, norms


def test_denoising_model_gradcheck_is_the_plain_one():
    rng = np.random.default_rng(0)
    model = denoising_autoencoder((8, 5, 2), "masking:0.3", rng=rng, dtype=np.float64)
    X = rng.random((4, 8))
    assert model.penalty() == 0.0
    assert check_model(model, ta.MSE(), X, X).max_error < 1e-6


def test_sparse_forward_backward_match_the_plain_parts():
    """The sparse model is encoder, decoder and a penalty: nothing else changes."""
    rng = np.random.default_rng(3)
    model = sparse_autoencoder((10, 4), "kl", beta=0.0, weight_decay=0.0, rng=rng, dtype=np.float64)
    plain = ta.Autoencoder(model.encoder, model.decoder)
    X = rng.random((6, 10))
    np.testing.assert_array_equal(model.forward(X), plain.forward(X))
    assert model.penalty() == 0.0
    np.testing.assert_allclose(model.encode(X), model.Z)


# --- training: fit adds the penalty once for all, records both terms ---------------------
@pytest.fixture(scope="module")
def digits():
    return load_builtin_digits("train", n=600)[0]


def test_fit_records_reconstruction_and_penalty(digits, capsys):
    model = sparse_autoencoder((784, 64), "kl", rho=0.05, beta=0.01,
                               rng=np.random.default_rng(0))
    h = fit(model, digits, epochs=3, batch_size=100, seed=0, progress=True)
    for r in h.records:
        assert r.penalty > 0 and r.loss == pytest.approx(r.reconstruction + r.penalty, rel=1e-12)
    err = capsys.readouterr().err
    rec = h.records[-1]
    assert (f"loss {rec.loss:.5f} = reconstruction {rec.reconstruction:.5f} + penalty "
            f"{rec.penalty:.5f}") in err
    assert h.records[-1].penalty < h.records[0].penalty          # the code gets sparser
    assert "reconstruction,penalty" in h.to_csv().splitlines()[0]
    # Older histories (no terms recorded) still load, as all reconstruction.
    from tinyae.train import History
    old = History.from_dict({"records": [{"epoch": 1, "loss": 0.5, "val_loss": None,
                                          "seconds": 1.0, "lr": 1e-3}]})
    assert (old.records[0].reconstruction, old.records[0].penalty) == (0.5, 0.0)


def test_sparse_training_moves_mean_activation_to_rho(digits):
    def mean_activation(beta):
        model = sparse_autoencoder((784, 64), "kl", rho=0.05, beta=beta,
                                   rng=np.random.default_rng(0))
        fit(model, digits, epochs=4, batch_size=50, seed=0, progress=False)
        return float(np.mean(model.encode(digits)))
    sparse, plain = mean_activation(0.05), mean_activation(0.0)
    assert abs(sparse - 0.05) < 0.03 < abs(plain - 0.05)


def test_plain_model_history_has_no_penalty(digits):
    model = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))
    h = fit(model, digits, epochs=1, batch_size=100, progress=False)
    assert h.records[0].penalty == 0.0 and h.records[0].reconstruction == h.records[0].loss


def test_fit_feeds_a_denoising_model_corrupt_inputs_and_clean_targets(digits):
    seen = []

    class Spy(DenoisingAutoencoder):
        def forward(self, X):
            seen.append(X.copy())
            return super().forward(X)

    base = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))
    model = Spy(base.encoder, base.decoder, "masking:0.5")
    loss = ta.MSE()
    targets = []
    real_forward = loss.forward
    loss.forward = lambda pred, target: targets.append(target.copy()) or real_forward(pred, target)
    fit(model, digits[:100], epochs=1, batch_size=100, loss=loss, shuffle=False, progress=False)
    x_in, target = seen[0], targets[0]
    np.testing.assert_array_equal(target, digits[:100])           # clean targets
    ink = digits[:100] > 0
    assert abs(np.mean(x_in[ink] == 0) - 0.5) < 0.05              # half the ink masked out
    np.testing.assert_array_equal(x_in[x_in > 0], digits[:100][x_in > 0])


# --- checkpoints --------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda rng: sparse_autoencoder((784, 32), "kl", rho=0.1, beta=0.02, rng=rng),
    lambda rng: sparse_autoencoder((784, 40, 16), "l1", l1=3e-4, rng=rng),
    lambda rng: denoising_autoencoder((784, 32, 2), "salt_and_pepper:0.2", rng=rng),
])
def test_checkpoint_round_trip(make, tmp_path):
    rng = np.random.default_rng(0)
    model = make(rng)
    X = rng.random((5, 784), dtype=np.float32)
    path = ta.save(model, tmp_path / "m")
    back = ta.load(path)
    assert type(back) is type(model) and back.config() == model.config()
    np.testing.assert_array_equal(back.forward(X), model.forward(X))
    assert back.penalty() == model.penalty()
    if isinstance(model, DenoisingAutoencoder):
        assert back.noise.spec == "salt_and_pepper:0.2"


def test_a_sparse_config_from_before_weight_decay_loads_with_none():
    model = sparse_autoencoder((784, 16), "kl", rng=np.random.default_rng(0))
    cfg = model.config()
    assert cfg["weight_decay"] == pytest.approx(3e-3 * 2 / 784)
    del cfg["weight_decay"]                               # what tinyae 0.2 wrote
    assert SparseAutoencoder.from_config(cfg).weight_decay == 0.0


def test_denoising_beats_plain_on_noisy_inputs():
    """The point of the denoising autoencoder, on the built-in digits (a small, quick run)."""
    from tinyae.nn import corrupt
    X = load_builtin_digits("train", n=2000)[0]
    Xt = load_builtin_digits("test", n=300)[0]
    noisy = corrupt.gaussian(Xt, 0.5, np.random.default_rng(1))
    errors = {}
    for kind in ("plain", "denoising"):
        rng = np.random.default_rng(0)
        model = (denoising_autoencoder((784, 128, 32), "gaussian:0.5", rng=rng)
                 if kind == "denoising" else ta.dense_autoencoder((784, 128, 32), rng=rng))
        fit(model, X, epochs=4, batch_size=32, optimizer=ta.Adam(model.parameters(), lr=3e-3),
            progress=False)
        errors[kind] = float(np.mean((model.forward(noisy) - Xt) ** 2))      # vs the clean images
    # Measured: plain 0.095, denoising 0.035 (the plain model passes much of the noise on).
    assert errors["denoising"] < 0.6 * errors["plain"], errors


# --- the fast path: the same numbers as the plain one ------------------------------------
VARIANTS = {
    "sparse-kl": lambda rng: sparse_autoencoder((36, 12, 6), "kl", rho=0.1, beta=0.3, rng=rng,
                                                dtype=np.float64),
    "sparse-l1": lambda rng: sparse_autoencoder((36, 12, 6), "l1", l1=0.01, rng=rng,
                                                dtype=np.float64),
    "sparse-decay": lambda rng: sparse_autoencoder((36, 12, 6), "kl", rho=0.1, beta=0.3,
                                                   weight_decay=0.05, rng=rng, dtype=np.float64),
    "denoising": lambda rng: denoising_autoencoder((36, 12, 2), "masking:0.3", rng=rng,
                                                   dtype=np.float64),
}


@pytest.mark.parametrize("kind", list(VARIANTS))
def test_fast_path_gives_the_plain_numbers(kind):
    """fit on the fast path (fused Sequentials around the model's own forward and backward,
    penalty and noise included) gives the plain path's losses, terms and weights."""
    import copy
    model = VARIANTS[kind](np.random.default_rng(0))
    X = np.random.default_rng(1).random((64, 36))         # 6 x 6 images
    runs = []
    for backend in ("numpy", "numba"):
        m = copy.deepcopy(model)
        h = fit(m, X, epochs=3, batch_size=16, progress=False, backend=backend, threads=1)
        runs.append((h, [p for _, p, _ in m.parameters()]))
    (h1, w1), (h2, w2) = runs
    for a, b in zip(h1.records, h2.records):
        assert a.penalty == pytest.approx(b.penalty, rel=1e-10)
        assert a.reconstruction == pytest.approx(b.reconstruction, rel=1e-10)
    assert (h1.records[-1].penalty > 0) == kind.startswith("sparse")
    for a, b in zip(w1, w2):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert not np.allclose(w1[0], next(model.parameters())[1])       # it trained


@pytest.mark.parametrize("change, msg", [
    (lambda m: m.update(code_penalty={"type": "KLSparsity", "rho": 2.0, "beta": 0.1}),
     r"rho .* must be in \(0, 1\)"),
    (lambda m: m.update(code_penalty={"type": "Exec", "rho": 0.1}), "unknown penalty type"),
    (lambda m: m.update(code_penalty="rm -rf"), "not a type with numeric settings"),
    (lambda m: m.update(type="Hacked"), "which tinyae.load cannot build"),
    (lambda m: m.update(weight_decay=-1.0), "weight_decay -1.0 is not a number >= 0"),
    (lambda m: m.update(weight_decay="0.1"), "weight_decay '0.1' is not a number >= 0"),
])
def test_a_tampered_variant_config_is_refused(change, msg, tmp_path):
    """A checkpoint's model options are checked before any layer is built."""
    import json
    import zipfile
    model = sparse_autoencoder((784, 16), "kl", rng=np.random.default_rng(0))
    path = ta.save(model, tmp_path / "m")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    config = json.loads(str(arrays["__config__"]))
    change(config["model"])
    arrays["__config__"] = np.array(json.dumps(config))
    with zipfile.ZipFile(path, "w") as zf:                 # rewrite the archive as np.savez does
        for k, v in arrays.items():
            with zf.open(k + ".npy", "w") as f:
                np.lib.format.write_array(f, v, allow_pickle=False)
    with pytest.raises(ta.io.CheckpointError, match=msg):
        ta.load(path)
