"""Conv2D, ConvTranspose2D, MaxPool2D, Flatten, Reshape and the convolutional autoencoders:
against loops written here, the adjoint identity, PyTorch (when installed), finite differences,
the autograd tape, the contract, the checkpoint checker and fit."""
import re

import numpy as np
import pytest
from crafted import edit_config, npz_bytes, read_npz

import tinyae as ta
from tinyae.autograd import Tensor
from tinyae.contract import float64_copy
from tinyae.gradcheck import check_layer, check_model, check_op, check_three_ways, rel_error
from tinyae.io import CheckpointError
from tinyae.nn import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape

# (N, C, H, W, O, kernel, stride, padding): odd sizes, strides 1-2, paddings 0-1, non-square
CONV = {"3x2 plain": (2, 3, 7, 5, 4, (3, 2), 1, 0),
        "3x2 strided, padded": (3, 2, 7, 6, 3, (3, 2), (2, 1), 1),
        "2x3 stride 2": (2, 1, 8, 7, 2, (2, 3), 2, (0, 1)),
        "1x1 stride 2": (2, 2, 5, 5, 3, 1, 2, 0),
        "1x3": (2, 3, 6, 5, 2, (1, 3), (1, 2), 1),
        "3x3 stride 2 'same'": (2, 2, 6, 7, 3, 3, 2, 1)}       # the padding row at the end unread
# (N, C, H, W, O, kernel, stride, padding, output_padding)
CONVT = {"3x2 plain": (2, 3, 3, 4, 2, (3, 2), 1, 0, 0),
         "3x3 stride 2": (2, 2, 4, 3, 3, 3, 2, 1, 1),
         "2x3 mixed": (3, 1, 3, 5, 2, (2, 3), (2, 1), (0, 1), (1, 0)),
         "1x3 stride 2": (2, 2, 5, 4, 3, (1, 3), 2, 0, (1, 1))}
# (N, C, H, W, kernel, stride)
POOL = {"2x2": (2, 3, 6, 4, 2, None), "3x3 stride 2": (2, 2, 7, 5, 3, 2),
        "1x2 stride 2": (2, 1, 5, 6, (1, 2), 2), "3x2 overlapping": (2, 2, 5, 5, (3, 2), 1)}


def pairs(*vs):
    return [v if isinstance(v, tuple) else (v, v) for v in vs]


