"""How a training run stops without losing work: a signal becomes a flag checked between
steps, and an epoch that cannot be kept (stopped, or diverged) goes back to its start."""
import contextlib
import signal
import threading

import numpy as np

# Ctrl-C, `kill` (SIGTERM) and a closed terminal (SIGHUP) all stop a run the same way.
SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def interrupted(name, epoch, step):
    """``history.stopped`` for a run a signal stopped; ``stopped_by_signal`` reads it back."""
    return (f"interrupted ({name}) in epoch {epoch}, step {step}; the model holds the weights "
            f"from the start of epoch {epoch}, so a resumed run repeats that epoch from its start")


def stopped_by_signal(history):
    """SIGTERM or SIGHUP when one of them stopped the run (``history.stopped`` says so);
    None for Ctrl-C, after which a command goes on to evaluate, or no stop at all."""
    for signum, name in SIGNALS.items():
        if signum != signal.SIGINT and (history.stopped or "").startswith(f"interrupted ({name})"):
            return signum
    return None


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite."""


class StepFailed(Exception):
    """A step overflowed or its loss is not finite: the epoch cannot be kept."""

    def __init__(self, step, why):
        self.step, self.why = step, why


class Stop:
    """Turn the first stop signal into a flag checked between steps (a second Ctrl-C
    interrupts at once); the handlers in place before are put back on exit."""

    def __enter__(self):
        self.name, self._old = None, {}
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._old[signum] = signal.signal(signum, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name = self.name or SIGNALS[signum]

    @property
    def requested(self):
        return self.name is not None

    def __exit__(self, *exc):
        for signum, old in self._old.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def own_rng(model):
    """Yields whether ``model`` draws from its own generator (a VAE's ``rng``), which fit
    reseeds every epoch; gives the model back the caller's generator at the end."""
    rng = getattr(model, "rng", None)
    draws = isinstance(rng, np.random.Generator)
    try:
        yield draws
    finally:
        if draws:
            model.rng = rng


def snapshot(model, optimizer=None):
    """Copies of the weights (and the optimiser's state): what ``restore`` goes back to."""
    weights = [p.copy() for _, p, _ in model.parameters()]
    if optimizer is None:
        return weights
    return weights, {k: np.array(v, copy=True) for k, v in optimizer.state_dict().items()}


def restore(model, saved, optimizer=None):
    if optimizer is not None:
        saved, state = saved
        optimizer.load_state_dict(state)
    for (_, p, _), s in zip(model.parameters(), saved):
        p[...] = s


class EpochStart:
    """The weights, optimiser state and schedule position at an epoch's start."""

    def __init__(self, model, optimizer, schedule):
        self.model, self.optimizer, self.schedule = model, optimizer, schedule
        self.saved = snapshot(model, optimizer)
        self.t = schedule.t if schedule is not None else None

    def go_back(self):
        restore(self.model, self.saved, self.optimizer)
        if self.schedule is not None:
            self.schedule.go_to(self.t)


def broken(model, xb):
    """Why the weights cannot be kept (non-finite weights or probe output), or None."""
    for name, p, _ in model.parameters():
        if not np.isfinite(p).all():
            return f"{name} became NaN or infinite"
    with np.errstate(all="ignore"):
        if not np.isfinite(model.forward(xb[:8])).all():
            return "the model's output became NaN or infinite"
    return None


def diverged(epoch, failed, optimizer):
    """The error for an epoch whose step ``failed``; the model is back at its start."""
    return TrainingDiverged(f"training diverged at epoch {epoch}, step {failed.step} "
                            f"({failed.why}); the model and optimiser are back at the start of "
                            f"epoch {epoch} (weights all finite). Try a smaller learning rate "
                            f"(now lr={optimizer.lr:g}, e.g. --lr 1e-4).")
