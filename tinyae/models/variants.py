"""Autoencoders that answer the plain one's drawbacks: denoising and sparse.

Both are an ``Autoencoder`` (an ``encoder`` and a ``decoder``, each a
``Sequential`` of the plain layers) with one change to what training sees:

    denoising:  minimise  l(g(f(corrupt(X))), X)             clean targets, noisy inputs
    sparse:     minimise  l(g(f(X)), X) + P(f(X))            a penalty on the code

``fit`` asks every model for both hooks: ``corrupt(X, rng)`` (when the model
has one) makes the inputs of a step, and ``penalty()`` is added to the loss.
The stacked autoencoder is trained differently, not built differently: see
``tinyae.train.stacked``.
"""
import math

import numpy as np

from ..nn.corrupt import Corruption, parse
from ..nn.layers import ACTIVATION_LAYERS, Sequential, Sigmoid
from ..nn.penalties import KLSparsity, L1Activity, Penalty, penalty_from_config
from .autoencoder import SEED_SIZES, Autoencoder, dense_autoencoder, number
from .contractive import ContractiveAutoencoder
from .cvae import ConditionalVAE
from .vae import VariationalAutoencoder

# UFLDL's weight decay lambda = 3e-3 weighs half the squared error summed over an
# image's 784 pixels; tinyae's MSE is the mean over them, so lambda is 3e-3 * 2 / 784.
WEIGHT_DECAY = 3e-3 * 2 / 784


class DenoisingAutoencoder(Autoencoder):
    """Trained to undo ``noise``: ``fit`` feeds it corrupt(X) and scores against X.

    At use (``encode``, ``reconstruct``, ``forward``) it is a plain
    autoencoder: the noise belongs to training only.

    Args:
        encoder, decoder: as for ``Autoencoder``.
        noise: a ``tinyae.nn.corrupt.Corruption`` or its text, e.g. "gaussian:0.5",
            "masking:0.3", "salt_and_pepper:0.1".
    """

    def __init__(self, encoder, decoder, noise="gaussian:0.5"):
        super().__init__(encoder, decoder)
        self.noise = noise if isinstance(noise, Corruption) else parse(noise)

    def corrupt(self, X, rng):
        """The training input for the clean batch X: (N, D) -> (N, D)."""
        return self.noise(X, rng)

    def config(self):
        return {**super().config(), "noise": self.noise.spec}

    @classmethod
    def from_config(cls, cfg, rng=None):
        base = Autoencoder.from_config(cfg, rng)
        return cls(base.encoder, base.decoder, cfg.get("noise", "gaussian:0.5"))

    OPTIONS = frozenset({"noise"})

    @classmethod
    def check_options(cls, cfg):
        if not isinstance(cfg.get("noise"), str):
            raise ValueError("the noise is not a text like gaussian:0.5")
        parse(cfg["noise"])


