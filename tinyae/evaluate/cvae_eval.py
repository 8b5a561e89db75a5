"""How well a conditional VAE draws the class it is asked for, and its figures.

    sample accuracy of digit d = the share of ``model.sample(n, d)`` that a
                                 classifier, which never saw the model, calls d

The classifier is a 5-nearest-neighbour vote in pixel space over the training
images: no training of its own, nothing shared with the model, and about 96% right
on MNIST's real test digits (``evaluate_cvae`` reports it as ``pixel_knn_test_accuracy``).
A sample it misreads is either a bad drawing or a digit in a style the
training set lacks; both count against the model.
"""
import numpy as np

from ..models.cvae import with_labels
from ..viz import plot
from .metrics import batched, knn_accuracy, mse_per_pixel
from .vae_eval import elbo_terms


class PixelKNN:
    """k-NN in pixel space: each image takes the majority label of its k nearest references.

    Distances by one product per chunk: |a - b|^2 = |a|^2 - 2 a.b + |b|^2.
    """

    def __init__(self, X_ref, y_ref, k=5, chunk=256):
        self.X = np.asarray(X_ref, np.float32)
        self.y, self.k, self.chunk = np.asarray(y_ref), int(k), int(chunk)
        self.sq = np.einsum("ij,ij->i", self.X, self.X)

    def __call__(self, X):
        """Predicted labels of X (N, D): (N,)."""
        X, out = np.asarray(X, np.float32), []
        n_classes = int(self.y.max()) + 1
        for i in range(0, len(X), self.chunk):
            q = X[i:i + self.chunk]
            d = self.sq[None, :] - 2 * q @ self.X.T                # |q|^2 is the same per row
            near = np.argpartition(d, self.k, axis=1)[:, :self.k]   # (c, k) nearest references
            votes = np.zeros((len(q), n_classes), int)
            np.add.at(votes, (np.arange(len(q))[:, None], self.y[near]), 1)
            out.append(votes.argmax(axis=1))                        # ties: the smaller label
        return np.concatenate(out) if out else np.zeros(0, int)


def sample_accuracy(model, classify, n=100, rng=None):
    """{digit: the share of n samples of that digit that ``classify`` labels as it}."""
    rng = np.random.default_rng(0) if rng is None else rng
    return {d: float(np.mean(classify(model.sample(n, d, rng)) == d))
            for d in range(model.n_classes)}


def evaluate_cvae(model, X_train, y_train, X_test, y_test, k=5, samples=100, seed=0,
                  threads=None):
    """The metrics of ``tinyae train --model cvae`` (rows without labels: they are added here).

    test_neg_elbo_per_image, its two terms, the MSE of decode(mu, y), the k-NN
    accuracy of the codes mu (low is the aim: the label, not the code, carries
    the class), and each digit's sample accuracy under ``PixelKNN``. ``threads``: BLAS
    threads for the codes and reconstructions (see ``batched``).
    """
    K = model.n_classes
    XY, XYt = with_labels(X_train, y_train, K), with_labels(X_test, y_test, K)
    terms = elbo_terms(model, XYt, np.random.default_rng(seed))
    mu_train = batched(model.encode, XY, threads=threads)
    mu_test = batched(model.encode, XYt, threads=threads)
    classify = PixelKNN(X_train, y_train, k)
    per_digit = sample_accuracy(model, classify, samples, np.random.default_rng(seed))
    held = slice(0, min(len(X_test), 2000))                     # the classifier's own score
    return {"test_neg_elbo_per_image": float(terms["neg_elbo"].mean()),
            "test_reconstruction_per_image": float(terms["reconstruction"].mean()),
            "test_kl_per_image": float(terms["kl"].mean()),
            "test_mse_per_pixel": mse_per_pixel(X_test, batched(model.reconstruct, XYt,
                                                                threads=threads)),
            f"knn{k}_accuracy_latent": knn_accuracy(mu_train, y_train, mu_test, y_test, k),
            "sample_accuracy_per_digit": {str(d): a for d, a in per_digit.items()},
            "sample_accuracy_min": min(per_digit.values()),
            "sample_accuracy_mean": float(np.mean(list(per_digit.values()))),
            "pixel_knn_test_accuracy": float(np.mean(classify(X_test[held]) == y_test[held])),
            "n_train": int(len(X_train)), "n_test": int(len(X_test))}


def digit_samples_figure(model, per_digit=10, rng=None, path=None):
    """Row d: ``per_digit`` samples of digit d (z ~ N(0, I), decoded with the label d)."""
    rng = np.random.default_rng(0) if rng is None else rng
    images = np.vstack([model.sample(per_digit, d, rng) for d in range(model.n_classes)])
    return plot.image_grid(images, per_digit, path=path,
                           title="conditional VAE: row d holds samples drawn with label d")


def style_figure(model, X, y, rows=8, path=None):
    """Style held, class changed: each row is one test image, then its code mu decoded with
    every label in turn (columns 0 to K-1)."""
    X, y = X[:rows], np.asarray(y[:rows])
    mu = model.encode(with_labels(X, y, model.n_classes))                  # (rows, Z)
    K = model.n_classes
    cells = [np.vstack([X[r], model.decode(np.repeat(mu[r:r + 1], K, 0), np.arange(K))])
             for r in range(len(X))]
    return plot.image_grid(np.vstack(cells), K + 1, path=path,
                           title="each row: a test image, then its code decoded as 0, 1, ..., "
                                 f"{K - 1} (the code holds the style, the label the class)")
