"""Figures, latent-space helpers and metrics."""
import numpy as np
import pytest
from matplotlib.figure import Figure

import tinyae as ta
from tinyae.evaluate.metrics import bce_per_image, knn_accuracy, mse_per_pixel
from tinyae.models.pca import PCA
from tinyae.train import EpochRecord, History
from tinyae.viz import plot
from tinyae.viz.latent import fit_gaussian, grid, latent_range, lerp, sample_gaussian, slerp


@pytest.fixture(scope="module")
def model():
    return ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))


def codes(rng, n=200, dim=2):
    labels = rng.integers(0, 10, n)
    return rng.standard_normal((n, dim)) + labels[:, None], labels


def test_latent_scatter_2d_uses_the_given_ranges(tmp_path, rng):
    Z, y = codes(rng)
    ranges = latent_range(Z)
    fig = plot.latent_scatter(Z, y, ranges=ranges, path=tmp_path / "s.png")
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and len(fig.axes) == 2                 # the plot and its colour bar
    np.testing.assert_allclose(ax.get_xlim(), ranges[0])
    np.testing.assert_allclose(ax.get_ylim(), ranges[1])
    assert ax.get_xlabel() == "z1" and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_latent_scatter_of_wide_codes_says_it_uses_pca(rng):
    Z, y = codes(rng, dim=5)
    ax = plot.latent_scatter(Z, y).axes[0]
    assert "first two principal components" in ax.get_title() and ax.get_xlabel() == "PC1"


def test_decoded_grid_is_drawn_in_z_units(model):
    ranges = np.array([[-3.0, 5.0], [-2.0, 1.0]])
    ax = plot.decoded_grid(model, ranges, n=5).axes[0]
    image = ax.get_images()[0]
    np.testing.assert_allclose(image.get_extent(), [-3, 5, -2, 1])
    assert image.get_array().shape == (5 * 28, 5 * 28)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z1", "z2")


def test_other_figures_save_pngs(tmp_path, model, rng):
    X = rng.random((4, 784)).astype(np.float32)
    h = History([EpochRecord(1, 0.1, 0.12, 1.0, 1e-3), EpochRecord(2, 0.05, 0.07, 1.0, 1e-3)])
    for name, fig in [("r", plot.reconstructions(X, model.reconstruct(X), path=tmp_path / "r.png")),
                      ("i", plot.image_strip(X, path=tmp_path / "i.png", labels=list("abcd"))),
                      ("g", plot.image_grid(X, 2, path=tmp_path / "g.png", row_labels=["x", "y"])),
                      ("l", plot.loss_curves(h, path=tmp_path / "l.png"))]:
        assert isinstance(fig, Figure) and (tmp_path / f"{name}.png").stat().st_size > 1000
    assert len(plot.loss_curves(h).axes[0].get_lines()) == 2


def test_lerp_and_slerp():
    z1, z2 = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = lerp(z1, z2, 5)
    np.testing.assert_allclose(path[[0, -1]], [z1, z2])
    np.testing.assert_allclose(path[2], (z1 + z2) / 2)
    np.testing.assert_allclose(slerp(z1, z2, 5)[[0, -1]], [z1, z2], atol=1e-12)
    arc = slerp(z1, np.array([0.0, 1.0]), 5)                              # unit vectors, 90 degrees
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), 1)            # stays on the circle
    np.testing.assert_allclose(np.diff(np.arctan2(arc[:, 1], arc[:, 0])), np.pi / 8)   # even steps
    np.testing.assert_allclose(slerp(z1, 3 * z1, 3), lerp(z1, 3 * z1, 3))  # parallel: falls back
    c = np.array([5.0, 5.0])                                              # the same arc, moved
    np.testing.assert_allclose(slerp(z1 + c, np.array([0.0, 1.0]) + c, 5, center=c), arc + c)


def test_grid_and_range(rng):
    g = grid((0, 1), (0, 2), 3)
    assert g.shape == (9, 2)
    np.testing.assert_allclose(g[0], [0, 2])                             # top-left first
    np.testing.assert_allclose(g[-1], [1, 0])
    Z = rng.standard_normal((1000, 2))
    r = latent_range(Z, margin=0)
    np.testing.assert_allclose(r[:, 0], np.percentile(Z, 1, axis=0))


