"""Numbers that say how good an autoencoder is, against the PCA baseline it must beat."""
import numpy as np

from ..models.pca import PCA
from ..train.threads import batched


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


def knn_accuracy(Z_train, y_train, Z_test, y_test, k=5, window=None) -> float:
    """Accuracy of a k-nearest-neighbour vote: each test code takes the majority
    label of its k nearest training codes (Euclidean). It measures how well the
    digits separate in the latent space.

    Exact, and fast for low-dimensional codes: with the training codes sorted by
    their first coordinate x, each query first looks only at the ``window`` codes on
    either side of its place in that order. If the k-th nearest of those is at
    distance r and the window reaches beyond x_q - r and x_q + r, no code outside
    it can be nearer (|x - x_q| alone exceeds r). The few queries where the window
    falls short are compared with every training code. The default window,
    2 sqrt(k N), is about twice what evenly spread 2-D codes need.
    """
    Z_train, Z_test = np.asarray(Z_train, np.float64), np.asarray(Z_test, np.float64)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    order = np.argsort(Z_train[:, 0], kind="stable")
    Zs, ys = Z_train[order], y_train[order]                   # sorted by x
    window = window or int(2 * np.sqrt(k * len(Zs)))
    n, w = len(Zs), min(2 * window, len(Zs))                  # n codes, windows of w
    chunk = max(1, 2**22 // (w * Z_train.shape[1]))           # queries per slice: ~32 MiB
    labels = np.empty((len(Z_test), k), y_train.dtype)        # the k nearest codes' labels
    exact = np.empty(len(Z_test), bool)
    for i in range(0, len(Z_test), chunk):
        q = Z_test[i:i + chunk]                                               # (c, Z)
        lo = np.clip(np.searchsorted(Zs[:, 0], q[:, 0]) - window, 0, n - w)  # window starts
        idx = lo[:, None] + np.arange(w)                                      # (c, w)
        d = np.sum((Zs[idx] - q[:, None, :]) ** 2, axis=2)                   # squared distances
        near = np.argpartition(d, k - 1, axis=1)[:, :k]                       # (c, k)
        r2 = np.take_along_axis(d, near, axis=1).max(axis=1)
        exact[i:i + len(q)] = (((lo == 0) | ((q[:, 0] - Zs[lo, 0]) ** 2 >= r2))
                 & ((lo + w == n) | ((Zs[lo + w - 1, 0] - q[:, 0]) ** 2 >= r2)))
        labels[i:i + len(q)] = ys[np.take_along_axis(idx, near, axis=1)]
    redo = np.nonzero(~exact)[0]                              # where the window was too narrow
    labels[redo] = y_train[_nearest(Z_train, Z_test[redo], k)]
    votes = np.zeros((len(Z_test), n_classes), np.int64)
    np.add.at(votes, (np.arange(len(Z_test))[:, None], labels), 1)
    return float(np.mean(votes.argmax(axis=1) == y_test))


def _nearest(Z, Q, k, chunk=500):
    """(M, k) indices of the rows of Z nearest to each row of Q, comparing every pair."""
    sq = np.sum(Z * Z, axis=1)
    out = np.empty((len(Q), k), np.int64)
    for i in range(0, len(Q), chunk):
        q = Q[i:i + chunk]
        d = np.sum(q * q, axis=1)[:, None] - 2 * q @ Z.T + sq[None, :]      # |q - z|^2, (c, N)
        out[i:i + chunk] = np.argpartition(d, k - 1, axis=1)[:, :k]
    return out


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
