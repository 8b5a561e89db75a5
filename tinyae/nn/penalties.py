"""Penalties on a code: ``forward(Z) -> float``, ``backward() -> dZ``, like a loss with no target.

A model that penalises its code (the sparse autoencoder here, the variational
one next) computes the penalty in its forward, reports it from ``penalty()``
and adds ``backward()`` to the gradient that reaches the code; ``fit`` then
minimises "reconstruction loss + model.penalty()". The contractive penalty
also reads the code layer's weight: ``forward(Z, W)``, ``backward() -> (dZ, dW)``.

Scale: tinyae's MSE is a mean over all N*D pixels, and these penalties are
means over the N images of the batch, so a weight here is relative to the
per-pixel error. (UFLDL sums half the squared error over an image's pixels:
its beta = 3 is about 3 * 2 / 784 = 0.008 here, for D = 784.)

Shapes: Z (N, H), N images, H code units.
"""
import numpy as np

from .functional import eps_for
from .losses import ForwardCache


def _check_code(Z, who):
    Z = np.asarray(Z)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ValueError(f"{who}: expects a batch of codes of shape (N, H) with N >= 1, "
                         f"got shape {Z.shape}")
    if not np.issubdtype(Z.dtype, np.floating):
        raise TypeError(f"{who}: expects floating-point codes, got dtype {Z.dtype}")
    return Z


class Penalty(ForwardCache):
    """Shared parts: the check that backward follows forward, ``__call__``, ``config``."""

    def __call__(self, Z):
        return self.forward(Z)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class L1Activity(Penalty):
    """L1 penalty on the code's activations (the Keras blog's activity regulariser).

    forward:   P  = weight * (1/N) sum_n sum_j |z_nj|
    backward:  dZ = weight * sign(Z) / N          (0 at z = 0, a valid subgradient)

    Args:
        weight: lambda >= 0.
    """

    def __init__(self, weight: float = 1e-4):
        weight = float(weight)
        if not weight >= 0:
            raise ValueError(f"L1Activity: weight must be >= 0 (0 turns the penalty off), "
                             f"got {weight:g}")
        self.weight = weight

    def forward(self, Z) -> float:
        Z = _check_code(Z, "L1Activity")
        self._cache = Z
        return self.weight * float(np.abs(Z).sum()) / len(Z)

    def backward(self):
        Z = self._saved()
        return np.sign(Z) * Z.dtype.type(self.weight / len(Z))

    def config(self):
        return {"type": "L1Activity", "weight": self.weight}


class KLSparsity(Penalty):
    """The UFLDL sparsity penalty: each unit's mean activation rho_hat_j kept near rho.

    rho_hat_j = (1/N) sum_n z_nj                   (needs z in (0, 1): a sigmoid code)
    forward:   P = beta sum_j [rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))]
    backward:  dZ_nj = beta / N * (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j))

    The derivative is the same for every image n: each one moves the mean by 1/N.
    rho_hat is clipped to [eps, 1 - eps] (eps suited to the dtype) so that a
    saturated unit gives a large, finite penalty instead of log(0).

    Args:
        rho: the target mean activation, in (0, 1).
        beta: the penalty's weight, >= 0.
    """

    def __init__(self, rho: float = 0.05, beta: float = 0.01):
        rho, beta = float(rho), float(beta)
        if not 0 < rho < 1:
            raise ValueError(f"KLSparsity: rho (the target mean activation) must be in (0, 1), "
                             f"got {rho:g}; UFLDL uses 0.01 to 0.1")
        if not beta >= 0:
            raise ValueError(f"KLSparsity: beta (the weight) must be >= 0, got {beta:g}")
        self.rho, self.beta = rho, beta

    def forward(self, Z) -> float:
        Z = _check_code(Z, "KLSparsity")
        eps = float(eps_for(Z.dtype))
        rho_hat = np.clip(Z.mean(axis=0, dtype=np.float64), eps, 1 - eps)      # (H,)
        self._cache = (Z, rho_hat)
        r = self.rho
        kl = r * np.log(r / rho_hat) + (1 - r) * np.log((1 - r) / (1 - rho_hat))
        return self.beta * float(kl.sum())

    def backward(self):
        Z, rho_hat = self._saved()
        r = self.rho
        per_unit = self.beta / len(Z) * (-r / rho_hat + (1 - r) / (1 - rho_hat))  # (H,)
        return np.broadcast_to(per_unit.astype(Z.dtype), Z.shape).copy()

    def mean_activation(self):
        """rho_hat of the last forward: (H,), to compare with rho."""
        return self._saved()[1]

    def config(self):
        return {"type": "KLSparsity", "rho": self.rho, "beta": self.beta}


