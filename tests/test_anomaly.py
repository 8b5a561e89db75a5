"""Anomaly detection: AUC by ranks, the ROC, a held-out digit, and `tinyae anomaly`."""
import json

import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import anomaly as cli_anomaly
from tinyae.cli import commands as cli
from tinyae.data import load_dataset
from tinyae.evaluate import anomaly as an
from tinyae.viz.anomaly import extremes, roc_curves

HELD_OUT = 4        # on the built-in digits, the digit a small model flags best (AUC ~0.9)


# --- AUC and the ROC ---------------------------------------------------------------------
def test_auc_of_a_hand_computed_example_with_ties():
    """Anomalous 0.35, 0.8, 0.4 against normal 0.1, 0.4: of the 6 pairs, 4 are won and one
    (0.4 against 0.4) is a tie, so AUC = (4 + 1/2) / 6 = 0.75."""
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    a = np.array([False, False, True, True, True])
    assert an.midranks(s).tolist() == [1, 3.5, 2, 5, 3.5]
    assert an.auc(s, a) == 0.75
    fpr, tpr, t = an.roc_curve(s, a)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert np.allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1]) and t.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    # the tie is one diagonal step, so the trapezoids give the same area as the ranks
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(0.75)


def test_auc_is_one_for_separable_scores_and_about_half_for_random(rng):
    a = np.r_[np.zeros(300, bool), np.ones(100, bool)]
    s = np.r_[rng.uniform(0, 1, 300), rng.uniform(1.5, 3, 100)]
    assert an.auc(s, a) == 1.0 and an.auc(-s, a) == 0.0
    values = [an.auc(rng.standard_normal(400), a) for _ in range(20)]
    assert abs(np.mean(values) - 0.5) < 0.03 and max(abs(v - 0.5) for v in values) < 0.12
    assert an.auc(np.ones(400), a) == 0.5                  # all tied: chance, not 0 or 1


def test_auc_equals_the_pairwise_count_and_the_area_under_the_roc(rng):
    s = rng.integers(0, 6, 60).astype(float)               # many ties
    a = rng.random(60) < 0.3
    pos, neg = s[a][:, None], s[~a][None, :]
    pairs = np.mean((pos > neg) + 0.5 * (pos == neg))
    fpr, tpr, _ = an.roc_curve(s, a)
    assert an.auc(s, a) == pytest.approx(pairs, abs=1e-12)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(pairs, abs=1e-12)


def test_precision_and_recall_at_a_false_alarm_rate():
    s = np.arange(10.0)                                    # anomalous: 9, 8, 6; normal: the rest
    a = np.isin(s, [6, 8, 9])
    r = an.at_false_alarm(s, a, rate=1 / 7)                # one normal image (7) may be flagged
    assert r == {"threshold": 6.0, "false_alarm_rate": 1 / 7, "recall": 1.0, "precision": 0.75}
    r = an.at_false_alarm(s, a, rate=0.1)                  # none may: flag 9 and 8 only
    assert r["threshold"] == 8.0 and r["false_alarm_rate"] == 0 and r["recall"] == 2 / 3
    top_normal = an.at_false_alarm(-s, a, rate=0.1)        # the top score is normal: flag nothing
    assert top_normal["recall"] == 0 and np.isnan(top_normal["precision"])


@pytest.mark.parametrize("scores, anomalous, msg", [
    ([1.0, 2.0], [True, True], "needs both anomalous and normal"),
    ([1.0, 2.0], [0, 1], "must be a bool array"),
    ([1.0, 2.0, 3.0], [True, False], "two 1-D arrays of the same length"),
    ([1.0, np.nan], [True, False], "1 scores are NaN or infinite"),
])
def test_bad_scores_are_clear_errors(scores, anomalous, msg):
    with pytest.raises(ValueError, match=msg):
        an.auc(np.array(scores), np.array(anomalous))


def test_a_false_alarm_rate_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match=r"must be in \(0, 1\)"):
        an.at_false_alarm([1.0, 2.0], np.array([False, True]), rate=5)


# --- holding a digit out -------------------------------------------------------------------
def test_holdout_splits_by_the_digit():
    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 3, 1, 3, 2, 0])
    h = an.holdout(X, y, 3)
    assert h.train.tolist() == [[0, 1], [4, 5], [8, 9], [10, 11]]
    assert np.array_equal(h.test, X)
    assert h.anomalous.tolist() == [False, True, False, True, False, False]


