"""Choosing the number of BLAS threads by measuring (tinyae.train.threads), on a fake clock."""
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import tinyae as ta
from tinyae.train import fit
from tinyae.train.threads import ThreadChooser, candidates, thread_setting


class FakeMachine:
    """A clock and a BLAS pool: a step takes ``cost[threads]`` seconds of fake time."""

    def __init__(self, cost):
        self.cost, self.now, self.threads, self.sets = dict(cost), 0.0, None, []

    def clock(self):
        return self.now

    def set_threads(self, n):
        self.threads = n
        self.sets.append(n)

    def step(self):
        self.now += self.cost[self.threads]


def run_steps(chooser, machine, n):
    used = []
    for _ in range(n):
        chooser.run(machine.step)
        used.append(machine.threads)
    return used


def test_picks_the_count_with_the_lowest_time():
    machine = FakeMachine({1: 1.0, 2: 0.6})                   # quiet: two threads win
    chooser = ThreadChooser([1, 2], machine.set_threads, probe_steps=3, every=50,
                            clock=machine.clock)
    used = run_steps(chooser, machine, 7 + 20)
    assert used[:7] == [1] * 4 + [2] * 3                      # 1 untimed first step, 3 timed each
    assert chooser.chosen == 2 and used[7:] == [2] * 20


def test_reprobes_on_schedule_and_follows_a_neighbour():
    machine = FakeMachine({1: 1.0, 2: 0.6})
    chooser = ThreadChooser([1, 2], machine.set_threads, probe_steps=2, every=10,
                            clock=machine.clock)
    run_steps(chooser, machine, 5 + 10)                       # probe, then 10 steps at 2
    assert chooser.probes == 1 and chooser.chosen == 2
    machine.cost = {1: 1.0, 2: 1.8}                            # a busy neighbour arrives
    used = run_steps(chooser, machine, 4 + 5)                  # the next probe sees it
    assert used[:4] == [2, 2, 1, 1]                            # it starts with the count in use
    assert chooser.probes == 2 and chooser.chosen == 1 and used[4:] == [1] * 5
    machine.cost = {1: 1.0, 2: 0.6}                            # and leaves again
    run_steps(chooser, machine, 10 - 5 + 4)
    assert chooser.probes == 3 and chooser.chosen == 2


def test_a_probe_resumed_by_the_next_fit_skips_its_first_step():
    """The first step of a new fit pays for fresh arrays: timed, it would make the count
    under probe look slow (here 2.5x, enough to drop it)."""
    machine = FakeMachine({1: 1.0, 2: 0.6})
    chooser = ThreadChooser([1, 2], machine.set_threads, probe_steps=3, every=50,
                            clock=machine.clock)
    run_steps(chooser, machine, 1 + 3 + 1)                    # a short fit ends in the probe
    chooser.resume()                                          # the next fit
    machine.cost[2] = 1.5                                     # its first step: page faults
    chooser.run(machine.step)
    machine.cost[2] = 0.6
    used = run_steps(chooser, machine, 2 + 10)
    assert chooser._times[2] == pytest.approx([0.6] * 3)     # the slow step was not timed
    assert chooser.chosen == 2 and used == [2] * 12
    chooser.resume()                                          # no probe under way: nothing skipped
    run_steps(chooser, machine, 1)
    assert chooser.probes == 1 and chooser._since == 11


def test_a_much_slower_count_is_dropped_from_the_probe_at_once():
    machine = FakeMachine({1: 1.0, 2: 9.0})                   # 2 threads beside a busy neighbour
    chooser = ThreadChooser([1, 2], machine.set_threads, probe_steps=3, every=100,
                            clock=machine.clock)
    used = run_steps(chooser, machine, 1 + 3 + 1 + 5)
    assert used == [1] * 4 + [2] + [1] * 5                      # one step at 2 was enough
    assert chooser.chosen == 1 and chooser.probes == 1


def test_time_is_compared_per_sample():
    """A short last batch in a probe must not make its thread count look fast."""
    machine = FakeMachine({1: 1.0, 2: 0.6})
    chooser = ThreadChooser([1, 2], machine.set_threads, probe_steps=1, every=99,
                            clock=machine.clock)
    for work in (256, 256, 256, 64):                           # the 64 is 1/4 of a batch ...
        machine.cost = {1: 1.0 * work / 256, 2: 0.6 * work / 256}
        chooser.run(machine.step, work)
    assert chooser.chosen == 2                                 # ... and counts 1/4 as much


