import copy
import warnings

import numpy as np
import pytest

import tinyae as ta
from tinyae.gradcheck import check_layer

SHAPES = [(1, 1, 1), (3, 5, 7), (7, 3, 1), (5, 7, 3), (1, 7, 5)]   # (N, D, H)
SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("N,D,H", SHAPES)
@pytest.mark.parametrize("init", ["he", "glorot"])
def test_dense_gradcheck(seed, N, D, H, init):
    rng = np.random.default_rng(seed)
    layer = ta.Dense(D, H, init=init, rng=rng)
    layer.params["b"][:] = rng.standard_normal(H)          # a non-zero bias is checked too
    report = check_layer(layer, rng.standard_normal((N, D)), rng=rng)
    assert report.passed, report
    assert [r[0] for r in report.rows] == ["input", "W", "b"]


def test_dense_without_bias_gradcheck(rng):
    layer = ta.Dense(5, 3, bias=False, rng=rng)
    assert list(layer.params) == ["W"]
    assert check_layer(layer, rng.standard_normal((4, 5))).passed


ACTIVATIONS = [ta.ReLU, ta.Sigmoid, ta.Tanh, ta.Identity, lambda: ta.LeakyReLU(0.1)]


@pytest.mark.parametrize("make", ACTIVATIONS)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 3), (5, 7)])
def test_activation_gradcheck(make, seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5                               # keep clear of the ReLU kink
    report = check_layer(make(), x, rng=rng)
    assert report.passed, report


@pytest.mark.parametrize("seed", SEEDS)
def test_sequential_gradcheck(seed):
    rng = np.random.default_rng(seed)
    net = ta.Sequential(ta.Dense(5, 7, rng=rng), ta.ReLU(), ta.Dense(7, 3, rng=rng), ta.Tanh(),
                        ta.Dense(3, 1, rng=rng), ta.Sigmoid())
    report = check_layer(net, rng.standard_normal((3, 5)), rng=rng)
    assert report.passed, report
    assert [r[0] for r in report.rows] == ["input", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]


def test_sequential_equals_layer_by_layer(rng):
    layers = [ta.Dense(5, 7, rng=rng), ta.LeakyReLU(0.2), ta.Dense(7, 3, rng=rng), ta.Sigmoid()]
    x, dout = rng.standard_normal((4, 5)).astype(np.float32), rng.standard_normal((4, 3))
    net = ta.Sequential(*copy.deepcopy(layers))
    y = net.forward(x)
    dx = net.backward(dout.astype(np.float32))
    h = x
    for layer in layers:
        h = layer.forward(h)
    d = dout.astype(np.float32)
    for layer in reversed(layers):
        d = layer.backward(d)
    np.testing.assert_allclose(y, h, rtol=1e-6)
    np.testing.assert_allclose(dx, d, rtol=1e-5, atol=1e-7)
    for (n1, _, g1), (n2, _, g2) in zip(net.parameters(), ta.Sequential(*layers).parameters()):
        assert n1 == n2
        np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-7)


def test_sequential_container_api(rng):
    net = ta.Sequential(ta.Dense(4, 3, rng=rng), ta.ReLU(), ta.Dense(3, 2, rng=rng))
    assert len(net) == 3 and isinstance(net[1], ta.ReLU) and list(net)[2] is net[2]
    assert [n for n, _, _ in net.parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    net.forward(rng.standard_normal((2, 4)))
    net.backward(np.ones((2, 2), np.float32))
    assert any(np.any(g != 0) for _, _, g in net.parameters())
    net.zero_grad()
    assert all(np.all(g == 0) for _, _, g in net.parameters())


def test_gradients_accumulate(rng):
    layer = ta.Dense(3, 2, rng=rng)
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dout)
    once = layer.grads["W"].copy()
    layer.backward(dout)
    np.testing.assert_allclose(layer.grads["W"], 2 * once, rtol=1e-6)


@pytest.mark.parametrize("layer", [ta.Dense(3, 2), ta.ReLU(), ta.Sigmoid(),
                                   ta.Sequential(ta.Dense(3, 2), ta.ReLU())])
def test_backward_before_forward_says_so(layer):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 2), np.float32))


def test_dout_of_wrong_shape_says_so(rng):
    layer = ta.Dense(3, 2, rng=rng)
    layer.forward(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=r"dout has shape \(4, 3\).*\(4, 2\)"):
        layer.backward(np.ones((4, 3)))


def test_dense_input_errors(rng):
    layer = ta.Dense(3, 2, rng=rng)
    with pytest.raises(ValueError, match="expects 3 input features, got 5"):
        layer.forward(np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match="2-D batch"):
        layer.forward(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="floating-point input, got dtype uint8"):
        layer.forward(np.ones((4, 3), np.uint8))
    with pytest.raises(ValueError, match="positive integer"):
        ta.Dense(0, 3)
    with pytest.raises(ValueError, match="unknown init"):
        ta.Dense(3, 3, init="zeros")


def test_dense_converts_input_to_its_dtype(rng):
    layer = ta.Dense(3, 2, rng=rng)
    assert layer.forward(rng.standard_normal((4, 3))).dtype == np.float32


def test_dense_layout_and_seeded_init():
    a = ta.Dense(784, 512, rng=np.random.default_rng(7))
    b = ta.Dense(784, 512, rng=np.random.default_rng(7))
    c = ta.Dense(784, 512, rng=np.random.default_rng(8))
    assert a.params["W"].shape == (784, 512) and a.params["b"].shape == (512,)
    assert a.params["W"].dtype == np.float32
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(a.params["W"], c.params["W"])
    assert abs(a.params["W"].std() - np.sqrt(2 / 784)) < 0.002        # He: var 2 / fan_in


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes_are_finite_and_quiet(dtype):
    x = np.array([[-1e4, -100.0, 0.0, 100.0, 1e4]], dtype=dtype)
    layer = ta.Sigmoid()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = layer.forward(x)
        dx = layer.backward(np.ones_like(x))
    assert y.dtype == dtype and np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert y[0, 0] == 0 and y[0, -1] == 1 and y[0, 2] == 0.5


def test_leaky_relu_rejects_bad_slope():
    with pytest.raises(ValueError, match="negative_slope"):
        ta.LeakyReLU(-0.5)


def test_skipped_initialisers_give_zeros_in_that_thread_only():
    """tinyae.load builds a model inside skipped(), so no random draw is wasted; a model
    built meanwhile in another thread still gets its random weights."""
    import threading

    from tinyae.nn import init
    other = {}

    def build():
        other["W"] = ta.Dense(4, 3, rng=np.random.default_rng(0), init="torch").params

    with init.skipped():
        inside = ta.Dense(4, 3, rng=np.random.default_rng(0), init="torch").params
        worker = threading.Thread(target=build)
        worker.start()
        worker.join()
    after = ta.Dense(4, 3, rng=np.random.default_rng(0), init="torch").params
    assert not inside["W"].any() and not inside["b"].any()
    assert other["W"]["W"].any() and other["W"]["b"].any()
    assert np.array_equal(after["W"], other["W"]["W"])
