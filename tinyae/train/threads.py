"""How many BLAS threads to train with, chosen by measuring while training.

The big matmuls run in OpenBLAS's thread pool, one thread per core by
default. On a quiet machine that is the fastest choice. Beside a busy
neighbour (a browser, another notebook) one of those threads shares its core,
and at every matmul the others wait for it: two threads then take 1.6-1.8x
the time of one (benchmarks/bench_busy.py). No fixed number is right for both
cases, so ``fit`` measures: it times a few steps at each candidate count,
keeps the fastest, and measures again every few hundred steps to follow a
neighbour that comes and goes. The decision outlives one ``fit``: a notebook's
next ``fit`` of the same model and batch size starts with it.

threadpoolctl sets the count (the library scikit-learn uses for this);
environment variables such as OPENBLAS_NUM_THREADS are read only once, when
the library loads. The Numba kernels are serial and are not affected.
"""
import os
import statistics
import time

import numpy as np
from threadpoolctl import ThreadpoolController


class BlasPool:
    """The BLAS libraries' thread count: read it, set it, restore the caller's."""

    def __init__(self):
        self._libs = ThreadpoolController().select(user_api="blas").lib_controllers
        self.original = [lib.get_num_threads() for lib in self._libs]

    @property
    def size(self) -> int:
        """The most threads the caller's setting allows (the candidates' upper end)."""
        return max(self.original, default=1)

    def set(self, n: int) -> None:
        for lib in self._libs:
            lib.set_num_threads(n)

    def restore(self) -> None:
        for lib, n in zip(self._libs, self.original):
            lib.set_num_threads(n)


def candidates(size: int) -> list:
    """1, 2, 4, ... up to ``size`` (and ``size`` itself): few enough to probe them all."""
    counts, n = [], 1
    while n < size:
        counts.append(n)
        n *= 2
    return counts + [size]


class ThreadChooser:
    """Run training steps at the BLAS thread count that measures fastest.

    A probe runs ``probe_steps`` timed steps at each count (after one untimed
    step on the first probe: the first step of training pays for page faults
    and compiled code); the count with the lowest median time per sample is
    kept for the next ``every`` steps; then it probes again, starting with the
    count in use. A count whose step takes over 1.5x the best median so far is
    dropped from the probe at once: beside a busy neighbour the wrong count is
    2-10x slower, and finishing its probe would cost more than the choice saves.

    Args:
        counts: the thread counts to try; one count means no probing.
        set_threads: callable that sets the count (``BlasPool.set``).
        probe_steps, every: timed steps per count, steps between probes.
        clock: seconds as a float (injectable for tests).
    """

    def __init__(self, counts, set_threads, *, probe_steps=3, every=300,
                 clock=time.perf_counter):
        self.counts, self.set_threads = list(counts), set_threads
        self.probe_steps, self.every, self.clock = probe_steps, every, clock
        self.current = None                  # the count the pool is set to now
        self.chosen = self.counts[0] if len(self.counts) == 1 else None
        self.probes = 0                      # probes finished
        self._plan, self._since = [], 0
        if self.chosen is None:
            self._start_probe()
            self._plan.insert(0, (self.counts[0], False))         # the very first step: untimed

    def _start_probe(self):
        self._times = {c: [] for c in self.counts}
        order = sorted(self.counts, key=lambda c: c != self.chosen)     # the count in use first
        self._plan = [(c, True) for c in order for _ in range(self.probe_steps)]

    def resume(self):
        """A new block of steps (the next ``fit``) goes on with this chooser: if a probe is
        under way, its next step runs untimed, as the very first one does. That step pays
        for the page faults of the new call's fresh arrays (a third more, for a
        convolutional model), which would make the count it measures look slow."""
        self.current = None                                 # the pool is set anew
        if self._plan and self._plan[0][1]:
            self._plan.insert(0, (self._plan[0][0], False))

    def run(self, step, work=1):
        """Call ``step()`` at the scheduled count; ``work`` (e.g. batch size) scales its time."""
        self.begin()
        result = step()
        self.end(work)
        return result

    def begin(self):
        """Before a step: set the pool to the scheduled count and start the clock."""
        count = self._plan[0][0] if self._plan else self.chosen
        if count != self.current:
            self.set_threads(count)
            self.current = count
        self._start = self.clock()

    def end(self, work=1):
        """After a step: record its time per unit of ``work``; decide when a probe is done."""
        seconds = self.clock() - self._start
        if self._plan:
            count, timed = self._plan.pop(0)
            if timed:
                self._times[count].append(seconds / work)
                others = [statistics.median(t) for c, t in self._times.items() if t and c != count]
                if others and seconds / work > 1.5 * min(others):  # clearly slower: stop here
                    self._plan = [(c, t) for c, t in self._plan if c != count]
            if not self._plan:                                   # probe done: keep the fastest
                tried = [c for c in self.counts if self._times[c]]
                self.chosen = min(tried, key=lambda c: statistics.median(self._times[c]))
                self.probes += 1
                self._since = 0
        elif len(self.counts) > 1:
            self._since += 1
            if self._since >= self.every:
                self._start_probe()

    @property
    def threads(self):
        """The count chosen by the last probe (during the first probe: the one in use)."""
        return self.chosen if self.chosen is not None else self.current


