"""Distortions of image batches: noise for denoising, transforms for robustness tests.

Every function takes a batch X of shape (N, D) holding N square images of
side s = sqrt(D) (28x28 for MNIST, D = 784), pixels in [0, 1], and returns a
new array of the same shape and dtype; X is never changed. Random ones take
an explicit ``rng`` (``np.random.Generator``), so the same seed gives the
same noise.

    gaussian(X, std, rng)          clip(X + std * eps, 0, 1),  eps ~ N(0, 1)
    masking(X, fraction, rng)      each pixel set to 0 with probability ``fraction``
    salt_and_pepper(X, fraction)   each pixel set to 0 or 1 (even odds) with prob. ``fraction``
    rotate(X, degrees)             counter-clockwise about the centre, bilinear
    flip(X)                        mirror left to right
    shift(X, dx, dy)               move right by dx and down by dy pixels, zeros come in

``parse("gaussian:0.5")`` turns the CLI's text into a ``Corruption``.
"""
import math

import numpy as np


def image_side(X, who="corrupt") -> int:
    """The side s of the square images in the (N, s*s) batch X, else a clear error."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{who}: expects a batch of flattened images of shape (N, side*side), "
                         f"got shape {X.shape}; for one image use x[None, :].")
    side = math.isqrt(X.shape[1])
    if side * side != X.shape[1]:
        raise ValueError(f"{who}: images must be square, but {X.shape[1]} pixels per image is "
                         f"not a square number (e.g. 784 = 28 x 28); reshape non-square "
                         "images yourself.")
    return side


def _level(value, name, low, high, who):
    """``value`` as a float in [low, high], else an error naming the value and the range."""
    value = float(value)
    if not low <= value <= high:
        raise ValueError(f"{who}: {name} must be in [{low}, {high}], got {value:g}")
    return value


def _float(X, who):
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.floating):
        raise TypeError(f"{who}: expects floating-point images in [0, 1], got dtype {X.dtype}; "
                        "convert first, e.g. X.astype(np.float32) / 255.")
    image_side(X, who)
    return X


# --- noise ---------------------------------------------------------------------------
def gaussian(X, std: float, rng: np.random.Generator):
    """Additive Gaussian noise, clipped back to the pixel range: clip(X + std eps, 0, 1)."""
    X = _float(X, "gaussian")
    std = _level(std, "std", 0, 1, "gaussian")
    noise = rng.standard_normal(X.shape).astype(X.dtype) * X.dtype.type(std)
    return np.clip(X + noise, 0, 1)


def masking(X, fraction: float, rng: np.random.Generator):
    """Masking noise: each pixel is set to 0 with probability ``fraction`` (Vincent et al. 2008)."""
    X = _float(X, "masking")
    fraction = _level(fraction, "fraction", 0, 1, "masking")
    return np.where(rng.random(X.shape) < fraction, X.dtype.type(0), X)


def salt_and_pepper(X, fraction: float, rng: np.random.Generator):
    """Each pixel, with probability ``fraction``, becomes 0 or 1 with even odds."""
    X = _float(X, "salt_and_pepper")
    fraction = _level(fraction, "fraction", 0, 1, "salt_and_pepper")
    hit = rng.random(X.shape) < fraction
    salt = rng.random(X.shape) < 0.5
    return np.where(hit, salt.astype(X.dtype), X)


# --- geometric transforms ------------------------------------------------------------
def rotate(X, degrees: float):
    """Rotate every image counter-clockwise by ``degrees`` about its centre (bilinear).

    Each output pixel p reads the input at R(-angle) (p - c) + c, c the centre,
    interpolating between the four pixels around that point; points outside
    the image read 0 (background). A multiple of 360 degrees returns X itself.
    """
    X = _float(X, "rotate")
    side = image_side(X, "rotate")
    if not math.isfinite(degrees):
        raise ValueError(f"rotate: degrees must be a finite number, got {degrees}")
    theta = math.radians(degrees % 360)
    c = (side - 1) / 2
    rows, cols = np.mgrid[:side, :side].astype(np.float64)          # output pixel (row, col)
    # Rows grow downwards, so in (x, y) = (col - c, c - row) a counter-clockwise turn is the
    # usual one; the inverse rotation takes an output point back to where it is read from.
    x, y = cols - c, c - rows
    cos, sin = math.cos(theta), math.sin(theta)
    src_col = cos * x + sin * y + c
    src_row = c - (-sin * x + cos * y)
    return _bilinear(X.reshape(-1, side, side), src_row, src_col).reshape(X.shape)


def _bilinear(images, row, col):
    """images (N, s, s) read at the (s, s) float positions (row, col); outside reads 0."""
    side = images.shape[-1]
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))               # a ring of zeros
    r0, c0 = np.floor(row), np.floor(col)
    fr, fc = (row - r0).astype(images.dtype), (col - c0).astype(images.dtype)
    out = np.zeros_like(images)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                      (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        # +1 for the padding; anything beyond the ring reads the ring's zeros.
        rr = np.clip(r0 + dr + 1, 0, side + 1).astype(np.int64)
        cc = np.clip(c0 + dc + 1, 0, side + 1).astype(np.int64)
        out += w * padded[:, rr, cc]
    return out


def flip(X):
    """Mirror every image left to right (a horizontal flip)."""
    X = _float(X, "flip")
    side = image_side(X, "flip")
    return X.reshape(-1, side, side)[:, :, ::-1].reshape(X.shape).copy()


def shift(X, dx: int, dy: int = 0):
    """Move every image ``dx`` pixels right and ``dy`` down (negative: left, up); zeros fill in."""
    X = _float(X, "shift")
    side = image_side(X, "shift")
    for name, d in (("dx", dx), ("dy", dy)):
        if int(d) != d or abs(d) >= side:
            raise ValueError(f"shift: {name} must be a whole number of pixels in "
                             f"[-{side - 1}, {side - 1}], got {d}")
    dx, dy = int(dx), int(dy)
    images = X.reshape(-1, side, side)
    out = np.zeros_like(images)
    out[:, max(dy, 0):side + min(dy, 0), max(dx, 0):side + min(dx, 0)] = \
        images[:, max(-dy, 0):side - max(dy, 0), max(-dx, 0):side - max(dx, 0)]
    return out.reshape(X.shape)


# --- named corruptions, as the CLI writes them -----------------------------------------
NOISES = {"gaussian": (gaussian, "std", (0, 1)),
          "masking": (masking, "fraction", (0, 1)),
          "salt_and_pepper": (salt_and_pepper, "fraction", (0, 1))}


class Corruption:
    """A named noise with its level, callable as ``corruption(X, rng)``; ``spec`` is its text.

    >>> Corruption("masking", 0.3)(X, rng)      # the same as masking(X, 0.3, rng)
    """

    def __init__(self, kind: str, level: float):
        if kind not in NOISES:
            raise ValueError(f"unknown noise {kind!r}; choose one of {sorted(NOISES)}")
        fn, name, (low, high) = NOISES[kind]
        self.kind, self.level = kind, _level(level, name, low, high, kind)

    def __call__(self, X, rng):
        return NOISES[self.kind][0](X, self.level, rng)

    @property
    def spec(self):
        return f"{self.kind}:{self.level:g}"

    def __repr__(self):
        return f"Corruption({self.kind!r}, {self.level:g})"


def parse(spec: str) -> Corruption:
    """``"gaussian:0.5"``, ``"masking:0.3"`` or ``"salt_and_pepper:0.1"`` as a ``Corruption``."""
    kind, sep, level = str(spec).partition(":")
    try:
        value = float(level)
    except ValueError:
        value = None
    if not sep or value is None:
        raise ValueError(f"noise {spec!r} is not KIND:LEVEL; write e.g. gaussian:0.5, "
                         "masking:0.3 or salt_and_pepper:0.1")
    return Corruption(kind.strip().replace("-", "_"), value)
