"""The contractive autoencoder: its penalty's value and gradients, the model, its CLI kind,
and what it is for (less sensitive to small input noise than the plain model)."""
import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import commands as cli
from tinyae.gradcheck import check_model, numerical_gradient, rel_error
from tinyae.models.contractive import ContractiveAutoencoder, contractive_autoencoder
from tinyae.nn import corrupt
from tinyae.nn.functional import sigmoid
from tinyae.nn.penalties import Contractive, penalty_from_config


def _code_and_weight(activation, seed, n=5, d=7, h=4):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, h))
    if activation == "sigmoid":
        H = rng.uniform(0.05, 0.95, (n, h))
    else:       # away from the kink at 0, where the indicator jumps
        H = rng.uniform(0.1, 1.0, (n, h)) * rng.choice([-1, 1], (n, h))
    return H, W


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_penalty_gradients_match_finite_differences(activation, seed):
    H, W = _code_and_weight(activation, seed, n=3 + seed, d=5 + 2 * seed, h=2 + seed)
    p = Contractive(0.7, activation)
    p.forward(H, W)
    dH, dW = p.backward()
    assert rel_error(dH, numerical_gradient(lambda h: p.forward(h.copy(), W), H, 1.0)) < 1e-7
    assert rel_error(dW, numerical_gradient(lambda w: p.forward(H, w.copy()), W, 1.0)) < 1e-7


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_penalty_is_the_mean_squared_frobenius_norm_of_the_jacobian(activation):
    """The closed form against J built column by column by finite differences of h(x)."""
    rng = np.random.default_rng(3)
    D, Hn, N, lam = 6, 3, 4, 0.5
    W, b, X = rng.standard_normal((D, Hn)), rng.standard_normal(Hn), rng.standard_normal((N, D))

    def code(x):
        z = x @ W + b
        return sigmoid(z) if activation == "sigmoid" else np.maximum(z, 0)

    norms = []
    for x in X:
        J = np.stack([(code(x + e * 1e-6) - code(x - e * 1e-6)) / 2e-6 for e in np.eye(D)])
        norms.append(np.sum(J ** 2))                          # J (D, H): dh_j/dx_i
    assert Contractive(lam, activation).forward(code(X), W) == pytest.approx(
        lam * np.mean(norms), rel=1e-6)


def test_penalty_refuses_bad_settings_and_shapes():
    with pytest.raises(ValueError, match="weight .* >= 0"):
        Contractive(-1.0)
    with pytest.raises(ValueError, match="activation must be one of"):
        Contractive(1e-3, "tanh")
    with pytest.raises(ValueError, match="code layer's weight, shape"):
        Contractive(1e-3).forward(np.full((2, 3), 0.5), np.ones((4, 5)))
    with pytest.raises(RuntimeError, match="before forward"):
        Contractive(1e-3).backward()
    p = Contractive(2e-3, "relu")
    assert penalty_from_config(p.config()).config() == p.config()


@pytest.mark.parametrize("code", ["sigmoid", "relu"])
@pytest.mark.parametrize("sizes, seed", [((9, 4), 0), ((9, 6, 4), 1), ((7, 5, 3, 2), 2)])
def test_whole_model_gradient_check(code, sizes, seed):
    rng = np.random.default_rng(seed)
    model = contractive_autoencoder(sizes, lam=0.5, code=code, rng=rng, dtype=np.float64)
    x = rng.uniform(0, 1, (5, sizes[0]))
    report = check_model(model, ta.MSE(), x, x)
    assert report.passed, report
    model.forward(x)
    assert model.penalty() > 0                      # the check saw the penalty's gradient


def test_a_model_missing_the_direct_weight_term_is_caught():
    """The dW through sum_i W_ij^2 is the term students forget: dropping it fails the check."""
    class Forgetful(ContractiveAutoencoder):
        def backward(self, dX):
            dZ_penalty, _ = self.code_penalty.backward()
            return self.encoder.backward(self.decoder.backward(dX) + dZ_penalty)

    rng = np.random.default_rng(0)
    base = contractive_autoencoder((8, 5), lam=0.5, rng=rng, dtype=np.float64)
    x = rng.uniform(0, 1, (4, 8))
    report = check_model(Forgetful(base.encoder, base.decoder, 0.5), ta.MSE(), x, x)
    assert not report.passed


def test_fast_path_trains_it_like_the_plain_path():
    X = np.random.default_rng(0).uniform(0, 1, (32, 12))
    weights = []
    for backend in ("numpy", "numba"):
        m = contractive_autoencoder((12, 5), lam=0.3, rng=np.random.default_rng(1),
                                    dtype=np.float64)
        h = ta.train.fit(m, X, epochs=2, batch_size=8, progress=False, backend=backend)
        assert h.records[-1].penalty > 0
        weights.append([p.copy() for _, p, _ in m.parameters()])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_the_encoder_must_end_in_a_code_layer():
    enc = ta.Sequential(ta.Dense(6, 3), ta.Tanh())
    with pytest.raises(ValueError, match="must end in a Dense and then a Sigmoid or ReLU"):
        ContractiveAutoencoder(enc, ta.Sequential(ta.Dense(3, 6)), 1e-3)
    with pytest.raises(ValueError, match="code must be one of"):
        contractive_autoencoder((6, 3), code="tanh")


