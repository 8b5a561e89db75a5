"""The way out (issue 29): ONNX graphs and PyTorch state dicts that compute what tinyae computes,
state dicts back into tinyae bit for bit, and every bad input refused before anything is written.

onnx, onnxruntime, safetensors and torch are skipped when missing, except under CI=true,
whose .ci/run installs them.
"""
import importlib
import os
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
from conftest import ROOT

import tinyae as ta
from tinyae import export
from tinyae.cli import commands as cli
from tinyae.export import ExportError
from tinyae.nn.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape
from tinyae.nn.layers import ACTIVATION_LAYERS, LAYERS, Dense, LeakyReLU, Sequential, Sigmoid

ATOL = 1e-5                  # float32, as the issue asks


def need(name):
    """The module ``name``, or a skip (a failure under CI=true, where .ci/run installs it)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the export tests, but {name} is not installed; .ci/run "
                        "installs it (pip install -e '.[test,export]' and torch)")
        pytest.skip(f"{name} is not installed")


# --- models ------------------------------------------------------------------------------
def with_random_biases(model, seed=1):
    """The model with its biases drawn too (they start at 0, where a wrong bias cannot show)."""
    rng = np.random.default_rng(seed)
    for name, p, _ in model.parameters():
        if name.endswith(".b"):
            p[...] = rng.normal(0, 0.1, p.shape)
    return model


def seed_model():
    """784-512-256-64-2 and back, ReLU inside, sigmoid out: the seed model."""
    return with_random_biases(ta.dense_autoencoder(rng=np.random.default_rng(0)))


def every_activation():
    """One Dense followed by each stock activation in turn, in the encoder and in the decoder."""
    rng = np.random.default_rng(2)
    acts = list(ACTIVATION_LAYERS.values())

    def stack(widths):
        layers = []
        for k, (d, h) in enumerate(zip(widths[:-1], widths[1:])):
            layers += [Dense(d, h, init="glorot", rng=rng), acts[k % len(acts)]()]
        return Sequential(*layers)

    encoder = stack([20, 16, 12, 9, 7, 5, 3])        # six layers: every activation once
    decoder = Sequential(stack([3, 6, 8, 11, 13, 17]), Dense(17, 20, bias=False, rng=rng))
    return with_random_biases(ta.Autoencoder(encoder, decoder))


def vae():
    return with_random_biases(ta.variational_autoencoder((30, 16, 8, 2), rng=np.random.default_rng(3)))


def conv_book():
    """Generative Deep Learning's: Conv2D 32-64-64-64, LeakyReLU, Dense to 2; mirrored back."""
    return with_random_biases(ta.conv_autoencoder(rng=np.random.default_rng(11)))


def conv_keras():
    """keras-io's: Conv2D and MaxPool2D twice, ConvTranspose2D (output_padding 1) twice."""
    return with_random_biases(ta.keras_conv_autoencoder(rng=np.random.default_rng(12)))


def conv_vae():
    return with_random_biases(ta.conv_variational_autoencoder(rng=np.random.default_rng(13)))


def conv_odd():
    """Every setting as an unequal pair (along H, along W), two channels in, rows of 120:

    (2, 10, 6) -Conv (3,2)/(2,1)/pad (1,0)-> (3, 5, 5) -MaxPool (2,1)/(1,1)-> (3, 4, 5)
    -> 60 -> 4 -> 75 -> (3, 5, 5) -ConvTranspose output_padding (1,0)-> (2, 10, 6) -> 120
    """
    rng = np.random.default_rng(14)
    encoder = Sequential(Reshape((2, 10, 6)),
                         Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng),
                         LeakyReLU(0.2), MaxPool2D((2, 1), stride=(1, 1)), Flatten(),
                         Dense(60, 4, rng=rng))
    decoder = Sequential(Dense(4, 75, rng=rng), Reshape((3, 5, 5)),
                         ConvTranspose2D(3, 2, (3, 2), (2, 1), (1, 0), (1, 0), rng=rng),
                         Sigmoid(), Flatten())
    return with_random_biases(ta.Autoencoder(encoder, decoder))


AUTOENCODERS = [seed_model, every_activation, conv_book, conv_keras, conv_odd]
AUTOENCODER_IDS = ["seed", "activations", "conv-book", "conv-keras", "conv-odd"]
VAES = [vae, conv_vae]


