"""Autoencoders that answer the plain one's drawbacks: denoising and sparse.

Both are an ``Autoencoder`` (an ``encoder`` and a ``decoder``, each a
``Sequential`` of the plain layers) with one change to what training sees:

    denoising:  minimise  l(g(f(corrupt(X))), X)             clean targets, noisy inputs
    sparse:     minimise  l(g(f(X)), X) + P(f(X))            a penalty on the code

``fit`` asks every model for both hooks: ``corrupt(X, rng)`` (when the model
has one) makes the inputs of a step, and ``penalty()`` is added to the loss.
The stacked autoencoder is trained differently, not built differently: see
``tinyae.stacked``.
"""
import numpy as np

from .corrupt import Corruption, parse
from .layers import ACTIVATION_LAYERS, Sequential, Sigmoid
from .models import Autoencoder, dense_autoencoder
from .penalties import KLSparsity, L1Activity, Penalty, penalty_from_config
from .vae import VariationalAutoencoder


class DenoisingAutoencoder(Autoencoder):
    """Trained to undo ``noise``: ``fit`` feeds it corrupt(X) and scores against X.

    At use (``encode``, ``reconstruct``, ``forward``) it is a plain
    autoencoder: the noise belongs to training only.

    Args:
        encoder, decoder: as for ``Autoencoder``.
        noise: a ``tinyae.corrupt.Corruption`` or its text, e.g. "gaussian:0.5",
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


class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code pays a ``code_penalty`` (L1 or KL sparsity).

    forward:   Z = f(X),  X' = g(Z),  and P(Z) is computed on the way
    backward:  dZ = g.backward(dX') + dP/dZ,  then f.backward(dZ)

    Args:
        encoder, decoder: as for ``Autoencoder``; for ``KLSparsity`` the
            encoder must end in a sigmoid (a code in (0, 1)).
        code_penalty: ``L1Activity(weight)`` or ``KLSparsity(rho, beta)``.
    Shapes:
        X (N, D) -> Z (N, H) -> X' (N, D)
    """

    def __init__(self, encoder, decoder, code_penalty: Penalty):
        super().__init__(encoder, decoder)
        if isinstance(code_penalty, KLSparsity) and not _ends_in_sigmoid(encoder):
            raise ValueError("SparseAutoencoder: the KL sparsity penalty needs a code in (0, 1), "
                             "so the encoder must end in a Sigmoid (sparse_autoencoder(...) "
                             "builds one); use L1Activity for other codes")
        self.code_penalty = code_penalty
        self._penalty = None

    def forward(self, X):
        self.Z = self.encoder.forward(X)                         # (N, H)
        self._penalty = self.code_penalty.forward(self.Z)
        return self.decoder.forward(self.Z)

    __call__ = forward

    def penalty(self) -> float:
        """P(Z) for the code of the last forward."""
        if self._penalty is None:
            raise RuntimeError("SparseAutoencoder.penalty() was called before forward()")
        return self._penalty

    def backward(self, dX):
        dZ = self.decoder.backward(dX) + self.code_penalty.backward()      # (N, H)
        return self.encoder.backward(dZ)

    def config(self):
        return {**super().config(), "code_penalty": self.code_penalty.config()}

    @classmethod
    def from_config(cls, cfg, rng=None):
        base = Autoencoder.from_config(cfg, rng)
        return cls(base.encoder, base.decoder, penalty_from_config(cfg["code_penalty"]))


def _ends_in_sigmoid(net):
    layers = net.layers if isinstance(net, Sequential) else [net]
    return bool(layers) and isinstance(layers[-1], Sigmoid)


def sparse_autoencoder(sizes=(784, 196), penalty: str = "kl", *, rho: float = 0.05,
                       beta: float = 0.01, l1: float = 1e-4, activation: str = "relu",
                       rng: np.random.Generator | None = None,
                       dtype=np.float32) -> SparseAutoencoder:
    """A dense sparse autoencoder; the default is UFLDL's 784-196-784 with a sigmoid code.

    ``penalty="kl"``: the code is a sigmoid and pays ``KLSparsity(rho, beta)``.
    ``penalty="l1"``: the code is a ReLU and pays ``L1Activity(l1)`` (as the Keras blog).
    Hidden layers (when ``sizes`` has more than two widths) use ``activation``;
    the output is a sigmoid.
    """
    if penalty not in ("kl", "l1"):
        raise ValueError(f"penalty must be 'kl' or 'l1', got {penalty!r}")
    code_penalty = KLSparsity(rho, beta) if penalty == "kl" else L1Activity(l1)
    base = dense_autoencoder(sizes, activation=activation, rng=rng, dtype=dtype)
    code = ACTIVATION_LAYERS["sigmoid" if penalty == "kl" else "relu"]()
    encoder = Sequential(*base.encoder.layers, code)
    return SparseAutoencoder(encoder, base.decoder, code_penalty)


def denoising_autoencoder(sizes=(784, 512, 256, 64, 2), noise="gaussian:0.5", *,
                          activation: str = "relu", rng: np.random.Generator | None = None,
                          dtype=np.float32) -> DenoisingAutoencoder:
    """``dense_autoencoder(sizes)`` trained to remove ``noise`` (default: the seed's sizes)."""
    base = dense_autoencoder(sizes, activation=activation, rng=rng, dtype=dtype)
    return DenoisingAutoencoder(base.encoder, base.decoder, noise)


MODELS = {cls.__name__: cls for cls in (Autoencoder, DenoisingAutoencoder, SparseAutoencoder,
                                        VariationalAutoencoder)}


def model_from_config(cfg, rng=None):
    """Build any tinyae model from its ``config()``; the "type" entry picks the class."""
    kind = cfg.get("type")
    if kind not in MODELS:
        raise ValueError(f"unknown model type {kind!r}; known: {sorted(MODELS)}")
    return MODELS[kind].from_config(cfg, rng)