def conv_layer(case, rng):
    N, C, H, W, O, k, s, p = CONV[case]
    layer = Conv2D(C, O, k, s, p, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(O)
    return layer, rng.standard_normal((N, C, H, W))


def convt_layer(case, rng):
    N, C, H, W, O, k, s, p, op = CONVT[case]
    layer = ConvTranspose2D(C, O, k, s, p, op, rng=rng, dtype=np.float64)
    layer.params["b"][...] = rng.standard_normal(O)
    return layer, rng.standard_normal((N, C, H, W))


def pool_layer(case, rng):
    N, C, H, W, k, s = POOL[case]
    return MaxPool2D(k, s), rng.standard_normal((N, C, H, W))


# --- the definitions, as loops -------------------------------------------------------
def loop_conv(x, W, b, stride, padding):
    """y[n,o,h,w] = b[o] + sum over the window at (h sh, w sw) of the padded x times W[o]."""
    (sh, sw), (ph, pw) = pairs(stride, padding)
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    xp = np.zeros((N, C, H + 2 * ph, Wd + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + Wd] = x
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (Wd + 2 * pw - kw) // sw + 1
    y = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for h in range(Ho):
                for w in range(Wo):
                    y[n, o, h, w] = b[o] + np.sum(xp[n, :, h * sh:h * sh + kh,
                                                     w * sw:w * sw + kw] * W[o])
    return y


def loop_conv_transpose(x, W, b, stride, padding, output_padding):
    """Each input pixel x[n,c,h,w] adds x times W[c] onto the window at (h sh, w sw)."""
    (sh, sw), (ph, pw), (oh, ow) = pairs(stride, padding, output_padding)
    N, C, H, Wd = x.shape
    _, O, kh, kw = W.shape
    yp = np.zeros((N, O, (H - 1) * sh + kh + oh, (Wd - 1) * sw + kw + ow))
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(Wd):
                    yp[n, :, h * sh:h * sh + kh, w * sw:w * sw + kw] += x[n, c, h, w] * W[c]
    return yp[:, :, ph:yp.shape[2] - ph, pw:yp.shape[3] - pw] + b[:, None, None]


def loop_max_pool(x, kernel, stride):
    (kh, kw), (sh, sw) = pairs(kernel, kernel if stride is None else stride)
    N, C, H, W = x.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    y = np.zeros((N, C, Ho, Wo))
    for h in range(Ho):
        for w in range(Wo):
            y[:, :, h, w] = x[:, :, h * sh:h * sh + kh, w * sw:w * sw + kw].max(axis=(2, 3))
    return y


@pytest.mark.parametrize("case", CONV)
def test_conv2d_forward_is_the_loop(case, rng):
    layer, x = conv_layer(case, rng)
    *_, k, s, p = CONV[case]
    y = layer.forward(x)
    np.testing.assert_allclose(y, loop_conv(x, layer.params["W"], layer.params["b"], s, p),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONVT)
def test_conv_transpose2d_forward_is_the_loop(case, rng):
    layer, x = convt_layer(case, rng)
    *_, k, s, p, op = CONVT[case]
    y = layer.forward(x)
    np.testing.assert_allclose(y, loop_conv_transpose(x, layer.params["W"], layer.params["b"],
                                                      s, p, op), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", POOL)
def test_max_pool2d_forward_is_the_loop(case, rng):
    layer, x = pool_layer(case, rng)
    np.testing.assert_array_equal(layer.forward(x), loop_max_pool(x, *POOL[case][4:]))


@pytest.mark.parametrize("case", CONV)
def test_conv_transpose_is_the_adjoint_of_conv(case, rng):
    """<conv(x), y> = <x, convT(y)> with the same W and no bias: the transposed convolution
    is the convolution's backward, and output_padding picks the size it came from."""
    N, C, H, W, O, k, s, p = CONV[case]
    conv = Conv2D(C, O, k, s, p, rng=rng, dtype=np.float64)
    (kh, kw), (sh, sw), (ph, pw) = pairs(k, s, p)
    op = ((H + 2 * ph - kh) % sh, (W + 2 * pw - kw) % sw)
    convt = ConvTranspose2D(O, C, k, s, p, op, dtype=np.float64)
    convt.params["W"][...] = conv.params["W"]
    x = rng.standard_normal((N, C, H, W))
    y = rng.standard_normal(conv.forward(x).shape)
    back = convt.forward(y)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(conv.forward(x) * y), np.sum(x * back), rtol=1e-12)


# --- gradients: the layer's backward, finite differences, the tape ------------------
MAKERS = {**{f"Conv2D {c}": (conv_layer, c) for c in CONV},
          **{f"ConvTranspose2D {c}": (convt_layer, c) for c in CONVT},
          **{f"MaxPool2D {c}": (pool_layer, c) for c in POOL}}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", MAKERS)
def test_gradients_and_contract(name, seed):
    make, case = MAKERS[name]
    layer, x = make(case, np.random.default_rng(seed))
    report = check_layer(layer, x)                     # float64, threshold 1e-7, contract too
    assert report.passed and not report.findings, report
    assert max(r.error for r in report.rows) < 1e-7


@pytest.mark.parametrize("name", MAKERS)
def test_the_tape_agrees_with_the_layers(name):
    """The tape builds a transposed convolution the other way (dilate, pad, flipped kernel)
    and max pooling from windows and max: it must agree with the layers' overlap-add."""
    make, case = MAKERS[name]
    layer, x = make(case, np.random.default_rng(2))
    report = check_three_ways(layer, x)
    assert report.passed, report
    assert max(r.error for r in report.rows if "tape" in r.name) < 1e-12


@pytest.mark.parametrize("make", [lambda: Flatten(), lambda: Reshape((5, 6)),
                                  lambda: Reshape([30])], ids=["Flatten", "Reshape", "Reshape 1"])
def test_reshapes_pass_every_check(make, rng):
    x = rng.standard_normal((3, 2, 5, 3))
    assert check_layer(make(), x).passed
    assert check_three_ways(make(), x).passed


def test_a_wrong_backward_is_caught(rng):
    """A stride forgotten in the backward's overlap-add: the gradient check must fail."""
    from tinyae.nn import conv as C

    class Forgetful(Conv2D):
        def backward(self, dout):
            self.grads["W"] += C.conv_weight_grad(self.xp, dout, self.kernel_size, self.stride)
            self.grads["b"] += dout.sum(axis=(0, 2, 3))
            cols = np.einsum("nohw,ocij->nchwij", dout, self.params["W"])
            return C.crop(C.overlap_add(cols, self.xp.shape, (1, 1)), self.padding)

    layer = Forgetful(2, 3, 3, 2, 1, rng=rng, dtype=np.float64)
    report = check_layer(layer, rng.standard_normal((2, 2, 5, 5)))
    assert not report.passed
    assert [r.name for r in report.rows if r.error > 1e-7] == ["input"]


TENSOR_OPS = {"windows": lambda a: a.windows((2, 3), (2, 1)),
              "dilate": lambda a: a.dilate((2, 3)),
              "pad": lambda a: a.pad(((0, 0), (1, 0), (2, 1), (0, 3))),
              "getitem": lambda a: a[:, ::-1, 1:4, ::2],
              "transpose": lambda a: a.transpose(2, 0, 3, 1),
              "max": lambda a: a.max(axis=2),
              "max_pool2d": lambda a: a.max_pool2d((2, 2), (1, 2))}


@pytest.mark.parametrize("op", TENSOR_OPS)
def test_tensor_image_ops_against_finite_differences(op, rng):
    report = check_op(TENSOR_OPS[op], rng.standard_normal((2, 3, 5, 6)))
    assert report.passed, report


def test_tensor_convolutions_against_finite_differences(rng):
    x, W, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2)), \
        rng.standard_normal(3)
    assert check_op(lambda x, W, b: x.conv2d(W, b, (2, 1), (1, 0)), x, W, b).passed
    Wt = rng.standard_normal((2, 3, 3, 2))
    assert check_op(lambda x, W, b: x.conv_transpose2d(W, b, (2, 1), (1, 0), (1, 0)),
                    x, Wt, b).passed


