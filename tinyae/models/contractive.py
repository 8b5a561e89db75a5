"""The contractive autoencoder (Rifai et al., ICML 2011): a code small input changes barely move.

    minimise  l(g(f(X)), X) + lam * mean_n ||J_f(x_n)||_F^2

where J_f is the Jacobian of the encoder's code layer h = a(x W + b) with
respect to its input (``tinyae.nn.penalties.Contractive`` has the formulas).
The reconstruction term wants h to follow x; the penalty wants h flat in x;
together they keep the code sensitive only along the directions the data
varies in, which makes the model less sensitive to small noise.
"""
import math

import numpy as np

from ..nn.layers import ACTIVATION_LAYERS, Dense, ReLU, Sequential, Sigmoid
from ..nn.penalties import Contractive
from .autoencoder import Autoencoder, dense_autoencoder, number

CODE_ACTIVATIONS = {Sigmoid: "sigmoid", ReLU: "relu"}
# lam measured on 3,000 MNIST images, 10 epochs, Adam 3e-3, 5 seeds (tests/test_contractive.py):
# of 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, the smallest kept the clean error closest to the plain
# model's (+1%) and had the lowest error under Gaussian noise of std 0.1; larger ones cost
# more clean error (1e-3: +62%).
LAM = 1e-5


class ContractiveAutoencoder(Autoencoder):
    """An autoencoder whose code layer pays ``lam * ||J||_F^2``.

    forward:   Z = f(X) (the code layer's Dense W and activation end f),  X' = g(Z),
               P = Contractive(lam).forward(Z, W)
    backward:  dZ = g.backward(dX') + dP/dZ,  f.backward(dZ),  then dW += dP/dW directly
               (after f's backward, which writes its dW first)

    Args:
        encoder: a ``Sequential`` ending in ``Dense`` then ``Sigmoid`` or ``ReLU``.
        decoder: as for ``Autoencoder``.
        lam: the penalty's weight, >= 0, relative to the per-pixel MSE.
    Shapes:
        X (N, D) -> Z (N, H) -> X' (N, D)
    """

    def __init__(self, encoder, decoder, lam: float = LAM):
        super().__init__(encoder, decoder)
        layers = encoder.layers if isinstance(encoder, Sequential) else []
        activation = CODE_ACTIVATIONS.get(type(layers[-1])) if len(layers) >= 2 else None
        if activation is None or not isinstance(layers[-2], Dense):
            raise ValueError("ContractiveAutoencoder: the encoder must end in a Dense and then a "
                             "Sigmoid or ReLU (the code layer whose Jacobian is penalised); "
                             "contractive_autoencoder(...) builds one")
        self.code_penalty = Contractive(lam, activation)
        self._penalty = None

    @property
    def lam(self):
        return self.code_penalty.weight

    @property
    def code_layer(self):
        """The Dense of h = a(x W + b)."""
        return self.encoder.layers[-2]

    def forward(self, X):
        self.Z = self.encoder.forward(X)                                         # (N, H)
        self._penalty = self.code_penalty.forward(self.Z, self.code_layer.params["W"])
        return self.decoder.forward(self.Z)

    __call__ = forward

    def penalty(self) -> float:
        """lam * mean ||J_f(x)||_F^2 for the batch of the last forward."""
        if self._penalty is None:
            raise RuntimeError("ContractiveAutoencoder.penalty() was called before forward()")
        return self._penalty

    def backward(self, dX):
        dZ_penalty, dW_penalty = self.code_penalty.backward()
        dX_in = self.encoder.backward(self.decoder.backward(dX) + dZ_penalty)
        self.code_layer.grads["W"] += dW_penalty
        return dX_in

    def config(self):
        return {**super().config(), "lam": self.lam}

    @classmethod
    def from_config(cls, cfg, rng=None):
        base = Autoencoder.from_config(cfg, rng)
        return cls(base.encoder, base.decoder, cfg["lam"])

    OPTIONS = frozenset({"lam"})

    @classmethod
    def check_options(cls, cfg):
        lam = cfg.get("lam")
        if not number(lam) or not 0 <= lam < math.inf:
            raise ValueError(f"lam (the contractive penalty's weight) {lam!r} is not a finite "
                             "number >= 0")
        encoder = cfg.get("encoder")
        layers = encoder.get("layers") if isinstance(encoder, dict) else None
        names = {cls.__name__ for cls in CODE_ACTIVATIONS}
        if not (isinstance(layers, list) and len(layers) >= 2 and all(
                isinstance(x, dict) for x in layers[-2:]) and layers[-2].get("type") == "Dense"
                and layers[-1].get("type") in names):
            raise ValueError("the encoder does not end in a Dense and a Sigmoid or ReLU, the "
                             "code layer a contractive model penalises")


def contractive_autoencoder(sizes=(784, 196), lam: float = LAM, *, code: str = "sigmoid",
                            activation: str = "relu", rng: np.random.Generator | None = None,
                            dtype=np.float32) -> ContractiveAutoencoder:
    """A dense contractive autoencoder; the default is Rifai's shape, 784-196-784, sigmoid code.

    ``code``: the code layer's activation, "sigmoid" (Rifai's) or "relu".
    Hidden layers (when ``sizes`` has more than two widths) use ``activation``;
    the output is a sigmoid.
    """
    if code not in Contractive.ACTIVATIONS:
        raise ValueError(f"code must be one of {Contractive.ACTIVATIONS}, got {code!r}")
    base = dense_autoencoder(sizes, activation=activation, rng=rng, dtype=dtype)
    encoder = Sequential(*base.encoder.layers, ACTIVATION_LAYERS[code]())
    return ContractiveAutoencoder(encoder, base.decoder, lam)
