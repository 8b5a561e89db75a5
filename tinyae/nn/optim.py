"""Optimisers: update parameters in place from their accumulated gradients.

Both take the ``(name, param, grad)`` triples of ``model.parameters()``.
"""
import numpy as np


class Optimizer:
    """Holds the parameter list; ``zero_grad()`` and state (de)serialisation.

    A subclass writes ``step()`` (the update) and ``_load(state)`` (restore the
    arrays and numbers that its ``state_dict()`` returns).
    """

    def __init__(self, params, lr):
        self.params = [(name, p, g) for name, p, g in params]
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list; pass "
                             "model.parameters() of a model that has parameters.")
        _check(lr > 0, f"lr must be > 0, got {lr}")
        self.lr = float(lr)

    def zero_grad(self):
        """Set every gradient to zero."""
        for _, _, g in self.params:
            g.fill(0)

    def step(self):
        """Update every parameter in place from its gradient."""
        raise NotImplementedError

    def state_dict(self):
        """Arrays and numbers needed to resume: {"t": .., "m.<name>": array, ...}."""
        return {}

    def _load(self, state):
        """Copy ``state`` (already checked against ``state_dict()``) into the optimiser."""

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned (shapes must match)."""
        for key, arr in self.state_dict().items():
            if key not in state:
                raise ValueError(f"optimizer state is missing {key!r}")
            if np.ndim(arr) and np.shape(state[key]) != arr.shape:
                raise ValueError(f"optimizer state {key!r} has shape {np.shape(state[key])}, "
                                 f"expected {arr.shape}: it was saved for another model")
        self._load(state)


MAX_STEPS = 2 ** 53          # Adam's step counter: exact as a float, saved as an int64


def _check(ok, message):
    if not ok:
        raise ValueError(message)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (as torch.optim.SGD).

    g <- g + wd p;   v <- mu v + g;   p <- p - lr v      (v = g when mu = 0)
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        _check(0 <= momentum < 1, f"momentum must be in [0, 1), got {momentum}")
        _check(0 <= weight_decay < float("inf"),
               f"weight_decay must be a finite number >= 0, got {weight_decay}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.velocity = [np.zeros(p.shape, p.dtype) for _, p, _ in self.params]

    def step(self):
        for (_, p, g), v in zip(self.params, self.velocity):
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                v[...] = self.momentum * v + g
                g = v
            p -= self.lr * g

    def state_dict(self):
        return {f"velocity.{name}": v for (name, _, _), v in zip(self.params, self.velocity)}

    def _load(self, state):
        for (name, _, _), v in zip(self.params, self.velocity):
            v[...] = state[f"velocity.{name}"]


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction; the update of torch.optim.Adam.

    m <- b1 m + (1 - b1) g            first moment (mean of g)
    v <- b2 v + (1 - b2) g^2          second moment (mean of g^2)
    p <- p - lr m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        _check(0 <= b1 < 1 and 0 <= b2 < 1, f"betas must each be in [0, 1), got {betas}")
        _check(eps > 0, f"eps must be > 0, got {eps}")
        _check(0 <= weight_decay < float("inf"),
               f"weight_decay must be a finite number >= 0, got {weight_decay}")
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), float(weight_decay)
        # np.zeros, not zeros_like: zero pages cost no memory until the first step writes
        # them, so an optimiser about to load a checkpoint's moments holds them once.
        self.m = [np.zeros(p.shape, p.dtype) for _, p, _ in self.params]
        self.v = [np.zeros(p.shape, p.dtype) for _, p, _ in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        b1, b2 = self.betas
        for (_, p, g), m, v in zip(self.params, self.m, self.v):
            if self.weight_decay:
                g = g + self.weight_decay * p          # a copy: the stored grad stays as computed
            m[...] = b1 * m + (1 - b1) * g
            v[...] = b2 * v + (1 - b2) * g ** 2
            m_hat = m / (1 - b1 ** self.t)             # bias corrections: m and v start at 0
            v_hat = v / (1 - b2 ** self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_dict(self):
        state = {"t": np.array(self.t)}
        for (name, _, _), m, v in zip(self.params, self.m, self.v):
            state[f"m.{name}"], state[f"v.{name}"] = m, v
        return state

    def _load(self, state):
        t = int(state["t"])
        if not 0 <= t <= MAX_STEPS:     # it is saved again as an int64: keep it one
            raise ValueError(f"optimizer state 't' is {t}, not a step count in 0..{MAX_STEPS:,}")
        self.t = t
        for (name, _, _), m, v in zip(self.params, self.m, self.v):
            m[...], v[...] = state[f"m.{name}"], state[f"v.{name}"]