def test_gaussian_fit_and_sampling(rng):
    Z = rng.multivariate_normal([1, -2], [[2, 0.5], [0.5, 1]], size=20000)
    mu, cov = fit_gaussian(Z)
    np.testing.assert_allclose(mu, [1, -2], atol=0.05)
    np.testing.assert_allclose(cov, [[2, 0.5], [0.5, 1]], atol=0.08)
    assert sample_gaussian(mu, cov, 7, rng).shape == (7, 2)


def test_pca_is_exact_on_rank_two_data(rng):
    X = rng.standard_normal((100, 2)) @ rng.standard_normal((2, 6)) + 3
    pca = PCA(2).fit(X)
    np.testing.assert_allclose(pca.decode(pca.encode(X)), X, atol=1e-10)
    assert mse_per_pixel(X, pca.decode(pca.encode(X))) < 1e-20


def test_knn_accuracy():
    Z_train = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], float)
    y_train = np.array([0, 0, 0, 1, 1, 1])
    Z_test = np.array([[0.5, 0.5], [10.5, 10.5]])
    assert knn_accuracy(Z_train, y_train, Z_test, np.array([0, 1]), k=3) == 1.0
    assert knn_accuracy(Z_train, y_train, Z_test, np.array([1, 1]), k=3) == 0.5


def test_bce_per_image_sums_pixels():
    X = np.array([[1.0, 0.0]])
    assert bce_per_image(X, np.array([[0.5, 0.5]])) == pytest.approx(2 * np.log(2))


def test_pca_from_the_covariance_matches_the_svd(rng):
    """The cheap fit (eigenvectors of X_c^T X_c, in slices) gives the SVD's components."""
    X = (rng.standard_normal((3000, 12)) * np.linspace(3, 0.1, 12)) @ rng.standard_normal((12, 12))
    for data in (X, X.astype(np.float32)):
        pca = PCA(3).fit(data, chunk=700)
        _, s, Vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
        tol = 1e-8 if data.dtype == np.float64 else 1e-4
        np.testing.assert_allclose(np.abs(pca.components.T @ Vt[:3].T), np.eye(3), atol=tol)
        np.testing.assert_allclose(pca.variances, s[:3] ** 2 / (len(X) - 1), rtol=tol)
        assert np.all(pca.components[np.abs(pca.components).argmax(axis=0), range(3)] > 0)
    pixels = rng.integers(0, 256, (500, 6)).astype(np.uint8)            # integer data too
    np.testing.assert_allclose(PCA(2).fit(pixels).mean, pixels.mean(axis=0))
    np.testing.assert_allclose(PCA(2).fit(pixels).variances,
                               PCA(2).fit(pixels.astype(float)).variances)


def _knn_brute_force(Z_train, y_train, Z_test, y_test, k):
    d = ((Z_test[:, None, :] - Z_train[None, :, :]) ** 2).sum(axis=2)
    labels = y_train[np.argsort(d, axis=1)[:, :k]]
    votes = np.stack([(labels == c).sum(axis=1) for c in range(10)], axis=1)
    return float(np.mean(votes.argmax(axis=1) == y_test))


@pytest.mark.parametrize("width", [1, 2, 5])
def test_knn_window_search_is_exact(rng, width):
    """Dense clusters, sparse outliers (the window falls short there) and queries outside
    the training range: the windowed search must agree with comparing every pair."""
    centres = rng.normal(0, 5, (10, width))
    y_train = rng.integers(0, 10, 3000)
    Z_train = centres[y_train] + rng.normal(0, 1.5, (3000, width))
    Z_train[:40] *= 6                                             # outliers
    y_test = rng.integers(0, 10, 800)
    Z_test = centres[y_test] + rng.normal(0, 2.5, (800, width))
    Z_test[:30] *= 8
    for window in (4, 16, 256, 5000):
        got = knn_accuracy(Z_train, y_train, Z_test, y_test, k=5, window=window)
        assert got == _knn_brute_force(Z_train, y_train, Z_test, y_test, 5), window
