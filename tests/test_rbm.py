"""The RBM against exact enumeration of a tiny model's states; CD-1 on MNIST; unrolling a stack.

The enumeration here is written from the energy alone, E(v, h) = -v W h - b_v v - b_h h
(+ ||h||^2 / 2 for Gaussian hidden units), not from tinyae's formulas.
"""
import itertools

import numpy as np
import pytest

import tinyae as ta
from tinyae.models.rbm import RBM, pretrain_stack, train_rbm, unroll

D, H = 3, 2
VS = np.array(list(itertools.product([0, 1], repeat=D)), float)       # (8, 3) every v
HS = np.array(list(itertools.product([0, 1], repeat=H)), float)       # (4, 2) every h
DATA = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 1, 1]], float)


def tiny(seed, hidden="bernoulli", scale=1.5):
    rng = np.random.default_rng(seed)
    r = RBM(D, H, hidden, rng=rng, dtype=np.float64)
    r.W[:] = scale * rng.standard_normal((D, H))
    r.b_v[:] = rng.standard_normal(D)
    r.b_h[:] = rng.standard_normal(H)
    return r


def energy(r, v, h):
    return -v @ r.W @ h - r.b_v @ v - r.b_h @ h


def joint(r):
    """p(v, h) over every state: (8, 4)."""
    u = np.exp(-np.array([[energy(r, v, h) for h in HS] for v in VS]))
    return u / u.sum()


def exact_log_likelihood(r, V):
    p_v = joint(r).sum(axis=1)
    index = [int("".join(str(int(b)) for b in v), 2) for v in V]          # row of v in VS
    return float(np.mean(np.log(p_v[index])))


def exact_stats(r):
    """E[h | v] (8, 2) and the one-step transition T[v, v'] = sum_h p(h|v) p(v'|h) (8, 8)."""
    P = joint(r)
    h_given_v = P / P.sum(axis=1, keepdims=True)           # (8, 4)
    v_given_h = P / P.sum(axis=0, keepdims=True)           # (8, 4)
    return h_given_v @ HS, h_given_v @ v_given_h.T


def stats_of(V, Eh):
    """<v h^T>, <v>, <h> over rows of V (each row a state index's v), h at E[h|v]."""
    return {"W": V.T @ Eh / len(V), "b_v": V.mean(axis=0), "b_h": Eh.mean(axis=0)}


def rows_of(V):
    return np.array([int("".join(str(int(b)) for b in v), 2) for v in V])


def numeric_gradient(r, V, h=1e-6):
    """d/d(W, b_v, b_h) of the exact mean log-likelihood, centred differences."""
    grads = {}
    for name, p in r.params().items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = exact_log_likelihood(r, V)
            p[i] = old - h
            down = exact_log_likelihood(r, V)
            p[i] = old
            g[i] = (up - down) / (2 * h)
        grads[name] = g
    return grads


# --- the model's formulas ---------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_free_energy_is_minus_log_of_the_marginal(seed):
    r = tiny(seed)
    exact = -np.log(np.exp(-np.array([[energy(r, v, h) for h in HS] for v in VS])).sum(axis=1))
    np.testing.assert_allclose(r.free_energy(VS), exact, rtol=1e-12)


def test_free_energy_with_gaussian_hidden_units_is_the_integral_over_h():
    r = tiny(0, "gaussian", scale=0.8)
    grid = np.linspace(-14, 14, 1401)                     # trapezoid: spectral for a Gaussian
    h1, h2 = np.meshgrid(grid, grid, indexing="ij")
    Hg = np.stack([h1.ravel(), h2.ravel()], axis=1)       # (M, 2)
    step = grid[1] - grid[0]
    for v in VS:
        E = -(v @ r.W) @ Hg.T - r.b_v @ v - Hg @ r.b_h + 0.5 * np.sum(Hg ** 2, axis=1)
        F = -np.log(np.sum(np.exp(-E)) * step ** 2)
        assert r.free_energy(v[None])[0] == pytest.approx(F, rel=1e-9)


