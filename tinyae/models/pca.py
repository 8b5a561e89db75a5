"""PCA, the linear autoencoder: the baseline every tinyae model is measured against.

With a k-wide code and no nonlinearity, the best encoder and decoder under squared error
span the top-k principal subspace (Baldi & Hornik 1989): PCA is what a linear autoencoder
learns, found in closed form.
"""
import numpy as np


class PCA:
    """Principal component analysis: the best *linear* k-dimensional code.

    The components are the top-k eigenvectors of the covariance C = X_c^T X_c / (N - 1)
    of the centred data X_c = X - mu; a (D, D) eigenproblem (784 x 784 for MNIST)
    instead of an SVD of the whole (N, D) data, so fitting 60,000 images takes a second.

    encode: Z = (X - mu) V_k      decode: X' = Z V_k^T + mu
    """

    def __init__(self, k=2):
        self.k = k

    def fit(self, X, chunk=8192):
        X = np.asarray(X)
        if not np.issubdtype(X.dtype, np.floating):           # e.g. uint8 pixels: no wrap-around
            X = X.astype(np.float64)
        n, width = X.shape
        self.mean = X.mean(axis=0, dtype=np.float64)
        C = np.zeros((width, width))
        for i in range(0, n, chunk):              # X_c^T X_c in slices: no (N, D) float64 copy
            Xc = X[i:i + chunk] - self.mean.astype(X.dtype)
            C += Xc.T @ Xc
        C /= max(n - 1, 1)
        eigenvalues, V = np.linalg.eigh(C)        # ascending order
        V = V[:, ::-1][:, :self.k]                # (D, k), largest variance first
        # An eigenvector's sign is arbitrary: make each one's largest entry positive.
        V *= np.sign(V[np.abs(V).argmax(axis=0), np.arange(V.shape[1])])
        self.components, self.variances = V, eigenvalues[::-1][:self.k]
        return self

    def encode(self, X):
        return (np.asarray(X, np.float64) - self.mean) @ self.components

    def decode(self, Z):
        return Z @ self.components.T + self.mean

    def first(self, k):
        """The PCA with only the first ``k`` of these components (no refitting)."""
        pca = PCA(k)
        pca.mean, pca.components, pca.variances = self.mean, self.components[:, :k], self.variances[:k]
        return pca
