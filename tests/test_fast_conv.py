"""The fast convolution steps (tinyae/fast/conv.py) against the plain layers of nn/conv.py.

The plain layers are the definition: each step's output, input gradient and
parameter gradients must equal theirs to 1e-10 in float64, over odd sizes,
strides 1-2, paddings 0-1 and non-square kernels; whole models trained with
``fit`` must give the same losses on both backends.
"""
import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinyae as ta
from tinyae import fast
from tinyae.fast import conv as fconv
from tinyae.fast import engine
from tinyae.gradcheck import rel_error
from tinyae.nn import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape
from tinyae.train import fit

ACTIVATIONS = {"none": None, "identity": ta.Identity, "relu": ta.ReLU,
               "leaky": lambda: ta.LeakyReLU(0.2), "sigmoid": ta.Sigmoid, "tanh": ta.Tanh}
# (N, C, H, W, O, kernel, stride, padding)
CONV = {"3x2 plain": (2, 3, 7, 5, 4, (3, 2), 1, 0),
        "3x2 strided, padded": (3, 2, 7, 6, 3, (3, 2), (2, 1), 1),
        "2x3 stride 2": (2, 1, 8, 7, 2, (2, 3), 2, (0, 1)),
        "1x1 stride 2": (2, 2, 5, 5, 3, 1, 2, 0),
        "1x3": (2, 3, 6, 5, 2, (1, 3), (1, 2), 1),
        "3x3 stride 2 'same'": (2, 2, 6, 7, 3, 3, 2, 1),
        "3x3 'same'": (2, 2, 5, 6, 3, 3, 1, 1),
        "3x1 'same'": (2, 2, 6, 5, 4, (3, 1), 1, (1, 0)),
        "2x3 same width": (2, 3, 5, 6, 3, (2, 3), 1, (0, 1)),
        "3x3 'same', to fewer channels": (3, 5, 7, 6, 2, 3, 1, 1),
        "2x3 to one channel": (2, 4, 5, 7, 1, (2, 3), 1, (1, 0)),
        "5x1 to fewer channels, unpadded": (2, 3, 9, 4, 2, (5, 1), 1, 0),
        # stride 2 on an image twice the grid: the unfold through its parity planes
        "3x3 stride 2 on even sides": (2, 3, 6, 8, 4, 3, 2, 1),
        "2x2 stride 2, unpadded": (3, 2, 6, 4, 3, 2, 2, 0),
        "3x2 stride 2, padded rows": (2, 2, 8, 6, 3, (3, 2), 2, (1, 0)),
        "5x5 stride 2 'same'": (2, 2, 8, 8, 3, 5, 2, 2)}
# (N, C, H, W, O, kernel, stride, padding, output_padding)
CONVT = {"3x2 plain": (2, 3, 3, 4, 2, (3, 2), 1, 0, 0),
         "3x3 stride 2": (2, 2, 4, 3, 3, 3, 2, 1, 1),
         "2x3 mixed": (3, 1, 3, 5, 2, (2, 3), (2, 1), (0, 1), (1, 0)),
         "1x3 stride 2": (2, 2, 5, 4, 3, (1, 3), 2, 0, (1, 1)),
         "3x3 stride 2, unpadded": (2, 3, 5, 3, 4, 3, 2, 0, 0),
         "3x3 'same'": (2, 3, 4, 5, 2, 3, 1, 1, 0),
         "1x3 'same' width": (2, 2, 4, 5, 3, (1, 3), 1, (0, 1), 0),
         "3x3 'same' to one channel, short columns": (2, 5, 4, 5, 1, 3, 1, 1, 0),
         "2x2 stride 2 to one channel, short columns": (2, 4, 3, 4, 1, 2, 2, 0, 0),
         "1x3 stride 2, short columns": (3, 6, 3, 4, 2, (1, 3), 2, (0, 1), (1, 0)),
         "5x5 stride 2 onto twice the grid": (2, 3, 3, 4, 2, 5, 2, 2, 1)}
# (N, C, H, W, kernel, stride)
POOL = {"2x2": (2, 3, 6, 4, 2, None), "3x3 stride 2": (2, 2, 7, 5, 3, 2),
        "1x2 stride 2": (2, 1, 5, 6, (1, 2), 2), "3x2 overlapping": (2, 2, 5, 5, (3, 2), 1)}


def close(dtype):
    """float64: the paths agree to 1e-10 (relative); float32: to 1e-5."""
    return 1e-10 if dtype == np.float64 else 1e-5