@pytest.mark.parametrize("hidden", ["bernoulli", "gaussian"])
def test_energy_matches_its_formula(hidden):
    r = tiny(4, hidden)
    rng = np.random.default_rng(0)
    V, Hs = VS, rng.standard_normal((8, H))
    expected = [energy(r, v, h) + (0.5 * h @ h if hidden == "gaussian" else 0)
                for v, h in zip(V, Hs)]
    np.testing.assert_allclose(r.energy(V, Hs), expected, rtol=1e-12)


def test_conditionals_match_enumeration():
    r = tiny(1)
    P = joint(r)
    np.testing.assert_allclose(r.p_h(VS), (P / P.sum(axis=1, keepdims=True)) @ HS, rtol=1e-12)
    np.testing.assert_allclose(r.p_v(HS), ((P / P.sum(axis=0, keepdims=True)).T @ VS),
                               rtol=1e-12)


def test_gaussian_hidden_units_read_the_same_p_v_and_have_mean_c():
    r = tiny(2, "gaussian")
    h = np.array([[0.3, -1.2], [2.0, 0.5]])
    for row in h:                                           # p(v | h) over the 8 states of v
        u = np.exp(-np.array([energy(r, v, row) for v in VS]))
        np.testing.assert_allclose(r.p_v(row[None])[0], u @ VS / u.sum(), rtol=1e-12)
    np.testing.assert_allclose(r.p_h(VS), VS @ r.W + r.b_h)
    samples = r.sample_h(np.repeat(VS[5:6], 20000, axis=0), np.random.default_rng(0))
    assert np.all(np.abs(samples.mean(axis=0) - r.p_h(VS[5:6])[0]) < 4 / np.sqrt(20000))
    assert np.all(np.abs(samples.std(axis=0) - 1) < 0.03)


# --- contrastive divergence -------------------------------------------------------------
def test_positive_phase_is_the_exact_data_expectation():
    r = tiny(0)
    Eh, _ = exact_stats(r)
    exact = stats_of(DATA, Eh[rows_of(DATA)])
    got = r.statistics(DATA)
    for name in exact:
        np.testing.assert_allclose(got[name], exact[name], rtol=1e-12)


N_CHAINS = 40000


def _tolerance():
    # Every statistic is a mean of N_CHAINS terms in [0, 1] (std <= 1/2): 5 standard errors.
    return 5 * 0.5 / np.sqrt(N_CHAINS)