class MyLeakyReLU:
    """A student's own layer: the contract, and no equivalent in ONNX or PyTorch."""

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, 0.1 * x)

    def backward(self, dout):
        return np.where(self.x > 0, dout, 0.1 * dout)


def with_own_layer():
    rng = np.random.default_rng(4)
    return ta.Autoencoder(Sequential(Dense(6, 4, rng=rng), MyLeakyReLU(), Dense(4, 2, rng=rng)),
                          Sequential(Dense(2, 6, rng=rng)))


def images(n, d, seed=5):
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


# --- ONNX ----------------------------------------------------------------------------------
def session(path):
    ort = need("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("make", AUTOENCODERS, ids=AUTOENCODER_IDS)
def test_onnx_model_computes_the_forward_and_the_code(make, tmp_path):
    onnx = need("onnx")
    model = make()
    path = export.to_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    s = session(path)
    assert [i.name for i in s.get_inputs()] == ["x"]
    assert [o.name for o in s.get_outputs()] == ["reconstruction", "code"]
    X = images(5, model.input_width)
    reconstruction, code = s.run(None, {"x": X})
    np.testing.assert_allclose(reconstruction, model.forward(X), rtol=0, atol=ATOL)
    np.testing.assert_allclose(code, model.encode(X), rtol=0, atol=ATOL)
    assert np.abs(reconstruction - model.forward(X[::-1])).max() > 100 * ATOL   # can fail


def test_every_stock_activation_is_in_the_activation_model():
    kinds = {type(layer) for _, layer in export.parts.layers(every_activation())}
    assert set(ACTIVATION_LAYERS.values()) <= kinds


def test_every_stock_layer_has_a_rule_and_the_conv_models_use_them_all():
    assert set(LAYERS.values()) <= set(export.RULES)
    kinds = {type(layer) for make in (conv_book, conv_keras, conv_vae, conv_odd)
             for _, layer in export.parts.layers(make())}
    assert {Conv2D, ConvTranspose2D, MaxPool2D, Flatten, Reshape} <= kinds
    assert any(layer.output_padding != (0, 0) for _, layer in export.parts.layers(conv_keras())
               if isinstance(layer, ConvTranspose2D))


def test_onnx_conv_nodes_carry_the_layers_settings():
    onnx = need("onnx")
    graph = export.onnx_model(conv_odd()).graph
    nodes = {n.op_type: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
             for n in graph.node}
    assert nodes["Conv"] == {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 0]}
    assert nodes["ConvTranspose"] == {"kernel_shape": [3, 2], "strides": [2, 1],
                                      "pads": [1, 0, 1, 0], "output_padding": [1, 0]}
    assert nodes["MaxPool"] == {"kernel_shape": [2, 1], "strides": [1, 1]}
    assert nodes["Flatten"] == {"axis": 1}
    shapes = {w.name: onnx.numpy_helper.to_array(w).tolist() for w in graph.initializer
              if w.name.endswith(".shape")}
    assert shapes == {"encoder.0.shape": [-1, 2, 10, 6], "decoder.1.shape": [-1, 3, 5, 5]}


@pytest.mark.parametrize("make", VAES, ids=["dense", "conv"])
def test_onnx_vae_decoder_encoder_and_model(make, tmp_path):
    onnx = need("onnx")
    model = make()
    X = images(5, model.input_width)
    Z = np.random.default_rng(6).standard_normal((5, model.latent_width)).astype(np.float32)
    for part in ("decoder", "encoder", "model"):
        onnx.checker.check_model(onnx.load(export.to_onnx(model, tmp_path / f"{part}.onnx",
                                                          part=part)))
    decoder = session(tmp_path / "decoder.onnx")
    assert [i.name for i in decoder.get_inputs()] == ["code"]
    assert [o.name for o in decoder.get_outputs()] == ["reconstruction"]
    np.testing.assert_allclose(decoder.run(None, {"code": Z})[0], model.decode(Z), rtol=0, atol=ATOL)
    mu, logvar = model.encode(X, logvar=True)
    code, lv = session(tmp_path / "encoder.onnx").run(["code", "logvar"], {"x": X})
    np.testing.assert_allclose(code, mu, rtol=0, atol=ATOL)
    np.testing.assert_allclose(lv, logvar, rtol=0, atol=ATOL)
    reconstruction, code, _ = session(tmp_path / "model.onnx").run(None, {"x": X})
    np.testing.assert_allclose(reconstruction, model.reconstruct(X), rtol=0, atol=ATOL)


