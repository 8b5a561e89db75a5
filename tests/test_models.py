import numpy as np
import pytest

import tinyae as ta
from tinyae.gradcheck import check_model

SEED_TABLE = [401_920, 131_328, 16_448, 130, 192, 16_640, 131_584, 402_192]


def blobs(n, rng, side=28):
    """n images of three soft blobs each: structured data without any download."""
    yy, xx = np.mgrid[:side, :side]
    imgs = np.zeros((n, side, side))
    for k in range(n):
        for cy, cx in rng.uniform(5, side - 5, size=(3, 2)):
            imgs[k] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
    return np.clip(imgs, 0, 1).reshape(n, -1).astype(np.float32)


def test_seed_model_reproduces_the_parameter_table():
    model = ta.dense_autoencoder(rng=np.random.default_rng(0))
    dense = [layer for part in (model.encoder, model.decoder) for layer in part
             if isinstance(layer, ta.Dense)]
    assert [sum(p.size for p in d.params.values()) for d in dense] == SEED_TABLE
    assert model.num_parameters() == 1_100_434
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for n in SEED_TABLE:
        assert f"{n:,}" in text
    assert "1,100,434" in lines[-1] and "(None, 2)" in text and "(None, 784)" in text


def test_seed_model_shape():
    model = ta.dense_autoencoder(rng=np.random.default_rng(0))
    assert [type(l).__name__ for l in model.encoder] == ["Dense", "ReLU"] * 3 + ["Dense"]
    assert [type(l).__name__ for l in model.decoder] == ["Dense", "ReLU"] * 3 + ["Dense", "Sigmoid"]
    assert (model.input_width, model.latent_width) == (784, 2)


def test_encode_decode_keep_rank(rng):
    model = ta.dense_autoencoder((10, 6, 3), rng=rng)
    X = rng.random((4, 10), dtype=np.float32)
    Z = model.encode(X)
    assert Z.shape == (4, 3) and model.decode(Z).shape == (4, 10)
    assert model.encode(X[0]).shape == (3,) and model.decode(Z[0]).shape == (10,)
    np.testing.assert_allclose(model.encode(X[0]), Z[0], rtol=1e-6)
    out = model.forward(X)
    assert out.shape == (4, 10) and np.all((out >= 0) & (out <= 1))


def test_wrong_width_names_expected_and_received(rng):
    model = ta.dense_autoencoder((10, 6, 3), rng=rng)
    with pytest.raises(ValueError, match=r"expects 10 features.*\(4, 9\)"):
        model.encode(np.zeros((4, 9), np.float32))
    with pytest.raises(ValueError, match=r"expects 3 features.*\(5,\)"):
        model.decode(np.zeros(5, np.float32))


def test_seeded_construction_is_reproducible():
    a = ta.dense_autoencoder(rng=np.random.default_rng(3))
    b = ta.dense_autoencoder(rng=np.random.default_rng(3))
    c = ta.dense_autoencoder(rng=np.random.default_rng(4))
    for (_, p, _), (_, q, _), (_, r, _) in zip(a.parameters(), b.parameters(), c.parameters()):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(next(a.parameters())[1], next(c.parameters())[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes, N", [((7, 5, 3, 2), 3), ((5, 3, 1), 1), ((9, 7, 5, 3), 5)])
@pytest.mark.parametrize("loss", [ta.MSE(), ta.BCE()])
def test_whole_autoencoder_gradcheck(seed, sizes, N, loss):
    rng = np.random.default_rng(seed)
    model = ta.dense_autoencoder(sizes, rng=rng, dtype=np.float64)
    for _, p, _ in model.parameters():                   # non-zero biases
        if p.ndim == 1:
            p[:] = rng.standard_normal(p.shape) * 0.1
    X = rng.random((N, sizes[0]))
    report = check_model(model, loss, X, X)
    assert report.passed, report
    assert report.threshold == 1e-6


def test_sampled_gradcheck_of_the_full_seed_model(rng):
    model = ta.dense_autoencoder(rng=rng)
    X = blobs(2, rng)
    report = check_model(model, ta.MSE(), X, X, samples=8)
    assert report.passed, report
    assert len(report.rows) == 1 + 16


def test_parameter_names(rng):
    model = ta.dense_autoencoder((6, 4, 2), rng=rng)
    assert [n for n, _, _ in model.parameters()] == [
        "encoder.0.W", "encoder.0.b", "encoder.2.W", "encoder.2.b",
        "decoder.0.W", "decoder.0.b", "decoder.2.W", "decoder.2.b"]


def test_overfit_one_batch():
    rng = np.random.default_rng(0)
    model = ta.dense_autoencoder(rng=rng)
    X = blobs(32, rng)
    loss, opt = ta.MSE(), ta.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        losses.append(loss.forward(model.forward(X), X))
        model.backward(loss.backward())
        opt.step()
    assert min(losses) < 0.1 * losses[0], (losses[0], losses[-1])


def test_bad_sizes_and_activations():
    with pytest.raises(ValueError, match="at least two"):
        ta.dense_autoencoder((784,))
    with pytest.raises(ValueError, match="unknown activation"):
        ta.dense_autoencoder(activation="swish")
