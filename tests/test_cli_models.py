"""`tinyae train --model ...` for every kind, and `tinyae robustness`."""
import json

import numpy as np
import pytest

import tinyae as ta
from tinyae.cli import commands as cli


def run(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


KINDS = {
    "ae": ([], ta.Autoencoder, {"weight_decay": 0.0}),
    "ae-decay": (["--weight-decay", "1e-4"], ta.Autoencoder, {"weight_decay": 1e-4}),
    "denoising": (["--noise", "masking:0.3"], ta.DenoisingAutoencoder, {"noise": "masking:0.3"}),
    "sparse": (["--sizes", "784,49", "--rho", "0.1", "--beta", "0.02"], ta.SparseAutoencoder,
               {"penalty": "kl", "rho": 0.1, "beta": 0.02, "weight_decay": 3e-3 * 2 / 784}),
    "sparse-l1": (["--penalty", "l1", "--l1", "1e-3", "--sizes", "784,49", "--weight-decay", "0"],
                  ta.SparseAutoencoder, {"penalty": "l1", "l1": 1e-3, "weight_decay": 0.0}),
    "stacked": (["--pretrain-epochs", "1"], ta.Autoencoder, {"pretrain_epochs": 1}),
}


@pytest.mark.parametrize("name", list(KINDS))
def test_train_round_trip_per_kind(name, tmp_path, capsys, monkeypatch, mnist_dir):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    if name != "sparse":         # figures are drawn for one kind (a 49-D code); the rest is slow
        monkeypatch.setattr(cli, "_figures", lambda *a: None)
    flags, cls, options = KINDS[name]
    kind = name.split("-")[0]
    out = tmp_path / "run"
    sizes = [] if "--sizes" in flags else ["--sizes", "784,32,8"]
    code, stdout, err = run(["train", "--model", kind, "--data", "mnist", "--epochs", "2",
                             "--limit", "300", "--batch-size", "50", "--out", str(out), "--quiet"]
                            + sizes + flags, capsys)
    assert code == 0, err
    model = ta.load(out / "last.npz")
    assert type(model) is cls
    ckpt = ta.io.read_checkpoint(out / "last.npz")
    saved = ckpt.extra["args"]
    assert saved["model"] == kind and all(saved[k] == v for k, v in options.items())
    assert ckpt.config["model"]["type"] == cls.__name__
    if "weight_decay" in options and kind == "sparse":     # the flag reaches the model
        assert model.weight_decay == options["weight_decay"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["test_sq_error_per_image"] == pytest.approx(784 * m["test_mse_per_pixel"], rel=1e-6)
    assert m["pca30_test_sq_error_per_image"] > 0
    records = json.loads((out / "history.json").read_text())["records"]
    assert len(records) == 2
    for r in records:
        assert r["loss"] == pytest.approx(r["reconstruction"] + r["penalty"])
        assert (r["penalty"] > 0) == (kind == "sparse")
    if kind == "stacked":
        pre = ckpt.extra["pretraining"]
        assert len(pre) == 2 and all(len(h["records"]) == 1 for h in pre)
    if name == "sparse":
        assert (out / "latent.png").exists() and (out / "reconstructions.png").exists()
        code, info, _ = run(["info", str(out / "last.npz")], capsys)
        assert code == 0 and "reconstruction  penalty" in info
        assert ("model: SparseAutoencoder (--model sparse), code penalty KLSparsity(rho=0.1, "
                "beta=0.02), weight decay 7.7e-06") in info
        assert f"{records[-1]['penalty']:.5f}" in info
    if name not in ("denoising", "sparse"):
        return
    # Resuming keeps the kind and its options.
    code, _, err = run(["train", "--resume", str(out / "last.npz"), "--epochs", "3", "--limit",
                        "300", "--out", str(tmp_path / "more"), "--quiet"], capsys)
    assert code == 0, err
    again = ta.io.read_checkpoint(tmp_path / "more" / "last.npz")
    assert type(ta.load(again)) is cls and again.extra["args"]["model"] == kind
    assert len(again.extra["history"]["records"]) == 3


def test_train_help_documents_every_kind(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for word in ("denoising", "sparse", "stacked", "--noise", "--rho", "--beta", "--l1",
                 "--penalty", "--pretrain-epochs", "masking", "--weight-decay"):
        assert word in text


@pytest.mark.parametrize("flags, msg", [
    (["--model", "sparse", "--rho", "1.5"], r"--rho: wants a number in \(0, 1\), got '1.5'"),
    (["--model", "sparse", "--penalty", "l1", "--l1", "-1"], r"--l1: wants a number >= 0 and "
     r"finite, got '-1'"),
    (["--model", "sparse", "--weight-decay", "-0.5"], r"--weight-decay: wants a number >= 0 .*"
     r"got '-0.5'"),
    (["--weight-decay", "inf"], r"--weight-decay: wants a number >= 0 and finite, got 'inf'"),
    (["--model", "vae", "--sizes", "784,8,2", "--beta", "inf"], r"--beta: wants a number >= 0 "
     r"and finite, got 'inf'"),
])
def test_bad_model_options_are_clear_errors(flags, msg, tmp_path, capsys):
    """The flags' own parsers refuse them (exit 2) before anything is read or written; the same
    parsers judge the values a checkpoint records (tinyae.cli.flags.valid)."""
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--data", "builtin", "--limit", "50", "--epochs", "1",
                  "--out", str(tmp_path / "r"), "--quiet"] + flags)
    err = capsys.readouterr().err
    assert e.value.code == 2 and not (tmp_path / "r").exists()
    import re
    assert re.search(msg, err), err


def test_bad_noise_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--model", "denoising", "--noise", "gaussian:2"])
    assert e.value.code == 2 and r"std must be in [0, 1], got 2" in capsys.readouterr().err


def test_old_checkpoint_without_model_kind_resumes_as_ae(tmp_path, capsys, monkeypatch,
                                                        mnist_dir):
    monkeypatch.setenv("TINYAE_DATA_DIR", str(mnist_dir))
    monkeypatch.setattr(cli, "_figures", lambda *a: None)
    model = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))
    old = tmp_path / "old.npz"
    ta.save(model, old, extra={"args": {"data": "mnist", "sizes": [784, 16, 2]}})
    code, _, err = run(["train", "--resume", str(old), "--epochs", "1", "--limit", "100",
                        "--out", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 0, err
    ckpt = ta.io.read_checkpoint(tmp_path / "r" / "last.npz")
    assert ckpt.extra["args"]["model"] == "ae" and type(ta.load(ckpt)) is ta.Autoencoder


def test_robustness_command(tmp_path, capsys):
    model = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))
    ckpt = tmp_path / "m.npz"
    ta.save(model, ckpt, extra={"args": {"data": "builtin"}})
    png, js = tmp_path / "rob.png", tmp_path / "rob.json"
    code, out, err = run(["robustness", str(ckpt), "--limit", "40", "-o", str(png),
                          "--json", str(js)], capsys)
    assert code == 0, err
    for row in ("clean", "gaussian 0.5", "rotated 30 deg", "flipped", "random strokes",
                "pure noise"):
        assert row in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    report = json.loads(js.read_text())
    assert report["n"] == 40 and report["table"]["clean"]["input_sq_error_per_image"] == 0
    assert f"{report['table']['flipped']['sq_error_per_image']:.2f}" in out
    assert set(report["copy_error_per_image"]) == {"random strokes", "pure noise"}
    assert f"{report['copy_error_per_image']['random strokes']:.2f}" in out