def make_conv(case, rng, dtype=np.float64):
    N, C, H, W, O, k, s, p = CONV[case]
    layer = Conv2D(C, O, k, s, p, rng=rng, dtype=dtype)
    return layer, (N, C, H, W)


def make_convt(case, rng, dtype=np.float64):
    N, C, H, W, O, k, s, p, op = CONVT[case]
    layer = ConvTranspose2D(C, O, k, s, p, op, rng=rng, dtype=dtype)
    return layer, (N, C, H, W)


def pair(layer, make_act, shape, seed, dtype=np.float64):
    """A (layer, activation) plain net, its fast view on copies of the arrays, x and dy."""
    rng = np.random.default_rng(seed)
    for p in layer.params.values():                       # a bias that is not zero
        p += (0.3 * rng.standard_normal(p.shape)).astype(p.dtype)
    plain = ta.Sequential(*[layer] + ([make_act()] if make_act else []))
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(plain.forward(x).shape).astype(dtype)
    return plain, fast.accelerate(copy.deepcopy(plain)), x, dy


def run(net, x, dy):
    net.zero_grad()
    y = net.forward(x).copy()                   # fast outputs are reused arrays: keep a copy
    dx = net.backward(dy)
    return [y, dx.copy()] + [g.copy() for _, _, g in net.parameters()]


def assert_same(plain, quick, x, dy, dtype=np.float64, times=2):
    """Equal outputs, input gradients and parameter gradients, twice (the buffers reused)."""
    for _ in range(times):
        a, b = run(plain, x, dy), run(quick, x, dy)
        assert len(a) == len(b)
        for u, w in zip(a, b):
            assert w.dtype == dtype and w.shape == u.shape
            assert rel_error(u, w) < close(dtype)


# --- each step against its layer ------------------------------------------------------
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("case", CONV)
def test_conv_step_matches_conv2d(case, act):
    layer, shape = make_conv(case, np.random.default_rng(0))
    plain, quick, x, dy = pair(layer, ACTIVATIONS[act], shape, seed=1)
    fewer = "fewer channels" in case or "to one channel" in case    # windows on the O side
    kind = fconv.ConvAsTransposeStep if fewer else fconv.ConvStep
    assert type(quick.steps[0]) is kind and len(quick.steps) == 1             # fused
    assert_same(plain, quick, x, dy)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("case", CONVT)
def test_conv_transpose_step_matches_conv_transpose2d(case, act):
    layer, shape = make_convt(case, np.random.default_rng(2))
    plain, quick, x, dy = pair(layer, ACTIVATIONS[act], shape, seed=3)
    # O kh kw <= 2 C: one product per image on the images as they are (no layout copies)
    kind = (fconv.ImagewiseTransposeStep if "short columns" in case
            else fconv.ConvTransposeStep)
    assert type(quick.steps[0]) is kind and len(quick.steps) == 1
    assert_same(plain, quick, x, dy)


@pytest.mark.parametrize("case", POOL)
@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_step_matches_max_pool2d(case, ties):
    N, C, H, W, k, s = POOL[case]
    plain, quick, x, dy = pair(MaxPool2D(k, s), None, (N, C, H, W), seed=4)
    if ties:                                    # the first maximum of a window takes dout
        x = np.round(x)
        x[0, 0, 1, 1] = x[1, 0, 2, 3] = np.nan   # and a NaN beats every number, as in argmax
    assert isinstance(quick.steps[0], fconv.MaxPoolStep)
    for _ in range(2):
        (y, dx), (y2, dx2) = run(plain, x, dy), run(quick, x, dy)
        assert y2.dtype == dx2.dtype == np.float64
        assert np.array_equal(y, y2, equal_nan=True)     # a selection: equal, not merely close
        assert rel_error(dx, dx2) < 1e-10                # overlapping windows sum in any order


# (N, C, H, W, O, kernel, stride, padding) of the convolution, then the pool's (kernel, stride)
CONV_POOL = {"3x3 'same', 2x2": ((2, 2, 6, 8, 3, 3, 1, 1), 2, None),
             "strided, overlapping 3x2": ((2, 3, 7, 6, 2, (3, 2), (2, 1), 1), (3, 2), 1),
             "1x1, 3x3 stride 2": ((2, 2, 5, 5, 3, 1, 1, 0), 3, 2),
             "rows skipped: 1x2 stride 2": ((3, 1, 5, 6, 2, 3, 1, 1), (1, 2), 2)}


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("case", CONV_POOL)
def test_conv_pool_step_matches_conv_act_and_max_pool(case, act):
    """A max pool behind a Conv2D (and its activation) runs inside the convolution's step."""
    (N, C, H, W, O, k, s, p), pool_k, pool_s = CONV_POOL[case]
    layer = Conv2D(C, O, k, s, p, rng=np.random.default_rng(20), dtype=np.float64)
    plain, quick, x, dy = pair(layer, ACTIVATIONS[act], (N, C, H, W), seed=21)
    plain.layers.append(MaxPool2D(pool_k, pool_s))
    quick = fast.accelerate(copy.deepcopy(plain))
    dy = np.random.default_rng(22).standard_normal(plain.forward(x).shape)
    assert [type(s) for s in quick.steps] == [fconv.ConvPoolStep]
    assert_same(plain, quick, x, dy)