@pytest.mark.parametrize("make", [seed_model, conv_book, conv_keras],
                         ids=["seed", "conv-book", "conv-keras"])
def test_onnx_decoder_of_the_seed_and_conv_models(make, tmp_path):
    model = make()
    s = session(export.to_onnx(model, tmp_path / "d.onnx", part="decoder"))
    Z = np.random.default_rng(7).standard_normal((5, model.latent_width)).astype(np.float32)
    np.testing.assert_allclose(s.run(None, {"code": Z})[0], model.decode(Z), rtol=0, atol=ATOL)


# --- PyTorch ---------------------------------------------------------------------------------
def torch_seed_module(nn):
    """The seed model written by hand in PyTorch, as a reader would: not built by tinyae."""
    widths = (784, 512, 256, 64, 2)

    def stack(w, last):
        layers = []
        for k, (d, h) in enumerate(zip(w[:-1], w[1:])):
            layers.append(nn.Linear(d, h))
            if k < len(w) - 2:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers, *last)

    return nn.Sequential(OrderedDict(encoder=stack(widths, []),
                                     decoder=stack(widths[::-1], [nn.Sigmoid()])))


def torch_keras_module(nn):
    """keras-io's convolutional autoencoder written by hand in PyTorch ('same': padding 1)."""
    encoder = nn.Sequential(nn.Unflatten(1, (1, 28, 28)),
                            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten())
    decoder = nn.Sequential(nn.Unflatten(1, (32, 7, 7)),
                            nn.ConvTranspose2d(32, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
                            nn.ConvTranspose2d(32, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
                            nn.Conv2d(32, 1, 3, padding=1), nn.Sigmoid(), nn.Flatten())
    return nn.Sequential(OrderedDict(encoder=encoder, decoder=decoder))


def test_state_dict_loads_strictly_into_the_torch_keras_conv_model(tmp_path):
    torch, st = need("torch"), need("safetensors.torch")
    model = conv_keras()
    module = torch_keras_module(torch.nn)
    module.load_state_dict(st.load_file(export.to_safetensors(model, tmp_path / "k.safetensors")),
                           strict=True)
    X = images(3, 784)
    with torch.no_grad():
        y = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(y, model.forward(X), rtol=0, atol=ATOL)
    for layer, torch_layer in ((model.encoder[1], module.encoder[1]),     # Conv2D
                               (model.decoder[1], module.decoder[1])):    # ConvTranspose2D
        W = layer.params["W"]                           # kernels keep their layout: no transpose
        assert np.array_equal(torch_layer.weight.detach().numpy(), W)


@pytest.mark.parametrize("make", [conv_book, conv_odd], ids=["conv-book", "conv-odd"])
def test_conv_state_dict_loads_strictly_into_to_torch_of_another_copy(make, tmp_path):
    torch, st = need("torch"), need("safetensors.torch")
    model = make()
    other = make()
    for _, p, _ in other.parameters():                  # the same architecture, other weights
        p *= -1.5
    module = export.to_torch(other)
    module.load_state_dict(st.load_file(export.to_safetensors(model, tmp_path / "m.safetensors")),
                           strict=True)
    X = images(3, model.input_width)
    with torch.no_grad():
        y = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(y, model.forward(X), rtol=0, atol=ATOL)
    assert np.abs(other.forward(X) - model.forward(X)).max() > 100 * ATOL      # can fail


def test_state_dict_loads_strictly_into_the_torch_seed_model(tmp_path):
    torch, st = need("torch"), need("safetensors.torch")
    model = seed_model()
    path = export.to_safetensors(model, tmp_path / "m.safetensors")
    module = torch_seed_module(torch.nn)
    module.load_state_dict(st.load_file(path), strict=True)
    X = images(11, 784)
    with torch.no_grad():
        y = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(y, model.forward(X), rtol=0, atol=ATOL)
    W = model.encoder[0].params["W"]                     # (784, 512): weight is its transpose
    assert module.encoder[0].weight.shape == (512, 784)
    assert np.array_equal(module.encoder[0].weight.detach().numpy(), W.T)


@pytest.mark.parametrize("make", AUTOENCODERS, ids=AUTOENCODER_IDS)
def test_to_torch_gives_the_same_outputs(make):
    torch = need("torch")
    model = make()
    module = export.to_torch(model)
    X = images(4, model.input_width)
    with torch.no_grad():
        x = torch.from_numpy(X)
        np.testing.assert_allclose(module(x).numpy(), model.forward(X), rtol=0, atol=ATOL)
        np.testing.assert_allclose(module.encoder(x).numpy(), model.encode(X), rtol=0, atol=ATOL)


@pytest.mark.parametrize("make", VAES, ids=["dense", "conv"])
def test_to_torch_vae_encodes_and_decodes_as_tinyae(make, tmp_path):
    torch, st = need("torch"), need("safetensors.torch")
    model = make()
    module = export.to_torch(model).eval()
    module.load_state_dict(st.load_file(export.to_safetensors(model, tmp_path / "v.safetensors")),
                           strict=True)
    X = images(4, model.input_width)
    Z = np.random.default_rng(8).standard_normal((4, model.latent_width)).astype(np.float32)
    with torch.no_grad():
        mu, logvar = module.encode(torch.from_numpy(X))
        images_out = module.decode(torch.from_numpy(Z)).numpy()
        logits, _, _ = module(torch.from_numpy(X))        # eval mode: decodes mu
    want_mu, want_logvar = model.encode(X, logvar=True)
    np.testing.assert_allclose(mu.numpy(), want_mu, rtol=0, atol=ATOL)
    np.testing.assert_allclose(logvar.numpy(), want_logvar, rtol=0, atol=ATOL)
    np.testing.assert_allclose(images_out, model.decode(Z), rtol=0, atol=ATOL)
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), model.reconstruct(X), rtol=0, atol=ATOL)