def test_one_count_never_probes():
    machine = FakeMachine({3: 1.0})
    chooser = ThreadChooser([3], machine.set_threads, clock=machine.clock)
    run_steps(chooser, machine, 5)
    assert machine.sets == [3] and chooser.threads == 3


def test_candidates_and_settings(monkeypatch):
    assert candidates(1) == [1] and candidates(2) == [1, 2] and candidates(6) == [1, 2, 4, 6]
    monkeypatch.delenv("TINYAE_THREADS", raising=False)
    assert thread_setting() == "auto" and thread_setting(3) == 3 and thread_setting("2") == 2
    monkeypatch.setenv("TINYAE_THREADS", "1")
    assert thread_setting() == 1 and thread_setting("auto") == "auto"
    for bad in (0, -2, "two", 1.5):
        with pytest.raises(ValueError, match="whole number >= 1 or 'auto'"):
            thread_setting(bad)


def blas_threads_now():
    """NumPy's BLAS threads (Numba may load SciPy's OpenBLAS too; tinyae's matmuls don't use it)."""
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    mine = [i for i in blas if "numpy" in i["filepath"]] or blas
    return max(i["num_threads"] for i in mine)


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(0).random((512, 64), dtype=np.float32)


def test_fixed_threads_really_run_and_the_callers_setting_comes_back(data):
    before = blas_threads_now()
    seen = []
    model = ta.dense_autoencoder((64, 16, 2), rng=np.random.default_rng(0))
    h = fit(model, data, epochs=2, batch_size=64, progress=False, threads=1,
            callbacks=[lambda *_: seen.append(blas_threads_now())])
    assert seen == [1, 1] and [r.threads for r in h.records] == [1, 1]
    assert blas_threads_now() == before
    header, first = (line.split(",") for line in h.to_csv().splitlines()[:2])
    assert dict(zip(header, first))["threads"] == "1"


def test_auto_restores_the_callers_setting_even_on_error(data):
    before = blas_threads_now()
    model = ta.dense_autoencoder((64, 16, 2), rng=np.random.default_rng(0))
    h = fit(model, data, epochs=1, batch_size=16, progress=False)           # 32 steps: probes
    assert h.records[0].threads in candidates(before) and blas_threads_now() == before
    bad = data.copy()
    bad[3] = np.nan
    with threadpool_limits(1, user_api="blas"):              # the caller's own setting
        assert blas_threads_now() == 1
        with pytest.raises(ValueError, match="NaN"):
            fit(model, bad, epochs=1, progress=False)
        assert blas_threads_now() == 1                         # the caller's 1, kept
    assert blas_threads_now() == before


def test_inference_uses_the_same_setting(monkeypatch):
    from tinyae.evaluate.metrics import batched
    seen = []

    def encode(xb):
        seen.append(blas_threads_now())
        return xb[:, :2]
    monkeypatch.setenv("TINYAE_THREADS", "1")
    X = np.zeros((10, 4))
    np.testing.assert_array_equal(batched(encode, X, batch_size=3), X[:, :2])
    assert seen == [1, 1, 1, 1]


def test_the_next_fit_of_the_same_model_keeps_the_decision(data, monkeypatch):
    from tinyae.train import threads
    monkeypatch.setattr(threads, "_choosers", {})
    made = []
    real = threads.ThreadChooser

    def counted(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]
    monkeypatch.setattr(threads, "ThreadChooser", counted)
    model = ta.dense_autoencoder((64, 16, 2), rng=np.random.default_rng(0))
    other = ta.dense_autoencoder((64, 8, 2), rng=np.random.default_rng(0))
    fit(model, data, epochs=1, batch_size=16, progress=False)
    if len(made[0].counts) == 1:
        pytest.skip("one BLAS thread on this machine: nothing to choose")
    assert made[0].probes == 1                     # 32 steps: the first probe is done
    fit(model, data, epochs=1, batch_size=16, progress=False)
    assert len(made) == 1 and made[0].probes == 1  # the same chooser, no probe from scratch
    fit(model, data, epochs=1, batch_size=32, progress=False)     # another batch size
    fit(other, data, epochs=1, batch_size=16, progress=False)     # another model
    fit(model, data, epochs=1, batch_size=16, progress=False, threads=1)   # fixed: no memory
    assert len(made) == 4 and len(threads._choosers) == 3
