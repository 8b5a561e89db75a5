"""The public gradient checker, used the way coursework uses it."""
import numpy as np
import pytest

import tinyae as ta
from tinyae.gradcheck import check_layer, check_loss, numerical_gradient, rel_error


class StudentDense:
    """A dense layer as a student would write it, without tinyae's base class."""

    def __init__(self, d, h, rng, wrong=None):
        self.W = rng.standard_normal((d, h)).astype(np.float32)
        self.params = {"W": self.W, "b": np.zeros(h, np.float32)}
        self.grads = {"W": np.zeros((d, h), np.float32), "b": np.zeros(h, np.float32)}
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x @ self.W + self.params["b"]

    def backward(self, dout):
        dW = self.x.T @ dout
        self.grads["W"] += dW * (1.1 if self.wrong == "W" else 1.0)
        self.grads["b"] += dout.sum(axis=0) if self.wrong != "b" else dout.mean(axis=0)
        return dout @ self.W.T


def test_rel_error():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0
    assert rel_error([0.0], [0.0]) == 0
    assert rel_error([1.0], [3.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.ones(2), np.ones(3))


def test_numerical_gradient_of_a_known_function(rng):
    x = rng.standard_normal((3, 4))
    x0, dout = x.copy(), rng.standard_normal((3, 4))
    g = numerical_gradient(lambda v: v ** 3, x, dout)
    np.testing.assert_allclose(g, 3 * x ** 2 * dout, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, x0)                  # every perturbation was undone


def test_student_layer_passes(rng):
    report = check_layer(StudentDense(4, 3, rng), rng.standard_normal((5, 4)))
    assert report.passed, report


@pytest.mark.parametrize("wrong", ["W", "b"])
def test_wrong_backward_is_caught_and_named(rng, wrong):
    report = check_layer(StudentDense(4, 3, rng, wrong=wrong), rng.standard_normal((5, 4)))
    assert not report.passed
    assert report.failed == [wrong]
    text = str(report)
    assert f"FAILED: {wrong}" in text and "NO" in text


def test_wrong_input_gradient_is_caught(rng):
    class BadReLU(ta.ReLU):
        def backward(self, dout):
            return dout                                    # forgot the mask
    x = rng.standard_normal((4, 6))
    report = check_layer(BadReLU(), x)
    assert report.failed == ["input"]


def test_check_leaves_the_layer_unchanged(rng):
    layer = ta.Dense(4, 3, rng=rng)
    before = {k: v.copy() for k, v in layer.params.items()}
    layer.grads["W"][:] = 7
    check_layer(layer, rng.standard_normal((2, 4)))
    assert layer.params["W"].dtype == np.float32
    for k in before:
        np.testing.assert_array_equal(layer.params[k], before[k])
    assert np.all(layer.grads["W"] == 7) and not hasattr(layer, "x")


def test_checks_run_in_float64_even_for_float32_layers(rng):
    """float32 finite differences would fail 1e-7; float64 passes, so the copy is float64."""
    report = check_layer(ta.Dense(6, 5, rng=rng, dtype=np.float32), rng.standard_normal((3, 6)))
    assert report.max_error < 1e-7


def test_report_table_lists_every_array(rng):
    report = check_layer(ta.Dense(2, 2, rng=rng), rng.standard_normal((2, 2)))
    lines = str(report).splitlines()
    assert lines[0] == "check_layer: Dense on x of shape (2, 2)"
    assert lines[1].split()[:2] == ["gradient", "shape"]
    assert [ln.split()[0] for ln in lines[2:5]] == ["input", "W", "b"]
    assert lines[-1] == "threshold 1e-07: PASSED"


def test_sampled_check_of_a_big_layer(rng):
    report = check_layer(ta.Dense(784, 512, rng=rng), rng.random((2, 784)), samples=30)
    assert report.passed, report
    assert report.rows[1].shape == "30 sampled"


def test_check_loss_catches_a_wrong_loss(rng):
    class HalfMSE(ta.MSE):
        def backward(self):
            return super().backward() / 2
    pred, target = rng.random((3, 4)), rng.random((3, 4))
    assert check_loss(ta.MSE(), pred, target).passed
    assert not check_loss(HalfMSE(), pred, target).passed