def test_one_sgd_step_in_torch_equals_one_tinyae_step(tmp_path):
    torch, st = need("torch"), need("safetensors.torch")
    model, lr = seed_model(), 50.0        # MSE's gradient is 2/(N D) small: a step that shows
    module = torch_seed_module(torch.nn)
    module.load_state_dict(st.load_file(export.to_safetensors(model, tmp_path / "m.safetensors")),
                           strict=True)
    before = export.state_dict(model)
    before = {k: v.copy() for k, v in before.items()}
    X = images(32, 784)

    loss = ta.MSE()
    model.zero_grad()
    tinyae_loss = loss.forward(model.forward(X), X)
    model.backward(loss.backward())
    ta.SGD(model.parameters(), lr=lr).step()

    optimizer = torch.optim.SGD(module.parameters(), lr=lr)
    x = torch.from_numpy(X)
    torch_loss = torch.nn.functional.mse_loss(module(x), x)
    optimizer.zero_grad()
    torch_loss.backward()
    optimizer.step()

    assert abs(torch_loss.item() - tinyae_loss) <= 1e-6
    after = module.state_dict()
    moved = 0.0
    for name, p in export.state_dict(model).items():
        np.testing.assert_allclose(after[name].numpy(), p, rtol=0, atol=1e-5, err_msg=name)
        moved = max(moved, np.abs(p - before[name]).max())
    assert moved > 1e-3                     # the step moved the weights far more than the tolerance


# --- round trip -----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [seed_model, vae, every_activation, conv_keras, conv_vae, conv_odd],
                         ids=["seed", "vae", "activations", "conv-keras", "conv-vae", "conv-odd"])
def test_round_trip_is_bit_identical(make, tmp_path):
    need("safetensors")
    model = make()
    path = export.to_safetensors(model, tmp_path / "m.safetensors")
    back = export.from_safetensors(path, like=make())         # a like with other weights? same
    assert back is not model and type(back) is type(model)
    for (name, p, _), (name2, q, _) in zip(model.parameters(), back.parameters()):
        assert name == name2 and p.dtype == q.dtype and np.array_equal(p, q), name


def test_round_trip_float64_and_like_a_checkpoint(tmp_path):
    need("safetensors")
    model = with_random_biases(ta.dense_autoencoder((10, 6, 2), dtype=np.float64,
                                                    rng=np.random.default_rng(9)))
    ckpt = ta.save(model, tmp_path / "c.npz")
    path = export.to_safetensors(model, tmp_path / "m.safetensors")
    other = ta.dense_autoencoder((10, 6, 2), dtype=np.float64, rng=np.random.default_rng(10))
    for like in (ckpt, ta.io.read_checkpoint(ckpt), other):
        back = export.from_safetensors(path, like=like)
        for (_, p, _), (_, q, _) in zip(model.parameters(), back.parameters()):
            assert q.dtype == np.float64 and np.array_equal(p, q)
    assert not np.array_equal(other.encoder[0].params["W"], model.encoder[0].params["W"])