class Contractive(Penalty):
    """Rifai et al. (ICML 2011): the squared Frobenius norm of the code layer's Jacobian.

    The code layer is h = a(x W + b), W (D, H) stored as ``Dense`` stores it, so
    dh_j/dx_i = a'(z_j) W_ij and, per image,

        ||J_f(x)||_F^2 = sum_j a'(z_j)^2 sum_i W_ij^2 = sum_j a'(z_j)^2 w_j,   w_j = sum_i W_ij^2

    with a'(z) read off the code: sigmoid a' = h (1 - h); ReLU a' = 1[h > 0].
    (For a deeper encoder this is the Jacobian of its last layer, as Rifai's
    one-layer encoder has it.)

    forward:   P = lam / N sum_n sum_j a'_nj^2 w_j
    backward:  dH_nj = lam / N * 2 h(1 - h)(1 - 2h) w_j     (sigmoid: d[h(1-h)]/dh = 1 - 2h)
               dH_nj = 0                                 (ReLU: 1[h > 0] is flat in h)
               dW_ij = 2 lam W_ij * (1/N) sum_n a'_nj^2  (through w_j only: a' is a function
                                                          of h, whose own path to W the
                                                          model's backward follows via dH)
    Args:
        weight: lam >= 0.
        activation: "sigmoid" or "relu", the code layer's.
    Shapes:
        H (N, H) the code, W (D, H) the code layer's weight.
    """

    ACTIVATIONS = ("sigmoid", "relu")

    def __init__(self, weight: float = 1e-5, activation: str = "sigmoid"):
        weight = float(weight)
        if not (weight >= 0 and np.isfinite(weight)):
            raise ValueError(f"Contractive: weight (lambda) must be a finite number >= 0 (0 turns "
                             f"the penalty off), got {weight:g}")
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"Contractive: activation must be one of {self.ACTIVATIONS} (the "
                             f"code layer's), got {activation!r}")
        self.weight, self.activation = weight, activation

    def __call__(self, H, W):
        return self.forward(H, W)

    def _slope(self, H):
        """a'(z) from the code h = a(z): (N, H)."""
        if self.activation == "sigmoid":
            return H * (1 - H)
        return (H > 0).astype(H.dtype)

    def forward(self, H, W) -> float:
        H, W = _check_code(H, "Contractive"), np.asarray(W)
        if W.ndim != 2 or W.shape[1] != H.shape[1]:
            raise ValueError(f"Contractive: W must be the code layer's weight, shape (D, "
                             f"{H.shape[1]}) for codes of shape {H.shape}; got {W.shape}")
        w = np.einsum("ij,ij->j", W, W)                       # (H,) sum_i W_ij^2
        slope2 = self._slope(H) ** 2                          # (N, H)
        self._cache = (H, W, w, slope2)
        return self.weight * float((slope2 @ w).sum()) / len(H)

    def backward(self):
        """(dH, dW): the gradients with respect to the code and to the code layer's weight."""
        H, W, w, slope2 = self._saved()
        scale = H.dtype.type(self.weight / len(H))
        if self.activation == "sigmoid":
            dH = scale * 2 * H * (1 - H) * (1 - 2 * H) * w        # (N, H)
        else:
            dH = np.zeros_like(H)
        dW = W.dtype.type(2 * self.weight) * W * slope2.mean(axis=0)   # (D, H)
        return dH, dW

    def config(self):
        return {"type": "Contractive", "weight": self.weight, "activation": self.activation}


PENALTIES = {"L1Activity": L1Activity, "KLSparsity": KLSparsity, "Contractive": Contractive}


def penalty_from_config(cfg):
    """Build a penalty from its ``config()``."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in PENALTIES:
        raise ValueError(f"unknown penalty type {kind!r}; known: {sorted(PENALTIES)}")
    return PENALTIES[kind](**cfg)
