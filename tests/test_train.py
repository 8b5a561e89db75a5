import math
import os
import re
import signal

import numpy as np
import pytest

import tinyae as ta
from tinyae.data.digits import load_builtin_digits
from tinyae.train import Checkpointer, EarlyStopping, EpochRecord, History, TrainingDiverged, fit


@pytest.fixture(scope="module")
def digits():
    return load_builtin_digits("train", n=512)[0]


def small_model(seed=0):
    return ta.dense_autoencoder((784, 32, 2), rng=np.random.default_rng(seed))


def test_same_seed_same_run(digits):
    """Bit for bit with a fixed thread count (OpenBLAS's sums depend on its thread count)."""
    runs = []
    for _ in range(2):
        model = small_model()
        h = fit(model, digits, epochs=2, batch_size=64, validation=0.1, seed=3, progress=False,
                threads=2)
        runs.append((model, h))
    (m1, h1), (m2, h2) = runs
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss
    for (_, p, _), (_, q, _) in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p, q)
    assert h1.loss[1] < h1.loss[0] and all(v is not None for v in h1.val_loss)


def test_other_seed_other_shuffle(digits):
    a, b = small_model(), small_model()
    fit(a, digits, epochs=1, batch_size=64, seed=0, progress=False)
    fit(b, digits, epochs=1, batch_size=64, seed=1, progress=False)
    assert not np.array_equal(next(a.parameters())[1], next(b.parameters())[1])


def test_divergence_is_reported_and_weights_stay_finite(digits):
    model = ta.dense_autoencoder((784, 32, 2), output="identity", rng=np.random.default_rng(0))
    opt = ta.SGD(model.parameters(), lr=1e3)
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step \d+.*smaller learning rate"):
        fit(model, digits, epochs=3, batch_size=64, optimizer=opt, progress=False)
    assert all(np.isfinite(p).all() for _, p, _ in model.parameters())


def test_huge_finite_data_is_not_mistaken_for_nan():
    from tinyae.train.loop import check_data
    X = np.full((4, 3), 3e38, np.float32)             # its float32 sum overflows to inf
    np.testing.assert_array_equal(check_data(X, 3), X)      # accepted as it is
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"in 1 rows \(first: \[2\]\)"):
        check_data(X, 3)


def test_nan_in_data(digits):
    X = digits.copy()
    X[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 rows \(first: \[7\]\)"):
        fit(small_model(), X, epochs=1, progress=False)


def test_wrong_width_and_dtype(digits):
    with pytest.raises(ValueError, match="expects 784 input features, got 100"):
        fit(small_model(), digits[:, :100], epochs=1, progress=False)
    with pytest.raises(TypeError, match="floating-point"):
        fit(small_model(), (digits * 255).astype(np.uint8), epochs=1, progress=False)


def test_early_stopping_stops(digits):
    # Demanding an improvement of 1.0 per epoch can never be met: stop after patience epochs.
    h = fit(small_model(), digits, epochs=10, batch_size=128, progress=False,
            early_stopping=EarlyStopping(patience=2, min_delta=1.0))
    assert len(h.records) == 3 and "early stopping after epoch 3" in h.stopped


def test_callbacks_run_every_epoch(digits):
    seen = []
    fit(small_model(), digits, epochs=3, batch_size=128, progress=False,
        callbacks=[lambda m, o, h: seen.append(len(h.records))])
    assert seen == [1, 2, 3]


def test_resume_continues_exactly(tmp_path, digits):
    """2 epochs in one go == 1 epoch, checkpoint, load, 1 more epoch."""
    straight = small_model()
    fit(straight, digits, epochs=2, batch_size=64, progress=False, threads=1)

    first = small_model()
    opt = ta.Adam(first.parameters())
    h = fit(first, digits, epochs=1, batch_size=64, optimizer=opt, progress=False, threads=1)
    path = ta.save(first, tmp_path / "ckpt", optimizer=opt)
    ckpt = ta.io.read_checkpoint(path)
    resumed = ta.load(path)
    opt2 = ta.Adam(resumed.parameters())
    opt2.load_state_dict(ckpt.optim)
    fit(resumed, digits, epochs=2, batch_size=64, optimizer=opt2, history=h, progress=False,
        threads=1)
    assert len(h.records) == 2
    for (_, p, _), (_, q, _) in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM"),
                                          (signal.SIGHUP, "SIGHUP")])
