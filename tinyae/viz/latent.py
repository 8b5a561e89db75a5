"""Walking the latent space: interpolation, grids and sampling.

    lerp:   Z_t = Z_1 (1 - t) + Z_2 t
    slerp:  Z_t = sin((1 - t) w) / sin(w) Z_1 + sin(t w) / sin(w) Z_2,  cos w = <Z_1, Z_2> / |Z_1||Z_2|
            (about a centre c: the same with Z - c, then + c)
"""
import numpy as np


def lerp(z1, z2, steps=10):
    """``steps`` points on the segment from z1 to z2 (both ends included): (steps, Z)."""
    t = np.linspace(0, 1, steps)[:, None]
    return np.asarray(z1) * (1 - t) + np.asarray(z2) * t


def slerp(z1, z2, steps=10, center=None):
    """Spherical interpolation: follows the arc between z1 and z2 around ``center``.

    ``center`` defaults to the origin, right for codes drawn from N(0, I);
    for an autoencoder's codes pass their mean. The distance from the centre
    changes smoothly from |z1 - c| to |z2 - c|; for (anti)parallel vectors,
    where the arc is undefined, it falls back to ``lerp``.
    """
    z1, z2 = np.asarray(z1, np.float64), np.asarray(z2, np.float64)
    c = np.zeros_like(z1) if center is None else np.asarray(center, np.float64)
    a, b = z1 - c, z2 - c
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    w = np.arccos(np.clip(cos, -1, 1))
    if np.sin(w) < 1e-6:
        return lerp(z1, z2, steps)
    t = np.linspace(0, 1, steps)[:, None]
    return c + (np.sin((1 - t) * w) * a + np.sin(t * w) * b) / np.sin(w)


def latent_range(Z, lo=1, hi=99, margin=0.05):
    """Per-axis (low, high) of the codes from percentiles, widened by ``margin``: (Z, 2)."""
    a, b = np.percentile(Z, [lo, hi], axis=0)
    pad = (b - a) * margin
    return np.stack([a - pad, b + pad], axis=1)


def grid(x_range, y_range, n=20):
    """An n x n grid of 2-D latent points, rows from top (high y) to bottom: (n*n, 2)."""
    xs = np.linspace(*x_range, n)
    ys = np.linspace(*y_range, n)[::-1]
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


def fit_gaussian(Z):
    """Mean and covariance of the codes: the simplest model of the latent distribution."""
    Z = np.asarray(Z, np.float64)
    if len(Z) < 2:          # a covariance needs two codes: one gives 0/0 (NaN), then no samples
        raise ValueError(f"a Gaussian is fitted to the codes of at least 2 images; got {len(Z)}: "
                         "use more images (a larger --limit)")
    return Z.mean(axis=0), np.atleast_2d(np.cov(Z, rowvar=False))


def sample_gaussian(mean, cov, n, rng):
    """n codes drawn from N(mean, cov): (n, Z)."""
    return rng.multivariate_normal(mean, cov, size=n)
