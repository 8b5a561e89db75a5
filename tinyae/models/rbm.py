"""The Restricted Boltzmann Machine, trained by contrastive divergence; a stack of them unrolled.

Hinton & Salakhutdinov (Science 2006) pretrained their deep autoencoder as a
stack of RBMs: each learns a model of the codes below it, then the stack is
unrolled into an encoder (the up-passes) and a decoder (the down-passes, W^T).

An RBM has visible units v (D,) in {0, 1} and hidden units h (H,), an energy

    E(v, h) = -v^T W h - b_v^T v - b_h^T h              Bernoulli hidden units, h in {0, 1}
    E(v, h) = -v^T W h - b_v^T v - b_h^T h + ||h||^2/2  Gaussian (linear) hidden units, h in R

and p(v, h) = exp(-E(v, h)) / Z. No connections within a layer, so both
conditionals factorise:

    p(h_j = 1 | v) = sigmoid(b_h_j + v^T W[:, j])      Bernoulli hidden
    p(h_j | v)     = N(b_h_j + v^T W[:, j], 1)          Gaussian hidden (the paper's 30-unit code)
    p(v_i = 1 | h) = sigmoid(b_v_i + W[i, :] h)

Summing (or integrating) h out gives the free energy, p(v) = exp(-F(v)) / Z,
with c = b_h + W^T v:

    F(v) = -b_v^T v - sum_j softplus(c_j)                       Bernoulli hidden
    F(v) = -b_v^T v - ||c||^2 / 2 - (H/2) log(2 pi)              Gaussian hidden

The log-likelihood's gradient is a data term minus a model term,

    d log p(v) / dW = <v h^T>_data - <v h^T>_model     (b_v: <v>; b_h: <h>; h at its mean given v)

and contrastive divergence (CD-k) replaces the model's expectation by k steps
of Gibbs sampling from the data, v0 -> h0 -> v1 -> ... -> vk; persistent CD
keeps the chains between updates instead of restarting them at the data.

Shapes: V (N, D) visible, P (N, H) hidden means; W (D, H) as ``Dense`` stores it.
"""
import time
from itertools import pairwise

import numpy as np

from ..nn.functional import sigmoid
from ..nn.layers import Dense, Sequential, Sigmoid
from ..progress import Progress
from .autoencoder import Autoencoder

HIDDEN = ("bernoulli", "gaussian")