# --- bad input ------------------------------------------------------------------------------
def small(sizes=(10, 6, 2), seed=0, dtype=np.float32):
    return ta.dense_autoencoder(sizes, dtype=dtype, rng=np.random.default_rng(seed))


def write_state(path, state):
    st = need("safetensors.numpy")
    st.save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))
    return path


def refused(path, like, *words):
    with pytest.raises(ExportError) as e:
        export.from_safetensors(path, like=like)
    message = str(e.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_state_dict_of_another_architecture_is_refused(tmp_path):
    path = export.to_safetensors(small((10, 5, 2)), tmp_path / "m.safetensors")
    refused(path, small(), "encoder.0.weight", "(5, 10)", "(6, 10)", "--like")
    deeper = export.to_safetensors(small((10, 6, 4, 2)), tmp_path / "deep.safetensors")
    refused(deeper, small(), "unexpected", "encoder.4.weight")
    refused(deeper, vae(), "missing", "mu_head.weight")


def test_a_missing_or_extra_key_is_named(tmp_path):
    state = export.state_dict(small())
    less = dict(state)
    del less["decoder.2.bias"]
    refused(write_state(tmp_path / "less.safetensors", less), small(), "missing decoder.2.bias")
    more = {**state, "decoder.9.weight": np.zeros((2, 2), np.float32)}
    refused(write_state(tmp_path / "more.safetensors", more), small(), "unexpected decoder.9.weight")


def test_a_wrong_shape_or_dtype_is_named(tmp_path):
    state = export.state_dict(small())
    untransposed = {**state, "encoder.0.weight": small().encoder[0].params["W"]}   # W, not W^T
    refused(write_state(tmp_path / "t.safetensors", untransposed), small(),
            "encoder.0.weight has shape (10, 6)", "(6, 10)")
    doubles = {k: v.astype(np.float64) for k, v in state.items()}
    refused(write_state(tmp_path / "d.safetensors", doubles), small(),
            "float64", "float32", "torch.float32")


@pytest.mark.parametrize("content", [b"", b"random bytes \x00\xff" * 40, b"hello, world\n", "npz"])
def test_a_file_that_is_not_safetensors_is_refused(content, tmp_path):
    need("safetensors")
    path = tmp_path / "not.safetensors"
    if content == "npz":
        ta.save(small(), tmp_path / "c.npz")
        os.rename(tmp_path / "c.npz", path)
    else:
        path.write_bytes(content)
    refused(path, small(), "is not a safetensors state dict")


def test_a_truncated_or_non_finite_state_dict_is_refused(tmp_path):
    path = export.to_safetensors(small(), tmp_path / "m.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-8])
    refused(cut, small(), "damaged")
    state = export.state_dict(small())
    state["encoder.0.bias"] = np.full(6, np.nan, np.float32)
    refused(write_state(tmp_path / "nan.safetensors", state), small(), "encoder.0.bias", "NaN")


def test_a_students_layer_has_no_equivalent_and_nothing_is_written(tmp_path):
    model = with_own_layer()
    writers = [lambda p: export.to_onnx(model, p), lambda p: export.to_safetensors(model, p)]
    for k, write in enumerate(writers):
        need(("onnx", "safetensors")[k])
        with pytest.raises(ExportError, match=r"encoder\.1 is a MyLeakyReLU.*RULES"):
            write(tmp_path / f"out{k}")
    assert os.listdir(tmp_path) == []                   # not even a temporary file
    need("torch")
    with pytest.raises(ExportError, match="encoder.1 is a MyLeakyReLU"):
        export.to_torch(model)


def test_an_existing_file_is_replaced_only_with_force(tmp_path):
    need("onnx")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="force"):
        export.to_onnx(small(), path)
    with pytest.raises(FileExistsError, match="force"):
        export.to_safetensors(small(), path)
    assert path.read_bytes() == b"mine"
    export.to_onnx(small(), path, force=True)
    assert path.read_bytes() != b"mine"


def test_missing_packages_say_how_to_install_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)      # import onnx then raises ImportError
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'tinyae\[export\]'"):
        export.onnx_model(small())
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModuleNotFoundError, match="pip install torch"):
        export.to_torch(small())


