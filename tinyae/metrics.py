"""Numbers that say how good an autoencoder is, and the PCA baseline it must beat."""
import numpy as np


def mse_per_pixel(X, X_rec) -> float:
    """mean((X - X')^2) over images and pixels."""
    return float(np.mean((np.asarray(X, np.float64) - X_rec) ** 2))


def sq_error_per_image(X, X_rec) -> float:
    """sum over pixels of (x - x')^2, averaged over images (Hinton & Salakhutdinov 2006, Fig. 2B)."""
    diff = np.asarray(X, np.float64) - X_rec
    return float(np.mean(np.sum(diff * diff, axis=1)))


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
        """The mean and the top-k eigenvectors of the scatter matrix (X - mu)^T (X - mu).

        These are the right singular vectors of X - mu; for N >> D the D x D
        eigenproblem is far cheaper than the SVD of the N x D matrix.
        """
        X = np.asarray(X, np.float64)
        self.mean = X.mean(axis=0)
        Xc = X - self.mean
        _, vectors = np.linalg.eigh(Xc.T @ Xc)              # eigenvalues in ascending order
        self.components = vectors[:, ::-1][:, :self.k]      # (D, k), largest first
        return self

    def encode(self, X):
        return (np.asarray(X, np.float64) - self.mean) @ self.components

    def decode(self, Z):
        return Z @ self.components.T + self.mean

    def first(self, k):
        """The PCA with only the first ``k`` of these components (no refitting)."""
        pca = PCA(k)
        pca.mean, pca.components = self.mean, self.components[:, :k]
        return pca


def knn_accuracy(Z_train, y_train, Z_test, y_test, k=5, chunk=500) -> float:
    """Accuracy of a k-nearest-neighbour vote: each test code takes the majority
    label of its k nearest training codes. It measures how well the digits
    separate in the latent space. Distances are computed ``chunk`` rows at a time.
    """
    Z_train, Z_test = np.asarray(Z_train, np.float64), np.asarray(Z_test, np.float64)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    sq = np.sum(Z_train * Z_train, axis=1)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    correct = 0
    for i in range(0, len(Z_test), chunk):
        q = Z_test[i:i + chunk]
        d = np.sum(q * q, axis=1)[:, None] - 2 * q @ Z_train.T + sq[None, :]     # (c, N_train)
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]                        # (c, k)
        votes = np.zeros((len(q), n_classes), np.int64)
        np.add.at(votes, (np.arange(len(q))[:, None], y_train[nearest]), 1)
        correct += int(np.sum(votes.argmax(axis=1) == y_test[i:i + chunk]))
    return correct / len(Z_test)


def batched(fn, X, batch_size=2048, threads=None):
    """fn applied to X in batches, results stacked: keeps peak memory small.

    BLAS threads as in ``fit``: ``threads`` fixed, or "auto" (the default,
    or ``TINYAE_THREADS``) measured on the first batches (``tinyae.threads``).
    """
    from .threads import blas_threads
    with blas_threads(threads, probe_steps=1, every=10**9) as chooser:
        return np.concatenate([chooser.run(lambda xb=X[i:i + batch_size]: fn(xb), min(batch_size, len(X) - i))
                               for i in range(0, len(X), batch_size)])


def evaluate_autoencoder(model, X_train, y_train, X_test, y_test, k=5, threads=None):
    """The metrics of ``tinyae train``: the model against PCA-2 on the same data.

    k-NN accuracies classify the test codes by their nearest training codes.
    ``threads``: BLAS threads for encoding and decoding (see ``batched``).
    """
    Z_train = batched(model.encode, X_train, threads=threads)
    Z_test = batched(model.encode, X_test, threads=threads)
    pca30 = PCA(min(30, *np.shape(X_train))).fit(X_train)     # one fit serves both baselines
    pca = pca30.first(2)
    P_train, P_test = pca.encode(X_train), pca.encode(X_test)
    X_rec = batched(model.decode, Z_test, threads=threads)
    return {
        "test_mse_per_pixel": mse_per_pixel(X_test, X_rec),
        "test_sq_error_per_image": sq_error_per_image(X_test, X_rec),
        "pca30_test_sq_error_per_image": sq_error_per_image(X_test,
                                                            pca30.decode(pca30.encode(X_test))),
        "test_bce_per_image": bce_per_image(X_test, X_rec),
        "pca2_test_mse_per_pixel": mse_per_pixel(X_test, pca.decode(P_test)),
        f"knn{k}_accuracy_latent": knn_accuracy(Z_train, y_train, Z_test, y_test, k),
        f"knn{k}_accuracy_pca2": knn_accuracy(P_train, y_train, P_test, y_test, k),
        "n_train": int(len(X_train)),
        "n_test": int(len(X_test)),
    }