class RBM:
    """A Bernoulli-visible RBM with Bernoulli or Gaussian (unit-variance, linear) hidden units.

    Args:
        n_visible, n_hidden: D and H.
        hidden: "bernoulli" or "gaussian".
        rng: for the initial weights, N(0, 0.01^2) (Hinton's guide); biases start at 0.
        dtype: of the parameters.
    """

    def __init__(self, n_visible: int, n_hidden: int, hidden: str = "bernoulli", *,
                 rng: np.random.Generator | None = None, dtype=np.float32):
        if hidden not in HIDDEN:
            raise ValueError(f"RBM: hidden must be one of {HIDDEN}, got {hidden!r}")
        if int(n_visible) < 1 or int(n_hidden) < 1:
            raise ValueError(f"RBM: n_visible and n_hidden must be >= 1, got {n_visible} and "
                             f"{n_hidden}")
        rng = np.random.default_rng() if rng is None else rng
        self.n_visible, self.n_hidden, self.hidden = int(n_visible), int(n_hidden), hidden
        self.W = (0.01 * rng.standard_normal((self.n_visible, self.n_hidden))).astype(dtype)
        self.b_v = np.zeros(self.n_visible, dtype)
        self.b_h = np.zeros(self.n_hidden, dtype)
        self.chain = None            # persistent CD's fantasy particles, (N, D)

    def params(self):
        return {"W": self.W, "b_v": self.b_v, "b_h": self.b_h}

    # --- the conditionals ------------------------------------------------------------
    def p_h(self, V):
        """E[h | v]: sigmoid(c) or c, with c = b_h + V W.  (N, D) -> (N, H)"""
        c = V @ self.W + self.b_h
        return sigmoid(c).astype(c.dtype, copy=False) if self.hidden == "bernoulli" else c

    def sample_h(self, V, rng):
        P = self.p_h(V)
        if self.hidden == "bernoulli":
            return (rng.random(P.shape) < P).astype(P.dtype)
        return P + rng.standard_normal(P.shape).astype(P.dtype)

    def p_v(self, Hs):
        """p(v = 1 | h) = sigmoid(b_v + h W^T).  (N, H) -> (N, D)"""
        a = Hs @ self.W.T + self.b_v
        return sigmoid(a).astype(a.dtype, copy=False)

    def sample_v(self, Hs, rng):
        P = self.p_v(Hs)
        return (rng.random(P.shape) < P).astype(P.dtype)

    def gibbs(self, V, k, rng):
        """k steps v -> h ~ p(h|v) -> v ~ p(v|h), from V: (N, D) -> (N, D)."""
        for _ in range(k):
            V = self.sample_v(self.sample_h(V, rng), rng)
        return V

    def sample(self, n: int, k: int = 1000, rng: np.random.Generator | None = None, start=None):
        """What the model believes images look like: p(v | h) after k Gibbs steps.

        The n chains start from random binary images, or from ``start`` (N, D) (then
        n is N: starting at data shows the modes near it sooner).  -> (n, D)
        """
        k = _check_k(k)
        rng = np.random.default_rng() if rng is None else rng
        if start is None:
            V = (rng.random((n, self.n_visible)) < 0.5).astype(self.W.dtype)
        else:
            V = self._check_visible(start)
        V = self.gibbs(V, k - 1, rng) if k > 1 else V
        return self.p_v(self.sample_h(V, rng))

    # --- energies ----------------------------------------------------------------
    def energy(self, V, Hs):
        """E(v, h) per row: (N, D), (N, H) -> (N,)."""
        E = -np.einsum("nd,dh,nh->n", V, self.W, Hs) - V @ self.b_v - Hs @ self.b_h
        return E + 0.5 * np.sum(Hs ** 2, axis=1) if self.hidden == "gaussian" else E

    def free_energy(self, V):
        """F(v) = -log sum_h exp(-E(v, h)) (an integral for Gaussian h): (N, D) -> (N,)."""
        c = V @ self.W + self.b_h                                  # (N, H)
        if self.hidden == "bernoulli":
            return -V @ self.b_v - np.logaddexp(0, c).sum(axis=1)    # softplus, no overflow
        log_gauss = 0.5 * self.n_hidden * np.log(2 * np.pi)        # the integral's sqrt(2 pi)^H
        return -V @ self.b_v - 0.5 * np.sum(c ** 2, axis=1) - log_gauss

    # --- learning ----------------------------------------------------------------
    def statistics(self, V):
        """The sufficient statistics with h at its mean given v: (<v h^T>, <v>, <h>) over rows."""
        P = self.p_h(V)                                             # (N, H)
        return {"W": V.T @ P / len(V), "b_v": V.mean(axis=0), "b_h": P.mean(axis=0)}

    def contrastive_divergence(self, V, k: int = 1, rng: np.random.Generator | None = None,
                               persistent: bool = False):
        """The CD-k (or persistent CD) estimate of d log p / d(W, b_v, b_h), averaged over V.

            grad = statistics(V) - statistics(V_k)
            V_k  = k Gibbs steps from V (CD), or from the kept chains (persistent CD,
                   which starts them at V the first time and keeps V_k for the next call)

        Returns {"W": (D, H), "b_v": (D,), "b_h": (H,)}: an ascent direction.
        """
        V = self._check_visible(V)
        k = _check_k(k)
        rng = np.random.default_rng() if rng is None else rng
        start = V
        if persistent:
            if self.chain is None:              # the fantasy particles start at the data;
                self.chain = V.copy()           # their number need not match later batches
            start = self.chain
        Vk = self.gibbs(start, k, rng)
        if persistent:
            self.chain = Vk
        pos, neg = self.statistics(V), self.statistics(Vk)
        return {name: pos[name] - neg[name] for name in pos}

    # --- watching training ---------------------------------------------------------
    def reconstruct(self, V):
        """The mean-field up-down pass p_v(p_h(v)): (N, D) -> (N, D)."""
        return self.p_v(self.p_h(self._check_visible(V)))

    def reconstruction_error(self, V) -> float:
        """Mean over images of ||v - p_v(p_h(v))||^2 (not the objective CD follows, but a
        number that falls while it learns)."""
        V = self._check_visible(V)
        return float(np.mean(np.sum((V - self.p_v(self.p_h(V))) ** 2, axis=1)))

    def pseudo_log_likelihood(self, V, rng: np.random.Generator | None = None,
                              exact: bool = False):
        """sum_i log p(v_i | v_-i) per image (N,), for binary V.

        p(v_i | v_-i) = sigmoid(F(v~) - F(v)), v~ = v with bit i flipped (Z cancels).
        ``exact``: all D bits; else one random bit per image, times D (an unbiased
        estimate of the same sum, D times cheaper).
        """
        V = self._check_visible(V)
        if not np.all((V == 0) | (V == 1)):
            raise ValueError("pseudo_log_likelihood: needs binary visible data (0 or 1); "
                             "binarise first, e.g. (V > 0.5)")
        F = self.free_energy(V)
        if exact:
            return sum(_log_sigmoid(self.free_energy(_flip(V, np.full(len(V), i))) - F)
                       for i in range(self.n_visible))
        rng = np.random.default_rng() if rng is None else rng
        i = rng.integers(0, self.n_visible, len(V))
        return self.n_visible * _log_sigmoid(self.free_energy(_flip(V, i)) - F)

    def _check_visible(self, V):
        return check_visible(V, self.n_visible, self.W.dtype)