def thread_setting(threads=None):
    """``threads`` (a count >= 1 or "auto"), else ``TINYAE_THREADS``, else "auto"."""
    value = threads if threads is not None else os.environ.get("TINYAE_THREADS", "").strip() or "auto"
    if value == "auto":
        return value
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(n) != str(value).strip():
        raise ValueError(f"threads must be a whole number >= 1 or 'auto', got {value!r} "
                         "(argument threads=, --threads or TINYAE_THREADS)")
    return n


# A notebook calls fit again and again on the same model: each call goes on with the
# decision (and the probe schedule) the last one reached instead of probing from scratch.
_choosers = {}
KEEP = 16                  # choosers remembered, the oldest forgotten first


class blas_threads:
    """Context manager: steps run through ``self.run`` at a fixed or measured count.

    ``threads`` as in ``thread_setting``. With "auto" and a ``key`` (what the
    time of a step depends on: fit gives the parameters' shapes and the batch
    size), a later block with the same key and candidates keeps the chooser of
    the last one: its decision, and its count of steps until the next probe.
    On leaving, the caller's own setting is restored, whatever happened inside.
    """

    def __init__(self, threads=None, key=None, **chooser_options):
        self.setting = thread_setting(threads)
        self.key, self.options = key, chooser_options

    def __enter__(self):
        self.pool = BlasPool()
        counts = candidates(self.pool.size) if self.setting == "auto" else [self.setting]
        if self.key is None or len(counts) == 1:
            self.chooser = ThreadChooser(counts, self.pool.set, **self.options)
            return self.chooser
        memo = (tuple(counts), self.key)
        self.chooser = _choosers.pop(memo, None) or ThreadChooser(counts, self.pool.set,
                                                                  **self.options)
        _choosers[memo] = self.chooser                      # now the newest
        while len(_choosers) > KEEP:
            del _choosers[next(iter(_choosers))]
        self.chooser.set_threads = self.pool.set
        self.chooser.resume()
        return self.chooser

    def __exit__(self, *exc):
        self.pool.restore()


def batched(fn, X, batch_size=512, threads=None):
    """fn applied to X in batches, results stacked: keeps peak memory small (512 rows through
    a layer 63,000 wide, a model at the parameter cap, are 130 MB of activations).

    BLAS threads as in ``fit``: ``threads`` fixed, or "auto" (the default,
    or ``TINYAE_THREADS``) measured on the first batches (below).
    """
    parts = []
    with blas_threads(threads, probe_steps=1, every=10**9) as chooser:   # one probe, no re-probe
        for i in range(0, len(X), batch_size):
            xb = X[i:i + batch_size]
            parts.append(chooser.run(lambda: fn(xb), len(xb)))
    return np.concatenate(parts)
