import warnings

import numpy as np
import pytest

import tinyae as ta
from tinyae.gradcheck import check_loss

SHAPES = [(1, 1), (3, 5), (7, 3), (5, 7)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mse_value_and_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    pred, target = rng.random(shape), rng.random(shape)
    assert ta.MSE().forward(pred, target) == pytest.approx(np.sum((pred - target) ** 2) / pred.size)
    report = check_loss(ta.MSE(), pred, target)
    assert report.passed, report


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bce_gradcheck(shape, seed):
    rng = np.random.default_rng(seed)
    p, t = rng.uniform(0.05, 0.95, shape), rng.random(shape)
    assert check_loss(ta.BCE(), p, t).passed
    z = rng.standard_normal(shape) * 3
    assert check_loss(ta.BCE(from_logits=True), z, t).passed


def test_bce_from_logits_equals_bce_of_sigmoid(rng):
    z, t = rng.standard_normal((4, 6)), rng.random((4, 6))
    p = 1 / (1 + np.exp(-z))
    assert ta.BCE(from_logits=True)(z, t) == pytest.approx(ta.BCE()(p, t), rel=1e-10)
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert ta.BCE()(p, t) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("from_logits", [True, False])
def test_bce_extremes_float32(from_logits):
    x = np.array([[-1e4, 1e4, 0.0]], np.float32)
    if not from_logits:
        x = ta.Sigmoid().forward(x)                          # exactly 0 and 1
    t = np.array([[1.0, 0.0, 1.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = ta.BCE(from_logits=from_logits)
        value = loss.forward(x, t)
        grad = loss.backward()
    assert np.isfinite(value) and value > 10                 # confidently wrong costs a lot
    assert np.all(np.isfinite(grad)) and grad.dtype == np.float32


def test_shape_mismatch_names_both(rng):
    for loss in (ta.MSE(), ta.BCE()):
        with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
            loss.forward(np.zeros((2, 3)), np.zeros((3, 2)))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        ta.MSE().backward()


@pytest.mark.parametrize("loss", [ta.MSE(), ta.BCE(), ta.BCE(from_logits=True)])
def test_empty_batch_says_so(loss):
    with pytest.raises(ValueError, match=r"pred is empty \(shape \(0, 4\)\)"):
        loss.forward(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32))