def test_robustness_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["robustness", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "CLEAN" not in out and "clean test images" in out.replace("\n", " ")


@pytest.mark.parametrize("kind, adam_decay", [("ae", 1e-4), ("stacked", 1e-4), ("sparse", 0.0)])
def test_weight_decay_goes_to_adam_except_for_a_sparse_model(kind, adam_decay, tmp_path,
                                                              monkeypatch):
    """--weight-decay is Adam's for every kind but sparse, whose penalty holds it; a resumed
    run gets the same Adam."""
    from tinyae.cli import runs
    made = []
    real = runs.adam
    monkeypatch.setattr(runs, "adam", lambda model, flags: made.append(real(model, flags))
                        or made[-1])
    monkeypatch.setattr(cli, "_figures", lambda *a: None)
    sizes = "784,16" if kind == "sparse" else "784,16,4"
    common = ["--data", "builtin", "--limit", "100", "--batch-size", "50", "--quiet"]
    pretrain = ["--pretrain-epochs", "1"] if kind == "stacked" else []   # others refuse it
    assert cli.main(["train", "--model", kind, "--sizes", sizes, "--epochs", "1", *pretrain,
                     "--weight-decay", "1e-4", "--out", str(tmp_path / "a")] + common) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "a" / "last.npz"), "--epochs", "2",
                     "--out", str(tmp_path / "b")] + common) == 0
    assert [opt.weight_decay for opt in made] == [adam_decay, adam_decay]
    saved = ta.io.read_checkpoint(tmp_path / "b" / "last.npz").extra["args"]
    assert saved["weight_decay"] == 1e-4
    if kind == "sparse":
        assert ta.load(tmp_path / "b" / "last.npz").weight_decay == 1e-4