# --- PyTorch, when it is installed -----------------------------------------------
@pytest.mark.parametrize("case", CONV)
def test_conv2d_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer, x = conv_layer(case, rng)
    *_, s, p = CONV[case]
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(layer.params["W"]),
                    torch.from_numpy(layer.params["b"]), stride=s, padding=p)
    np.testing.assert_allclose(layer.forward(x), want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", CONVT)
def test_conv_transpose2d_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer, x = convt_layer(case, rng)
    *_, s, p, op = CONVT[case]
    want = F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(layer.params["W"]),
                              torch.from_numpy(layer.params["b"]), stride=s, padding=p,
                              output_padding=op)
    np.testing.assert_allclose(layer.forward(x), want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", POOL)
def test_max_pool2d_matches_pytorch(case, rng):
    torch = pytest.importorskip("torch")
    layer, x = pool_layer(case, rng)
    k, s = POOL[case][4:]
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s)
    np.testing.assert_array_equal(layer.forward(x), want.numpy())


def test_conv_gradients_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    layer, x = conv_layer("3x2 strided, padded", rng)
    dout = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(dout)
    xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in
                  (x, layer.params["W"], layer.params["b"]))
    torch.nn.functional.conv2d(xt, Wt, bt, stride=(2, 1), padding=1).backward(
        torch.from_numpy(dout))
    for mine, theirs in ((dx, xt), (layer.grads["W"], Wt), (layer.grads["b"], bt)):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- bad input: one line naming the layer, the shapes and the fix, before any work --------
