"""The conditional VAE (Sohn, Lee & Yan 2015): a VAE whose encoder and decoder both see the class.

    q(z | x, y):   h = f([x, y]),   mu, logvar = heads(h)        [x, y]  (N, D + K)
    p(x | z, y):   logits = g([z, y])                            [z, y]  (N, Z + K)

y is the label, one-hot over K classes. The loss is the VAE's negative ELBO
(BCE summed over pixels + beta * KL). Since the decoder is given the class, the
code does not need to carry it: it keeps what the label does not say, the
style (slant, thickness, size). To draw a 7: z ~ N(0, I), decode [z, onehot(7)].

The label travels in the input rows: ``with_labels(X, y)`` is [X, onehot(y)],
(N, D + K). So ``fit`` shuffles and batches images with their labels and needs
nothing new; the loss compares the logits with ``target(XY)``, the image part.
The label feeds both halves, so its columns of dL/dXY get both halves'
gradients (training never uses them; a gradient check of the whole model does).
"""
import numpy as np

from ..nn.layers import Dense, input_width, layer_from_config
from .autoencoder import dense_stack, number
from .vae import VariationalAutoencoder

DIGITS = 10


def one_hot(y, n_classes: int = DIGITS, dtype=np.float32):
    """Labels (N,) in 0..K-1 -> (N, K) rows of zeros with a 1 at each label; a clear error
    for labels that are not whole numbers in range."""
    y = np.asarray(y)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool) or (
            len(y) and (y.min() < 0 or y.max() >= n_classes)):
        shown = y if y.size <= 5 else y.ravel()[:5]
        raise ValueError(f"labels must be a 1-D array of whole numbers from 0 to {n_classes - 1} "
                         f"(one per image); got shape {y.shape}, dtype {y.dtype}, values "
                         f"{np.asarray(shown).tolist()}")
    out = np.zeros((len(y), n_classes), dtype)
    out[np.arange(len(y)), y] = 1
    return out


def with_labels(X, y, n_classes: int = DIGITS):
    """The rows a conditional VAE reads: [X, onehot(y)], (N, D) and (N,) -> (N, D + K)."""
    X = np.asarray(X)
    if X.ndim != 2 or len(X) != len(np.asarray(y)):
        raise ValueError(f"with_labels: X must be (N, D) with one label per row; got X of shape "
                         f"{X.shape} and {len(np.asarray(y))} labels")
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float32
    return np.hstack([X.astype(dtype, copy=False), one_hot(y, n_classes, dtype)])


