"""The variational autoencoder (Kingma & Welling 2014), with every gradient by hand.

The encoder gives each image a Gaussian over codes, not a single code:

    h      = f(x)                                   encoder body           (N, H)
    mu     = h W_mu + b_mu,  logvar = h W_lv + b_lv the two heads          (N, Z)
    z      = mu + exp(logvar / 2) * eps             eps ~ N(0, I)          (N, Z)
    logits = g(z)                                   decoder                (N, D)

and training minimises the negative evidence lower bound, per image:

    -ELBO(x) = -E_q[log p(x | z)]  +  KL(q(z | x) || N(0, I))
             =  BCE(x, logits) summed over pixels  +  KL in closed form

(one sample of eps estimates the expectation). ``beta`` weighs the KL term.
The reconstruction term is ``BernoulliNLL`` (the loss ``fit`` uses for this
model); the KL term is the model's ``penalty()``.
"""
import math

import numpy as np

from ..nn.functional import bce_with_logits, sigmoid
from ..nn.layers import Dense, Sequential, layer_from_config, layer_parameters, zero_grads
from ..nn.losses import Loss
from .autoencoder import (SEED_SIZES, Autoencoder, dense_autoencoder, input_row, layer_rows,
                          number, print_table)


class BernoulliNLL(Loss):
    """Binary cross-entropy from logits, SUMMED over the pixels of an image, averaged over images.

    forward:   L  = (1/N) sum_n sum_d [max(z, 0) - z x + log(1 + exp(-|z|))]
    backward:  dz = (sigmoid(z) - x) / N

    This is -log p(x | z) for a decoder that gives each pixel a Bernoulli
    probability sigmoid(z): the reconstruction term of the ELBO, in nats per
    image. ``BCE(from_logits=True)`` is the same sum divided by D as well: on
    that scale the KL term (a sum over the code) outweighs it D = 784 times.
    """

    def forward(self, pred, target) -> float:
        z, x = self._check(pred, target)
        self._cache = (z, x)
        return float(bce_with_logits(z, x).sum() / len(z))

    def backward(self):
        z, x = self._saved()
        return (sigmoid(z) - x) / z.dtype.type(len(z))


