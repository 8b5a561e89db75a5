"""The variational autoencoder: its gradients, the KL term, training, checkpoints, CLI."""
import json

import crafted
import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import main
from tinyae.data.digits import load_builtin_digits
from tinyae.evaluate.vae_eval import elbo_terms, iw_log_likelihood, quantile_grid, samples
from tinyae.gradcheck import check_model, numerical_gradient, rel_error
from tinyae.models.vae import (BernoulliNLL, GaussianKL, Reparameterize, VariationalAutoencoder,
                               variational_autoencoder)
from tinyae.train import TrainingDiverged, fit


def small_vae(seed=0, sizes=(12, 9, 6, 3), beta=1.0, dtype=np.float64):
    return variational_autoencoder(sizes, beta=beta, rng=np.random.default_rng(seed), dtype=dtype)


# --- the pieces, by hand and against finite differences ----------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(1, 1), (4, 2), (7, 5)])
def test_kl_gradient(seed, shape):
    rng = np.random.default_rng(seed)
    mu, logvar = rng.standard_normal(shape), rng.uniform(-2, 1.5, shape)
    kl = GaussianKL()
    kl.forward(mu, logvar)
    dmu, dlogvar = kl.backward()
    num_mu = numerical_gradient(lambda m: kl.forward(m, logvar), mu.copy(), 1.0)
    num_lv = numerical_gradient(lambda lv: kl.forward(mu, lv), logvar.copy(), 1.0)
    assert rel_error(dmu, num_mu) < 1e-7
    assert rel_error(dlogvar, num_lv) < 1e-7


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("shape", [(1, 1), (4, 2), (7, 5)])
def test_sampling_node_gradient(seed, shape):
    rng = np.random.default_rng(seed)
    mu, logvar, eps = rng.standard_normal(shape), rng.uniform(-2, 1.5, shape), rng.standard_normal(shape)
    dz = rng.standard_normal(shape)
    node = Reparameterize()
    node.forward(mu, logvar, eps)
    dmu, dlogvar = node.backward(dz)
    num_mu = numerical_gradient(lambda m: node.forward(m, logvar, eps), mu.copy(), dz)
    num_lv = numerical_gradient(lambda lv: node.forward(mu, lv, eps), logvar.copy(), dz)
    assert rel_error(dmu, num_mu) < 1e-7
    assert rel_error(dlogvar, num_lv) < 1e-7


def test_bernoulli_nll_is_bce_summed_over_pixels():
    rng = np.random.default_rng(0)
    z, x = rng.standard_normal((5, 7)) * 3, rng.uniform(0, 1, (5, 7))
    nll = BernoulliNLL()
    assert nll.forward(z, x) == pytest.approx(ta.BCE(from_logits=True).forward(z, x) * 7)
    p = 1 / (1 + np.exp(-z))
    assert nll.forward(z, x) == pytest.approx(-np.sum(x * np.log(p) + (1 - x) * np.log(1 - p)) / 5)
    nll.forward(z, x)
    analytic = nll.backward()               # before the differences' forwards replace the cache
    num = numerical_gradient(lambda zz: nll.forward(zz, x), z.copy(), 1.0)
    assert rel_error(analytic, num) < 1e-7


def test_kl_is_zero_at_the_prior_and_matches_monte_carlo():
    kl = GaussianKL()
    assert kl.forward(np.zeros((3, 2)), np.zeros((3, 2))) == 0.0
    mu, logvar = np.array([[0.7, -1.2, 0.1]]), np.array([[-0.5, 0.8, -2.0]])
    exact = kl.forward(mu, logvar)
    # KL = E_q[log q(z) - log p(z)], estimated from n samples of q
    rng, n = np.random.default_rng(0), 400_000
    eps = rng.standard_normal((n, 3))
    z = mu + np.exp(logvar / 2) * eps
    log_q = -0.5 * np.sum(eps ** 2 + logvar + np.log(2 * np.pi), axis=1)
    log_p = -0.5 * np.sum(z ** 2 + np.log(2 * np.pi), axis=1)
    d = log_q - log_p
    stderr = d.std() / np.sqrt(n)
    assert abs(d.mean() - exact) < 4 * stderr
    assert stderr < 0.01 * exact                   # the check is sharp enough to mean something


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_whole_vae_gradient_with_eps_frozen(seed, beta):
    rng = np.random.default_rng(seed)
    model = small_vae(seed, beta=beta)
    x = rng.uniform(0, 1, (5, 12))
    model.fixed_eps = rng.standard_normal((5, 3))
    report = check_model(model, BernoulliNLL(), x, x)
    assert report.passed and report.max_error < 1e-6, report
    names = [r[0] for r in report.rows]
    assert "mu_head.W" in names and "logvar_head.b" in names