def test_ctrl_c_stops_after_the_current_step_and_goes_back_to_the_epoch_start(digits, signum,
                                                                              name):
    model = small_model()
    initial = [p.copy() for _, p, _ in model.parameters()]
    opt = ta.Adam(model.parameters())
    steps = []
    real_step = opt.step

    def step():
        real_step()
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signum)                 # as if the user pressed Ctrl-C here
    opt.step = step
    # Python's own handler, or SIG_IGN when the tests were started in the background by a
    # non-interactive shell (POSIX: such jobs ignore SIGINT); fit must put back either.
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    h = fit(model, digits, epochs=5, batch_size=64, optimizer=opt, progress=False)
    assert len(steps) == 3 and opt.t == 0                   # three steps ran, then were undone
    assert h.records == [] and h.stopped.startswith(f"interrupted ({name}) in epoch 1, step 3; "
                                                    "the model holds the weights from the start")
    for (_, p, _), p0 in zip(model.parameters(), initial):
        np.testing.assert_array_equal(p, p0)
    assert all(not m.any() for m in opt.m)
    assert all(signal.getsignal(s) is handler for s, handler in before.items())


def test_history_csv_and_dict(digits):
    h = fit(small_model(), digits, epochs=2, batch_size=128, validation=0.25, progress=False)
    lines = h.to_csv().splitlines()
    assert lines[0] == ("epoch,loss,val_loss,seconds,lr,reconstruction,penalty,threads,"
                        "val_penalty") and len(lines) == 3
    assert lines[1].endswith(",0")                       # no penalty on this model
    assert type(h).from_dict(h.to_dict()).loss == h.loss


def test_val_loss_counts_the_penalty_as_the_training_loss_does(digits):
    """loss = reconstruction + penalty on the training images; val_loss, the same sum on the
    validation images (else a VAE's validation curve would sit far below its training one)."""
    X, Xv = digits[:256], digits[256:512]
    model = ta.sparse_autoencoder((784, 32), "kl", rho=0.05, beta=0.5,
                                  rng=np.random.default_rng(0))
    r = fit(model, X, epochs=1, batch_size=64, validation=(Xv,), progress=False).records[-1]
    reconstruction = ta.MSE().forward(model.forward(Xv), Xv)      # one batch: all of Xv
    penalty = model.penalty()
    assert penalty > 0.1 * reconstruction
    assert r.val_penalty == pytest.approx(penalty, rel=1e-5)
    assert r.val_loss == pytest.approx(reconstruction + penalty, rel=1e-5)
    plain = fit(small_model(), X, epochs=1, validation=(Xv,), progress=False).records[-1]
    assert plain.val_penalty == 0.0


def test_best_checkpoint_ignores_records_from_before_val_loss_counted_the_penalty(tmp_path):
    def best(**record):
        r = EpochRecord(1, 0.5, 0.01, 1.0, 1e-3, **record)
        return Checkpointer(tmp_path, history=History([r])).best
    assert best(penalty=0.2) == math.inf                 # old: 0.01 was the reconstruction alone
    assert best(penalty=0.2, val_penalty=0.003) == 0.01
    assert best() == 0.01                                # no penalty: always the whole objective
    from tinyae.cli.commands import _which_epoch  # `tinyae info` says the same
    old = EpochRecord(1, 0.5, 0.01, 1.0, 1e-3, penalty=0.2)
    new = EpochRecord(2, 0.4, 0.3, 1.0, 1e-3, penalty=0.2, val_penalty=0.2)
    assert _which_epoch([old, new], 2).endswith("(validation loss 0.30000, the lowest up to then)")