def test_save_and_load_keep_lambda(tmp_path):
    m = contractive_autoencoder((6, 3), lam=2e-4, code="relu", rng=np.random.default_rng(0))
    ta.save(m, tmp_path / "m.npz")
    back = ta.load(tmp_path / "m.npz")
    assert type(back) is ContractiveAutoencoder and back.lam == 2e-4
    assert back.code_penalty.activation == "relu"


@pytest.mark.parametrize("change, words", [
    ({"lam": -1.0}, "not a finite number >= 0"), ({"lam": "big"}, "not a finite number >= 0"),
    ({"encoder": ta.Sequential(ta.Dense(6, 3), ta.Tanh()).config()}, "does not end in a Dense"),
])
def test_the_checkpoint_checker_refuses_a_bad_contractive_config(change, words):
    from tinyae.io.check import expected_arrays
    cfg = contractive_autoencoder((6, 3), rng=np.random.default_rng(0)).config()
    expected_arrays("m.npz", {"model": cfg})                            # the untouched one
    with pytest.raises(ta.io.CheckpointError, match=words):
        expected_arrays("m.npz", {"model": {**cfg, **change}})


def test_cli_kind_trains_records_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_figures", lambda *a: None)
    base = ["--data", "builtin", "--limit", "40", "--quiet"]
    assert cli.main(["train", "--model", "contractive", "--epochs", "1", "--beta", "2e-5",
                     "--out", str(tmp_path / "a")] + base) == 0
    ckpt = ta.io.read_checkpoint(tmp_path / "a" / "last.npz")
    saved = ckpt.extra["args"]
    assert saved["model"] == "contractive" and saved["beta"] == 2e-5
    assert saved["sizes"] == [784, 196]
    model = ta.load(ckpt)
    assert type(model) is ContractiveAutoencoder and model.lam == 2e-5
    assert ckpt.extra["history"]["records"][0]["penalty"] > 0
    assert cli.main(["train", "--resume", str(tmp_path / "a" / "last.npz"), "--epochs", "2",
                     "--out", str(tmp_path / "b"), "--quiet"]) == 0
    again = ta.io.read_checkpoint(tmp_path / "b" / "last.npz")
    assert again.extra["args"]["model"] == "contractive" and ta.load(again).lam == 2e-5
    assert len(again.extra["history"]["records"]) == 2
    capsys.readouterr()
    # lambda is the saved model's: a resumed run cannot change it.
    assert cli.main(["train", "--resume", str(tmp_path / "a" / "last.npz"), "--epochs", "2",
                     "--beta", "1e-3", "--override", "--out", str(tmp_path / "c"),
                     "--quiet"]) == 1
    assert "--beta" in capsys.readouterr().err
    assert cli.main(["info", str(tmp_path / "a" / "last.npz")]) == 0
    assert ("model: ContractiveAutoencoder (--model contractive), code penalty "
            "Contractive(weight=2e-05, activation='sigmoid')") in capsys.readouterr().out


# Measured (this test's set-up; mean over the 5 seeds of the squared error per test image
# against the clean images): clean, and Gaussian noise std 0.05, 0.1, 0.2
#   plain (lam = 0)   12.65  12.79  13.62  17.76
#   lam = 1e-5        12.78  12.86  13.28  15.42
# The contractive model is worse clean (+0.13) and at std 0.05 (+0.07): at small noise the
# penalty's cost in clean error outweighs what it saves; it is better from std 0.1 on.
NOISE = (0.05, 0.1, 0.2)


def _errors(model, X, seed):
    rng = np.random.default_rng(100 + seed)
    err = [ta.metrics.sq_error_per_image(X, model.reconstruct(X))]
    for std in NOISE:
        err.append(ta.metrics.sq_error_per_image(
            X, model.reconstruct(corrupt.gaussian(X, std, rng).astype(X.dtype))))
    return np.array(err)


def test_contractive_model_is_less_sensitive_to_small_noise(mnist_dir, monkeypatch):
    """At equal training (same sizes, init, data, epochs, optimiser), lam = 1e-5 against 0."""
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    X = ta.data.load_mnist("train", progress=False)[0][:3000]
    Xt = ta.data.load_mnist("test", progress=False)[0][:1000]
    for seed in range(5):
        errors = {}
        for lam in (0.0, 1e-5):
            m = contractive_autoencoder((784, 196), lam=lam, rng=np.random.default_rng(seed))
            ta.train.fit(m, X, epochs=10, batch_size=64, seed=seed, progress=False, threads=1,
                         optimizer=ta.Adam(m.parameters(), lr=3e-3))
            errors[lam] = _errors(m, Xt, seed)
        plain, contractive = errors[0.0], errors[1e-5]
        # What the penalty buys: the error grows less with noise, at every level...
        assert np.all(contractive[1:] - contractive[0] < plain[1:] - plain[0]), (seed, errors)
        # ...and from std 0.1 on the error itself is lower.
        assert np.all(contractive[2:] < plain[2:]), (seed, errors)