def test_override_cannot_change_what_the_saved_model_holds(tmp_path, capsys, monkeypatch):
    """A resumed model keeps its config (a sparse model's penalty and decay); --override may
    change the optimiser's weight decay of a plain model, not those."""
    monkeypatch.setattr(cli, "_figures", lambda *a: None)
    common = ["--data", "builtin", "--limit", "100", "--batch-size", "50", "--quiet"]
    for kind, sizes in (("sparse", "784,16"), ("ae", "784,16,4")):
        assert cli.main(["train", "--model", kind, "--sizes", sizes, "--epochs", "1", "--out",
                         str(tmp_path / kind)] + common) == 0
    capsys.readouterr()
    for flag in (["--beta", "0.5"], ["--weight-decay", "0"]):
        code, _, err = run(["train", "--resume", str(tmp_path / "sparse" / "last.npz"),
                            "--epochs", "2", "--override", "--out", str(tmp_path / "x")]
                           + flag + common, capsys)
        assert code == 1 and "part of the saved model" in err and flag[0] in err
    code, _, err = run(["train", "--resume", str(tmp_path / "ae" / "last.npz"), "--epochs", "2",
                        "--override", "--weight-decay", "1e-4", "--out", str(tmp_path / "y")]
                       + common, capsys)
    assert code == 0, err
    assert ta.io.read_checkpoint(tmp_path / "y" / "last.npz").extra["args"]["weight_decay"] == 1e-4


@pytest.mark.parametrize("argv, words", [
    (["--model", "ae", "--noise", "masking:0.3"], "--noise is an option of --model denoising"),
    (["--model", "ae", "--pretrain-epochs", "2"], "--pretrain-epochs is an option of --model stacked"),
    (["--model", "sparse", "--sizes", "784,16", "--penalty", "l1", "--rho", "0.1"],
     "--rho sets the KL penalty, but this run's --penalty is l1"),
    (["--model", "sparse", "--sizes", "784,16", "--l1", "1e-3"],
     "--l1 sets the L1 penalty, but this run's --penalty is kl"),
    (["--override"], "without --resume there is nothing to override"),
    (["--model", "ae", "--beta", "0.5"], "--beta is an option of --model sparse, vae, cvae, conv-vae or contractive"),
    (["--model", "vae", "--sizes", "784,16,2", "--loss", "bce"],
     "--loss is an option of --model ae, denoising, sparse, stacked, conv or contractive"),
])
def test_a_flag_the_run_would_not_apply_is_refused(argv, words, tmp_path, capsys):
    """Accepted means applied: a flag of another kind, or of the other penalty, or an
    --override with nothing to override, stops the command before any work."""
    code = cli.main(["train", "--data", "builtin", "--limit", "100", "--epochs", "1",
                     "--out", str(tmp_path / "r"), *argv])
    assert code == 1 and words in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, words", [
    (["--sizes", "784,8,2"], "--sizes 784,8,2 differs from the 784,16,2"),
    (["--model", "denoising"], "--model denoising differs from the ae"),
    (["--model", "vae"], "--model vae differs from the ae"),
    (["--noise", "masking:0.3"], "--noise is an option of --model denoising"),
])
def test_override_cannot_rebuild_the_resumed_model(argv, words, tmp_path, capsys):
    """--resume continues the saved model: flags that would need another one are refused
    even with --override, instead of being reported as applied and then ignored."""
    common = ["--data", "builtin", "--limit", "100", "--batch-size", "50", "--quiet"]
    assert cli.main(["train", "--sizes", "784,16,2", "--epochs", "1", "--schedule", "none",
                     "--out", str(tmp_path / "a")] + common) == 0
    code = cli.main(["train", "--resume", str(tmp_path / "a" / "last.npz"), "--override",
                     "--epochs", "2", "--out", str(tmp_path / "b"), *argv] + common)
    assert code == 1 and words in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_info_on_a_run_stopped_before_its_first_epoch_finished():
    from tinyae.cli.commands import _which_epoch
    text = _which_epoch([], 5, "interrupted (SIGTERM) in epoch 1, step 3; the model holds ...")
    assert text == ("holds the starting weights: the run was interrupted (SIGTERM) in epoch 1, "
                    "step 3, before any epoch finished")


