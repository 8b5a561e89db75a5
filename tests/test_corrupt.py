import numpy as np
import pytest

from tinyae.data.digits import load_builtin_digits
from tinyae.nn import corrupt


@pytest.fixture(scope="module")
def X():
    return load_builtin_digits("test", n=16)[0]                 # (16, 784) float32 in [0, 1]


NOISY = [(corrupt.gaussian, 0.5), (corrupt.masking, 0.3), (corrupt.salt_and_pepper, 0.2)]


@pytest.mark.parametrize("fn, level", NOISY, ids=lambda v: getattr(v, "__name__", str(v)))
def test_noise_shape_range_and_seed(fn, level, X):
    before = X.copy()
    a = fn(X, level, np.random.default_rng(5))
    b = fn(X, level, np.random.default_rng(5))
    c = fn(X, level, np.random.default_rng(6))
    assert a.shape == X.shape and a.dtype == X.dtype
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, b)                       # same seed, same noise
    assert not np.array_equal(a, c) and not np.array_equal(a, X)
    np.testing.assert_array_equal(X, before)                  # the input is never changed
    np.testing.assert_array_equal(fn(X, 0.0, np.random.default_rng(5)), X)   # level 0: no change


def test_noise_levels_mean_what_they_say(X):
    rng = np.random.default_rng(0)
    big = np.full((200, 784), 0.5, np.float32)
    masked = corrupt.masking(big, 0.3, rng)
    assert abs(np.mean(masked == 0) - 0.3) < 0.01 and set(np.unique(masked)) == {0, 0.5}
    sp = corrupt.salt_and_pepper(big, 0.2, rng)
    assert abs(np.mean(sp == 0) - 0.1) < 0.01 and abs(np.mean(sp == 1) - 0.1) < 0.01
    g = corrupt.gaussian(big, 0.1, rng)                        # rarely clipped at 0.5 +- 5 std
    assert abs(np.std(g - big) - 0.1) < 0.002


@pytest.mark.parametrize("angle", [0, 360, -360, 720])
def test_full_turns_are_the_identity(angle, X):
    np.testing.assert_array_equal(corrupt.rotate(X, angle), X)


def test_rotation_agrees_with_rot90(X):
    images = X.reshape(-1, 28, 28)
    for k in (1, 2, 3):                  # np.rot90 turns counter-clockwise, as rotate does
        expected = np.rot90(images, k, axes=(1, 2)).reshape(X.shape)
        np.testing.assert_allclose(corrupt.rotate(X, 90 * k), expected, atol=1e-5)
    # Four quarter turns come back; 30 degrees then -30 keeps most of the ink where it was.
    quarter = X
    for _ in range(4):
        quarter = corrupt.rotate(quarter, 90)
    np.testing.assert_allclose(quarter, X, atol=1e-5)
    back = corrupt.rotate(corrupt.rotate(X, 30), -30)
    assert np.corrcoef(back.ravel(), X.ravel())[0, 1] > 0.95


def test_rotation_is_bilinear_and_in_range(X):
    r = corrupt.rotate(X, 30)
    assert r.shape == X.shape and r.dtype == X.dtype and r.min() >= 0 and r.max() <= 1 + 1e-6
    assert not np.allclose(r, X)
    # A 3x3 image with one lit pixel in the middle: the centre stays put, and the top
    # middle pixel reads the point (row, col) = (1 - a, 1 + a), a = sin 45, so bilinear
    # weights give it (1 - a)^2 of the lit pixel; the corners read outside the lit one.
    one = np.zeros((1, 9), np.float64)
    one[0, 4] = 1
    r = corrupt.rotate(one, 45).reshape(3, 3)
    a = np.sqrt(0.5)
    assert r[1, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(r[[0, 1, 1, 2], [1, 0, 2, 1]], (1 - a) ** 2)
    np.testing.assert_allclose(r[[0, 0, 2, 2], [0, 2, 0, 2]], 0, atol=1e-15)


def test_two_flips_are_the_identity(X):
    f = corrupt.flip(X)
    assert not np.array_equal(f, X)
    np.testing.assert_array_equal(f.reshape(-1, 28, 28)[:, :, 0], X.reshape(-1, 28, 28)[:, :, -1])
    np.testing.assert_array_equal(corrupt.flip(f), X)


def test_shift_moves_pixels_and_fills_zeros():
    img = np.zeros((1, 16), np.float32)
    img[0, 5] = 1                                                # row 1, column 1 of a 4x4
    s = corrupt.shift(img, 2, 1).reshape(4, 4)
    assert s[2, 3] == 1 and s.sum() == 1
    np.testing.assert_array_equal(corrupt.shift(img, 0, 0), img)
    assert corrupt.shift(img, -2, 0).sum() == 0                  # moved off the image
    with pytest.raises(ValueError, match=r"dx must be a whole number of pixels in \[-3, 3\], got 4"):
        corrupt.shift(img, 4)


def test_bad_input_is_a_clear_error(X):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"std must be in \[0, 1\], got 1.5"):
        corrupt.gaussian(X, 1.5, rng)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\], got -0.1"):
        corrupt.masking(X, -0.1, rng)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\], got nan"):
        corrupt.salt_and_pepper(X, float("nan"), rng)
    with pytest.raises(ValueError, match=r"must be square.*780 pixels"):
        corrupt.rotate(np.zeros((2, 780), np.float32), 30)
    with pytest.raises(ValueError, match=r"\(N, side\*side\).*\(28, 28, 1\)"):
        corrupt.flip(np.zeros((28, 28, 1), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        corrupt.flip(np.zeros((2, 784), np.uint8))


def test_parse():
    c = corrupt.parse("gaussian:0.5")
    assert (c.kind, c.level, c.spec) == ("gaussian", 0.5, "gaussian:0.5")
    assert corrupt.parse("salt-and-pepper:0.1").kind == "salt_and_pepper"
    X = np.full((3, 4), 0.5)
    np.testing.assert_array_equal(corrupt.parse("masking:0.3")(X, np.random.default_rng(1)),
                                  corrupt.masking(X, 0.3, np.random.default_rng(1)))
    for bad, msg in (("gaussian", "not KIND:LEVEL"), ("gaussian:x", "not KIND:LEVEL"),
                     ("blur:0.3", "unknown noise 'blur'"), ("masking:2", r"in \[0, 1\], got 2")):
        with pytest.raises(ValueError, match=msg):
            corrupt.parse(bad)
