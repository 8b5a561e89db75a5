"""Numbers that say how good an autoencoder is, and the PCA baseline it must beat."""
import numpy as np


def mse_per_pixel(X, X_rec) -> float:
    """mean((X - X')^2) over images and pixels."""
    return float(np.mean((np.asarray(X, np.float64) - X_rec) ** 2))


def bce_per_image(X, X_rec, eps=1e-7) -> float:
    """Binary cross-entropy summed over the pixels of an image, averaged over images."""
    p = np.clip(np.asarray(X_rec, np.float64), eps, 1 - eps)
    X = np.asarray(X, np.float64)
    return float(-np.mean(np.sum(X * np.log(p) + (1 - X) * np.log1p(-p), axis=1)))


class PCA:
    """Principal component analysis by SVD: the best *linear* k-dimensional code.

    encode: Z = (X - mu) V_k      decode: X' = Z V_k^T + mu
    """

    def __init__(self, k=2):
        self.k = k

    def fit(self, X):
        X = np.asarray(X, np.float64)
        self.mean = X.mean(axis=0)
        _, _, Vt = np.linalg.svd(X - self.mean, full_matrices=False)
        self.components = Vt[:self.k].T                   # (D, k)
        return self

    def encode(self, X):
        return (np.asarray(X, np.float64) - self.mean) @ self.components

    def decode(self, Z):
        return Z @ self.components.T + self.mean


def knn_accuracy(Z, labels, k=5, chunk=1000) -> float:
    """Leave-one-out k-nearest-neighbour accuracy of codes Z (majority vote of labels).

    How well digits separate in the latent space: each code is classified by
    its k nearest other codes. Distances are computed ``chunk`` rows at a time.
    """
    Z = np.asarray(Z, np.float64)
    labels = np.asarray(labels)
    sq = np.sum(Z * Z, axis=1)
    n_classes = int(labels.max()) + 1
    correct = 0
    for i in range(0, len(Z), chunk):
        d = sq[i:i + chunk, None] - 2 * Z[i:i + chunk] @ Z.T + sq[None, :]      # (c, N)
        d[np.arange(d.shape[0]), np.arange(i, i + d.shape[0])] = np.inf          # not itself
        nearest = np.argpartition(d, k, axis=1)[:, :k]                          # (c, k)
        votes = np.zeros((d.shape[0], n_classes), np.int64)
        np.add.at(votes, (np.arange(d.shape[0])[:, None], labels[nearest]), 1)
        correct += int(np.sum(votes.argmax(axis=1) == labels[i:i + chunk]))
    return correct / len(Z)


def batched(fn, X, batch_size=2048):
    """fn applied to X in batches, results stacked: keeps peak memory small."""
    return np.concatenate([fn(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


def evaluate_autoencoder(model, X_train, X_test, labels_test, k=5):
    """The metrics of ``tinyae train``: model against PCA-2 on the same data."""
    Z = batched(model.encode, X_test)
    X_rec = batched(model.decode, Z)
    pca = PCA(2).fit(X_train)
    Zp = pca.encode(X_test)
    X_pca = pca.decode(Zp)
    return {
        "test_mse_per_pixel": mse_per_pixel(X_test, X_rec),
        "test_bce_per_image": bce_per_image(X_test, X_rec),
        "pca2_test_mse_per_pixel": mse_per_pixel(X_test, X_pca),
        f"knn{k}_accuracy_latent": knn_accuracy(Z[:, :2] if Z.shape[1] > 2 else Z, labels_test, k),
        f"knn{k}_accuracy_pca2": knn_accuracy(Zp, labels_test, k),
        "n_test": int(len(X_test)),
    }