def test_a_wrong_sampling_backward_is_caught():
    class Wrong(Reparameterize):
        def backward(self, dz):
            eps, sigma = self._cache
            return dz, dz * eps * sigma             # forgot the 1/2 of d sigma / d logvar
    model = small_vae()
    model.sampler = Wrong()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (4, 12))
    model.fixed_eps = rng.standard_normal((4, 3))
    report = check_model(model, BernoulliNLL(), x, x)
    assert not report.passed and "logvar_head.W" in report.failed


def test_fast_float32_training_matches_float64_step():
    """One training step in float32 (fit's path) gives the float64 step's loss and gradients."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, 12))
    eps = rng.standard_normal((6, 3))
    runs = []
    for dtype in (np.float32, np.float64):
        model = small_vae(3, dtype=dtype)
        model.fixed_eps = eps
        loss = BernoulliNLL()
        model.zero_grad()
        value = loss.forward(model.forward(x.astype(dtype)), x.astype(dtype)) + model.penalty()
        model.backward(loss.backward())
        runs.append((value, [g.copy() for _, _, g in model.parameters()]))
    assert runs[0][0] == pytest.approx(runs[1][0], rel=1e-5)
    for g32, g64 in zip(runs[0][1], runs[1][1]):
        assert rel_error(g32, g64) < 1e-4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_path_matches_plain_path_for_one_step(dtype):
    """The fast view (tinyae.fast.accelerate: fused body and decoder, the VAE's own sampling,
    KL and heads around them) gives the plain model's loss and gradients.

    Skipped where tinyae.fast does not exist (before the readable-core layout of issue 9).
    """
    import copy
    fast = pytest.importorskip("tinyae.fast")
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (16, 12)).astype(dtype)
    model = small_vae(4, dtype=dtype)
    model.fixed_eps = rng.standard_normal((16, 3))
    results = []
    for accelerate in (False, True):
        plain = copy.deepcopy(model)
        net = fast.accelerate(plain) if accelerate else plain
        loss = BernoulliNLL()
        net.zero_grad()
        value = loss.forward(net.forward(x), x) + net.penalty()
        net.backward(loss.backward())
        results.append((value, {n: g.copy() for n, _, g in plain.parameters()}))
    (a, ga), (b, gb) = results
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert abs(a - b) <= tol * abs(a)
    assert ga.keys() == gb.keys()
    for name in ga:
        assert rel_error(ga[name], gb[name]) < tol, name


# --- the model's use ---------------------------------------------------------------------
def test_encode_decode_sample_shapes_and_ranges():
    model = small_vae()
    x = np.random.default_rng(0).uniform(0, 1, (4, 12))
    mu = model.encode(x)
    mu2, logvar = model.encode(x, logvar=True)
    assert mu.shape == logvar.shape == (4, 3)
    np.testing.assert_array_equal(mu, mu2)
    assert model.encode(x[0]).shape == (3,)
    p = model.decode(mu)
    assert p.shape == (4, 12) and p.min() > 0 and p.max() < 1
    images = model.sample(5, np.random.default_rng(1))
    assert images.shape == (5, 12)
    np.testing.assert_array_equal(images, model.sample(5, np.random.default_rng(1)))
    assert model.encode(x).dtype == np.float64


def test_seed_sizes_by_default():
    model = variational_autoencoder(rng=np.random.default_rng(0))
    shapes = {name: p.shape for name, p, _ in model.parameters()}
    assert shapes["encoder.0.W"] == (784, 512) and shapes["encoder.4.W"] == (256, 64)
    assert shapes["mu_head.W"] == shapes["logvar_head.W"] == (64, 2)
    assert shapes["decoder.0.W"] == (2, 64) and shapes["decoder.6.W"] == (512, 784)
    assert type(model.decoder.layers[-1]).__name__ == "Dense"        # logits out
    assert model.input_width == 784 and model.latent_width == 2


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="beta"):
        small_vae(beta=-0.1)
    with pytest.raises(ValueError, match="code size of 0"):
        variational_autoencoder((784, 400, 0))
    with pytest.raises(ValueError, match="three positive widths"):
        variational_autoencoder((784, 20))
    model = small_vae()
    for n in (0, -3, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            model.sample(n)
    plain = ta.dense_autoencoder((12, 5, 2), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="has no logvar"):
        plain.encode(np.zeros((2, 12)), logvar=True)
    with pytest.raises(ValueError, match="positive integer"):
        samples(plain, 0, np.random.default_rng(0), np.zeros((3, 12)))


def test_checkpoint_round_trip_and_wrong_kind(tmp_path):
    model = small_vae(beta=0.5, dtype=np.float32)
    path = ta.save(model, tmp_path / "vae.npz")
    back = ta.load(path)
    assert isinstance(back, VariationalAutoencoder) and back.beta == 0.5
    x = np.random.default_rng(0).uniform(0, 1, (3, 12)).astype(np.float32)
    np.testing.assert_array_equal(back.encode(x), model.encode(x))
    np.testing.assert_array_equal(back.decode(model.encode(x)), model.decode(model.encode(x)))
    # A VAE checkpoint into a plain model, and the reverse: errors that name both kinds.
    from tinyae.io import CheckpointError, load_weights
    plain = ta.dense_autoencoder((12, 9, 6, 3), rng=np.random.default_rng(0))
    with pytest.raises(CheckpointError,
                       match="type VariationalAutoencoder, but this model is of type Autoencoder"):
        load_weights(plain, path)
    plain_path = ta.save(plain, tmp_path / "plain.npz")
    with pytest.raises(CheckpointError,
                       match="type Autoencoder, but this model is of type VariationalAutoencoder"):
        load_weights(model, plain_path)
    cfg = json.loads(json.dumps(plain.config()))
    with pytest.raises(ValueError, match="needs.*mu_head"):
        VariationalAutoencoder.from_config(cfg)


# --- training ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y = load_builtin_digits("train", n=1000)[:2]
    Xt, yt = load_builtin_digits("test", n=500)[:2]
    return X, y, Xt, yt


def _neg_elbo(model, X):
    return elbo_terms(model, X, np.random.default_rng(5))["neg_elbo"].mean()


def test_summed_loss_trains_and_keeps_kl_while_mean_reduced_collapses(digits):
    X, _, Xt, _ = digits
    model = variational_autoencoder((784, 128, 32, 2), rng=np.random.default_rng(0))
    before = _neg_elbo(model, Xt)
    history = fit(model, X, epochs=5, batch_size=64, progress=False)
    after = _neg_elbo(model, Xt)
    assert after < before - 50, (before, after)
    r = history.records[-1]
    assert r.loss == pytest.approx(r.reconstruction + r.penalty)
    kl = elbo_terms(model, Xt, np.random.default_rng(0))["kl"].mean()
    assert kl > 1.0, kl                                  # the code carries information

    collapsed = variational_autoencoder((784, 128, 32, 2), rng=np.random.default_rng(0))
    fit(collapsed, X, epochs=5, batch_size=64, progress=False, loss=ta.BCE(from_logits=True))
    kl_mean = elbo_terms(collapsed, Xt, np.random.default_rng(0))["kl"].mean()
    assert kl_mean < 0.1 * kl and kl_mean < 0.2, (kl_mean, kl)
    assert _neg_elbo(collapsed, Xt) > after


def test_evaluate_uses_the_models_own_loss_by_default(digits):
    from tinyae.train import evaluate
    X = digits[2][:128]
    model = variational_autoencoder((784, 32, 2), rng=np.random.default_rng(0))
    values = []
    for loss in (None, BernoulliNLL()):
        model.rng = np.random.default_rng(5)             # the same eps both times
        values.append(evaluate(model, X, loss))
    assert values[0] == values[1] > 100                  # nats per image, not an MSE on logits


def test_val_loss_is_the_negative_elbo_like_the_training_loss(digits):
    X, _, Xt, _ = digits
    model = variational_autoencoder((784, 32, 2), rng=np.random.default_rng(0))
    r = fit(model, X[:512], epochs=2, batch_size=64, validation=(Xt[:256],),
            progress=False).records[-1]
    assert r.val_penalty > 0.5                           # KL nats per image, counted
    assert r.val_loss - r.val_penalty > 0.5 * r.reconstruction
    assert abs(r.val_loss - r.loss) < 0.2 * r.loss       # the curves compare


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_fit_draws_eps_per_seed_and_epoch_and_gives_the_generator_back(digits, backend):
    """Epoch 2 of a two-epoch run equals epoch 2 resumed from epoch 1's weights (the eps
    come from (seed, epoch), not from how far the model's generator has run); the
    caller's generator is untouched."""
    X = digits[0][:256]

    def run(epochs, history=None, start=None):
        model = variational_autoencoder((784, 32, 2), rng=np.random.default_rng(0))
        if start is not None:                            # SGD: the weights are all the state
            for (_, w, _), w0 in zip(model.parameters(), start):
                w[...] = w0
        state = model.rng.bit_generator.state
        own = model.rng
        h = fit(model, X, epochs=epochs, batch_size=64, progress=False, backend=backend,
                seed=3, history=history, threads=1, optimizer=ta.SGD(model.parameters(), lr=1e-3))
        assert model.rng is own and model.rng.bit_generator.state == state
        return model, h

    straight, _ = run(2)
    first, h1 = run(1)
    resumed, _ = run(2, history=h1, start=[w for _, w, _ in first.parameters()])
    for (name, w, _), (_, w2, _) in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(w2, w, err_msg=name)