@pytest.mark.parametrize("y, digit, msg", [
    ([0, 1, 2], 10, r"a whole number 0-9, got 10"),
    ([0, 1, 2], -1, r"a whole number 0-9, got -1"),
    ([0, 1, 2], 2.0, r"a whole number 0-9, got 2.0"),
    ([0, 1, 2], 7, r"digit 7 is absent from these 3 images \(their labels: 0, 1, 2\)"),
    ([5, 5, 5], 5, r"all 3 images are the digit 5"),
    (None, 1, r"needs the images' labels"),
    ([0, 1], 1, r"3 images but 2 labels"),
])
def test_holdout_bad_input(y, digit, msg):
    with pytest.raises(ValueError, match=msg):
        an.holdout(np.zeros((3, 4)), None if y is None else np.array(y), digit)


# --- a small model trained without one digit ---------------------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y, _ = load_dataset("builtin", "train", 1200, progress=False)
    Xt, yt, _ = load_dataset("builtin", "test", 600, progress=False)
    return an.holdout(X, y, HELD_OUT), an.holdout(Xt, yt, HELD_OUT)


@pytest.fixture(scope="module")
def trained(digits):
    train, _ = digits
    model = ta.dense_autoencoder((784, 64, 8), rng=np.random.default_rng(0))
    ta.train.fit(model, train.train, epochs=5, batch_size=32, progress=False)
    return model


def test_a_model_trained_without_a_digit_flags_it(digits, trained):
    train, test = digits
    s = an.reconstruction_scores(trained, test.test)
    assert s.shape == (len(test.test),) and s.dtype == np.float64
    # the score is the squared error per image, recomputed here the long way
    i = 7
    assert s[i] == pytest.approx(np.sum((test.test[i] - trained.reconstruct(test.test[i])) ** 2),
                                 rel=1e-5)
    assert an.auc(s, test.anomalous) > 0.8                 # measured 0.93
    assert an.auc(an.pca_scores(train.train, test.test, 8), test.anomalous) > 0.8


def test_a_vae_scores_by_negative_elbo(digits):
    train, test = digits
    vae = ta.variational_autoencoder((784, 64, 8), rng=np.random.default_rng(0))
    ta.train.fit(vae, train.train, epochs=5, batch_size=32, progress=False)
    s = an.neg_elbo_scores(vae, test.test, np.random.default_rng(0), samples=2)
    assert s.shape == (len(test.test),) and np.all(s > 0)
    assert an.auc(s, test.anomalous) > 0.7                 # measured 0.81
    with pytest.raises(ValueError, match="needs a VariationalAutoencoder; this model is a "
                                         "Autoencoder"):
        an.neg_elbo_scores(ta.dense_autoencoder((784, 8, 2)), test.test[:5], None)


