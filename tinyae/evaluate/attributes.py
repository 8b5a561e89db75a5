"""Latent arithmetic: a direction in the code space that adds an attribute, measured from pixels.

Measure an attribute on every image, take the codes of the images that have the most of it
and of those that have the least, and subtract their means:

    d = mean{z_i : a_i in the top q} - mean{z_i : a_i in the bottom q}
    x(t) = decode(encode(x) + t d)          t = 0: the reconstruction; t > 0: more of it

Two attributes from pixel statistics, with the ink I(r, c) as mass (x = c to the right,
y = -r upwards, bars the ink's centre):

    thickness = sum I / D                                the ink fraction
    slant     = sum I (x - xbar)(y - ybar) / sum I (y - ybar)^2
              the shear of the second moments: x grows by ``slant`` per row up (> 0: leans right)
"""
import math

import numpy as np

from ..train.threads import batched
from ..viz import plot


# --- attributes from pixels: (N, D) -> (N,) ------------------------------------------------
def thickness(X) -> np.ndarray:
    """The ink fraction, sum_d x_d / D: grey pixels count in part."""
    return np.mean(np.asarray(X, np.float64), axis=1)


def slant(X) -> np.ndarray:
    """The shear of the ink's second moments, mu_xy / mu_yy (> 0: the top leans right)."""
    X = np.asarray(X, np.float64)
    side = math.isqrt(X.shape[1])
    if side * side != X.shape[1]:
        raise ValueError(f"slant needs square images; {X.shape[1]} pixels are not a square")
    I = X.reshape(-1, side, side)                            # (N, rows, columns)
    y, x = -np.arange(side, dtype=np.float64), np.arange(side, dtype=np.float64)
    mass = I.sum(axis=(1, 2))                                # (N,)
    if np.any(mass <= 0):
        raise ValueError(f"{int(np.sum(mass <= 0)):,} images have no ink, so no slant; leave "
                         "blank images out")
    w = I / mass[:, None, None]
    dy = y[None, :] - np.einsum("nrc,r->n", w, y)[:, None]   # (N, rows)
    dx = x[None, :] - np.einsum("nrc,c->n", w, x)[:, None]   # (N, columns)
    mu_yy = np.einsum("nrc,nr->n", w, dy * dy)
    mu_xy = np.einsum("nrc,nr,nc->n", w, dy, dx)
    flat = mu_yy < 1e-9                  # one row of ink: zero, up to rounding (rows^2 units)
    if np.any(flat):
        raise ValueError(f"{int(np.sum(flat)):,} images have all their ink on one row, "
                         "so no slant; leave them out")
    return mu_xy / mu_yy


MEASURES = {"thickness": thickness, "slant": slant}


# --- the direction, and walking along it -------------------------------------------------------
def direction(Z, values, quantile=0.2, min_group=20) -> np.ndarray:
    """Mean code of the top ``quantile`` of images by ``values`` minus that of the bottom: (Z,).

    Each group holds floor(quantile N) images, at least ``min_group``: fewer, and the
    difference of the means is mostly noise.
    """
    Z, values = np.asarray(Z, np.float64), np.asarray(values, np.float64)
    if Z.ndim != 2 or values.shape != (len(Z),):
        raise ValueError(f"codes {Z.shape} and values {values.shape}: give (N, Z) codes and "
                         "one value per code")
    if not 0 < quantile <= 0.5:
        raise ValueError(f"the quantile must be in (0, 0.5] (e.g. 0.2: the top and bottom "
                         f"fifths), got {quantile!r}")
    k = int(quantile * len(Z))
    if k < min_group:
        raise ValueError(f"an attribute direction needs at least {min_group} images in each "
                         f"group, but the top and bottom {quantile:g} of {len(Z):,} images are "
                         f"{k} each; use at least {math.ceil(min_group / quantile):,} images "
                         "(or a larger quantile)")
    if not np.isfinite(values).all():
        raise ValueError("some attribute values are NaN or infinite; measure finite images")
    order = np.argsort(values, kind="stable")               # ascending: least first
    return Z[order[-k:]].mean(axis=0) - Z[order[:k]].mean(axis=0)


def attribute_direction(model, X, measure="thickness", quantile=0.2, min_group=20):
    """``direction`` of the model's codes of X, by a measure's name (``MEASURES``) or function."""
    if isinstance(measure, str):
        if measure not in MEASURES:
            raise ValueError(f"unknown attribute {measure!r}; choose one of "
                             f"{', '.join(MEASURES)} or pass a function (N, D) -> (N,)")
        measure = MEASURES[measure]
    return direction(batched(model.encode, np.asarray(X)), measure(X), quantile, min_group)


def walk(model, X, d, steps=(-1, -0.5, 0, 0.5, 1)) -> np.ndarray:
    """decode(encode(x) + t d) for each image and step t: (N, T, D)."""
    Z = np.atleast_2d(model.encode(np.atleast_2d(X))).astype(np.float64)    # (N, Z)
    t = np.asarray(steps, np.float64)
    codes = Z[:, None, :] + t[None, :, None] * np.asarray(d)[None, None, :]  # (N, T, Z)
    decoded = model.decode(codes.reshape(-1, Z.shape[1]).astype(model.dtype))
    return decoded.reshape(len(Z), len(t), -1)


def walk_figure(X, decoded, steps=(-1, -0.5, 0, 0.5, 1), path=None, title="", side=28):
    """Rows of: the image, then its decoded steps along the direction (column titles: t)."""
    X = np.atleast_2d(X)
    n, T = decoded.shape[:2]
    fig = plot._figure((T + 1) * 0.8, n * 0.8 + 0.5)
    axes = fig.subplots(n, T + 1, squeeze=False)
    for i in range(n):
        for j, img in enumerate([X[i], *decoded[i]]):
            ax = axes[i, j]
            ax.imshow(np.reshape(img, (side, side)), cmap="gray", vmin=0, vmax=1)
            ax.axis("off")
            if i == 0:
                ax.set_title("image" if j == 0 else f"t={steps[j - 1]:g}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return plot._save(fig, path)