def check_visible(V, n_visible, dtype=np.float32):
    """V as a float array of shape (N, n_visible) in [0, 1], or a ValueError that says why not."""
    V = np.asarray(V)
    if V.ndim != 2 or V.shape[1] != n_visible or len(V) == 0:
        raise ValueError(f"RBM: expects visible data of shape (N, {n_visible}) with N >= 1, "
                         f"got {V.shape}")
    if not np.issubdtype(V.dtype, np.floating):
        V = V.astype(dtype)
    if not np.all(np.isfinite(V)):
        raise ValueError("RBM: the visible data holds NaN or infinite values; Bernoulli "
                         "visible units take values (or probabilities) in [0, 1]")
    if V.min() < 0 or V.max() > 1:
        raise ValueError(f"RBM: Bernoulli visible units take values (or probabilities) in "
                         f"[0, 1]; got values in [{V.min():g}, {V.max():g}]; scale the "
                         "data to [0, 1] first (e.g. pixels / 255)")
    return V


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"CD needs k >= 1 Gibbs steps (an integer), got {k!r}; CD-1 is the "
                         "usual choice")
    return int(k)


def _check_settings(who, epochs, lr, k, batch_size, momentum, weight_decay):
    """Refuse a setting that cannot train, before any work; returns k as an int."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{who}: {name} must be an integer >= 1, got {value!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"{who}: the learning rate lr must be > 0 and finite, got {lr!r}; "
                         "Hinton & Salakhutdinov used 0.1 (0.001 for a Gaussian-hidden layer)")
    if not (0 <= momentum < 1 and 0 <= weight_decay < np.inf):
        raise ValueError(f"{who}: momentum must be in [0, 1) and weight_decay >= 0, got "
                         f"{momentum!r} and {weight_decay!r}")
    return _check_k(k)


def _flip(V, i):
    """V with bit i[n] of each row n flipped."""
    V = V.copy()
    rows = np.arange(len(V))
    V[rows, i] = 1 - V[rows, i]
    return V


def _log_sigmoid(x):
    return -np.logaddexp(0, -x)


def train_rbm(rbm: RBM, X, *, epochs: int = 1, lr: float = 0.1, k: int = 1,
              batch_size: int = 100, persistent: bool = False, momentum: float = 0.5,
              weight_decay: float = 2e-4, rng: np.random.Generator | None = None,
              callback=None, progress: bool = False, name: str = "RBM"):
    """Train ``rbm`` on X (N, D) in [0, 1] with CD-k (or persistent CD) and SGD with momentum.

        Delta_t = momentum Delta_{t-1} + lr (grad - weight_decay * W)     (no decay on biases)
        theta  += Delta_t                                                  (ascent)

    Hinton & Salakhutdinov's settings: lr 0.1 (0.001 for a Gaussian-hidden layer),
    momentum 0.5 then 0.9, weight decay 2e-4, batches of 100.
    ``callback(epoch, rbm)`` runs after each epoch. ``progress``: a bar per epoch and a
    line after it, named by ``name``, as ``fit`` shows them. Returns the reconstruction
    error (``RBM.reconstruction_error``) of X after each epoch, a list.
    """
    X = rbm._check_visible(X)
    k = _check_settings("train_rbm", epochs, lr, k, batch_size, momentum, weight_decay)
    rng = np.random.default_rng() if rng is None else rng
    velocity = {key: np.zeros_like(p) for key, p in rbm.params().items()}
    errors = []
    show = Progress(progress, int(epochs), -(-len(X) // int(batch_size)), what=f"{name} epoch")
    for epoch in range(int(epochs)):
        began, order = time.perf_counter(), rng.permutation(len(X))
        show.start(epoch + 1)
        try:
            for start in range(0, len(X), int(batch_size)):
                grads = rbm.contrastive_divergence(X[order[start:start + batch_size]], k, rng,
                                                   persistent)
                grads["W"] = grads["W"] - weight_decay * rbm.W
                for key, p in rbm.params().items():
                    velocity[key] = momentum * velocity[key] + lr * grads[key]
                    p += velocity[key].astype(p.dtype, copy=False)        # in place: p is rbm's
                show.step()
        finally:
            show.close()
        errors.append(rbm.reconstruction_error(X))
        show.line(f"{name} epoch {epoch + 1}/{int(epochs)}: squared reconstruction error per "
                  f"image {errors[-1]:.2f} ({time.perf_counter() - began:.1f} s)")
        if callback is not None:
            callback(epoch, rbm)
    return errors


# --- a stack of RBMs as a deep autoencoder ------------------------------------------
def pretrain_stack(X, sizes, *, epochs: int = 1, lr: float = 0.1, code_lr: float = 0.001,
                   linear_code: bool = True, k: int = 1, batch_size: int = 100,
                   persistent: bool = False, momentum: float = 0.5, weight_decay: float = 2e-4,
                   rng: np.random.Generator | None = None, dtype=np.float32, callback=None,
                   progress: bool = False):
    """Greedy pretraining, Hinton & Salakhutdinov's way: an RBM per pair of ``sizes``, each
    trained (``train_rbm``) on the hidden probabilities p_h of the one below.

    sizes: e.g. (784, 1000, 500, 250, 30), the paper's; the top RBM has Gaussian hidden
    units when ``linear_code`` (the paper's linear code layer) and learns at ``code_lr``.
    The rest are ``train_rbm``'s, for every level. ``callback(level, rbm, errors)`` runs
    after each level; ``progress`` shows each level's epochs as ``train_rbm`` does. Every setting is checked before the first level trains.
    Returns the list of RBMs, bottom first; ``unroll`` it for fine-tuning.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"pretrain_stack: sizes must list at least two positive widths, got "
                         f"{sizes}")
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != sizes[0]:
        raise ValueError(f"pretrain_stack: the data must have sizes[0] = {sizes[0]} features "
                         f"per row, got shape {X.shape}")
    for rate in (lr, code_lr):
        _check_settings("pretrain_stack", epochs, rate, k, batch_size, momentum, weight_decay)
    check_visible(X, sizes[0])
    settings = dict(k=k, batch_size=batch_size, persistent=persistent, momentum=momentum,
                    weight_decay=weight_decay)
    rng = np.random.default_rng() if rng is None else rng
    data, stack = X, []
    for level, (d, h) in enumerate(pairwise(sizes)):
        top = level == len(sizes) - 2
        gaussian = top and linear_code
        rbm = RBM(d, h, "gaussian" if gaussian else "bernoulli", rng=rng, dtype=dtype)
        errors = train_rbm(rbm, data, epochs=epochs, lr=code_lr if gaussian else lr, rng=rng,
                           progress=progress, name=f"RBM {level + 1}/{len(sizes) - 1} ({d}-{h})",
                           **settings)
        stack.append(rbm)
        if callback is not None:
            callback(level, rbm, errors)
        if not top:
            data = rbm.p_h(data)            # probabilities, as the paper's code passes up
    return stack