# --- the command ----------------------------------------------------------------------------
def run(args, capsys):
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def checkpoint(tmp_path):
    """A small checkpoint, saved directly (no training needed to test the bridges)."""
    return str(ta.save(with_random_biases(small((784, 16, 2))), tmp_path / "ae.npz"))


def test_cli_export_onnx_and_safetensors_then_import(checkpoint, tmp_path, capsys):
    torch, st = need("torch"), need("safetensors.torch")
    onnx_path, st_path, back = (str(tmp_path / n) for n in ("ae.onnx", "ae.safetensors", "b.npz"))
    code, out, _ = run(["export", checkpoint, "--to", "onnx", "-o", onnx_path], capsys)
    assert code == 0 and "wrote" in out
    model = ta.load(checkpoint)
    X = images(4, 784)
    np.testing.assert_allclose(session(onnx_path).run(["reconstruction"], {"x": X})[0],
                               model.forward(X), rtol=0, atol=ATOL)
    dec = str(tmp_path / "dec.onnx")
    assert run(["export", checkpoint, "--to", "onnx", "--part", "decoder", "-o", dec], capsys)[0] == 0
    assert [i.name for i in session(dec).get_inputs()] == ["code"]

    assert run(["export", checkpoint, "--to", "safetensors", "-o", st_path], capsys)[0] == 0
    module = export.to_torch(model)                     # trained a step further "elsewhere"
    module.load_state_dict(st.load_file(st_path), strict=True)
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(0.5)
    st.save_file(module.state_dict(), st_path + ".new.safetensors")
    code, out, _ = run(["import", st_path + ".new.safetensors", "--like", checkpoint,
                        "-o", back], capsys)
    assert code == 0 and back in out
    imported = ta.load(back)
    W = imported.encoder[0].params["W"]
    assert np.array_equal(W, 0.5 * model.encoder[0].params["W"])
    assert run(["info", back], capsys)[0] == 0


def test_cli_errors_are_one_line(checkpoint, tmp_path, capsys):
    need("onnx"), need("safetensors")
    taken = tmp_path / "taken.onnx"
    taken.write_bytes(b"keep")
    other = str(ta.save(small((784, 8, 2)), tmp_path / "other.npz"))
    st_path = str(tmp_path / "o.safetensors")
    run(["export", other, "--to", "safetensors", "-o", st_path], capsys)
    cases = [
        (["export", checkpoint, "--to", "onnx", "-o", str(taken)], "--force"),
        (["export", checkpoint, "--to", "onnx", "-o", str(tmp_path / "m.bin")], "should end in .onnx"),
        (["export", checkpoint, "--to", "safetensors", "--part", "decoder",
          "-o", str(tmp_path / "d.safetensors")], "--part decoder applies to --to onnx"),
        (["import", st_path, "--like", checkpoint, "-o", str(tmp_path / "x.npz")],
         "encoder.0.weight has shape (8, 784)"),
        (["import", checkpoint, "--like", checkpoint, "-o", str(tmp_path / "x.npz")],
         "is not a safetensors state dict"),
        (["import", st_path, "--like", other, "-o", other, "--force"], "is an input"),
        (["export", str(tmp_path / "nope.npz"), "--to", "onnx", "-o", str(tmp_path / "n.onnx")],
         "no checkpoint"),
    ]
    for args, words in cases:
        code, _, err = run(args, capsys)
        assert code == 1 and err.count("\n") == 1 and words in err, (args, err)
    assert taken.read_bytes() == b"keep" and not (tmp_path / "x.npz").exists()
    assert run(["export", checkpoint, "--to", "onnx", "-o", str(taken), "--force"], capsys)[0] == 0


