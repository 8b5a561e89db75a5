"""Learning-rate schedules: the step size of an optimiser as a function of the step count.

The names follow ``torch.optim.lr_scheduler``, the vocabulary learners meet next.
A schedule owns one number, ``t`` (optimiser steps taken so far), and writes
``optimizer.lr = lr_at(t)`` whenever ``t`` changes; the optimiser reads
``optimizer.lr`` at every ``step()``. So one training step is

    optimizer.step()        uses lr_at(t)
    schedule.step()         t <- t + 1;  optimizer.lr <- lr_at(t)

Every schedule here counts optimiser steps (mini-batches), not epochs:
``fit`` passes ``total_steps = epochs * steps_per_epoch``. ``lr`` is the peak
(the optimiser's own ``lr`` when not given).

Why decay at all: Adam's update has a size of about ``lr`` whatever the
gradient, so with a constant ``lr`` the weights keep jittering around the
minimum at the end of training; a small final ``lr`` lets them settle there.
"""
import math


class Schedule:
    """Base class: ``step()``, ``lr_at(t)`` and (de)serialisation of the state.

    Subclasses implement ``lr_at`` and list their hyper-parameters in ``_hyper``.
    """
    _hyper = ()
    _before = {}     # hyper-parameters added later: the value that states saved before them had

    def __init__(self, optimizer, lr=None):
        if not hasattr(optimizer, "lr") or not hasattr(optimizer, "step"):
            raise TypeError(f"{type(self).__name__} needs an optimiser with .lr and .step() "
                            f"(e.g. tinyae.Adam), got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.lr = _positive_lr(optimizer.lr if lr is None else lr, type(self).__name__)
        self.t = 0

    def lr_at(self, t: int) -> float:
        raise NotImplementedError

    def _apply(self):
        self.optimizer.lr = float(self.lr_at(self.t))

    def step(self):
        """Count one optimiser step and set the lr of the next one."""
        self.t += 1
        self._apply()

    def go_to(self, t: int):
        """Stand at step ``t`` (e.g. back at the start of an epoch that is repeated)."""
        self.t = _steps(t, "t", type(self).__name__, minimum=0)
        self._apply()

    def state_dict(self) -> dict:
        """JSON-ready state: the kind, the optimiser's kind, ``t`` and the hyper-parameters."""
        return {"name": type(self).__name__, "optimizer": type(self.optimizer).__name__,
                "t": self.t, "lr": self.lr, **{k: getattr(self, k) for k in self._hyper}}

    def load_state_dict(self, state: dict):
        """Continue where ``state_dict()`` left off: same curve, same position on it."""
        state = {**self._before, **state}
        mine, theirs = type(self.optimizer).__name__, state.get("optimizer")
        if state.get("name") != type(self).__name__:
            raise ValueError(f"the saved schedule is {state.get('name')!r}, this one is "
                             f"{type(self).__name__}; build a {state.get('name')} (or use "
                             "schedules.from_state_dict) to resume it.")
        if theirs != mine:
            raise ValueError(f"the saved {type(self).__name__} schedule drove a {theirs} "
                             f"optimiser, but this one is {mine}; resume with a {theirs} "
                             f"optimiser, or start a new schedule for the {mine}.")
        for key in ("lr", *self._hyper):
            setattr(self, key, state[key])
        self.go_to(state["t"])

    def __repr__(self):
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in ("lr", *self._hyper))
        return f"{type(self).__name__}({args}, t={self.t})"


def _positive_lr(lr, who):
    try:
        ok = float(lr) > 0 and math.isfinite(float(lr))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{who}: the peak lr must be a finite number > 0, got {lr!r}; "
                         "pass e.g. lr=1e-3 (--lr 1e-3).")
    return float(lr)


def _steps(value, name, who, minimum=1):
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{who}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _cosine(a, b, s):
    """From a (s = 0) to b (s = 1) along half a cosine wave."""
    return b + (a - b) * (1 + math.cos(math.pi * s)) / 2


class Constant(Schedule):
    """lr_t = lr: no schedule at all (``--schedule none``), kept for a uniform interface."""

    def __init__(self, optimizer, lr: float | None = None):
        super().__init__(optimizer, lr)
        self._apply()

    def lr_at(self, t):
        return self.lr