class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code pays a ``code_penalty`` (L1 or KL sparsity).

    The penalty is UFLDL's: the code's, plus weight decay on every weight matrix,

        P = P_code(Z) + (lambda / 2) sum_l ||W_l||^2

    forward:   Z = f(X),  X' = g(Z),  and P is computed on the way
    backward:  dZ = g.backward(dX') + dP_code/dZ,  then f.backward(dZ),
               then dW_l += lambda W_l for every weight matrix

    Why weight decay: a pixel that is 0 in every training image (MNIST's
    border) sends no gradient to its weights, so without decay they keep
    their random initial values, and the first layer's weights drawn as
    images stay noisy; decay pulls them to 0 and the learned strokes show.

    Args:
        encoder, decoder: as for ``Autoencoder``; for ``KLSparsity`` the
            encoder must end in a sigmoid (a code in (0, 1)).
        code_penalty: ``L1Activity(weight)`` or ``KLSparsity(rho, beta)``.
        weight_decay: lambda >= 0, relative to the per-pixel MSE like the code
            penalty's weight (UFLDL's lambda = 3e-3 is 3e-3 * 2 / 784 = 7.7e-6).
    Shapes:
        X (N, D) -> Z (N, H) -> X' (N, D)
    """

    def __init__(self, encoder, decoder, code_penalty: Penalty, weight_decay: float = 0.0):
        super().__init__(encoder, decoder)
        if isinstance(code_penalty, KLSparsity) and not _ends_in_sigmoid(encoder):
            raise ValueError("SparseAutoencoder: the KL sparsity penalty needs a code in (0, 1), "
                             "so the encoder must end in a Sigmoid (sparse_autoencoder(...) "
                             "builds one); use L1Activity for other codes")
        weight_decay = float(weight_decay)
        if not (weight_decay >= 0 and np.isfinite(weight_decay)):
            raise ValueError(f"SparseAutoencoder: weight_decay (lambda) must be a finite number "
                             f">= 0 (0 turns it off), got {weight_decay:g}; UFLDL's is 7.7e-6 here")
        self.code_penalty, self.weight_decay = code_penalty, weight_decay
        self._penalty = None

    def forward(self, X):
        self.Z = self.encoder.forward(X)                         # (N, H)
        self._penalty = self.code_penalty.forward(self.Z)
        if self.weight_decay:
            self._penalty += self.weight_decay / 2 * sum(    # ||W||^2 = vdot(W, W): no copy
                float(np.vdot(W, W)) for W, _ in self._weights())
        return self.decoder.forward(self.Z)

    __call__ = forward

    def _weights(self):
        """(W, dW) of every weight matrix (a Dense's "W"; biases are not decayed)."""
        return ((p, g) for name, p, g in self.parameters() if name.endswith(".W"))

    def penalty(self) -> float:
        """P for the code of the last forward (and the weights, with weight decay)."""
        if self._penalty is None:
            raise RuntimeError("SparseAutoencoder.penalty() was called before forward()")
        return self._penalty

    def backward(self, dX):
        dZ = self.decoder.backward(dX) + self.code_penalty.backward()      # (N, H)
        dX_in = self.encoder.backward(dZ)
        if self.weight_decay:           # after every backward: the layers write their dW first
            for W, dW in self._weights():
                dW += W.dtype.type(self.weight_decay) * W
        return dX_in

    def config(self):
        return {**super().config(), "code_penalty": self.code_penalty.config(),
                "weight_decay": self.weight_decay}

    @classmethod
    def from_config(cls, cfg, rng=None):
        base = Autoencoder.from_config(cfg, rng)
        return cls(base.encoder, base.decoder, penalty_from_config(cfg["code_penalty"]),
                   cfg.get("weight_decay", 0.0))      # checkpoints from before weight decay: 0

    OPTIONS = frozenset({"code_penalty", "weight_decay"})

    @classmethod
    def check_options(cls, cfg):
        penalty = cfg.get("code_penalty")
        if not isinstance(penalty, dict) or not all(
                number(v) for k, v in penalty.items() if k != "type"):
            raise ValueError("the code penalty is not a type with numeric settings")
        penalty_from_config(penalty)
        decay = cfg.get("weight_decay", 0.0)
        if not number(decay) or not 0 <= decay < math.inf:
            raise ValueError(f"weight_decay {decay!r} is not a number >= 0")


def _ends_in_sigmoid(net):
    layers = net.layers if isinstance(net, Sequential) else [net]
    return bool(layers) and isinstance(layers[-1], Sigmoid)


def sparse_autoencoder(sizes=(784, 196), penalty: str = "kl", *, rho: float = 0.05,
                       beta: float = 0.01, l1: float = 1e-4,
                       weight_decay: float = WEIGHT_DECAY, activation: str = "relu",
                       rng: np.random.Generator | None = None,
                       dtype=np.float32) -> SparseAutoencoder:
    """A dense sparse autoencoder; the default is UFLDL's 784-196-784 with a sigmoid code.

    ``penalty="kl"``: the code is a sigmoid and pays ``KLSparsity(rho, beta)``.
    ``penalty="l1"``: the code is a ReLU and pays ``L1Activity(l1)`` (as the Keras blog).
    ``weight_decay``: lambda of (lambda / 2) sum ||W||^2, UFLDL's 3e-3 by default
    (at tinyae's per-pixel scale); 0 turns it off.
    Hidden layers (when ``sizes`` has more than two widths) use ``activation``;
    the output is a sigmoid.
    """
    if penalty not in ("kl", "l1"):
        raise ValueError(f"penalty must be 'kl' or 'l1', got {penalty!r}")
    code_penalty = KLSparsity(rho, beta) if penalty == "kl" else L1Activity(l1)
    base = dense_autoencoder(sizes, activation=activation, rng=rng, dtype=dtype)
    code = ACTIVATION_LAYERS["sigmoid" if penalty == "kl" else "relu"]()
    encoder = Sequential(*base.encoder.layers, code)
    return SparseAutoencoder(encoder, base.decoder, code_penalty, weight_decay)


def denoising_autoencoder(sizes=SEED_SIZES, noise="gaussian:0.5", *,
                          activation: str = "relu", rng: np.random.Generator | None = None,
                          dtype=np.float32) -> DenoisingAutoencoder:
    """``dense_autoencoder(sizes)`` trained to remove ``noise`` (default: the seed's sizes)."""
    base = dense_autoencoder(sizes, activation=activation, rng=rng, dtype=dtype)
    return DenoisingAutoencoder(base.encoder, base.decoder, noise)


MODELS = {cls.__name__: cls for cls in (Autoencoder, DenoisingAutoencoder, SparseAutoencoder,
                                        VariationalAutoencoder, ContractiveAutoencoder,
                                        ConditionalVAE)}


def model_from_config(cfg, rng=None):
    """Build any tinyae model from its ``config()``; the "type" entry picks the class."""
    kind = cfg.get("type")
    if kind not in MODELS:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(MODELS)}")
    return MODELS[kind].from_config(cfg, rng)