def test_progress_bar_is_real(digits, capsys, monkeypatch):
    from tinyae import progress
    monkeypatch.setattr(progress, "interactive", lambda: True)          # as on a terminal
    fit(small_model(), digits, epochs=1, batch_size=128, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "step" in err and "loss" in err and "\r" in err


def test_progress_in_a_log_is_one_line_per_epoch(digits, capsys, monkeypatch):
    from tinyae import progress
    monkeypatch.setattr(progress, "interactive", lambda: False)         # stderr is a file or pipe
    fit(small_model(), digits, epochs=2, batch_size=128, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "step" not in err
    assert [line.split("  ")[0] for line in err.splitlines()] == ["epoch 1/2", "epoch 2/2"]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_resume_is_exact_on_each_path(tmp_path, digits, backend):
    """Interrupted and resumed on one path == uninterrupted on that path, bit for bit."""
    straight = small_model()
    fit(straight, digits, epochs=2, batch_size=64, progress=False, backend=backend, threads=2)
    first = small_model()
    opt = ta.Adam(first.parameters())
    h = fit(first, digits, epochs=1, batch_size=64, optimizer=opt, progress=False, backend=backend,
            threads=2)
    resumed, opt2 = small_model(seed=9), None
    for (_, p, _), (_, q, _) in zip(first.parameters(), resumed.parameters()):
        q[...] = p
    opt2 = ta.Adam(resumed.parameters())
    opt2.load_state_dict(opt.state_dict())
    fit(resumed, digits, epochs=2, batch_size=64, optimizer=opt2, history=h, progress=False,
        backend=backend, threads=2)
    for (_, p, _), (_, q, _) in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p, q)


def test_an_update_that_breaks_the_weights_is_caught_after_the_step(digits):
    model = small_model()
    before = [p.copy() for _, p, _ in model.parameters()]
    opt = ta.SGD(model.parameters(), lr=1e30)
    # One step per epoch: its loss is finite, only the update after it breaks the weights.
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1 \(.*NaN or infinite\); the "
                                               r"model and optimiser are back at the start of "
                                               r"epoch 1"):
        fit(model, digits[:64], epochs=1, batch_size=64, optimizer=opt, progress=False)
    for (_, p, _), p0 in zip(model.parameters(), before):
        np.testing.assert_array_equal(p, p0)


@pytest.mark.parametrize("lr", [np.inf, np.nan])
def test_learning_rate_must_be_finite(digits, lr):
    model = small_model()
    opt = ta.SGD(model.parameters(), lr=1e-3)
    opt.lr = lr
    with pytest.raises(ValueError, match="learning rate must be finite and > 0"):
        fit(model, digits, epochs=1, optimizer=opt, progress=False)


@pytest.mark.parametrize("kwargs, words", [
    ({"epochs": 2.5}, "epochs must be a whole number >= 0, got 2.5"),
    ({"epochs": "3"}, "epochs must be a whole number >= 0, got '3'"),
    ({"epochs": -1}, "epochs must be a whole number >= 0, got -1"),
    ({"epochs": 1, "batch_size": 2.0}, "batch_size must be a whole number >= 1, got 2.0"),
    ({"epochs": 1, "batch_size": 0}, "batch_size must be a whole number >= 1, got 0"),
    ({"epochs": True}, "epochs must be a whole number >= 0, got True"),
])
def test_fit_arguments_get_one_clear_error(digits, kwargs, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        fit(small_model(), digits, progress=False, **kwargs)


def test_a_validation_split_that_leaves_nothing_to_train_on(digits):
    with pytest.raises(ValueError, match="leaves no images to train on"):
        fit(small_model(), digits[:1], epochs=1, validation=0.5, progress=False)