BAD_INPUT = {   # what: (make the layer, x, fragments the one-line error must hold)
    "rows into a conv": (lambda: Conv2D(1, 4, 3), np.zeros((2, 784)),
                         ["Conv2D(", "(2, 784)", "Reshape"]),
    "wrong channels": (lambda: Conv2D(3, 4, 3), np.zeros((2, 1, 8, 8)),
                       ["Conv2D(", "3 channels", "(1, 8, 8)", "in_channels"]),
    "kernel too large": (lambda: Conv2D(1, 2, (5, 3), padding=1), np.zeros((2, 1, 2, 9)),
                         ["Conv2D(", "height 5", "2 + 2*1 = 4", "smaller kernel"]),
    "not whole": (lambda: Conv2D(1, 2, 3, 2), np.zeros((2, 1, 8, 9)),
                  ["Conv2D(", "(8 + 2*0 - 3)/2 + 1", "not come out whole", "last 1 row(s)",
                   "height 7 or 9"]),
    "convT channels": (lambda: ConvTranspose2D(2, 1, 3, 2), np.zeros((2, 3, 4, 4)),
                       ["ConvTranspose2D(", "2 channels", "(3, 4, 4)"]),
    "convT rows": (lambda: ConvTranspose2D(2, 1, 3), np.zeros((2, 8)),
                   ["ConvTranspose2D(", "(2, 8)", "Reshape"]),
    "convT cropped away": (lambda: ConvTranspose2D(1, 1, 1, 1, 2), np.zeros((2, 1, 3, 3)),
                           ["ConvTranspose2D(", "(3, 3)", "less padding"]),
    "pool not whole": (lambda: MaxPool2D(2), np.zeros((2, 1, 8, 7)),
                       ["MaxPool2D(", "(7 + 2*0 - 2)/2 + 1", "last 1 column(s)",
                        "width 6 or 8"]),
    "pool too large": (lambda: MaxPool2D(3), np.zeros((2, 1, 2, 3)),
                       ["MaxPool2D(", "larger than the padded input"]),
    "reshape size": (lambda: Reshape((1, 28, 28)), np.zeros((2, 100)),
                     ["Reshape(shape=[1, 28, 28])", "784 values", "(2, 100)"]),
    "flatten one sample": (lambda: Flatten(), np.zeros(5), ["Flatten", "(5,)"]),
}


@pytest.mark.parametrize("what", BAD_INPUT)
def test_bad_input_is_refused_before_any_work(what):
    make, x, fragments = BAD_INPUT[what]
    layer = make()
    with pytest.raises(ValueError) as err:
        layer.forward(x)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert layer._out_shape is None and not hasattr(layer, "xp") and not hasattr(layer, "x")


@pytest.mark.parametrize("make, fragment", [
    (lambda: Conv2D(1, 2, 3, stride=0), "stride must be"),
    (lambda: Conv2D(1, 2, 3, padding=-1), "padding must be"),
    (lambda: Conv2D(1, 2, (3, 0)), "kernel_size must be"),
    (lambda: Conv2D(1, 2, (3, 3, 3)), "kernel_size must be"),
    (lambda: Conv2D(0, 2, 3), "in_channels must be"),
    (lambda: ConvTranspose2D(1, 2, 3, stride=2, output_padding=2), "smaller than the stride"),
    (lambda: ConvTranspose2D(1, 2, 3, padding=-1), "padding must be"),
    (lambda: MaxPool2D(2, stride=0), "stride must be"),
    (lambda: Reshape((1, 0, 28)), "positive ints"),
    (lambda: Conv2D(10_000, 10_000, 11), "parameters, more than"),
], ids=["stride 0", "negative padding", "zero kernel", "three sides", "no channels",
        "output padding", "convT negative padding", "pool stride 0", "reshape 0", "too big"])