def test_a_new_kind_is_one_registry_entry(tmp_path, capsys, monkeypatch):
    """A kind added to tinyae.models.kinds.KINDS alone is a --model choice with its defaults,
    recorded in the checkpoint, shown by --help, resumed, and its flags policed like any other."""
    from tinyae.models import kinds
    narrow = kinds.Kind("narrow", "a plain autoencoder with an 8-wide hidden layer",
                        kinds.KINDS["ae"].build, options=("weight_decay",),
                        defaults={"sizes": (784, 8, 2)})
    monkeypatch.setitem(kinds.KINDS, "narrow", narrow)
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "narrow     a plain autoencoder with an 8-wide" in capsys.readouterr().out
    base = ["--data", "builtin", "--limit", "50", "--quiet"]
    code, _, err = run(["train", "--model", "narrow", "--epochs", "1",
                        "--out", str(tmp_path / "a")] + base, capsys)
    assert code == 0, err
    saved = ta.io.read_checkpoint(tmp_path / "a" / "last.npz").extra["args"]
    assert saved["model"] == "narrow" and saved["sizes"] == [784, 8, 2]
    assert saved["schedule"] == "none" and "noise" not in saved       # the common defaults
    code, _, err = run(["train", "--model", "narrow", "--noise", "masking:0.3", "--epochs", "1",
                        "--out", str(tmp_path / "b")] + base, capsys)
    assert code == 1 and "--noise is an option of --model denoising" in err
    code, _, err = run(["train", "--resume", str(tmp_path / "a" / "last.npz"), "--epochs", "2",
                        "--out", str(tmp_path / "c"), "--quiet"], capsys)
    assert code == 0, err
    assert len(ta.io.read_checkpoint(tmp_path / "c" / "last.npz").extra["history"]["records"]) == 2


@pytest.mark.parametrize("kind, cls", [
    ("conv", ta.Autoencoder),
    pytest.param("conv-vae", ta.VariationalAutoencoder, marks=pytest.mark.slow)])   # 17 s
def test_convolutional_kinds_train_resume_and_refuse_dense_sizes(kind, cls, tmp_path, capsys,
                                                                 monkeypatch):
    """--model conv and conv-vae: one entry each in tinyae.models.kinds; --sizes gives only
    the code width (784,Z), the run records it, resume continues the same model."""
    monkeypatch.setattr(cli, "_figures", lambda *a: None)
    base = ["--data", "builtin", "--limit", "40", "--batch-size", "20", "--quiet"]
    code, _, err = run(["train", "--model", kind, "--sizes", "784,64,2", "--epochs", "1",
                        "--out", str(tmp_path / "bad")] + base, capsys)
    assert code == 1 and f"--model {kind} takes --sizes 784,Z" in err
    code, _, err = run(["train", "--model", kind, "--sizes", "784,3", "--epochs", "1",
                        "--out", str(tmp_path / "a")] + base, capsys)
    assert code == 0, err
    ckpt = ta.io.read_checkpoint(tmp_path / "a" / "last.npz")
    model = ta.load(ckpt)
    assert type(model) is cls and model.latent_width == 3
    assert ckpt.extra["args"]["model"] == kind and ckpt.extra["args"]["sizes"] == [784, 3]
    assert any(isinstance(layer, ta.Conv2D) for layer in
               (model.encoder if kind == "conv" else model.encoder.layers))
    code, _, err = run(["train", "--resume", str(tmp_path / "a" / "last.npz"), "--epochs", "2",
                        "--out", str(tmp_path / "b"), "--quiet"], capsys)
    assert code == 0, err
    assert len(ta.io.read_checkpoint(tmp_path / "b" / "last.npz").extra["history"]["records"]) == 2


def test_loss_flag_is_the_objective_trained_and_recorded(tmp_path, capsys):
    """--loss bce trains on the cross-entropy: the validation loss recorded is the BCE of the
    model on the test images, and resuming keeps it."""
    import json

    from tinyae.data.mnist import load_dataset
    out, loss = tmp_path / "r", "bce"
    code, _, err = run(["train", "--data", "builtin", "--limit", "100", "--epochs", "1",
                        "--batch-size", "50", "--loss", loss, "--out", str(out)], capsys)
    assert code == 0, err
    assert "loss cross-entropy" in err
    assert ta.io.read_checkpoint(out / "last.npz").extra["args"]["loss"] == loss
    val = json.loads((out / "history.json").read_text())["records"][-1]["val_loss"]
    Xt = load_dataset("builtin", "test", 100, progress=False)[0]
    model = ta.load(out / "last.npz")
    assert val == pytest.approx(ta.BCE().forward(model.forward(Xt), Xt), rel=1e-5)
    assert val != pytest.approx(ta.MSE().forward(model.forward(Xt), Xt), rel=1e-2)
    code, _, err = run(["train", "--resume", str(out / "last.npz"), "--epochs", "2", "--quiet",
                        "--out", str(tmp_path / "more")], capsys)
    assert code == 0, err
    assert ta.io.read_checkpoint(tmp_path / "more" / "last.npz").extra["args"]["loss"] == loss