def test_cli_export_and_import_a_conv_checkpoint(tmp_path, capsys):
    need("torch")
    st = need("safetensors.torch")
    model = conv_vae()
    ckpt = str(ta.save(model, tmp_path / "cvae.npz"))
    onnx_path, dec, st_path, back = (str(tmp_path / n) for n in
                                     ("m.onnx", "d.onnx", "m.safetensors", "b.npz"))
    assert run(["export", ckpt, "--to", "onnx", "-o", onnx_path], capsys)[0] == 0
    assert run(["export", ckpt, "--to", "onnx", "--part", "decoder", "-o", dec], capsys)[0] == 0
    assert run(["export", ckpt, "--to", "safetensors", "-o", st_path], capsys)[0] == 0
    X = images(3, 784)
    Z = np.random.default_rng(15).standard_normal((3, 2)).astype(np.float32)
    reconstruction, code, logvar = session(onnx_path).run(None, {"x": X})
    np.testing.assert_allclose(reconstruction, model.reconstruct(X), rtol=0, atol=ATOL)
    for got, want in zip((code, logvar), model.encode(X, logvar=True)):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
    np.testing.assert_allclose(session(dec).run(None, {"code": Z})[0], model.decode(Z),
                               rtol=0, atol=ATOL)
    state = {k: 2 * v for k, v in st.load_file(st_path).items()}        # "trained" elsewhere
    st.save_file(state, str(tmp_path / "new.safetensors"))
    code, out, _ = run(["import", str(tmp_path / "new.safetensors"), "--like", ckpt,
                        "-o", back], capsys)
    assert code == 0 and back in out
    imported = ta.load(back)
    for (name, p, _), (_, q, _) in zip(model.parameters(), imported.parameters()):
        assert np.array_equal(q, 2 * p), name


@pytest.mark.parametrize("sub", ["export", "import"])
def test_cli_help(sub, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([sub, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and f"usage: tinyae {sub}" in out and "--force" in out


# --- the scale path: torchrun, DistributedDataParallel, and back ------------------------------
def test_torchrun_example_continues_training_and_comes_back(tmp_path, mnist_dir):
    need("torch"), need("safetensors")
    env = {**os.environ, "TINYAE_DATA_DIR": str(mnist_dir), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "examples" / "torchrun_continue.py"), "--limit", "256", "--out", str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    lines = done.stdout.splitlines()
    assert any("epoch 1: train MSE" in line and "2 processes" in line for line in lines)
    losses = {line.split(":")[0].strip(): float(line.split("test MSE")[1].split()[0])
              for line in lines if "test MSE" in line}
    assert set(losses) == {"PyTorch", "tinyae"}
    assert losses["tinyae"] == pytest.approx(losses["PyTorch"], rel=1e-5)
    model = ta.load(out / "continued.npz")               # what the example wrote comes back
    X = ta.data.load_mnist("test", root=mnist_dir, progress=False)[0][:256]
    assert ta.MSE().forward(model.forward(X), X) == pytest.approx(losses["tinyae"], abs=1e-8)
    start = export.from_safetensors(out / "start.safetensors", like=model)
    seed = ta.dense_autoencoder(rng=np.random.default_rng(0))     # what the example starts from
    for (name, p, _), (_, q, _) in zip(seed.parameters(), start.parameters()):
        assert np.array_equal(p, q), name
    assert not np.array_equal(start.encoder[0].params["W"], model.encoder[0].params["W"])
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "--force" in again.stderr    # an earlier run is kept


def test_import_takes_the_architecture_from_model_and_sizes(tmp_path, capsys):
    """tinyae import --model KIND --sizes ...: the architecture tinyae train builds, no
    checkpoint needed; the weights come back bit for bit; a wrong --sizes is refused."""
    need("safetensors")
    from tinyae.cli import main
    model = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(3))
    ta.export.to_safetensors(model, tmp_path / "m.safetensors")
    assert main(["import", str(tmp_path / "m.safetensors"), "--model", "ae", "--sizes",
                 "784,16,2", "-o", str(tmp_path / "m.npz")]) == 0
    back = ta.io.read_checkpoint(tmp_path / "m.npz")
    assert back.extra["args"]["model"] == "ae" and back.extra["args"]["sizes"] == [784, 16, 2]
    for (_, a, _), (_, b, _) in zip(model.parameters(), ta.load(back).parameters()):
        np.testing.assert_array_equal(a, b)
    capsys.readouterr()
    assert main(["import", str(tmp_path / "m.safetensors"), "--model", "ae", "--sizes",
                 "784,32,2", "-o", str(tmp_path / "x.npz")]) == 1
    err = capsys.readouterr().err
    assert "another architecture" in err and "--model and --sizes" in err
    assert not (tmp_path / "x.npz").exists()
    assert main(["import", str(tmp_path / "m.safetensors"), "--like", str(tmp_path / "m.npz"),
                 "--sizes", "784,16,2", "-o", str(tmp_path / "y.npz")]) == 1
    assert "--sizes goes with --model" in capsys.readouterr().err