def test_figures(digits, trained, tmp_path):
    _, test = digits
    s = an.reconstruction_scores(trained, test.test)
    fig = roc_curves({"model": s, "random": np.random.default_rng(0).random(len(s))},
                     test.anomalous, path=tmp_path / "roc.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[1] == f"model (AUC {an.auc(s, test.anomalous):.3f})"
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    fig = extremes(test.test, s, n=5, path=tmp_path / "ext.png", anomalous=test.anomalous)
    shown = [float(ax.get_title()) for ax in fig.axes]
    assert shown[:5] == sorted(shown[:5], reverse=True) and max(shown) == pytest.approx(
        float(f"{s.max():.3g}")) and min(shown) == pytest.approx(float(f"{s.min():.3g}"))


# --- tinyae anomaly ----------------------------------------------------------------------
def run(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def checkpoint(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ta.save(trained, "ae.npz", extra={"args": {"data": "builtin", "model": "ae"}})
    return tmp_path / "ae.npz"


def test_the_command_end_to_end(checkpoint, digits, trained, capsys):
    code, out, err = run(["anomaly", "ae.npz", "--digit", str(HELD_OUT), "--limit", "600",
                          "--images", "ext.png", "--json", "r.json"], capsys)
    assert code == 0, err
    report = json.loads(open("r.json").read())
    train, test = digits
    assert report["n"] == 600 and report["n_anomalous"] == int(test.anomalous.sum())
    model_auc = an.auc(an.reconstruction_scores(trained, test.test), test.anomalous)
    assert report["scorers"]["model, squared error"]["auc"] == pytest.approx(model_auc)
    X, y, _ = load_dataset("builtin", "train", 600, progress=False)
    pca = an.pca_scores(an.holdout(X, y, HELD_OUT).train, test.test, 8)
    assert report["scorers"]["PCA-8, squared error"]["auc"] == pytest.approx(
        an.auc(pca, test.anomalous))
    for name, r in report["scorers"].items():
        assert f"{r['auc']:.3f}" in out and r["false_alarm_rate"] <= 0.05
    assert "PCA-8, squared error" in out and "the digit 4" in out and "(Autoencoder)" in out
    for png in ("roc.png", "ext.png"):
        assert open(png, "rb").read(4) == b"\x89PNG"
    # the default -o exists now: not replaced without --force
    code, _, err = run(["anomaly", "ae.npz", "--digit", "4", "--limit", "600"], capsys)
    assert code == 1 and "'roc.png' (the default -o) already exists" in err


def test_a_vae_gets_a_negative_elbo_row(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    vae = ta.variational_autoencoder((784, 16, 3), rng=np.random.default_rng(0))
    ta.save(vae, "vae.npz", extra={"args": {"data": "builtin", "model": "vae"}})
    code, out, err = run(["anomaly", "vae.npz", "--digit", "0", "--limit", "200", "-o", "v.png",
                          "--false-alarm", "0.1"], capsys)
    assert code == 0, err
    assert "model, negative ELBO" in out and "PCA-3, squared error" in out
    assert "(at 10% false alarms)" in out


def test_against_another_data_set(checkpoint, capsys, monkeypatch):
    """--against fashion: the checkpoint's test images normal, the other set's anomalous (here
    Fashion-MNIST is stood in for by blank images, which the files' checksums would refuse)."""
    real = cli_anomaly.load_dataset

    def load(kind, split, limit=None, progress=True):
        if kind == "fashion":
            return np.zeros((limit, 784), np.float32), np.zeros(limit, np.uint8), "fashion"
        return real(kind, split, limit, progress)
    monkeypatch.setattr(cli_anomaly, "load_dataset", load)
    code, out, err = run(["anomaly", "ae.npz", "--against", "fashion", "--limit", "100",
                          "--json", "f.json"], capsys)
    assert code == 0, err
    report = json.loads(open("f.json").read())
    assert report["n"] == 200 and report["n_anomalous"] == 100
    assert "Fashion-MNIST test images" in out


@pytest.mark.parametrize("argv, msg", [
    (["--digit", "10"], "argument --digit: wants a digit 0-9, got '10'"),
    (["--digit", "x"], "argument --digit: wants a digit 0-9, got 'x'"),
    (["--digit", "1", "--against", "fashion"], "not allowed with argument"),
    ([], "one of the arguments --digit --against is required"),
    (["--digit", "1", "--false-alarm", "0"], "wants a number in (0, 1)"),
])
def test_bad_flags_are_argparse_errors(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["anomaly", "ae.npz"] + argv)
    assert e.value.code == 2 and msg in capsys.readouterr().err


def test_bad_input_is_one_line_and_writes_nothing(checkpoint, capsys, monkeypatch):
    cases = [
        # the first 3 built-in training images are an 8, a 6 and a 5
        (["--digit", "4", "--limit", "3"], "digit 4 is absent from these 3 images (their "
         "labels: 5, 6, 8)"),
        (["--digit", "1", "--data", "fashion"], "Fashion-MNIST's labels are clothes, not digits"),
        (["--digit", "1", "-o", "ae.npz"], "should end in .png"),
        (["--digit", "1", "-o", "x.png", "--json", "x.png"], "should end in .json"),
        (["--digit", "1", "-o", "x.png", "--images", "x.png"], "are the same file"),
        (["--digit", "1", "-o", "link.png"], "is an input of this command"),
    ]
    monkeypatch.setattr(cli_anomaly, "load_dataset", _labelled_builtin_or_fashion())
    (checkpoint.parent / "link.png").symlink_to("ae.npz")          # the checkpoint, by a link
    for argv, msg in cases:
        code, _, err = run(["anomaly", "ae.npz"] + argv, capsys)
        assert code == 1 and msg in err and err.count("\n") == 1, (argv, err)
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["ae.npz", "link.png"]


def _labelled_builtin_or_fashion():
    real = cli_anomaly.load_dataset

    def load(kind, split, limit=None, progress=True):
        if kind == "fashion":           # no files here: its labels are what matters
            return np.zeros((10, 784), np.float32), np.arange(10) % 10, "fashion"
        return real(kind, split, limit, progress)
    return load


def test_overflowing_weights_write_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = ta.dense_autoencoder((784, 8, 2), rng=np.random.default_rng(0))
    model.encoder[0].params["W"][...] = 3e38
    ta.save(model, "big.npz", extra={"args": {"data": "builtin"}})
    code, _, err = run(["anomaly", "big.npz", "--digit", "1", "--limit", "50"], capsys)
    assert code == 1 and "NaN or infinite" in err and "nothing was written" in err
    assert not (tmp_path / "roc.png").exists()


# --- tinyae train --hold-out: the model for `tinyae anomaly --digit` -------------------------
@pytest.mark.slow                     # 18 s: CI runs it after the main suite (conftest.py)
def test_train_hold_out_leaves_the_digit_out_and_anomaly_knows(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", "--data", "builtin", "--limit", "400", "--sizes", "784,32,2",
                        "--epochs", "2", "--hold-out", str(HELD_OUT), "--out", str(out)], capsys)
    assert code == 0, err
    assert f"no {HELD_OUT}s" in err                          # the header says so
    X, y, _ = load_dataset("builtin", "train", 400, progress=False)
    Xt, yt, _ = load_dataset("builtin", "test", 400, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == int(np.sum(y != HELD_OUT)) < 400
    assert metrics["n_test"] == int(np.sum(yt != HELD_OUT)) < 400
    assert ta.io.read_checkpoint(out / "last.npz").extra["args"]["hold_out"] == HELD_OUT
    # tinyae evaluate holds the same digit out: the same numbers
    assert run(["evaluate", str(out / "last.npz"), "--out", str(tmp_path / "e")], capsys)[0] == 0
    assert json.loads((tmp_path / "e" / "metrics.json").read_text()) == metrics
    code, out_text, _ = run(["anomaly", str(out / "last.npz"), "--digit", str(HELD_OUT),
                             "--limit", "400", "-o", str(tmp_path / "roc.png")], capsys)
    assert code == 0 and f"its run had --hold-out {HELD_OUT}" in out_text
    code, out_text, _ = run(["anomaly", str(out / "last.npz"), "--digit", "1",
                             "--limit", "400", "-o", str(tmp_path / "roc1.png")], capsys)
    assert code == 0 and f"warning: the model was trained without the digit {HELD_OUT}, not 1" \
        in out_text
    # resume keeps it; another digit conflicts unless --override
    code, _, err = run(["train", "--resume", str(out / "last.npz"), "--epochs", "3",
                        "--hold-out", "5", "--out", str(tmp_path / "more")], capsys)
    assert code == 1 and "--hold-out 5 conflicts with the 4" in err
    code, _, err = run(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--quiet",
                        "--out", str(tmp_path / "more")], capsys)
    assert code == 0, err
    assert ta.io.read_checkpoint(tmp_path / "more" / "last.npz").extra["args"]["hold_out"] == 4


def test_a_checkpoint_from_before_hold_out_resumes_without_a_note(tmp_path, capsys):
    import crafted
    out = tmp_path / "run"
    assert run(["train", "--data", "builtin", "--limit", "200", "--sizes", "784,16,2",
                "--epochs", "2", "--out", str(out), "--quiet"], capsys)[0] == 0
    crafted.edit_config(out / "last.npz", lambda c: c["extra"]["args"].pop("hold_out"))
    code, _, err = run(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--quiet",
                        "--out", str(tmp_path / "more")], capsys)
    assert code == 0 and "hold-out" not in err, err
    code, out_text, _ = run(["anomaly", str(out / "last.npz"), "--digit", "3",
                             "--limit", "200", "-o", str(tmp_path / "roc.png")], capsys)
    assert code == 0 and "records no --hold-out" in out_text


@pytest.mark.parametrize("argv, code, msg", [
    (["--hold-out", "10"], 2, "argument --hold-out: wants a digit 0-9, got '10'"),
    # the first 10 built-in training images are 8 6 5 2 3 0 0 0 1 8: no 4
    (["--hold-out", "4", "--limit", "10"], 1, "digit 4 is absent from these 10 images"),
])
def test_hold_out_bad_input(tmp_path, capsys, argv, code, msg):
    argv = ["train", "--data", "builtin", "--epochs", "2", "--out", str(tmp_path / "r")] + argv
    if code == 2:
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err
    else:
        got, _, err = run(argv, capsys)
        assert got == 1 and msg in err, err
    assert not (tmp_path / "r" / "last.npz").exists()