class GaussianKL:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over the code, averaged over the batch.

    forward:   KL = (1/N) sum_n sum_j 1/2 (mu^2 + exp(logvar) - 1 - logvar)
    backward:  dmu = mu / N,   dlogvar = (exp(logvar) - 1) / (2N)

    It is zero exactly when mu = 0 and logvar = 0 (q is the prior) and
    positive otherwise. Shapes: mu, logvar (N, Z).
    """

    def forward(self, mu, logvar) -> float:
        self._cache = (mu, logvar)
        return float(0.5 * np.sum(mu * mu + np.exp(logvar) - 1 - logvar) / len(mu))

    def backward(self):
        """(dKL/dmu, dKL/dlogvar), each (N, Z)."""
        mu, logvar = self._cache
        n = mu.dtype.type(len(mu))
        return mu / n, (np.exp(logvar) - 1) / (2 * n)


class Reparameterize:
    """The sampling node z = mu + exp(logvar / 2) * eps, with eps an input like any other.

    forward:   sigma = exp(logvar / 2),   z = mu + sigma * eps
    backward:  dmu = dz,   dlogvar = dz * eps * sigma / 2

    Drawing eps outside the node is the trick: z is then a smooth function of
    mu and logvar, and the gradient flows through it. Shapes: all (N, Z).
    """

    def forward(self, mu, logvar, eps):
        self._cache = (eps, np.exp(logvar / 2))
        return mu + self._cache[1] * eps

    def backward(self, dz):
        eps, sigma = self._cache
        return dz, dz * eps * sigma / 2


class VariationalAutoencoder(Autoencoder):
    """An encoder body, heads for mu and logvar, the sampling node and a decoder giving logits.

    Training (``fit``):  loss(forward(X), X) + penalty()  with loss ``BernoulliNLL``
    is the negative ELBO per image; ``penalty()`` is beta * KL.
    Use: ``encode`` gives mu (and logvar), ``decode`` gives pixel probabilities,
    ``sample(n, rng)`` decodes codes drawn from the prior N(0, I).

    Args:
        encoder: the body, x -> h (a ``Sequential``).
        mu_head, logvar_head: ``Dense`` layers h -> mu and h -> logvar.
        decoder: z -> logits (no sigmoid at the end: ``decode`` applies it).
        beta: the weight of the KL term, >= 0 (1 is the ELBO).
        rng: draws eps in ``forward``; seeded for reproducible training.
    Shapes:
        X (N, D) -> h (N, H) -> mu, logvar, z (N, Z) -> logits (N, D)
    """

    default_loss = BernoulliNLL          # what ``fit`` uses when no loss is given

    def __init__(self, encoder, mu_head, logvar_head, decoder, beta: float = 1.0,
                 rng: np.random.Generator | None = None):
        super().__init__(encoder, decoder)
        beta = float(beta)
        if not beta >= 0:
            raise ValueError(f"VariationalAutoencoder: beta (the KL weight) must be >= 0, got "
                             f"{beta:g}; 1 gives the ELBO, 0 a plain autoencoder with noise")
        if mu_head.out_features != logvar_head.out_features:
            raise ValueError(f"VariationalAutoencoder: the mu head gives {mu_head.out_features} "
                             f"numbers but the logvar head {logvar_head.out_features}; they "
                             "must both give the code size")
        self.mu_head, self.logvar_head, self.beta = mu_head, logvar_head, beta
        self.rng = np.random.default_rng() if rng is None else rng
        self.kl, self.sampler = GaussianKL(), Reparameterize()
        self.fixed_eps = None            # set an (N, Z) array to freeze the noise (gradient checks)
        self._kl = None

    # --- the maths ---------------------------------------------------------------
    def forward(self, X):
        """Logits of the reconstruction, for one sample z ~ q(z | x) per image: (N, D)."""
        h = self.encoder.forward(X)                                       # (N, H)
        mu, logvar = self.mu_head.forward(h), self.logvar_head.forward(h)  # (N, Z) each
        self.mu, self.logvar = mu, logvar
        z = self.sampler.forward(mu, logvar, self._eps(mu.shape, mu.dtype))
        self._kl = self.kl.forward(mu, logvar)
        return self.logits(z, self.condition(X))

    __call__ = forward

    def _eps(self, shape, dtype):
        if self.fixed_eps is None:
            return self.rng.standard_normal(shape, dtype=np.float64).astype(dtype, copy=False)
        if np.shape(self.fixed_eps) != shape:
            raise ValueError(f"fixed_eps has shape {np.shape(self.fixed_eps)} but this batch "
                             f"needs {shape}")
        return np.asarray(self.fixed_eps, dtype=dtype)

    def penalty(self) -> float:
        """beta * KL(q(z | x) || N(0, I)) per image, for the last forward."""
        if self._kl is None:
            raise RuntimeError("VariationalAutoencoder.penalty() was called before forward()")
        return self.beta * self._kl

    def condition(self, X):
        """What the decoder reads beside z: nothing here (a conditional VAE: X's labels)."""
        return None

    def logits(self, Z, condition=None):
        """The decoder's logits g(Z): (N, Z) -> (N, D)."""
        return self.decoder.forward(Z)

    def backward(self, dlogits):
        """dz from the decoder; through the sampling node plus beta * dKL; heads; body."""
        return self.code_backward(self.decoder.backward(dlogits))          # dz (N, Z)

    def code_backward(self, dz):
        """dL/dX from dL/dz (N, Z): the sampling node plus beta * dKL, the heads, the body."""
        dmu, dlogvar = self.sampler.backward(dz)
        kl_mu, kl_logvar = self.kl.backward()
        beta = dz.dtype.type(self.beta)
        dmu, dlogvar = dmu + beta * kl_mu, dlogvar + beta * kl_logvar      # new arrays
        dh = self.mu_head.backward(dmu) + self.logvar_head.backward(dlogvar)   # (N, H)
        return self.encoder.backward(dh)

    # --- use ---------------------------------------------------------------------
    def encode(self, X, logvar: bool = False):
        """mu(X): (N, D) -> (N, Z), or (D,) -> (Z,); with ``logvar=True`` also logvar(X)."""
        X = np.asarray(X)
        h = self._one_or_batch(self.encoder, X, self.input_width, "encode")
        h2 = np.atleast_2d(h)
        mu, lv = self.mu_head.forward(h2).copy(), self.logvar_head.forward(h2).copy()
        if X.ndim == 1:
            mu, lv = mu[0], lv[0]
        return (mu, lv) if logvar else mu

    def decode(self, Z):
        """Pixel probabilities sigmoid(g(Z)): (N, Z) -> (N, D), or (Z,) -> (D,)."""
        return sigmoid(self._one_or_batch(self.decoder, Z, self.latent_width, "decode"))

    def sample(self, n: int, rng: np.random.Generator | None = None):
        """n new images: codes drawn from the prior N(0, I), decoded. (n, D)."""
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"sample(n): n must be a positive integer (how many images), got {n!r}")
        rng = self.rng if rng is None else rng
        return self.decode(rng.standard_normal((int(n), self.latent_width)).astype(self.dtype))

    # --- bookkeeping -------------------------------------------------------------
    def parameters(self, prefix=""):
        yield from layer_parameters(self.encoder, prefix + "encoder.")
        yield from layer_parameters(self.mu_head, prefix + "mu_head.")
        yield from layer_parameters(self.logvar_head, prefix + "logvar_head.")
        yield from layer_parameters(self.decoder, prefix + "decoder.")

    def zero_grad(self):
        for part in self.children():
            zero_grads(part)

    def children(self):
        return [self.encoder, self.mu_head, self.logvar_head, self.decoder]

    @property
    def latent_width(self):
        return self.mu_head.out_features

    def config(self):
        return {**super().config(), "mu_head": self.mu_head.config(),
                "logvar_head": self.logvar_head.config(), "beta": self.beta}

    OPTIONS = frozenset({"mu_head", "logvar_head", "beta"})

    @classmethod
    def check_options(cls, cfg):
        beta = cfg.get("beta", 1.0)
        if not number(beta) or not 0 <= beta < math.inf:
            raise ValueError(f"beta {beta!r} is not a number >= 0")

    @classmethod
    def code_width(cls, cfg, walk, width):
        """Both heads read the body's output; the code is as wide as each head's."""
        code = walk(cfg.get("mu_head"), "mu_head.", width)
        if walk(cfg.get("logvar_head"), "logvar_head.", width) != code:
            raise ValueError("the mu and logvar heads give codes of different widths")
        return code

    @classmethod
    def from_config(cls, cfg, rng=None):
        missing = [k for k in ("encoder", "mu_head", "logvar_head", "decoder") if k not in cfg]
        if missing:
            raise ValueError(f"a VariationalAutoencoder config needs {missing} (this one is of "
                             f"type {cfg.get('type')!r}); build it with tinyae.load(), which "
                             "picks the class from the config's type")
        dtype = np.dtype(cfg.get("dtype", "float32"))
        parts = [layer_from_config(cfg[k], rng, dtype)
                 for k in ("encoder", "mu_head", "logvar_head", "decoder")]
        return cls(*parts, beta=cfg.get("beta", 1.0), rng=rng)

    def summary(self, print_fn=print):
        """Each layer (the heads between body and decoder) with its output shape and parameters."""
        rows = [input_row(self.input_width)] + layer_rows("encoder", self.encoder,
                                                           self.input_width)[0]
        for name in ("mu_head", "logvar_head"):
            head = getattr(self, name)
            rows.append((f"{name} Dense", f"(None, {head.out_features})",
                         sum(p.size for _, p, _ in layer_parameters(head))))
        rows.append(("z = mu + exp(logvar/2) * eps", f"(None, {self.latent_width})", 0))
        rows += layer_rows("decoder", self.decoder, self.latent_width)[0]
        print_table(rows, self.num_parameters(), print_fn)
        print_fn(f"decoder output: logits (decode applies the sigmoid); KL weight beta = "
                 f"{self.beta:g}")

    def __repr__(self):
        return (f"VariationalAutoencoder(beta={self.beta:g},\n encoder={self.encoder!r},\n"
                f" mu_head={self.mu_head!r}, logvar_head={self.logvar_head!r},\n"
                f" decoder={self.decoder!r}\n)")


