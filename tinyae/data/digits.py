"""Built-in digits: MNIST-like 28x28 images drawn from fonts that matplotlib ships.

Used when MNIST is not at hand (no network, nothing cached), so the package
still trains and draws its figures. Each digit 0-9 is rasterised once per
font; every sample is then a random affine warp of one of those glyphs
(rotation, scale, shear, shift), so the set has the variety a latent space
needs. Deterministic: the same split and size give the same images.
"""
from functools import lru_cache
from pathlib import Path as FilePath

import numpy as np

FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
              "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono.ttf")
MASTER = 64                   # glyphs are rasterised at MASTER x MASTER, then warped down to 28
SIZES = {"train": 12_000, "test": 2_000}
SEEDS = {"train": 0, "test": 1}


@lru_cache(maxsize=1)
def glyphs():
    """(fonts, 10, MASTER, MASTER) float32 masks: each digit centred, 20/28 of the height."""
    import matplotlib               # here: matplotlib takes half a second to import
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path
    from matplotlib.textpath import TextPath

    folder = FilePath(matplotlib.get_data_path()) / "fonts" / "ttf"
    # Sample each master pixel at 4x4 points and average: anti-aliased edges.
    sub = (np.arange(MASTER * 4) + 0.5) / (MASTER * 4) * 2 - 1          # in [-1, 1]
    gx, gy = np.meshgrid(sub, -sub)
    points = np.column_stack([gx.ravel(), gy.ravel()])
    out = np.zeros((len(FONT_FILES), 10, MASTER, MASTER), np.float32)
    for f, name in enumerate(FONT_FILES):
        prop = FontProperties(fname=str(folder / name))
        for d in range(10):
            path = TextPath((0, 0), str(d), size=1, prop=prop)
            (x0, y0), (x1, y1) = path.vertices.min(0), path.vertices.max(0)
            scale = (20 / 28) * 2 / max(y1 - y0, x1 - x0)                 # fit a 20-pixel box
            verts = (path.vertices - [(x0 + x1) / 2, (y0 + y1) / 2]) * scale
            # Even-odd rule over the outlines: a point inside two of them (the hole
            # of a 0, 6, 8 or 9) is outside the glyph.
            inside = np.zeros(len(points), bool)
            for poly in Path(verts, path.codes).to_polygons(closed_only=True):
                inside ^= Path(poly).contains_points(points)
            out[f, d] = inside.reshape(MASTER, 4, MASTER, 4).mean(axis=(1, 3))
    return out


def render(labels, rng, side=28):
    """Random affine warps of the glyphs of ``labels``: (N,) -> (N, side, side) in [0, 1]."""
    # Chunks of 1,000 keep the temporaries in cache: about 3x faster than one pass.
    return np.concatenate([_render(labels[i:i + 1000], rng, side)
                           for i in range(0, len(labels), 1000)] or [np.zeros((0, side, side))])


def _render(labels, rng, side):
    masks = glyphs()
    n = len(labels)
    font = rng.integers(0, masks.shape[0], n)
    angle = rng.uniform(-0.25, 0.25, n)                   # radians, about +-14 degrees
    scale = rng.uniform(0.8, 1.1, (n, 2))                 # x and y scale
    shear = rng.uniform(-0.25, 0.25, n)
    shift = rng.uniform(-0.12, 0.12, (n, 2))              # in units of half the image

    # Forward map A = R(angle) @ Shear @ diag(scale); sample the glyph at A^-1 (u - shift).
    c, s = np.cos(angle), np.sin(angle)
    R = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)          # (n, 2, 2)
    Sh = np.zeros((n, 2, 2))
    Sh[:, 0, 0] = Sh[:, 1, 1] = 1
    Sh[:, 0, 1] = shear
    A = R @ Sh @ (np.eye(2) * scale[:, None, :])
    A_inv = np.linalg.inv(A)
    u = (np.arange(side) + 0.5) / side * 2 - 1
    ux, uy = np.meshgrid(u, -u)
    grid = np.stack([ux.ravel(), uy.ravel()], -1)                              # (side^2, 2)
    src = np.einsum("nij,npj->npi", A_inv, grid[None] - shift[:, None, :])    # (n, side^2, 2)

    # Bilinear interpolation in the master glyph; outside it is background (0).
    col = (src[..., 0] + 1) / 2 * MASTER - 0.5
    row = (1 - src[..., 1]) / 2 * MASTER - 0.5
    flat = np.pad(masks, ((0, 0), (0, 0), (1, 1), (1, 1))).reshape(-1)     # zero border
    width = MASTER + 2
    base = (font * 10 + labels)[:, None] * width * width
    r0, c0 = np.floor(row), np.floor(col)
    fr, fc = row - r0, col - c0
    value = np.zeros_like(row)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr = np.clip(r0 + dr + 1, 0, width - 1).astype(np.int64)
        cc = np.clip(c0 + dc + 1, 0, width - 1).astype(np.int64)
        value += w * flat[base + rr * width + cc]
    return np.clip(value, 0, 1).reshape(n, side, side)


def load_builtin_digits(split="train", n=None, flatten=True):
    """Built-in digits with MNIST's shapes and types: (images, labels).

    float32 (N, 784) in [0, 1] (``flatten=False``: uint8 (N, 28, 28)) and
    int64 labels. N defaults to 12,000 for "train" and 2,000 for "test".
    """
    if split not in SIZES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    n = SIZES[split] if n is None else int(n)
    rng = np.random.default_rng(SEEDS[split])
    labels = rng.integers(0, 10, n).astype(np.int64)
    images = render(labels, rng)
    if not flatten:
        return np.round(images * 255).astype(np.uint8), labels
    return images.reshape(n, -1).astype(np.float32), labels