def test_cd1_expected_update_is_the_exact_one_step_expectation():
    """E[CD-1 update] = stats(data) - sum_v' T(v -> v') stats(v'), T by enumeration; and it is
    not the log-likelihood gradient (CD-1 is biased: by 0.21 here, with strong weights that
    mix slowly), which the tolerance can tell apart."""
    r = tiny(0, scale=2.5)
    Eh, T = exact_stats(r)
    V = np.repeat(DATA, N_CHAINS // len(DATA), axis=0)
    pos = stats_of(V, Eh[rows_of(V)])
    T_data = T[rows_of(DATA)].mean(axis=0)               # (8,) where the chains are after one step
    neg = {"W": (VS * T_data[:, None]).T @ Eh, "b_v": T_data @ VS, "b_h": T_data @ Eh}
    expected = {k: pos[k] - neg[k] for k in pos}
    got = r.contrastive_divergence(V, k=1, rng=np.random.default_rng(0))
    exact_ll = numeric_gradient(r, DATA)
    biased = False
    for name in expected:
        assert np.max(np.abs(got[name] - expected[name])) < _tolerance(), name
        biased |= np.max(np.abs(expected[name] - exact_ll[name])) > 4 * _tolerance()
    assert biased


def test_cd_with_many_steps_reaches_the_log_likelihood_gradient():
    """CD-k for large k: the chains mix, and the update is d(mean log p(data)) / d(theta),
    taken here by finite differences of the exactly enumerated log-likelihood."""
    r = tiny(1, scale=1.0)
    V = np.repeat(DATA, N_CHAINS // len(DATA), axis=0)
    got = r.contrastive_divergence(V, k=50, rng=np.random.default_rng(1))
    exact = numeric_gradient(r, DATA)
    for name in exact:
        assert np.max(np.abs(got[name] - exact[name])) < _tolerance(), name


def test_cd_with_gaussian_hidden_units_reaches_the_log_likelihood_gradient():
    """As above for the linear code layer: log p(v) = -F(v) - log sum_v' exp(-F(v')), F
    checked against the integral over h in the free-energy test; the tolerance is five
    standard errors of the negative phase, from its exact variance under p(v)."""
    r = tiny(3, "gaussian", scale=0.7)
    F = r.free_energy(VS)
    p_v = np.exp(-F - np.logaddexp.reduce(-F))                             # (8,)

    def log_likelihood():
        F = r.free_energy(VS)
        return float(np.mean(-F[rows_of(DATA)] - np.logaddexp.reduce(-F)))
    exact = {}
    for name, p in r.params().items():
        exact[name] = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + 1e-6
            up = log_likelihood()
            p[i] = old - 1e-6
            exact[name][i] = (up - log_likelihood()) / 2e-6
            p[i] = old
    V = np.repeat(DATA, N_CHAINS // len(DATA), axis=0)
    got = r.contrastive_divergence(V, k=50, rng=np.random.default_rng(3))
    C = r.p_h(VS)                                                          # (8, 2)
    per_state = {"W": VS[:, :, None] * C[:, None, :], "b_v": VS, "b_h": C}
    for name in exact:
        mean = np.tensordot(p_v, per_state[name], axes=1)
        sd = np.sqrt(np.tensordot(p_v, (per_state[name] - mean) ** 2, axes=1))
        assert np.all(np.abs(got[name] - exact[name]) < 5 * sd / np.sqrt(N_CHAINS) + 1e-9), name


def test_persistent_cd_keeps_its_chains_and_they_reach_the_model():
    r = tiny(2, scale=1.0)
    V = np.repeat(DATA, N_CHAINS // len(DATA), axis=0)
    rng = np.random.default_rng(2)
    r.contrastive_divergence(V, k=1, rng=rng, persistent=True)
    kept = r.chain.copy()
    assert kept.shape == V.shape and not np.array_equal(kept, V)
    # The next call continues from the kept chains, not from the data.
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    got = r.contrastive_divergence(V, k=1, rng=a, persistent=True)
    neg = r.statistics(r.gibbs(kept, 1, b))
    np.testing.assert_allclose(got["W"], r.statistics(V)["W"] - neg["W"])
    for _ in range(30):                          # no update: the chains settle to p(v)
        got = r.contrastive_divergence(V, k=1, rng=rng, persistent=True)
    exact = numeric_gradient(r, DATA)
    for name in exact:
        assert np.max(np.abs(got[name] - exact[name])) < _tolerance(), name
    r.contrastive_divergence(V[:3], k=1, rng=rng, persistent=True)     # a short last batch
    assert r.chain.shape == V.shape                                      # keeps every chain


def test_samples_follow_the_model():
    """The mean of Gibbs samples' p(v | h) is E[v] under p(v), enumerated."""
    r = tiny(4, scale=1.0)
    samples = r.sample(N_CHAINS, k=50, rng=np.random.default_rng(4))
    expected = joint(r).sum(axis=1) @ VS
    assert samples.shape == (N_CHAINS, D)
    assert np.max(np.abs(samples.mean(axis=0) - expected)) < _tolerance()


def test_pseudo_log_likelihood_matches_enumeration():
    r = tiny(3)
    p_v = joint(r).sum(axis=1)
    exact = []
    for v in VS:
        total = 0.0
        for i in range(D):
            w = v.copy()
            w[i] = 1 - w[i]
            a, b = p_v[rows_of(v[None])[0]], p_v[rows_of(w[None])[0]]
            total += np.log(a / (a + b))
        exact.append(total)
    np.testing.assert_allclose(r.pseudo_log_likelihood(VS, exact=True), exact, rtol=1e-12)
    many = np.repeat(VS[6:7], 20000, axis=0)                 # one random bit: unbiased
    estimate = r.pseudo_log_likelihood(many, np.random.default_rng(0))
    assert abs(estimate.mean() - exact[6]) < 5 * estimate.std() / np.sqrt(len(many))


# --- bad input is refused before any work -----------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    ({"k": 0}, "k >= 1"), ({"k": 1.5}, "k >= 1"), ({"lr": 0.0}, "lr must be > 0"),
    ({"lr": -0.1}, "lr must be > 0"), ({"momentum": 1.0}, "momentum must be in [0, 1)"),
])
def test_train_rbm_refuses_bad_settings(kwargs, words):
    r = tiny(0)
    W = r.W.copy()
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace(")", r"\)")):
        train_rbm(r, DATA, **kwargs)
    np.testing.assert_array_equal(r.W, W)


@pytest.mark.parametrize("V, words", [
    (DATA * 2, "values .* in \\[0, 1\\]"), (DATA - 0.5, "in \\[0, 1\\]"),
    (np.full((2, D), np.nan), "NaN or infinite"), (np.ones((2, D + 1)), "shape \\(N, 3\\)"),
])
def test_visible_data_outside_the_unit_interval_is_refused(V, words):
    r = tiny(0)
    with pytest.raises(ValueError, match=words):
        r.contrastive_divergence(V)
    with pytest.raises(ValueError, match=words):
        train_rbm(r, V)


def test_bad_construction_and_pll_on_grey_data():
    with pytest.raises(ValueError, match="hidden must be one of"):
        RBM(3, 2, "poisson")
    with pytest.raises(ValueError, match="binary visible data"):
        tiny(0).pseudo_log_likelihood(np.full((2, D), 0.5))


# --- on MNIST -----------------------------------------------------------------------------
def test_cd1_on_mnist_lowers_the_reconstruction_error(mnist_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    X = ta.data.load_mnist("train", progress=False)[0][:2000]
    rng = np.random.default_rng(0)
    r = RBM(784, 64, rng=rng)
    before = r.reconstruction_error(X)
    Xb = (X[:500] > 0.5).astype(np.float32)
    pll_before = r.pseudo_log_likelihood(Xb, exact=False, rng=np.random.default_rng(1)).mean()
    errors = train_rbm(r, X, epochs=3, lr=0.1, k=1, rng=rng)
    assert before > 2 * errors[0] and errors[0] > errors[1] > errors[2], (before, errors)
    pll_after = r.pseudo_log_likelihood(Xb, exact=False, rng=np.random.default_rng(1)).mean()
    assert pll_after > pll_before + 100, (pll_before, pll_after)
    # The figures: its filters, and what its Gibbs chains dream up.
    ta.plot.filters(r.W, n=64, path=tmp_path / "filters.png")
    samples = r.sample(16, k=200, rng=rng)
    assert samples.shape == (16, 784) and 0 <= samples.min() and samples.max() <= 1
    ta.plot.image_grid(samples, path=tmp_path / "samples.png", title="Gibbs samples")
    assert (tmp_path / "filters.png").stat().st_size > 0 and (tmp_path / "samples.png").exists()


# --- unrolling a stack --------------------------------------------------------------------
def _stack(rng):
    sizes = [(12, 8, "bernoulli"), (8, 6, "bernoulli"), (6, 3, "gaussian")]
    stack = []
    for d, h, hidden in sizes:
        r = RBM(d, h, hidden, rng=rng, dtype=np.float64)
        r.W[:] = rng.standard_normal((d, h))
        r.b_v[:], r.b_h[:] = rng.standard_normal(d), rng.standard_normal(h)
        stack.append(r)
    return stack


def test_unrolled_encoder_is_the_mean_field_up_pass_and_decoder_the_down_pass():
    rng = np.random.default_rng(0)
    stack = _stack(rng)
    model = unroll(stack)
    X = rng.uniform(0, 1, (5, 12))
    up = X
    for r in stack:
        up = r.p_h(up)
    np.testing.assert_allclose(model.encode(X), up, rtol=1e-12)
    down = up
    for r in reversed(stack):
        down = r.p_v(down)
    np.testing.assert_allclose(model.decode(up), down, rtol=1e-12)
    model.encoder.layers[0].params["W"][...] = 0          # copies: the RBMs keep their weights
    assert np.abs(stack[0].W).sum() > 0


def test_unroll_refuses_a_stack_that_does_not_chain():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="sizes do not chain: an RBM with 8 hidden units"):
        unroll([RBM(12, 8, rng=rng), RBM(7, 3, rng=rng)])
    with pytest.raises(ValueError, match="only the top RBM may have Gaussian"):
        unroll([RBM(12, 8, "gaussian", rng=rng), RBM(8, 3, rng=rng)])
    with pytest.raises(ValueError, match="at least one RBM"):
        unroll([])


def test_pretrain_stack_trains_each_level_on_the_codes_below():
    rng = np.random.default_rng(0)
    X = (rng.random((200, 12)) < 0.3).astype(np.float64)
    seen = []
    stack = pretrain_stack(X, (12, 8, 3), epochs=2, rng=rng, dtype=np.float64,
                           callback=lambda level, rbm, errors: seen.append(errors))
    assert [(r.n_visible, r.n_hidden, r.hidden) for r in stack] == [
        (12, 8, "bernoulli"), (8, 3, "gaussian")]
    assert len(seen) == 2 and all(len(e) == 2 for e in seen)
    # Level 1 learned from level 0's hidden probabilities: its last error is on them.
    assert seen[1][-1] == pytest.approx(stack[1].reconstruction_error(stack[0].p_h(X)))
    assert unroll(stack).encode(X).shape == (200, 3)


@pytest.mark.parametrize("kwargs, words", [
    ({"sizes": (12,)}, "at least two positive widths"),
    ({"sizes": (10, 4)}, "sizes\\[0\\] = 10 features"),
    ({"code_lr": 0.0}, "lr must be > 0"), ({"k": 0}, "k >= 1"),
    ({"epochs": 0}, "epochs must be an integer >= 1"),
    ({"X": np.full((4, 12), 2.0)}, "in \\[0, 1\\]"),
])
def test_pretrain_stack_refuses_bad_input_before_any_level_trains(kwargs, words):
    args = {"X": np.zeros((4, 12)), "sizes": (12, 8, 3), **kwargs}
    trained = []
    with pytest.raises(ValueError, match=words):
        pretrain_stack(args.pop("X"), args.pop("sizes"), **args,
                       callback=lambda *a: trained.append(a))
    assert trained == []


# --- tinyae train --model stacked --pretrain rbm ---------------------------------------------
def test_cli_pretrains_rbms_unrolls_and_fine_tunes(tmp_path, capsys):
    from tinyae.cli import main
    out = tmp_path / "run"
    assert main(["train", "--model", "stacked", "--pretrain", "rbm", "--pretrain-epochs", "2",
                 "--epochs", "2", "--data", "builtin", "--limit", "300", "--sizes",
                 "784,64,32,8", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "pretraining 3 RBMs by CD-1, 2 epochs each" in err and "RBM level 3: 32-8 (gaussian" in err
    assert "loss cross-entropy" in err                    # the paper's fine-tuning loss
    ckpt = ta.io.read_checkpoint(out / "last.npz")
    assert ckpt.extra["args"]["pretrain"] == "rbm" and ckpt.extra["args"]["sizes"] == [784, 64, 32, 8]
    assert ckpt.extra["args"]["loss"] == "bce"
    levels = ckpt.extra["pretraining"]
    assert [(lv["visible"], lv["hidden"], lv["units"]) for lv in levels] == [
        (784, 64, "bernoulli"), (64, 32, "bernoulli"), (32, 8, "gaussian")]
    assert all(len(lv["reconstruction_error"]) == 2 for lv in levels)
    model = ta.load(out / "last.npz")                # the unrolled stack: sigmoid units, linear code
    kinds = [type(layer).__name__ for layer in model.encoder]
    assert kinds == ["Dense", "Sigmoid", "Dense", "Sigmoid", "Dense"]
    # resuming keeps it and refuses another pretraining: it decided the saved model
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--quiet",
                 "--out", str(tmp_path / "more")]) == 0
    assert ta.io.read_checkpoint(tmp_path / "more" / "last.npz").extra["pretraining"] == levels
    capsys.readouterr()
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--override",
                 "--pretrain", "autoencoder", "--out", str(tmp_path / "other")]) == 1
    assert "--pretrain autoencoder differs from the rbm" in capsys.readouterr().err