def variational_autoencoder(sizes=SEED_SIZES, beta: float = 1.0, activation: str = "relu",
                            rng: np.random.Generator | None = None, dtype=np.float32,
                            init: str | None = None) -> VariationalAutoencoder:
    """A dense VAE; the default is the seed's sizes with a 2-D code.

    ``sizes=(784, 512, 256, 64, 2)``: body 784-512-256-64 (``activation``),
    heads 64 -> 2 for mu and for logvar, decoder 2-64-256-512-784 ending in
    logits. ``sizes=(784, 400, 20)`` is the pytorch/examples VAE. ``init``: every layer's
    start (default He before ReLU, Glorot for the heads and the output); "torch", the start
    of torch.nn.Linear, reaches pytorch/examples' test figure (docs/results.md).
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 3 or min(sizes) < 1:
        raise ValueError(f"variational_autoencoder: sizes must list at least three positive "
                         f"widths (input, hidden..., code), e.g. (784, 400, 20); got {sizes}"
                         + (" -- a code size of 0 leaves nothing to sample" if sizes and
                            sizes[-1] == 0 else ""))
    rng = np.random.default_rng() if rng is None else rng
    # Body and decoder as dense_autoencoder builds them: the body is its encoder
    # without the code layer; the decoder ends in logits (identity output).
    base = dense_autoencoder(sizes, activation=activation, output="identity", rng=rng,
                             dtype=dtype, init=init)
    body = Sequential(*base.encoder.layers[:-1])
    H, Z = sizes[-2], sizes[-1]
    heads = [Dense(H, Z, init=init or "glorot", rng=rng, dtype=dtype) for _ in range(2)]
    return VariationalAutoencoder(body, heads[0], heads[1], base.decoder, beta=beta, rng=rng)