@pytest.mark.parametrize("act", ["relu", "sigmoid"])
def test_conv_pool_step_on_flat_windows_and_nans(act):
    """Where act is flat (ReLU below 0, a saturated sigmoid) MaxPool2D's first maximum and
    the step's largest z differ, but act' is 0 there, so every gradient is the same; a NaN
    still wins its window."""
    layer = Conv2D(1, 2, 1, rng=np.random.default_rng(23), dtype=np.float64)
    layer.params["W"][:] = 1.0
    layer.params["b"][:] = 0.0 if act == "relu" else 100.0   # sigmoid(100 + z) is 1.0 exactly
    plain = ta.Sequential(layer, ACTIVATIONS[act](), MaxPool2D(2))
    quick = fast.accelerate(copy.deepcopy(plain))
    x = np.random.default_rng(24).standard_normal((2, 1, 4, 6)) - (3 if act == "relu" else 0)
    x[1, 0, 2, 3] = np.nan
    dy = np.random.default_rng(25).standard_normal((2, 2, 2, 3))
    (y, dx, dW, db), (y2, dx2, dW2, db2) = run(plain, x, dy), run(quick, x, dy)
    assert np.array_equal(y, y2, equal_nan=True)
    assert (y[0] == (0.0 if act == "relu" else 1.0)).sum() >= 6        # the flat windows
    for u, w in ((dx, dx2), (dW, dW2), (db, db2)):
        assert np.array_equal(np.isnan(u), np.isnan(w))
        assert rel_error(np.nan_to_num(u), np.nan_to_num(w)) < 1e-10


