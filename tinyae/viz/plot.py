"""Figures with matplotlib: each function returns a Figure and, given ``path``, saves a PNG.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot), so they work
headless and in notebooks alike.
"""
import numpy as np

from ..io.checkpoint import atomic_write
from ..models.pca import PCA
from .latent import grid, latent_range


def _figure(w, h):
    from matplotlib.figure import Figure    # at the first figure: half a second to import
    return Figure(figsize=(w, h), layout="constrained")


def _save(fig, path, dpi=100):
    # "tight": the saved image grows to hold labels that stick out of the figure (long row
    # labels beside an image grid, whose aspect ratio the layout may not stretch).
    if path is not None:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
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
        note += f"\n{outside:,} of {len(Z2):,} codes lie outside the axes\n({why})"  # fits 6 in
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


LARGE_GRID = 25     # images a side beyond which a grid is written pixel for pixel


def image_grid(images, ncols=None, path=None, title="", row_labels=None):
    """Images (N, 784) in a grid of ``ncols`` columns (default: about square).

    A grid of more than ``LARGE_GRID`` images a side is written pixel for pixel with Pillow,
    without title or labels, and returned as a ``PIL.Image``: drawn by matplotlib, a
    100 x 100 grid took 1.1 to 3.5 GB (float RGBA copies of a 3,000-pixel canvas); this way
    it takes tens of MB.
    """
    images = np.asarray(images)
    ncols = ncols or int(np.ceil(np.sqrt(len(images))))
    nrows = int(np.ceil(len(images) / ncols))
    if max(ncols, nrows) > LARGE_GRID:
        return _pixel_grid(tile(images, ncols), path)
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


def filters(W, n=64, path=None, title="filters: the weights into each hidden unit"):
    """The first ``n`` columns of a weight matrix W (784, H) as images, each scaled to [0, 1]
    by its own min and max (an RBM's ``W``, a first ``Dense``'s ``params["W"]``)."""
    W = np.asarray(W, dtype=np.float64)[:, :n].T                      # (n, 784)
    low = W.min(axis=1, keepdims=True)
    span = np.maximum(W.max(axis=1, keepdims=True) - low, 1e-12)       # a constant unit: grey 0
    return image_grid((W - low) / span, path=path, title=title)


def _pixel_grid(canvas, path):
    from PIL import Image           # matplotlib's own dependency; imported with the figures
    image = Image.fromarray(np.round(np.clip(canvas, 0, 1) * 255).astype(np.uint8))   # mode L
    if path is not None:
        atomic_write(path, lambda f: image.save(f, format="PNG"))
    return image


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


def loss_curves(history, path=None, title="training and validation loss", ax=None):
    """Loss per epoch (log scale), with validation when recorded, and the lr of every step.

    The lr curve (right axis) places step k of epoch e (S steps) at e - 1 + (k + 1) / S.
    ``ax``: draw into this Axes instead of a new figure (e.g. to put runs side by side).
    """
    from matplotlib.ticker import MaxNLocator   # with the figure's (see _figure)
    fig = _figure(5.5, 3.5) if ax is None else ax.figure
    ax = fig.subplots() if ax is None else ax
    epochs = [r.epoch for r in history.records]
    lines = ax.plot(epochs, history.loss, "o-", label="train")
    # Only values that hold reconstruction + penalty, as the training loss does (older
    # records of a model with a penalty hold the reconstruction alone: left out, as gaps).
    val = [np.nan if r.whole_val_loss is None else r.whole_val_loss for r in history.records]
    if not np.isnan(val).all():
        lines += ax.plot(epochs, val, "s--", label="validation")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))     # no epoch 2.5
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    steps = [(r.epoch - 1 + (k + 1) / len(r.step_lr), lr)
             for r in history.records for k, lr in enumerate(r.step_lr)]
    if steps:
        lr_ax = ax.twinx()
        x, lr = zip(*steps)
        lines += lr_ax.plot(x, lr, "-", color="0.6", lw=1, label="learning rate")
        lr_ax.set_ylabel("learning rate")
        lr_ax.set_ylim(0, max(lr) * 1.05)
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    # The legend in one row above the plot, under the title: inside, "best" would only
    # avoid the loss curves and could cover the lr's (a constant lr runs along the top).
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, ncols=len(lines),
              loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, borderaxespad=0.1)
    ax.set_title(title, fontsize=10, pad=18)
    return _save(fig, path)