def unroll(rbms) -> Autoencoder:
    """The deep autoencoder of a stack of RBMs (Hinton & Salakhutdinov's Fig. 1, "unrolling").

    encoder: for each RBM bottom-up, Dense(W, b_h) then Sigmoid (nothing after a
             Gaussian-hidden RBM's Dense: its mean b_h + W^T v is the linear code)
    decoder: for each RBM top-down, Dense(W^T, b_v) then Sigmoid
    The weights are copies: fine-tuning the autoencoder leaves the RBMs as they were.
    """
    rbms = list(rbms)
    if not rbms:
        raise ValueError("unroll: needs at least one RBM")
    for lower, upper in pairwise(rbms):
        if lower.n_hidden != upper.n_visible:
            raise ValueError(f"unroll: the stack's sizes do not chain: an RBM with "
                             f"{lower.n_hidden} hidden units is below one with "
                             f"{upper.n_visible} visible units; each RBM's visible layer "
                             "must be the hidden layer of the one below")
        if lower.hidden == "gaussian":
            raise ValueError("unroll: only the top RBM may have Gaussian hidden units (the "
                             "linear code); the RBMs above read binary probabilities")
    encoder, decoder = [], []
    for rbm in rbms:
        encoder += [_dense(rbm.W, rbm.b_h)] + ([Sigmoid()] if rbm.hidden == "bernoulli" else [])
    for rbm in reversed(rbms):
        decoder += [_dense(rbm.W.T, rbm.b_v), Sigmoid()]
    return Autoencoder(Sequential(*encoder), Sequential(*decoder))


def _dense(W, b):
    layer = Dense(W.shape[0], W.shape[1], init="glorot", rng=np.random.default_rng(0),
                  dtype=W.dtype)
    layer.params["W"][...] = W
    layer.params["b"][...] = b
    return layer
