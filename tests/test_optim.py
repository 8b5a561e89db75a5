import numpy as np
import pytest

import tinyae as ta


def _one_param(rng, shape=(3, 2)):
    p = rng.standard_normal(shape)
    return p, np.zeros_like(p)


def test_adam_first_three_steps_match_the_paper(rng):
    p, g = _one_param(rng)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = ta.Adam([("p", p, g)], lr=lr, betas=(b1, b2), eps=eps)
    expected, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t in (1, 2, 3):
        grad = rng.standard_normal(p.shape)
        g[...] = grad
        opt.step()
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad ** 2
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        expected = expected - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-15)
    assert opt.t == 3


def test_adam_first_step_moves_each_weight_by_lr(rng):
    """With bias correction, step one is lr * g / |g| (up to eps): the classic sanity check."""
    p, g = _one_param(rng)
    start = p.copy()
    g[...] = rng.standard_normal(p.shape)
    ta.Adam([("p", p, g)], lr=0.1).step()
    np.testing.assert_allclose(start - p, 0.1 * np.sign(g), rtol=1e-6)


def test_adam_weight_decay_is_l2_added_to_the_gradient(rng):
    p, g = _one_param(rng)
    q, h = p.copy(), np.zeros_like(p)
    g[...] = rng.standard_normal(p.shape)
    h[...] = g + 0.1 * q
    ta.Adam([("p", p, g)], weight_decay=0.1).step()
    ta.Adam([("q", q, h)]).step()
    np.testing.assert_allclose(p, q, rtol=1e-12)


def test_sgd_momentum_by_hand(rng):
    p, g = _one_param(rng)
    expected, vel = p.copy(), np.zeros_like(p)
    opt = ta.SGD([("p", p, g)], lr=0.1, momentum=0.9)
    for _ in range(3):
        grad = rng.standard_normal(p.shape)
        g[...] = grad
        opt.step()
        vel = 0.9 * vel + grad
        expected -= 0.1 * vel
    np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_updates_are_in_place_and_zero_grad_clears(rng):
    model = ta.dense_autoencoder((6, 4, 2), rng=rng)
    ids = [id(p) for _, p, _ in model.parameters()]
    opt = ta.Adam(model.parameters())
    x = rng.random((3, 6), dtype=np.float32)
    loss = ta.MSE()
    loss.forward(model.forward(x), x)
    model.backward(loss.backward())
    opt.step()
    assert [id(p) for _, p, _ in model.parameters()] == ids
    opt.zero_grad()
    assert all(np.all(g == 0) for _, _, g in model.parameters())


@pytest.mark.parametrize("kwargs, word", [({"lr": 0}, "lr"), ({"lr": -1}, "lr"),
                                          ({"betas": (1.0, 0.9)}, "betas"),
                                          ({"eps": 0}, "eps"), ({"weight_decay": -1}, "weight_decay")])
def test_adam_rejects_bad_hyperparameters(rng, kwargs, word):
    p, g = _one_param(rng)
    with pytest.raises(ValueError, match=word):
        ta.Adam([("p", p, g)], **kwargs)


@pytest.mark.parametrize("kwargs, word", [({"lr": 0}, "lr"), ({"lr": 0.1, "momentum": 1.5}, "momentum")])
def test_sgd_rejects_bad_hyperparameters(rng, kwargs, word):
    p, g = _one_param(rng)
    with pytest.raises(ValueError, match=word):
        ta.SGD([("p", p, g)], **kwargs)


def test_empty_parameter_list_is_an_error():
    with pytest.raises(ValueError, match="empty parameter list"):
        ta.Adam([])


def test_optimizer_state_round_trip(rng):
    model = ta.dense_autoencoder((6, 4, 2), rng=rng)
    opt = ta.Adam(model.parameters())
    for _, _, g in model.parameters():
        g[...] = 1
    opt.step()
    state = {k: np.array(v) for k, v in opt.state_dict().items()}
    fresh = ta.Adam(model.parameters())
    fresh.load_state_dict(state)
    assert fresh.t == 1
    np.testing.assert_array_equal(fresh.m[0], opt.m[0])
    other = ta.Adam(ta.dense_autoencoder((6, 5, 2), rng=rng).parameters())
    with pytest.raises(ValueError, match="another model"):
        other.load_state_dict(state)