class ConditionalVAE(VariationalAutoencoder):
    """A VAE whose encoder reads [x, y] and whose decoder reads [z, y] (y one-hot, K classes).

    Training: ``fit(model, with_labels(X, y), ...)``; the loss compares the
    logits with ``target(XY)`` = X. Use: ``encode(XY)`` gives mu (and logvar),
    ``decode(Z, digits)`` pixel probabilities, ``sample(n, digit)`` new images
    of that class.

    Args:
        encoder: the body, [x, y] -> h; mu_head, logvar_head: h -> mu, logvar.
        decoder: [z, y] -> logits.  n_classes: K.  beta, rng: as the VAE's.
    Shapes:
        XY (N, D + K) -> h (N, H) -> mu, logvar, z (N, Z) -> logits (N, D)
    """

    def __init__(self, encoder, mu_head, logvar_head, decoder, n_classes: int = DIGITS,
                 beta: float = 1.0, rng: np.random.Generator | None = None):
        super().__init__(encoder, mu_head, logvar_head, decoder, beta=beta, rng=rng)
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
                or n_classes < 2:
            raise ValueError(f"ConditionalVAE: n_classes must be a whole number >= 2 (the "
                             f"labels' classes), got {n_classes!r}")
        self.n_classes = int(n_classes)
        reads, code = input_width(decoder), self.latent_width
        if reads is not None and reads != code + self.n_classes:
            raise ValueError(f"ConditionalVAE: the decoder reads {reads} numbers, but the code "
                             f"({code}) and the one-hot label ({self.n_classes}) make "
                             f"{code + self.n_classes}")
        if self.input_width is not None and self.input_width <= self.n_classes:
            raise ValueError(f"ConditionalVAE: the encoder reads {self.input_width} numbers, "
                             f"which leaves no image beside a {self.n_classes}-class label")

    @property
    def image_width(self):
        """D: the image part of a row (the encoder reads D + K)."""
        return self.input_width - self.n_classes

    def target(self, XY):
        """The images in the rows, what the reconstruction is compared with: (N, D)."""
        return XY[:, :self.image_width]

    def condition(self, XY):
        """The one-hot labels in the rows: (N, K)."""
        return XY[:, self.image_width:]

    def logits(self, Z, condition=None):
        """g([Z, Y]): (N, Z) codes and (N, K) one-hot labels -> (N, D) logits."""
        if condition is None:
            raise ValueError("a ConditionalVAE decodes a code together with a label: pass the "
                             "(N, K) one-hot labels")
        return self.decoder.forward(np.concatenate([Z, condition.astype(Z.dtype)], axis=1))

    def backward(self, dlogits):
        """The VAE's backward, with the decoder's input split into dz and dy:

            [dz, dy_dec] = g'(dlogits);  dXY = VAE's path from dz;  dXY[:, D:] += dy_dec
        """
        dzy = self.decoder.backward(dlogits)                              # (N, Z + K)
        dXY = self.code_backward(dzy[:, :self.latent_width])              # (N, D + K)
        if dXY is not None:             # (the fast path may skip the input's gradient)
            dXY[:, self.image_width:] += dzy[:, self.latent_width:]
        return dXY

    # --- use ---------------------------------------------------------------------
    def _digits(self, digits, n):
        """``digits`` (one class for all, or one per code) as (n, K) one-hot rows."""
        d = np.asarray(digits)
        if d.ndim == 0:
            d = np.full(n, d)
        if len(d) != n:
            raise ValueError(f"decode: {n} codes but {len(d)} labels; give one label per code "
                             "or one for all")
        return one_hot(d, self.n_classes, self.dtype)

    def decode(self, Z, digits):
        """Pixel probabilities sigmoid(g([Z, y])): (N, Z) -> (N, D), or (Z,) -> (D,);
        ``digits`` is one class for every code or one per code."""
        Z = np.asarray(Z)
        if Z.ndim not in (1, 2) or Z.shape[-1] != self.latent_width:
            raise ValueError(f"decode() expects {self.latent_width} numbers per code, as shape "
                             f"({self.latent_width},) or (N, {self.latent_width}); got shape "
                             f"{Z.shape}")
        Z2 = np.atleast_2d(Z).astype(self.dtype, copy=False)
        p = 1 / (1 + np.exp(-self.logits(Z2, self._digits(digits, len(Z2)))))
        return p[0] if Z.ndim == 1 else p

    def reconstruct(self, XY):
        """decode(mu, y) for rows [x, y]: (N, D + K) -> (N, D)."""
        XY = np.atleast_2d(XY)
        return self.decode(self.encode(XY), np.argmax(self.condition(XY), axis=1))

    def sample(self, n: int, digit, rng: np.random.Generator | None = None):
        """n new images of class ``digit``: z ~ N(0, I), decoded with the label. (n, D)."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"sample(n): n must be a positive integer (how many images), got "
                             f"{n!r}")
        rng = self.rng if rng is None else rng
        Z = rng.standard_normal((int(n), self.latent_width)).astype(self.dtype)
        return self.decode(Z, digit)

    # --- bookkeeping -------------------------------------------------------------
    def config(self):
        return {**super().config(), "n_classes": self.n_classes}

    OPTIONS = VariationalAutoencoder.OPTIONS | {"n_classes"}

    @classmethod
    def check_options(cls, cfg):
        super().check_options(cfg)
        k = cfg.get("n_classes")
        if not number(k) or k != int(k) or not 2 <= k <= 10_000:
            raise ValueError(f"n_classes {k!r} is not a whole number from 2 to 10000")

    @classmethod
    def code_width(cls, cfg, walk, width):
        """The decoder reads the code and the label."""
        return super().code_width(cfg, walk, width) + int(cfg["n_classes"])

    @classmethod
    def condition_width(cls, cfg):
        """The encoder reads the image and the label."""
        return int(cfg["n_classes"])

    @classmethod
    def from_config(cls, cfg, rng=None):
        dtype = np.dtype(cfg.get("dtype", "float32"))
        parts = [layer_from_config(cfg[k], rng, dtype)
                 for k in ("encoder", "mu_head", "logvar_head", "decoder")]
        return cls(*parts, n_classes=int(cfg.get("n_classes", DIGITS)),
                   beta=cfg.get("beta", 1.0), rng=rng)

    def summary(self, print_fn=print):
        super().summary(print_fn)
        print_fn(f"conditioned on {self.n_classes} classes: the encoder reads [x, onehot(y)], "
                 "the decoder [z, onehot(y)]")

    def __repr__(self):
        return (super().__repr__().replace("VariationalAutoencoder(", "ConditionalVAE(", 1)[:-2]
                + f",\n n_classes={self.n_classes}\n)")


def conditional_vae(sizes=(784, 512, 256, 64, 2), n_classes: int = DIGITS, beta: float = 1.0,
                    activation: str = "relu", rng: np.random.Generator | None = None,
                    dtype=np.float32) -> ConditionalVAE:
    """A dense conditional VAE; the default is the seed's sizes with a 2-D code.

    ``sizes=(784, 512, 256, 64, 2)``, K = ``n_classes``: body (784 + K)-512-256-64,
    heads 64 -> 2, decoder (2 + K)-64-256-512-784 ending in logits.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 3 or min(sizes) < 1:
        raise ValueError(f"conditional_vae: sizes must list at least three positive widths "
                         f"(input, hidden..., code), e.g. (784, 512, 256, 64, 2); got {sizes}")
    rng = np.random.default_rng() if rng is None else rng
    (D, *hidden, Z), K = sizes, int(n_classes)
    body = dense_stack((D + K, *hidden), activation, activation, rng, dtype)
    heads = [Dense(hidden[-1], Z, init="glorot", rng=rng, dtype=dtype) for _ in range(2)]
    decoder = dense_stack((Z + K, *hidden[::-1], D), activation, "identity", rng, dtype)
    return ConditionalVAE(body, *heads, decoder, n_classes=K, beta=beta, rng=rng)