def test_a_pool_behind_a_convolution_to_fewer_channels_keeps_its_own_step():
    layer = Conv2D(3, 1, 3, padding=1, rng=np.random.default_rng(26), dtype=np.float64)
    plain, _, x, _ = pair(layer, ta.ReLU, (2, 3, 6, 4), seed=27)
    plain.layers.append(MaxPool2D(2))
    quick = fast.accelerate(copy.deepcopy(plain))
    assert [type(s) for s in quick.steps] == [fconv.ConvAsTransposeStep, fconv.MaxPoolStep]
    assert_same(plain, quick, x, np.ones((2, 1, 3, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_stack_of_every_step_in_float32_and_float64(dtype):
    """Reshape, Conv + ReLU, MaxPool, ConvTranspose + sigmoid, Flatten: rows in, rows out."""
    rng = np.random.default_rng(5)
    net = ta.Sequential(Reshape((2, 7, 6)), Conv2D(2, 3, 3, padding=1, rng=rng, dtype=dtype),
                        ta.ReLU(), MaxPool2D((1, 2)), ConvTranspose2D(3, 2, (2, 3), (1, 2), 0, 0,
                                                                   rng=rng, dtype=dtype),
                        ta.Sigmoid(), MaxPool2D((2, 1)), Flatten())
    quick = fast.accelerate(copy.deepcopy(net))
    assert [type(s).__name__ for s in quick.steps] == [
        "LayerStep", "ConvPoolStep", "ConvTransposeStep", "MaxPoolStep", "LayerStep"]
    x = rng.standard_normal((3, 84)).astype(dtype)
    dy = rng.standard_normal(net.forward(x).shape).astype(dtype)
    assert_same(net, quick, x, dy, dtype)


def test_reshape_and_flatten_are_views_on_the_fast_path():
    net = fast.accelerate(ta.Sequential(Reshape((2, 3, 4)), Flatten()))
    x = np.random.default_rng(6).standard_normal((5, 24))
    y = net.forward(x)
    assert np.shares_memory(x, y) and np.array_equal(x, y)
    assert np.shares_memory(net.backward(y), y)


@pytest.mark.parametrize("case", [(make_conv, "3x2 strided, padded"),
                                  (make_conv, "3x3 'same', to fewer channels"),
                                  (make_convt, "3x3 stride 2"),
                                  (make_convt, "1x3 stride 2, short columns")],
                         ids=lambda case: case[1])
def test_gradients_add_up_without_zero_grad(case):
    """Two backward calls after one zero_grad add up, as the plain layers do."""
    make, name = case
    layer, shape = make(name, np.random.default_rng(7))
    plain, quick, x, dy = pair(layer, ta.ReLU, shape, seed=8)
    for net in (plain, quick):
        net.zero_grad()
        net.forward(x)
        net.backward(dy)
        net.backward(dy)
    for (_, _, a), (_, _, b) in zip(plain.parameters(), quick.parameters()):
        assert rel_error(a, b) < 1e-10


def test_tied_weights_never_skip_the_fill():
    rng = np.random.default_rng(9)
    c1, c2 = (Conv2D(2, 2, 3, padding=1, rng=rng, dtype=np.float64) for _ in range(2))
    c2.params["W"], c2.grads["W"] = c1.params["W"], c1.grads["W"]     # one W, two layers
    plain = ta.Sequential(c1, ta.Tanh(), c2)
    quick = fast.accelerate(copy.deepcopy(plain))
    assert [s.skip_fill for s in quick.steps] == [False, False]
    x = rng.standard_normal((2, 2, 5, 4))
    assert_same(plain, quick, x, rng.standard_normal(x.shape))


def test_subclasses_patches_and_float16_keep_their_own_forward():
    class MyConv(Conv2D):
        pass
    patched = Conv2D(1, 2, 3)
    patched.forward = lambda x: x
    pool = MaxPool2D(2)
    pool.backward = lambda dout: dout
    half = Conv2D(1, 2, 3, dtype=np.float16)
    view = fast.accelerate(ta.Sequential(MyConv(1, 2, 3), ta.ReLU(), patched, pool, half))
    assert [type(s) for s in view.steps] == [engine.LayerStep] * 5


def test_bad_input_and_a_wrong_dout_are_refused_like_the_plain_layers():
    layer, shape = make_conv("3x2 plain", np.random.default_rng(10))
    plain, quick, x, dy = pair(layer, ta.ReLU, shape, seed=11)
    for net in (plain, quick):
        with pytest.raises(ValueError, match="takes 3 channels but is given 2"):
            net.forward(x[:, :2])
        with pytest.raises(ValueError, match="expects images of shape"):
            net.forward(x[0])
    with pytest.raises(RuntimeError, match="called before forward"):
        fast.accelerate(copy.deepcopy(plain)).backward(dy)
    quick.forward(x)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 4, 5, 3\)"):
        quick.backward(dy[..., :3])


def test_float16_pooling_runs_the_plain_layer():
    x = np.random.default_rng(15).standard_normal((2, 3, 4, 6)).astype(np.float16)
    plain, quick = ta.Sequential(MaxPool2D(2)), fast.accelerate(ta.Sequential(MaxPool2D(2)))
    dy = np.ones((2, 3, 2, 3), np.float16)
    for net in (plain, quick):
        net.zero_grad()
    assert np.array_equal(plain.forward(x), quick.forward(x))
    assert np.array_equal(plain.backward(dy), quick.backward(dy))
    assert quick.forward(x).dtype == np.float16


# --- whole models: fit on both backends -------------------------------------------------
def fit_both(model, X, loss, **kw):
    runs = []
    for backend in ("numpy", "numba"):
        m = copy.deepcopy(model)
        h = fit(m, X, epochs=2, batch_size=4, loss=loss and loss(), progress=False, threads=1,
                backend=backend, **kw)
        runs.append(([r.loss for r in h.records], [p.copy() for _, p, _ in m.parameters()]))
    return runs


@pytest.mark.parametrize("kind", ["keras", "book", "vae"])
def test_fit_gives_the_same_losses_on_both_backends(kind):
    rng = np.random.default_rng(12)
    if kind == "keras":                         # BCE and Adam, keras-io's recipe, small
        model, loss = ta.keras_conv_autoencoder(rng=rng, dtype=np.float64), ta.BCE
        X = rng.random((10, 784))
    elif kind == "vae":                         # keras-io's convolutional VAE, its own loss
        model, loss = ta.conv_variational_autoencoder(rng=rng, dtype=np.float64), None
        X = rng.random((10, 784))
    else:                                       # the book's model, small odd images
        model, loss = ta.conv_autoencoder((1, 9, 7), filters=(4, 3, 2), strides=(1, 2, 1),
                                          code_size=2, rng=rng, dtype=np.float64), ta.MSE
        X = rng.random((10, 63))
    (la, wa), (lb, wb) = fit_both(model, X, loss)
    assert len(la) == 2 and np.allclose(la, lb, rtol=1e-9, atol=0)
    for a, b in zip(wa, wb):
        assert rel_error(a, b) < 1e-9
    assert any(rel_error(a, p) > 1e-6 for a, (_, p, _) in zip(wa, model.parameters()))  # trained


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=600)


def test_kernels_without_jit_stay_in_bounds():
    """NUMBA_DISABLE_JIT=1 runs the loops as Python, which raises on an index out of bounds
    (compiled Numba does not check); negative indices would wrap, so the results are
    compared as well."""
    out = run_python("""
        import copy
        import numpy as np, tinyae as ta
        from tinyae import fast
        from tinyae.gradcheck import rel_error
        from tinyae.nn import Conv2D, ConvTranspose2D, MaxPool2D
        rng = np.random.default_rng(0)
        nets = [(ta.Sequential(Conv2D(3, 2, (3, 2), (2, 1), 1, rng=rng, dtype=np.float64),
                               ta.ReLU()), (2, 3, 7, 6)),
                (ta.Sequential(Conv2D(2, 3, 3, 1, 1, rng=rng, dtype=np.float64)), (2, 2, 5, 4)),
                (ta.Sequential(Conv2D(3, 2, (2, 3), 1, (0, 1), rng=rng, dtype=np.float64)),
                 (2, 3, 4, 5)),
                (ta.Sequential(Conv2D(3, 1, (2, 3), 1, (1, 0), rng=rng, dtype=np.float64),
                               ta.Sigmoid()), (2, 3, 5, 7)),
                (ta.Sequential(ConvTranspose2D(2, 3, 3, 2, 1, 1, rng=rng, dtype=np.float64),
                               ta.LeakyReLU(0.1)), (2, 2, 4, 3)),
                (ta.Sequential(Conv2D(2, 3, 3, 2, 1, rng=rng, dtype=np.float64)), (2, 2, 6, 8)),
                (ta.Sequential(Conv2D(2, 2, 5, 2, 2, rng=rng, dtype=np.float64)), (2, 2, 8, 6)),
                (ta.Sequential(MaxPool2D((3, 2), (1, 2))), (2, 2, 5, 6)),
                (ta.Sequential(Conv2D(2, 3, (3, 2), (2, 1), 1, rng=rng, dtype=np.float64),
                               ta.ReLU(), MaxPool2D((3, 2), 1)), (2, 2, 7, 6))]
        for net, shape in nets:
            view = fast.accelerate(copy.deepcopy(net))
            x = rng.standard_normal(shape)
            dy = rng.standard_normal(net.forward(x).shape)
            res = []
            for n in (net, view):
                n.zero_grad()
                res.append([n.forward(x).copy(), n.backward(dy).copy()]
                           + [g.copy() for _, _, g in n.parameters()])
            assert all(rel_error(a, b) < 1e-12 for a, b in zip(*res)), shape
        print("ok")
    """, NUMBA_DISABLE_JIT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_first_convolution_behind_reshape_skips_its_input_gradient():
    model = ta.keras_conv_autoencoder(rng=np.random.default_rng(13), dtype=np.float64)
    view = fast.accelerate(model)
    conv = view.encoder.steps[1]
    assert view.encoder.first == 1 and not view.encoder.need_input_grad
    X = np.random.default_rng(14).random((2, 784))
    view.zero_grad()
    view.encoder.forward(X)
    assert view.encoder.backward(np.ones((2, 1568))) is None
    assert "dx" not in conv.buffers._arrays and "dcols" not in conv.buffers._arrays


CHECK_BENCH_TORCH_MODEL = """
import sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import bench_conv
model = bench_conv.initial_model()
X = np.random.default_rng(0).random((3, 784)).astype(np.float32)
with torch.no_grad():
    theirs = bench_conv.torch_model(model)(torch.from_numpy(X)).numpy()
ours = model.forward(X)
assert theirs.shape == ours.shape == (3, 784)
assert np.abs(theirs - ours).max() < 1e-5, np.abs(theirs - ours).max()
print("ok")
"""


def test_the_benchmarks_pytorch_model_is_the_same_model():
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k != "TINYAE_DATA_DIR"}
    bench = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
    done = subprocess.run([sys.executable, "-c", CHECK_BENCH_TORCH_MODEL, bench],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