class StepLR(Schedule):
    """Step decay (torch's StepLR): multiply by ``gamma`` every ``step_size`` steps.

    lr_t = lr * gamma ** floor(t / step_size)
    """
    _hyper = ("step_size", "gamma")

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, lr: float | None = None):
        super().__init__(optimizer, lr)
        self.step_size = _steps(step_size, "step_size", "StepLR")
        if not 0 < gamma <= 1:
            raise ValueError(f"StepLR: gamma must be in (0, 1], got {gamma!r}; e.g. gamma=0.1")
        self.gamma = float(gamma)
        self._apply()

    def lr_at(self, t):
        return self.lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(Schedule):
    """Cosine annealing (torch's CosineAnnealingLR) from ``lr`` down to ``eta_min``.

    lr_t = eta_min + (lr - eta_min) (1 + cos(pi t / T_max)) / 2,   t clamped to T_max

    ``eta_min`` defaults to lr / 1e4 rather than torch's 0: an lr of 0 moves nothing, and
    the optimiser and checkpoints refuse it.
    """
    _hyper = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max: int, eta_min: float | None = None,
                 lr: float | None = None):
        super().__init__(optimizer, lr)
        self.T_max = _steps(T_max, "T_max (the steps of training)", "CosineAnnealingLR")
        eta_min = self.lr / 1e4 if eta_min is None else eta_min
        if not 0 < eta_min < self.lr:
            raise ValueError(f"CosineAnnealingLR: eta_min must be in (0, lr={self.lr:g}), "
                             f"got {eta_min!r}; e.g. eta_min={self.lr / 1e4:g}")
        self.eta_min = float(eta_min)
        self._apply()

    def lr_at(self, t):
        return _cosine(self.lr, self.eta_min, min(t, self.T_max) / self.T_max)


class LinearWarmup(Schedule):
    """Linear warm-up (torch's LinearLR): from ``start_factor * lr`` up to ``lr``, then constant.

    lr_t = lr * (start_factor + (1 - start_factor) min(t, W) / W),   W = warmup_steps
    """
    _hyper = ("warmup_steps", "start_factor", "total_steps")

    def __init__(self, optimizer, warmup_steps: int, total_steps: int | None = None,
                 start_factor: float = 0.1, lr: float | None = None):
        super().__init__(optimizer, lr)
        self.warmup_steps = _steps(warmup_steps, "warmup_steps", "LinearWarmup")
        self.total_steps = total_steps
        _check_warmup(warmup_steps, total_steps, "LinearWarmup")
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearWarmup: start_factor must be in (0, 1], got {start_factor!r}")
        self.start_factor = float(start_factor)
        self._apply()

    def lr_at(self, t):
        s = min(t, self.warmup_steps) / self.warmup_steps
        return self.lr * (self.start_factor + (1 - self.start_factor) * s)


ANNEALS = ("cos", "linear")      # OneCycleLR's ways down from the peak (torch's anneal_strategy)


class OneCycleLR(Schedule):
    """One cycle (torch's OneCycleLR): a linear warm-up to ``lr``, then down to nearly 0.

    With W = round(pct_start * total_steps) warm-up steps, lr_0 = lr / div_factor,
    lr_min = lr_0 / final_div_factor and u = (t - W) / (T - W) the share of the way
    down (T = total_steps):

        t <= W:  lr_t = lr_0 + (lr - lr_0) t / W
        t >  W:  lr_t = lr_min + (lr - lr_min) (1 + cos(pi u)) / 2    anneal_strategy "cos"
                 lr_t = lr + (lr_min - lr) u                          anneal_strategy "linear"

    (torch anneals the warm-up along a cosine too; a straight line is easier to read
    and trains the same.) Past T the lr stays at lr_min. The cosine lingers near the
    peak and near 0; the straight line spends more of the descent at a middle lr.
    """
    _hyper = ("total_steps", "pct_start", "div_factor", "final_div_factor", "anneal_strategy")
    _before = {"anneal_strategy": "cos"}

    def __init__(self, optimizer, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, lr: float | None = None,
                 anneal_strategy: str = "cos"):
        super().__init__(optimizer, lr)
        if anneal_strategy not in ANNEALS:
            raise ValueError(f"OneCycleLR: unknown anneal_strategy {anneal_strategy!r}; choose "
                             "'cos' (torch's default) or 'linear'.")
        self.anneal_strategy = anneal_strategy
        self.total_steps = _steps(total_steps, "total_steps", "OneCycleLR", minimum=2)
        if not 0 <= pct_start < 1:
            raise ValueError(f"OneCycleLR: pct_start (the warm-up's share of training) must be in "
                             f"[0, 1), got {pct_start!r}; a warm-up as long as training leaves "
                             "no steps to anneal. Try pct_start=0.3.")
        if div_factor < 1 or final_div_factor < 1:
            raise ValueError(f"OneCycleLR: div_factor and final_div_factor must be >= 1, got "
                             f"{div_factor!r} and {final_div_factor!r}")
        self.pct_start, self.div_factor = float(pct_start), float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self._apply()

    def load_state_dict(self, state: dict):
        if {**self._before, **state}.get("anneal_strategy") not in ANNEALS:
            raise ValueError(f"OneCycleLR: the saved anneal_strategy "
                             f"{state.get('anneal_strategy')!r} is not 'cos' or 'linear'; the "
                             "state was altered or is damaged.")
        super().load_state_dict(state)

    @property
    def warmup_steps(self):
        return min(round(self.pct_start * self.total_steps), self.total_steps - 1)

    def lr_at(self, t):
        W, T = self.warmup_steps, self.total_steps
        lr0 = self.lr / self.div_factor
        if t <= W:
            return self.lr if W == 0 else lr0 + (self.lr - lr0) * t / W
        lr_min, u = lr0 / self.final_div_factor, min(t - W, T - W) / (T - W)
        if self.anneal_strategy == "linear":
            return self.lr + (lr_min - self.lr) * u
        return _cosine(self.lr, lr_min, u)


