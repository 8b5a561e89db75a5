"""Latent arithmetic: attributes measured from pixels, their directions, decoded walks."""
import numpy as np
import pytest

import tinyae as ta
from tinyae.data import load_dataset
from tinyae.evaluate import attributes as at


def bar(shear, rows=range(5, 21), side=28):
    """A one-pixel line through the centre whose column moves ``shear`` per row up."""
    img = np.zeros((side, side))
    for r in rows:
        img[r, int(round(14 + shear * (14 - r)))] = 1.0
    return img.reshape(1, -1)


# --- the measures -------------------------------------------------------------------------
def test_slant_is_the_shear_of_the_ink():
    assert at.slant(bar(1.0)) == pytest.approx([1.0])        # top to the right
    assert at.slant(bar(-1.0)) == pytest.approx([-1.0])
    assert at.slant(bar(0.0)) == pytest.approx([0.0])         # upright
    assert at.slant(bar(0.5, rows=range(4, 25, 2))) == pytest.approx([0.5])
    img = bar(1.0).reshape(28, 28)
    moved = np.roll(np.roll(img, 3, axis=0), -4, axis=1) * 0.3    # elsewhere, fainter
    assert at.slant(moved.reshape(1, -1)) == pytest.approx([1.0])


def test_thickness_is_the_ink_fraction():
    half = np.r_[np.ones(392), np.zeros(392)]
    grey = np.full(784, 0.25)
    assert at.thickness(np.stack([half, grey])).tolist() == [0.5, 0.25]


@pytest.mark.parametrize("X, msg", [
    (np.zeros((2, 784)), "2 images have no ink, so no slant"),
    (np.r_[np.zeros(28 * 10), np.ones(28), np.zeros(28 * 17)][None], "all their ink on one row"),
    (np.ones((1, 780)), "780 pixels are not a square"),
])
def test_slant_bad_input(X, msg):
    with pytest.raises(ValueError, match=msg):
        at.slant(X)


# --- the direction -----------------------------------------------------------------------
def test_direction_is_the_difference_of_the_group_means(rng):
    values = rng.permutation(100).astype(float)
    Z = rng.standard_normal((100, 3))
    top, bottom = values >= 80, values < 20
    d = at.direction(Z, values, quantile=0.2, min_group=20)
    assert np.allclose(d, Z[top].mean(axis=0) - Z[bottom].mean(axis=0))


def test_direction_finds_the_axis_the_attribute_lives_on(rng):
    values = rng.uniform(0, 1, 500)
    Z = np.column_stack([rng.standard_normal(500), 3 * values, rng.standard_normal(500)])
    d = at.direction(Z, values)
    assert d[1] > 0 and abs(d[1]) / np.linalg.norm(d) > 0.95


@pytest.mark.parametrize("n, quantile, kwargs, msg", [
    (99, 0.2, {}, r"at least 20 images in each group, but the top and bottom 0.2 of 99 images "
                  r"are 19 each; use at least 100 images"),
    (40, 0.5, {"min_group": 25}, r"at least 25 images in each group.*are 20 each; use at least "
                                 r"50 images"),
    (100, 0.6, {}, r"quantile must be in \(0, 0.5\]"),
    (100, 0.0, {}, r"quantile must be in \(0, 0.5\]"),
])
def test_direction_bad_input(n, quantile, kwargs, msg, rng):
    with pytest.raises(ValueError, match=msg):
        at.direction(rng.standard_normal((n, 2)), rng.random(n), quantile, **kwargs)


def test_direction_shapes_must_match(rng):
    with pytest.raises(ValueError, match=r"one value per code"):
        at.direction(rng.standard_normal((100, 2)), rng.random(99))
    with pytest.raises(ValueError, match=r"unknown attribute 'boldness'; choose one of "
                                         r"thickness, slant"):
        at.attribute_direction(ta.dense_autoencoder((784, 8, 2)), np.ones((100, 784)), "boldness")


# --- a trained model: decoded steps along a direction have more of the attribute ----------------
@pytest.fixture(scope="module")
def trained():
    X, _, _ = load_dataset("builtin", "train", 1200, progress=False)
    Xt, _, _ = load_dataset("builtin", "test", 100, progress=False)
    model = ta.dense_autoencoder((784, 64, 8), rng=np.random.default_rng(0))
    ta.train.fit(model, X, epochs=5, batch_size=32, progress=False)
    return model, X, Xt


@pytest.mark.parametrize("name", ["thickness", "slant"])
def test_decoded_steps_along_a_direction_have_more_of_it(name, trained):
    model, X, Xt = trained
    d = at.attribute_direction(model, X, name)
    steps = (-1, -0.5, 0, 0.5, 1)
    decoded = at.walk(model, Xt, d, steps)                   # (100, 5, 784)
    measured = np.array([at.MEASURES[name](decoded[:, j]) for j in range(len(steps))])  # (5, 100)
    assert np.all(np.diff(measured.mean(axis=1)) > 0)        # rises step by step, on average
    assert np.mean(measured[-1] > measured[0]) > 0.8         # and image by image (0.9 and 1.0)


def test_walk_at_zero_is_the_reconstruction_and_the_figure(trained, tmp_path):
    model, X, Xt = trained
    d = at.attribute_direction(model, X, "thickness")
    decoded = at.walk(model, Xt[:3], d, steps=(0, 2))
    assert decoded.shape == (3, 2, 784)
    assert np.allclose(decoded[:, 0], model.reconstruct(Xt[:3]), atol=1e-6)
    fig = at.walk_figure(Xt[:3], decoded, steps=(0, 2), path=tmp_path / "w.png", title="thicker")
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "t=0", "t=2"]
    assert len(fig.axes) == 9 and (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"