def test_bad_settings_are_refused_by_the_constructor(make, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make()


def test_a_float32_layer_computes_in_float32(rng):
    layer = Conv2D(2, 3, 3, padding=1, rng=rng)
    y = layer.forward(rng.standard_normal((2, 2, 5, 5)))             # float64 in: converted
    assert y.dtype == np.float32 and layer.backward(np.ones_like(y)).dtype == np.float32
    assert ConvTranspose2D(2, 3, 3, rng=rng).params["W"].dtype == np.float32


def test_he_init_counts_the_kernel_taps():
    W = Conv2D(64, 64, 3, rng=np.random.default_rng(0)).params["W"]
    assert W.shape == (64, 64, 3, 3) and abs(W.std() - np.sqrt(2 / (64 * 9))) < 0.003


# --- the models ---------------------------------------------------------------------
def small_conv_ae(rng, dtype=np.float32):
    """The book's model, small: (1, 7, 6) images, odd sizes, strides 1-2."""
    return ta.conv_autoencoder((1, 7, 6), filters=(3, 4), strides=(1, 2), code_size=2,
                               rng=rng, dtype=dtype)


def test_keras_io_autoencoder_has_28353_parameters():
    model = ta.keras_conv_autoencoder(rng=np.random.default_rng(0))
    assert model.num_parameters() == 28_353
    assert (model.input_width, model.latent_width) == (784, 1568)


def test_the_book_autoencoder_has_the_books_shapes(capsys):
    """Encoder 98,946 and decoder 102,017 parameters, as the book's summaries print."""
    model = ta.conv_autoencoder(rng=np.random.default_rng(0))
    count = lambda part: sum(p.size for _, p, _ in ta.gradcheck.layer_parameters(part))  # noqa
    assert (count(model.encoder), count(model.decoder)) == (98_946, 102_017)
    assert (model.input_width, model.latent_width) == (784, 2)
    X = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    assert model.encode(X).shape == (3, 2) and model.reconstruct(X).shape == (3, 784)
    assert model.decode(np.zeros(2, np.float32)).shape == (784,)
    model.summary()
    out = capsys.readouterr().out
    for row in ("(None, 1, 28, 28)", "(None, 64, 14, 14)", "(None, 3136)", "200,963"):
        assert row in out


def test_a_conv_autoencoder_that_does_not_fit_its_images_is_refused():
    with pytest.raises(ValueError, match="does not come out whole"):
        ta.conv_autoencoder((1, 27, 27), filters=(4,), strides=(3,))


@pytest.mark.parametrize("make", [small_conv_ae, lambda rng, dtype: ta.Autoencoder(
    ta.Sequential(Reshape((2, 6, 4)), Conv2D(2, 3, (3, 2), padding=(1, 0), rng=rng,
                                             dtype=dtype),
                  ta.Tanh(), MaxPool2D((2, 3)), Flatten(), ta.Dense(9, 3, rng=rng, dtype=dtype)),
    ta.Sequential(ta.Dense(3, 12, rng=rng, dtype=dtype), Reshape((2, 3, 2)),
                  ConvTranspose2D(2, 2, 3, 2, 1, 1, rng=rng, dtype=dtype),
                  ta.Sigmoid(), Flatten()))], ids=["book small", "pool, tanh"])
def test_whole_model_gradients(make):
    rng = np.random.default_rng(3)
    model = make(rng, np.float64)
    d = model.input_width
    X = rng.random((3, d))
    report = check_model(model, ta.MSE(), X, X)
    assert report.passed, report
    assert max(r.error for r in report.rows) < 1e-6
    three = check_three_ways(model, X)
    assert three.passed, three


@pytest.mark.parametrize("make", [lambda rng: ta.conv_autoencoder(rng=rng),
                                  lambda rng: ta.keras_conv_autoencoder(rng=rng)],
                         ids=["book", "keras-io"])
def test_full_size_models_agree_with_the_tape(make):
    """The full models' backward against the tape, every entry: finite differences are left
    to the small models, since here thousands of (Leaky)ReLU inputs per bias sit within h of
    the kink, where a difference quotient is not the derivative."""
    rng = np.random.default_rng(4)
    model = float64_copy(make(rng))
    X = rng.random((2, 784))
    y = model.forward(X)
    dout = rng.standard_normal(y.shape)
    model.zero_grad()
    dx = model.backward(dout)
    params = ta.autograd.parameter_tensors(model)
    xt = Tensor(X.copy())
    yt = ta.autograd.layer_forward(model, xt, params)
    assert rel_error(yt.data, y) < 1e-12
    yt.backward(dout)
    assert rel_error(xt.grad, dx) < 1e-10
    for name, _, g in model.parameters():
        assert rel_error(params[name].grad, g) < 1e-10, name


@pytest.mark.parametrize("make", [small_conv_ae, lambda rng: ta.keras_conv_autoencoder(rng=rng)],
                         ids=["book small", "keras-io"])
def test_save_load_round_trip(make, tmp_path):
    model = make(np.random.default_rng(0))
    X = np.random.default_rng(1).random((4, model.input_width), dtype=np.float32)
    ta.save(model, tmp_path / "m.npz")
    back = ta.load(tmp_path / "m.npz")
    assert back.config() == model.config()
    np.testing.assert_array_equal(back.forward(X), model.forward(X))


def _saved(tmp_path):
    path = tmp_path / "m.npz"
    ta.save(small_conv_ae(np.random.default_rng(0)), path)
    return path


def _change_layer(path, part, index, **settings):
    def change(config):
        config["model"][part]["layers"][index].update(settings)
    edit_config(path, change)


@pytest.mark.parametrize("part, index, settings, fragment", [
    ("encoder", 1, {"kernel_size": [3, 1], "padding": [1, 0]}, "param/encoder.1.W"),
    ("encoder", 3, {"in_channels": 5}, "encoder.3: "),
    ("decoder", 1, {"shape": [4, 4, 4]}, "decoder.1: Reshape takes 64 values"),
    ("decoder", 2, {"stride": [1, 1]}, "decoder.2: ConvTranspose2D: output_padding"),
    ("encoder", 3, {"stride": [3, 3]}, "encoder.3: Conv2D: the output width"),
    ("encoder", 1, {"padding": [-1, 0]}, "encoder.1: Conv2D: padding must be"),
    ("encoder", 1, {"dilation": 2}, "encoder.1: a Conv2D config needs"),
    ("decoder", 2, {"output_padding": [1, 1]}, "the decoder ends with 48 features"),
], ids=["kernel vs array", "channels", "reshape", "convT stride", "not whole", "padding",
        "unknown key", "output size"])
def test_the_checker_refuses_inconsistent_conv_checkpoints(tmp_path, part, index, settings,
                                                           fragment):
    path = _saved(tmp_path)
    _change_layer(path, part, index, **settings)
    with pytest.raises(CheckpointError) as err:
        ta.load(path)
    assert fragment in str(err.value), str(err.value)


def test_the_checker_refuses_a_broken_chain_with_matching_arrays(tmp_path):
    """Config and arrays agree with each other, but conv 3 takes 5 channels from conv 1's 3."""
    path = _saved(tmp_path)
    config, arrays = read_npz(path.read_bytes())
    config["model"]["encoder"]["layers"][3]["in_channels"] = 5
    arrays["param/encoder.3.W"] = np.zeros((4, 5, 3, 3), np.float32)
    path.write_bytes(npz_bytes(config, arrays))
    with pytest.raises(CheckpointError, match=r"encoder\.3: .*takes 5 channels but is given 3"):
        ta.load(path)


# --- training --------------------------------------------------------------------
def test_fit_trains_a_conv_autoencoder_on_both_paths():
    """The fast path runs the conv layers through their own forward and backward, so in
    float64 its losses and weights are the plain path's; and the loss goes down."""
    X = np.tile(np.random.default_rng(5).random((4, 42)), (4, 1))      # 4 images, 4 times
    runs = {}
    for backend in ("numpy", "numba"):
        model = small_conv_ae(np.random.default_rng(0), np.float64)
        history = ta.train.fit(model, X, epochs=25, batch_size=8, backend=backend,
                               optimizer=ta.Adam(model.parameters(), lr=1e-2), progress=False,
                               threads=1)
        runs[backend] = ([r.loss for r in history.records], model)
    losses, model = runs["numpy"]
    assert losses[-1] < 0.5 * losses[0], losses
    np.testing.assert_allclose(runs["numba"][0], losses, rtol=1e-9)
    for (_, a, _), (_, b, _) in zip(model.parameters(), runs["numba"][1].parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_tensor_forward_of_a_model_is_the_models_forward(rng):
    model = small_conv_ae(rng, np.float64)
    X = rng.random((2, 42))
    params = ta.autograd.parameter_tensors(model)
    y = ta.autograd.layer_forward(model, Tensor(X, requires_grad=False), params)
    np.testing.assert_allclose(y.data, model.forward(X), rtol=1e-12)


# --- the convolutional VAE ------------------------------------------------------------
def test_keras_io_vae_has_its_parameter_counts():
    model = ta.conv_variational_autoencoder(rng=np.random.default_rng(0))
    encoder = sum(p.size for n, p, _ in model.parameters() if not n.startswith("decoder"))
    assert (encoder, model.num_parameters() - encoder) == (69_076, 65_089)
    X = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    assert model.encode(X).shape == (3, 2) and model.sample(4).shape == (4, 784)


def small_conv_vae(rng, dtype=np.float64):
    """keras-io's VAE in miniature: (1, 6, 5) images, a conv body, a transposed conv back."""
    body = ta.Sequential(Reshape((1, 6, 5)), Conv2D(1, 2, 3, 2, 1, rng=rng, dtype=dtype),
                         ta.Tanh(), Flatten(), ta.Dense(18, 4, rng=rng, dtype=dtype), ta.Tanh())
    heads = [ta.Dense(4, 2, rng=rng, dtype=dtype) for _ in range(2)]
    decoder = ta.Sequential(ta.Dense(2, 18, rng=rng, dtype=dtype), ta.Tanh(), Reshape((2, 3, 3)),
                            ConvTranspose2D(2, 1, 3, 2, 1, (1, 0), rng=rng, dtype=dtype),
                            Flatten())
    return ta.VariationalAutoencoder(body, *heads, decoder, rng=rng)


def test_small_conv_vae_whole_model_gradients():
    rng = np.random.default_rng(6)
    model = small_conv_vae(rng)
    X = rng.random((3, 30))
    report = check_model(model, model.default_loss(), X, X)
    assert report.passed, report
    assert max(r.error for r in report.rows) < 1e-6


def test_conv_vae_round_trips_and_trains(tmp_path):
    model = small_conv_vae(np.random.default_rng(0), np.float32)
    X = np.tile(np.random.default_rng(7).random((4, 30), dtype=np.float32), (4, 1))
    history = ta.train.fit(model, X, epochs=10, batch_size=8, progress=False, threads=1,
                           optimizer=ta.Adam(model.parameters(), lr=1e-2))
    assert history.records[-1].loss < history.records[0].loss
    ta.save(model, tmp_path / "vae.npz")
    back = ta.load(tmp_path / "vae.npz")
    assert type(back) is ta.VariationalAutoencoder and back.config() == model.config()
    np.testing.assert_array_equal(back.encode(X), model.encode(X))


@pytest.mark.parametrize("make", [lambda: ta.conv_autoencoder(rng=np.random.default_rng(0)),
                                  lambda: ta.keras_conv_autoencoder(rng=np.random.default_rng(0))],
                         ids=["book", "keras-io"])
def test_an_empty_batch_gives_empty_outputs_and_gradients(make):
    model = make()
    y = model.forward(np.zeros((0, 784), np.float32))
    assert y.shape == (0, 784) and model.backward(y).shape == (0, 784)
    assert all(not g.any() for _, _, g in model.parameters())