def test_cli_pretrain_is_refused_where_it_would_not_apply(tmp_path, capsys):
    from tinyae.cli import main
    assert main(["train", "--model", "ae", "--pretrain", "rbm", "--data", "builtin", "--limit",
                 "100", "--epochs", "2", "--out", str(tmp_path / "a")]) == 1
    assert "--pretrain is an option of --model stacked" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--model", "stacked", "--pretrain", "boltzmann"])
    assert e.value.code == 2 and "invalid choice: 'boltzmann'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_sigterm_during_rbm_pretraining_ends_cleanly(tmp_path):
    """Nothing is saved before the RBMs are unrolled: the run says so, exits 143 and leaves no
    lock or half-made folder behind."""
    import signal
    import subprocess
    import sys
    import time
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "tinyae", "train", "--model", "stacked",
                             "--pretrain", "rbm", "--pretrain-epochs", "500", "--data", "builtin",
                             "--limit", "2000", "--sizes", "784,200,20", "--epochs", "2",
                             "--out", str(out)], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()                        # printed just before the first RBM
    assert "pretraining 2 RBMs by CD-1" in line, line
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert "stopped by SIGTERM; the RBMs were still pretraining, so nothing was saved" in err
    assert not out.exists() or not any(out.iterdir())


def test_rbm_training_shows_a_line_per_epoch(capsys):
    """Pretraining takes minutes an RBM: each epoch ends with a line (a log's only output),
    and nothing is printed without ``progress``."""
    X = (np.random.default_rng(0).random((250, 12)) > 0.5).astype(np.float32)
    rbms = pretrain_stack(X, (12, 6, 3), epochs=2, batch_size=100, progress=True,
                          rng=np.random.default_rng(0))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and len(rbms) == 2
    assert lines[0].startswith("RBM 1/2 (12-6) epoch 1/2: squared reconstruction error per image ")
    assert lines[3].startswith("RBM 2/2 (6-3) epoch 2/2: ")
    train_rbm(RBM(12, 6, rng=np.random.default_rng(0)), X, epochs=1)
    assert capsys.readouterr().err == ""


def test_resuming_a_plain_run_with_pretrain_names_the_kind_that_has_it(tmp_path, capsys):
    from tinyae.cli import main
    out = tmp_path / "a"
    assert main(["train", "--data", "builtin", "--limit", "100", "--epochs", "2", "--quiet",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--pretrain",
                 "rbm", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "--pretrain is an option of --model stacked" in err and "differs" not in err
    assert not (tmp_path / "b").exists()