def _graph_layout(root, order):
    """Row and column of each node, laid out for chains of layers.

    Rows: an operation sits one row below its lowest input; a leaf sits
    beside its user, or above its first user when it has several.
    Columns: an operation's first input that is an operation stays straight
    above it (a layer stack reads as one column); other inputs step aside,
    parameters to the right, constants to the left.
    """
    row = {}
    for node in order:                                       # parents come first in ``order``
        if node.parents or node is root:
            row[id(node)] = 1 + max((row[id(p)] for p in node.parents if p.parents), default=0)
    uses = {}
    for node in order:
        for p in node.parents:
            if not p.parents:
                uses.setdefault(id(p), set()).add(id(node))
                row[id(p)] = min(row.get(id(p), row[id(node)]), row[id(node)])
    for leaf, users in uses.items():
        if len(users) > 1:                                   # used by several: above them all
            row[leaf] -= 1
    col = {id(root): 0.0}
    for node in reversed(order):
        right = left = 1.0
        for k, p in enumerate(node.parents):
            if id(p) in col:
                continue
            if p.parents and not any(q.parents for q in node.parents[:k]):
                col[id(p)] = col[id(node)]
            elif p.requires_grad or p.parents:
                col[id(p)], right = col[id(node)] + right, right + 1.0
            else:
                col[id(p)], left = col[id(node)] - left, left + 1.0
    for r in set(row.values()):                              # push apart boxes sharing a row
        nodes = sorted((n for n in order if row[id(n)] == r), key=lambda n: col[id(n)])
        for a, b in zip(nodes, nodes[1:]):
            col[id(b)] = max(col[id(b)], col[id(a)] + 1.0)
    return row, col


def graph(root, path=None, title=None):
    """The computation behind the Tensor ``root``: a box per node, an arrow per use.

    Data flows downwards: each operation (blue) shows its output shape,
    parameters are orange, constants grey, ``root`` green. Drawn for layer
    stacks; a tangled graph gets crossing arrows.
    """
    order = root.topological_order(constants=True)          # parents before children
    if len(order) > 300:
        raise ValueError(f"graph: {len(order)} nodes are too many to draw legibly (at most 300); "
                         "draw a smaller piece of the computation, e.g. one layer or one step.")
    row, col = _graph_layout(root, order)
    xs, ys = [col[id(n)] for n in order], [row[id(n)] for n in order]
    fig = _figure(1.3 * (max(xs) - min(xs) + 1.4), 0.62 * (max(ys) - min(ys) + 1.2))
    ax = fig.subplots()
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(max(ys) + 0.6, min(ys) - 0.6)                # row 0 at the top
    ax.axis("off")
    boxes = {}
    for node in order:
        shape = "()" if node.shape == () else str(node.shape)
        if node.parents:
            label, colour = f"{node.op}\n{shape}", "#cde4f7"
        elif node.requires_grad:
            label, colour = f"{node.name or 'leaf'}\n{shape}", "#fbd9b0"
        else:
            value = f"{node.data.item():g}" if node.data.size == 1 else shape
            label, colour = f"{node.name or 'const'}\n{value}", "#e4e4e4"
        colour = "#c9ecc4" if node is root else colour
        boxes[id(node)] = ax.text(col[id(node)], row[id(node)], label, ha="center", va="center",
                                  fontsize=8, bbox=dict(boxstyle="round", fc=colour, ec="#555555"))
    for node in order:
        for k, p in enumerate(node.parents):
            if row[id(node)] - row[id(p)] > 1 and col[id(p)] != col[id(node)]:
                style = "angle,angleA=90,angleB=0,rad=0"     # long: down, then sideways in
            else:
                style = f"arc3,rad={0.4 * node.parents[:k].count(p)}"   # a second use curves
            ax.annotate("", xy=(col[id(node)], row[id(node)]), xytext=(col[id(p)], row[id(p)]),
                        arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.8,
                                        connectionstyle=style,
                                        patchA=boxes[id(p)].get_bbox_patch(),
                                        patchB=boxes[id(node)].get_bbox_patch()))
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, path)