def _check_warmup(warmup_steps, total_steps, who):
    if total_steps is not None and warmup_steps > total_steps:
        raise ValueError(f"{who}: the warm-up ({warmup_steps} steps) is longer than training "
                         f"({total_steps} steps); use a shorter warm-up (e.g. 10% of training, "
                         f"{max(1, total_steps // 10)} steps) or train longer.")


NAMES = ("onecycle", "cosine", "step", "warmup", "none")
CLASSES = {c.__name__: c for c in (Constant, StepLR, CosineAnnealingLR, LinearWarmup, OneCycleLR)}


def build(name: str, optimizer, total_steps: int, lr: float | None = None,
          warmup_steps: int | None = None, anneal: str | None = None) -> Schedule:
    """The schedule ``name`` (one of ``NAMES``) over ``total_steps`` steps, as ``tinyae train`` uses it.

    onecycle: warm-up over 30% of training (or ``warmup_steps``), then down to lr / 2.5e5
              along a cosine (``anneal`` "cos", the default) or a straight line ("linear")
    cosine:   cosine from lr down to lr / 1e4 over the whole run
    step:     lr divided by 10 after each third of training
    warmup:   linear warm-up over 5% of training (or ``warmup_steps``), then constant
    none:     constant lr
    """
    if name not in NAMES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(NAMES)} "
                         "(--schedule none keeps the lr constant).")
    total_steps = _steps(total_steps, "total_steps", f"schedule {name!r}")
    if warmup_steps is not None:
        _check_warmup(warmup_steps, total_steps, f"schedule {name!r}")
        if name not in ("onecycle", "warmup"):
            raise ValueError(f"schedule {name!r} has no warm-up; use --schedule onecycle or "
                             "warmup with a warm-up, or leave the warm-up out.")
    if anneal is not None and name != "onecycle":
        raise ValueError(f"schedule {name!r} has no anneal strategy ({anneal!r}); it belongs to "
                         "--schedule onecycle, or leave --anneal out.")
    if name == "onecycle":
        if warmup_steps is not None and warmup_steps >= total_steps:
            raise ValueError(f"schedule 'onecycle': the warm-up ({warmup_steps} steps) leaves no "
                             f"steps of the {total_steps} to anneal; use a shorter warm-up.")
        pct = 0.3 if warmup_steps is None else warmup_steps / total_steps
        return OneCycleLR(optimizer, total_steps, pct_start=pct, lr=lr,
                          anneal_strategy="cos" if anneal is None else anneal)
    if name == "cosine":
        return CosineAnnealingLR(optimizer, total_steps, lr=lr)
    if name == "step":
        return StepLR(optimizer, max(1, math.ceil(total_steps / 3)), gamma=0.1, lr=lr)
    if name == "warmup":
        w = max(1, round(0.05 * total_steps)) if warmup_steps is None else warmup_steps
        return LinearWarmup(optimizer, w, total_steps, lr=lr)
    return Constant(optimizer, lr)


def from_state_dict(optimizer, state: dict) -> Schedule:
    """Rebuild the schedule that ``state_dict()`` described, at its saved step, on ``optimizer``.

    The hyper-parameters go through the class's own checks, so a damaged state is a ValueError.
    """
    cls = CLASSES.get(state.get("name")) if isinstance(state, dict) else None
    if cls is None:
        name = state.get("name") if isinstance(state, dict) else state
        raise ValueError(f"unknown schedule {name!r} in the saved state; known: {', '.join(CLASSES)}")
    state = {**cls._before, **state}
    try:
        schedule = cls(optimizer, lr=state["lr"], **{k: state[k] for k in cls._hyper})
    except (KeyError, TypeError) as exc:
        raise ValueError(f"the saved {cls.__name__} state is incomplete or malformed ({exc!r}); "
                         "the checkpoint was altered or is damaged.") from None
    schedule.load_state_dict(state)
    return schedule