def test_huge_logvar_stops_training_with_the_divergence_message(digits):
    X = digits[0][:256]
    model = variational_autoencoder((784, 32, 2), rng=np.random.default_rng(0))
    model.logvar_head.params["b"][:] = 400.0              # exp(200) overflows float32
    with pytest.raises(TrainingDiverged, match="training diverged"):
        fit(model, X, epochs=1, batch_size=64, progress=False)
    assert all(np.isfinite(p).all() for _, p, _ in model.parameters())


def test_importance_weighted_bound_is_above_the_elbo(digits):
    X = digits[2][:200]
    model = variational_autoencoder((784, 64, 2), rng=np.random.default_rng(0))
    fit(model, digits[0], epochs=2, batch_size=64, progress=False)
    elbo = -elbo_terms(model, X, np.random.default_rng(0))["neg_elbo"]
    iw1 = iw_log_likelihood(model, X, k=1, rng=np.random.default_rng(0))
    iw100 = iw_log_likelihood(model, X, k=100, rng=np.random.default_rng(0))
    # k=1 is one sample of the ELBO (same mean); k=100 is a tighter bound, higher on average
    assert abs(iw1.mean() - elbo.mean()) < 3 * np.std(iw1 - elbo) / np.sqrt(len(X)) + 0.5
    assert iw100.mean() > elbo.mean()
    assert np.all(iw100 < 0)


