"""Figures with matplotlib: each function returns a Figure and, given ``path``, saves a PNG.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so they work
headless and in notebooks alike.
"""
import numpy as np

from .io import atomic_write
from .latent import grid, latent_range


def _figure(w, h):
    from matplotlib.figure import Figure
    return Figure(figsize=(w, h), layout="constrained")


def _save(fig, path, dpi=100):
    if path is not None:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    return fig


def tile(images, ncols, side=28, pad=1):
    """Images (N, side*side) laid out as one (rows*side, ncols*side) canvas."""
    images = np.asarray(images).reshape(-1, side, side)
    nrows = int(np.ceil(len(images) / ncols))
    canvas = np.ones((nrows * (side + pad) - pad, ncols * (side + pad) - pad))
    for k, img in enumerate(images):
        r, c = divmod(k, ncols)
        canvas[r * (side + pad):r * (side + pad) + side, c * (side + pad):c * (side + pad) + side] = img
    return canvas


def reconstructions(X, X_rec, n=10, path=None, title="originals (top) and reconstructions (bottom)"):
    """Originals over their reconstructions, ``n`` of each."""
    n = min(n, len(X))
    fig = _figure(n * 0.8, 2.0)
    axes = fig.subplots(2, n, squeeze=False)
    for k in range(n):
        for row, img in ((0, X[k]), (1, X_rec[k])):
            axes[row, k].imshow(np.reshape(img, (28, 28)), cmap="gray", vmin=0, vmax=1)
            axes[row, k].axis("off")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _two_d(Z):
    """The first two coordinates, or the first two principal components when Z > 2."""
    Z = np.asarray(Z, np.float64)
    if Z.shape[1] == 1:                                  # a 1-D code: spread it along z1 only
        return np.column_stack([Z[:, 0], np.zeros(len(Z))]), ("z1", ""), " (1-D codes)"
    if Z.shape[1] == 2:
        return Z, ("z1", "z2"), ""
    from .metrics import PCA
    return PCA(2).fit(Z).encode(Z), ("PC1", "PC2"), f" ({Z.shape[1]}-D codes: first two principal components)"


def latent_scatter(Z, labels, path=None, title="latent codes of the test set", ranges=None):
    """The codes coloured by digit, with a colour bar. ``ranges``: ((x0, x1), (y0, y1))."""
    Z2, (xl, yl), note = _two_d(Z)
    fig = _figure(6.0, 5.0)
    ax = fig.subplots()
    sc = ax.scatter(Z2[:, 0], Z2[:, 1], c=labels, cmap="tab10", s=2, alpha=0.6,
                    vmin=-0.5, vmax=9.5, rasterized=True)
    bar = fig.colorbar(sc, ax=ax, ticks=range(10))
    bar.set_label("digit")
    percentiles = latent_range(Z2)
    r = percentiles if ranges is None else np.asarray(ranges, np.float64)
    ax.set_xlim(*r[0])
    ax.set_ylim(*r[1])
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    outside = int(np.sum(np.any((Z2 < r[:, 0]) | (Z2 > r[:, 1]), axis=1)))
    if outside:             # the axes span percentiles: say what falls off them
        why = ("they span the 1st-99th percentiles, plus a margin" if np.allclose(r, percentiles)
               else "the ranges asked for")
        note += f"\n{outside:,} of {len(Z2):,} codes lie outside the axes ({why})"
    ax.set_title(title + note, fontsize=10)
    return _save(fig, path)


def decoded_grid(model, ranges, n=20, path=None, title="decoded latent grid"):
    """Decode an n x n grid spanning ``ranges`` ((x0, x1), (y0, y1)); axes in z units.

    Pass the scatter's ranges (``latent_range(Z)``) so both are on the same scale.
    """
    (x0, x1), (y0, y1) = ranges
    # Decode at the centre of each of the n x n cells, so the picture spans the ranges exactly.
    hx, hy = (x1 - x0) / n / 2, (y1 - y0) / n / 2
    images = model.decode(grid((x0 + hx, x1 - hx), (y0 + hy, y1 - hy), n).astype(model.dtype))
    fig = _figure(6.0, 6.0)
    ax = fig.subplots()
    ax.imshow(tile(images, n, pad=0), cmap="gray", vmin=0, vmax=1,
              extent=(x0, x1, y0, y1), aspect="auto")
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def image_grid(images, ncols=None, path=None, title="", row_labels=None):
    """Images (N, 784) in a grid of ``ncols`` columns (default: about square)."""
    images = np.asarray(images)
    ncols = ncols or int(np.ceil(np.sqrt(len(images))))
    nrows = int(np.ceil(len(images) / ncols))
    fig = _figure(max(2.5, ncols * 0.6 + (1.0 if row_labels else 0)), max(1.5, nrows * 0.6 + 0.4))
    ax = fig.subplots()
    ax.imshow(tile(images, ncols), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    if row_labels:
        ax.set_yticks(np.arange(nrows) * 29 + 14, row_labels)
    else:
        ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def image_strip(images, path=None, title="", labels=None):
    """A row of images, e.g. an interpolation from left to right."""
    images = np.asarray(images)
    fig = _figure(len(images) * 0.8, 1.3)
    axes = np.atleast_1d(fig.subplots(1, len(images)))
    for k, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(img.reshape(28, 28), cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
        if labels is not None:
            ax.set_title(labels[k], fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def loss_curves(history, path=None, title="training and validation loss"):
    """Loss per epoch (log scale), with validation when recorded."""
    from matplotlib.ticker import MaxNLocator
    fig = _figure(5.0, 3.5)
    ax = fig.subplots()
    epochs = [r.epoch for r in history.records]
    ax.plot(epochs, history.loss, "o-", label="train")
    if any(v is not None for v in history.val_loss):
        ax.plot(epochs, history.val_loss, "s--", label="validation")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # no epoch 2.5
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.set_title(title, fontsize=10)
    return _save(fig, path)