def _iw_by_the_formula(model, X, k, rng):
    """log (1/k) sum_k w_k with every code of every image decoded in one plain call."""
    X = np.asarray(X, np.float64)
    mu, logvar = (a.astype(np.float64) for a in model.encode(X, logvar=True))
    eps = rng.standard_normal((k,) + mu.shape)                                  # (k, N, Z)
    z = mu + np.exp(logvar / 2) * eps
    y = model.condition(X)
    logits = model.logits(z.reshape(-1, z.shape[-1]).astype(model.dtype),
                          None if y is None else np.tile(y, (k, 1))).astype(np.float64)
    x = ta.models.autoencoder.target_of(model, X)                               # (N, D)
    logits = logits.reshape((k,) + x.shape)
    log_px_z = np.sum(x * logits - np.logaddexp(0, logits), axis=-1)
    log_w = (log_px_z - 0.5 * np.sum(z * z, axis=-1)
             + 0.5 * np.sum(eps * eps + logvar, axis=-1))           # the 2 pi terms cancel
    return np.logaddexp.reduce(log_w, axis=0) - np.log(k)


@pytest.mark.parametrize("make", [
    lambda: variational_autoencoder((784, 32, 2), rng=np.random.default_rng(0)),
    lambda: ta.conv_variational_autoencoder(rng=np.random.default_rng(0)),
    lambda: ta.models.cvae.conditional_vae((784, 16, 2), rng=np.random.default_rng(0))],
    ids=["dense", "conv", "conditional"])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_importance_weights_decoded_in_batches_are_the_formula(digits, make, backend,
                                                               monkeypatch):
    """The estimate decodes one sample of a batch's images per call, on the fast path
    (or the plain one): the same numbers as decoding all k N codes at once."""
    monkeypatch.setenv("TINYAE_BACKEND", backend)
    model, X = make(), digits[2][:13]
    if hasattr(model, "n_classes"):
        X = ta.models.cvae.with_labels(X, digits[3][:13], model.n_classes)
    got = iw_log_likelihood(model, X, k=7, rng=np.random.default_rng(1), batch_size=len(X))
    want = _iw_by_the_formula(model, X, 7, np.random.default_rng(1))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_importance_weights_leave_the_blas_threads_as_they_were(digits):
    """It decodes on one BLAS thread, then gives the caller back its own count."""
    from threadpoolctl import threadpool_info, threadpool_limits
    with threadpool_limits(2, user_api="blas"):
        iw_log_likelihood(small_vae(), digits[2][:5, :12], k=3)
        assert {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"} \
            == {2}


def test_quantile_grid():
    Z = quantile_grid(4)
    assert Z.shape == (16, 2)
    np.testing.assert_allclose(Z[:4, 1], Z[0, 1])                 # a row shares z2
    assert Z[0, 1] > 0 > Z[-1, 1] and Z[0, 0] < 0 < Z[3, 0]       # top left to bottom right
    from statistics import NormalDist
    assert Z[0, 0] == pytest.approx(NormalDist().inv_cdf(1 / 8))
    np.testing.assert_allclose(Z[:4, 0], -Z[:4, 0][::-1])         # symmetric about 0


# --- the command line --------------------------------------------------------------------
def test_cli_resume_takes_the_sizes_it_was_trained_with(tmp_path):
    """A VAE records --sizes with its code width (the mu head's), so the same flags resume."""
    flags = ["train", "--model", "vae", "--data", "builtin", "--limit", "200", "--sizes",
             "784,32,2", "--threads", "1", "--quiet"]
    assert main(flags + ["--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    assert ta.io.read_checkpoint(tmp_path / "a" / "last.npz").extra["args"]["sizes"] == [784, 32, 2]
    assert main(flags + ["--epochs", "2", "--resume", str(tmp_path / "a" / "last.npz"),
                         "--out", str(tmp_path / "b")]) == 0


def test_cli_resumes_an_older_checkpoint_whose_sizes_lack_the_code_width(tmp_path):
    """Before the code width was recorded, --sizes 784,32,2 was saved as [784, 32]."""
    flags = ["train", "--model", "vae", "--data", "builtin", "--limit", "200", "--sizes",
             "784,32,2", "--threads", "1", "--quiet"]
    assert main(flags + ["--epochs", "1", "--out", str(tmp_path / "a")]) == 0
    old = tmp_path / "a" / "last.npz"
    crafted.edit_config(old, lambda c: c["extra"]["args"].update(sizes=[784, 32]))
    assert main(flags + ["--epochs", "2", "--resume", str(old), "--out", str(tmp_path / "b")]) == 0
    assert ta.io.read_checkpoint(tmp_path / "b" / "last.npz").extra["args"]["sizes"] == [784, 32, 2]
    other = [f if f != "784,32,2" else "784,32,3" for f in flags]      # another code width
    assert main(other + ["--epochs", "2", "--resume", str(old), "--out", str(tmp_path / "c")]) == 1


@pytest.mark.slow                     # 13 s: CI runs it after the main suite (conftest.py)
def test_cli_train_info_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "vae", "--beta", "0.5", "--data", "builtin", "--limit", "400",
                 "--sizes", "784,64,2", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("test_neg_elbo_per_image", "test_reconstruction_per_image", "test_kl_per_image",
                "test_mse_per_pixel_of_mu", "knn5_accuracy_mu", "test_log_px_iw100"):
        assert np.isfinite(m[key]), key
    assert m["test_neg_elbo_per_image"] == pytest.approx(
        m["test_reconstruction_per_image"] + m["test_kl_per_image"])
    for name in ("samples.png", "quantile_grid.png", "latent.png"):
        assert (out / name).stat().st_size > 1000, name
    model = ta.load(out / "last.npz")
    assert isinstance(model, VariationalAutoencoder) and model.beta == 0.5
    records = json.loads((out / "history.json").read_text())["records"]
    assert all(r["penalty"] > 0 and r["loss"] == pytest.approx(r["reconstruction"] + r["penalty"])
               for r in records)
    # Resuming keeps the kind and beta.
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--limit", "400",
                 "--out", str(tmp_path / "more"), "--quiet"]) == 0
    again = ta.io.read_checkpoint(tmp_path / "more" / "last.npz")
    assert again.extra["args"]["model"] == "vae" and again.extra["args"]["beta"] == 0.5
    assert ta.load(again).beta == 0.5 and len(again.extra["history"]["records"]) == 3
    capsys.readouterr()

    assert main(["info", str(out / "last.npz")]) == 0
    text = capsys.readouterr().out
    assert "test_neg_elbo_per_image" in text and "mu_head" in text and "penalty" in text

    assert main(["sample", str(out / "last.npz"), "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert "from the prior" in capsys.readouterr().out
    assert (tmp_path / "s.png").stat().st_size > 1000

    plain = tmp_path / "plain"
    assert main(["train", "--data", "builtin", "--limit", "300", "--sizes", "784,32,2",
                 "--epochs", "1", "--out", str(plain), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(plain / "last.npz"), "-n", "9", "--limit", "200",
                 "-o", str(tmp_path / "p.png")]) == 0
    assert "fitted to the codes of 200 train images" in capsys.readouterr().out


def test_cli_vae_bad_input(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:                # the flag's parser: before any work
        main(["train", "--model", "vae", "--beta", "-1", "--data", "builtin", "--limit", "50",
              "--epochs", "1", "--out", str(tmp_path / "a"), "--quiet"])
    assert e.value.code == 2 and "--beta: wants a number >= 0" in capsys.readouterr().err
    assert main(["train", "--model", "vae", "--sizes", "784,2", "--data", "builtin", "--limit",
                 "50", "--epochs", "1", "--out", str(tmp_path / "b"), "--quiet"]) == 1
    assert "three positive widths" in capsys.readouterr().err


# --- init="torch": torch.nn.Linear's start (the VAE gap of docs/results.md) ------------------
def test_torch_init_draws_weights_and_biases_within_one_over_root_fan_in():
    rng = np.random.default_rng(0)
    for layer, fan_in in ((ta.Dense(400, 20, init="torch", rng=rng), 400),
                          (ta.Conv2D(3, 8, (3, 2), init="torch", rng=rng), 3 * 3 * 2)):
        bound = 1 / np.sqrt(fan_in)
        for name in ("W", "b"):
            p = layer.params[name]
            assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound, name
            assert abs(p.std() - bound / np.sqrt(3)) < 0.25 * bound, name    # uniform's spread
    assert not ta.Dense(4, 3, rng=rng).params["b"].any()                   # the others: 0


def test_vae_init_torch_applies_to_every_layer_and_round_trips(tmp_path):
    model = variational_autoencoder((784, 400, 20), init="torch", rng=np.random.default_rng(0))
    dense = [layer for part in model.children()
             for layer in (part.layers if hasattr(part, "layers") else [part])
             if isinstance(layer, ta.Dense)]
    assert len(dense) == 5 and {layer.init for layer in dense} == {"torch"}
    assert all(layer.params["b"].any() for layer in dense)
    ta.save(model, tmp_path / "v.npz")
    back = ta.load(tmp_path / "v.npz")
    for (n, p, _), (_, q, _) in zip(model.parameters(), back.parameters()):
        np.testing.assert_array_equal(p, q, err_msg=n)
