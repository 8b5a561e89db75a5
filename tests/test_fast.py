"""The fast path (tinyae.fast) against the plain layers, losses and optimisers.

The plain classes are the definition; every fused kernel is checked against
them, never against a second copy of the maths.
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
from tinyae.fast import engine, matmul
from tinyae.gradcheck import rel_error
from tinyae.train import fit, resolve_backend

ACTIVATIONS = [None, ta.Identity, ta.ReLU, lambda: ta.LeakyReLU(0.2), ta.Sigmoid, ta.Tanh]
SHAPES = [(4, 4, 4), (5, 23, 7), (1, 1, 1), (3, 1, 8)]          # (N, D, H)
DTYPES = [np.float32, np.float64]


def close(dtype):
    """float64: the paths agree to 1e-10 (relative); float32: to 1e-5."""
    return 1e-10 if dtype == np.float64 else 1e-5


def pair(make_act, shape, dtype, bias, seed=0):
    """A (Dense, activation) plain net and its fast view on the same arrays."""
    N, D, H = shape
    rng = np.random.default_rng(seed)
    layers = [ta.Dense(D, H, bias=bias, rng=rng, dtype=dtype)]
    if make_act is not None:
        layers.append(make_act())
    plain = ta.Sequential(*layers)
    if bias:
        layers[0].params["b"][...] = rng.standard_normal(H)
    x = rng.standard_normal((N, D)).astype(dtype)
    dy = rng.standard_normal((N, H)).astype(dtype)
    return plain, fast.accelerate(plain), x, dy


def run(net, x, dy):
    net.zero_grad()
    y = net.forward(x).copy()                   # fast outputs are reused arrays: keep a copy
    dx = net.backward(dy)
    return [y, dx.copy()] + [g.copy() for _, _, g in net.parameters()]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_fused_dense_step_matches_the_plain_layers(dtype, shape, act, bias):
    plain, quick, x, dy = pair(act, shape, dtype, bias)
    assert isinstance(quick.steps[0], engine.DenseStep)           # it really was fused
    for a, b in zip(run(plain, x, dy), run(quick, x, dy)):
        assert b.dtype == dtype and b.shape == a.shape
        assert rel_error(a, b) < close(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_agree(dtype):
    plain, quick, x, dy = pair(ta.Sigmoid, (3, 4, 5), dtype, True)
    x[0] = [-1e4, 1e4, 0, 3e3]                                    # exp must not overflow
    with np.errstate(over="raise", invalid="raise", divide="raise"):      # as in fit
        a, b = run(plain, x, dy), run(quick, x, dy)
    for u, w in zip(a, b):
        assert np.isfinite(w).all() and rel_error(u, w) < close(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (5, 23), (1, 1), (3, 2, 5)])
def test_fast_mse_matches_mse(dtype, shape):
    rng = np.random.default_rng(5)
    pred, target = rng.random(shape).astype(dtype), rng.random(shape).astype(dtype)
    plain, quick = ta.MSE(), fast.FastMSE()
    a, b = plain.forward(pred, target), quick.forward(pred, target)
    assert isinstance(b, float) and abs(a - b) <= close(dtype) * a
    assert quick.backward().dtype == dtype
    assert rel_error(plain.backward(), quick.backward()) < close(dtype)
    quick.forward(pred[..., ::-1], target)                       # a strided pred works too
    plain.forward(pred[..., ::-1], target)
    assert rel_error(plain.backward(), quick.backward()) < close(dtype)


def test_fast_mse_falls_back_for_float16_and_checks_like_mse():
    pred = np.linspace(0, 1, 12, dtype=np.float16).reshape(3, 4)
    quick = fast.FastMSE()
    assert quick.forward(pred, pred * 0) == pytest.approx(ta.MSE().forward(pred, pred * 0), rel=1e-3)
    assert quick.backward().dtype == np.float16
    with pytest.raises(ValueError, match="must match"):
        quick.forward(pred, pred[:2])
    with pytest.raises(RuntimeError, match="before forward"):
        fast.FastMSE().backward()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_kernel_matches_adam(dtype, wd):
    rng = np.random.default_rng(2)
    shapes = [(1,), (5, 23), (7, 3)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [np.zeros_like(p) for p in params]
    plain_p, fast_p = copy.deepcopy(params), copy.deepcopy(params)
    plain = ta.Adam([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(plain_p, grads))], lr=1e-2,
                    weight_decay=wd)
    quick = ta.Adam([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(fast_p, grads))], lr=1e-2,
                    weight_decay=wd)
    step = fast.fast_step(quick)
    assert isinstance(step, fast.AdamKernel)
    for t in range(3):
        for g in grads:
            g[...] = rng.standard_normal(g.shape)
        plain.step()
        step()
    assert quick.t == plain.t == 3
    for a, b in zip(plain_p + plain.m + plain.v, fast_p + quick.m + quick.v):
        assert b.dtype == dtype and rel_error(a, b) < close(dtype)


def test_adam_kernel_reads_lr_at_every_step():
    p, g = np.ones(4), np.ones(4)
    adam = ta.Adam([("p", p, g)], lr=0.1)
    step = fast.fast_step(adam)
    step()
    adam.lr = 0.0                                 # what a schedule does between steps
    before = p.copy()
    step()
    np.testing.assert_array_equal(p, before)


def test_other_optimisers_keep_their_own_step():
    p, g = np.ones(3), np.ones(3)
    sgd = ta.SGD([("p", p, g)], lr=0.1)
    assert fast.fast_step(sgd) == sgd.step


def test_gather_rows():
    X = np.random.default_rng(3).standard_normal((23, 5)).astype(np.float32)
    idx = np.array([22, 0, 5, 5, 1])
    out = np.zeros((5, 5), np.float32)
    assert fast.gather_rows(X, idx, out) is out
    np.testing.assert_array_equal(out, X[idx])
    np.testing.assert_array_equal(fast.gather_rows(X, idx[:2], out), X[idx[:2]])   # short batch
    np.testing.assert_array_equal(fast.gather_rows(X, [-1, -23], None), X[[-1, -23]])
    for bad in ([0, 23], [-24]):                           # past either end: no silent garbage
        with pytest.raises(IndexError, match=r"\[-23, 23\)"):
            fast.gather_rows(X, bad, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4, 4), (5, 23, 7), (1, 1, 1), (9, 300, 130)])
def test_teaching_matmul(dtype, shape):
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal(shape[:2]).astype(dtype), rng.standard_normal(shape[1:]).astype(dtype)
    C = matmul.matmul(x, W)
    assert C.dtype == dtype
    # The standard bound for a K-term dot product: |C - exact| <= K eps (|x| @ |W|).
    exact = x.astype(np.float64) @ W.astype(np.float64)
    bound = shape[1] * np.finfo(dtype).eps * (np.abs(x).astype(np.float64) @ np.abs(W))
    assert np.all(np.abs(C - exact) <= bound)
    with pytest.raises(ValueError, match="do not chain"):
        matmul.matmul(x, np.ones((shape[1] + 1, 2), dtype))


def test_wrong_dout_shape_is_caught_before_the_loops():
    _, quick, x, dy = pair(ta.ReLU, (4, 5, 3), np.float32, True)
    quick.forward(x)
    with pytest.raises(ValueError, match=r"dout has shape \(4, 2\)"):
        quick.backward(dy[:, :2])


# --- whole models: the same numbers on both paths ----------------------------------
class Scale(ta.Layer):
    """A student's layer (not a stock class): y = s x with a learned scalar s."""

    def __init__(self):
        super().__init__()
        self.params, self.grads = {"s": np.array([1.5])}, {"s": np.zeros(1)}

    def forward(self, x):
        self.x = x
        return self.params["s"] * x

    def backward(self, dout):
        self.grads["s"] += np.sum(dout * self.x)
        return self.params["s"] * dout


def custom_model(dtype, rng):
    """The seed shape, small, with a contract layer between two fused pairs."""
    model = ta.dense_autoencoder((23, 11, 5, 2), rng=rng, dtype=dtype)
    scale = Scale()
    scale.params["s"] = scale.params["s"].astype(dtype)
    scale.grads["s"] = scale.grads["s"].astype(dtype)
    model.encoder.layers.insert(2, scale)
    return model


def models(dtype):
    rng = np.random.default_rng(0)
    return {"seed": ta.dense_autoencoder(rng=rng, dtype=dtype), "custom": custom_model(dtype, rng)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["seed", "custom"])
def test_one_step_same_loss_and_gradients(dtype, kind):
    model = models(dtype)[kind]
    X = np.random.default_rng(1).random((16, model.input_width)).astype(dtype)
    results = []
    for net, loss in ((copy.deepcopy(model), ta.MSE()), (None, fast.FastMSE())):
        net = net if net is not None else fast.accelerate(copy.deepcopy(model))
        net.zero_grad()
        value = loss.forward(net.forward(X), X)
        net.backward(loss.backward())
        results.append((value, {n: g.copy() for n, _, g in net.parameters()}))
    (a, ga), (b, gb) = results
    assert abs(a - b) <= close(dtype) * a
    if kind == "custom":                           # the student's layer ran in the middle
        assert gb["encoder.2.s"].shape == (1,) and np.abs(gb["encoder.2.s"]).max() > 0
    assert ga.keys() == gb.keys()
    for u, w in zip(ga.values(), gb.values()):
        assert rel_error(u, w) < close(dtype)


@pytest.mark.parametrize("kind", ["seed", "custom"])
def test_three_adam_steps_same_weights(kind):
    model = models(np.float64)[kind]
    X = np.random.default_rng(2).random((48, model.input_width))
    weights = []
    for backend in ("numpy", "numba"):
        m = copy.deepcopy(model)
        fit(m, X, epochs=1, batch_size=16, shuffle=False, progress=False, backend=backend)
        weights.append([p for _, p, _ in m.parameters()])
    for a, b in zip(*weights):
        assert rel_error(a, b) < 1e-10


def test_200_step_loss_curves_within_one_percent():
    from tinyae.data.digits import load_builtin_digits
    X = load_builtin_digits("test", n=256)[0]
    curves = {}
    for backend in ("numpy", "numba"):
        model = ta.dense_autoencoder((784, 64, 16, 2), rng=np.random.default_rng(0))
        h = fit(model, X, epochs=50, batch_size=64, progress=False, backend=backend)  # 200 steps
        curves[backend] = np.array(h.loss)
    assert curves["numpy"][-1] < 0.5 * curves["numpy"][0]                # it did learn
    np.testing.assert_allclose(curves["numba"], curves["numpy"], rtol=0.01)


def test_view_shares_arrays_and_leaves_the_model_plain():
    model = ta.dense_autoencoder((9, 4, 2), rng=np.random.default_rng(0))
    view = fast.accelerate(model)
    assert type(model.encoder) is ta.Sequential and isinstance(view.encoder, fast.FastSequential)
    for (n1, p1, g1), (n2, p2, g2) in zip(model.parameters(), view.parameters()):
        assert n1 == n2 and p1 is p2 and g1 is g2
    assert view.encoder.need_input_grad is False and view.decoder.need_input_grad is True
    X = np.random.default_rng(1).random((3, 9), dtype=np.float32)
    a = view.forward(X)
    assert view.forward(X[::-1]) is a                  # the fast path reuses its output array
    b = model.forward(X)
    assert model.forward(X) is not b                   # the plain path never does


def test_zero_fill_skip_gives_the_same_gradients():
    model = ta.dense_autoencoder((9, 4, 2), rng=np.random.default_rng(0), dtype=np.float64)
    view, loss = fast.accelerate(model), ta.MSE()
    X = np.random.default_rng(1).random((5, 9))

    def gradients(net):
        net.zero_grad()
        loss.forward(net.forward(X), X)
        net.backward(loss.backward())
        return [g.copy() for _, _, g in net.parameters()]

    expected = gradients(model)
    for _, _, g in model.parameters():
        g.fill(7.0)                                    # stale values from an earlier step
    view.zero_grad()
    assert all(np.all(g == 7.0) for _, _, g in model.parameters())   # no fill ...
    for a, b in zip(expected, gradients(view)):
        np.testing.assert_allclose(b, a, rtol=1e-12)   # ... and none needed
    view.backward(loss.backward())                     # a second backward adds
    for a, (_, _, g) in zip(expected, model.parameters()):
        np.testing.assert_allclose(g, 2 * a, rtol=1e-12)


def test_tied_weights_never_skip_the_fill():
    rng = np.random.default_rng(0)
    d1, d2 = ta.Dense(4, 4, rng=rng, dtype=np.float64), ta.Dense(4, 4, rng=rng, dtype=np.float64)
    d2.params["W"], d2.grads["W"] = d1.params["W"], d1.grads["W"]   # one W, two layers
    net = ta.Sequential(d1, ta.Tanh(), d2, ta.Tanh())
    view = fast.accelerate(net)
    x, dy = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    d1.grads["W"].fill(7.0)
    a = run(net, x, dy)
    d1.grads["W"].fill(7.0)
    b = run(view, x, dy)                               # both backward calls add into dW
    for u, w in zip(a, b):
        assert rel_error(u, w) < 1e-12


# --- choosing the path -------------------------------------------------------------
def test_backend_argument_and_environment(monkeypatch):
    monkeypatch.delenv("TINYAE_BACKEND", raising=False)
    assert resolve_backend() == "numba" and resolve_backend("numpy") == "numpy"
    monkeypatch.setenv("TINYAE_BACKEND", "numpy")
    assert resolve_backend() == "numpy" and resolve_backend("numba") == "numba"
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        resolve_backend("cuda")


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **env})


def test_without_numba_fit_trains_on_the_plain_path():
    out = run_python("""
        import sys, warnings
        sys.modules["numba"] = None                  # simulate: Numba cannot be imported
        import numpy as np, tinyae as ta
        from tinyae.train import fit
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = ta.dense_autoencoder((20, 8, 2), rng=np.random.default_rng(0))
            X = np.random.default_rng(1).random((64, 20), dtype=np.float32)
            h = fit(model, X, epochs=2, batch_size=16, progress=False)
        notices = [w for w in caught if "Numba is not available" in str(w.message)]
        print(len(notices), h.loss[1] < h.loss[0], "tinyae.fast" in sys.modules)
        try:
            fit(model, X, epochs=1, progress=False, backend="numba")
        except ImportError as e:
            print("numba needed:", "pip install numba" in str(e))
    """, TINYAE_BACKEND="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["1 True False", "numba needed: True"]


def test_fast_path_logic_without_jit():
    """NUMBA_DISABLE_JIT=1 runs the kernel bodies as Python: the logic, line by line."""
    out = run_python("""
        import copy
        import numpy as np, tinyae as ta
        from tinyae import fast
        from tinyae.fast import matmul
        from tinyae.gradcheck import rel_error
        rng = np.random.default_rng(0)
        for act in (None, ta.ReLU(), ta.LeakyReLU(0.1), ta.Sigmoid(), ta.Tanh()):
            for bias in (True, False):
                net = ta.Sequential(*[ta.Dense(4, 3, bias=bias, rng=rng, dtype=np.float64)]
                                    + ([act] if act else []))
                view = fast.accelerate(copy.deepcopy(net))
                x, dy = rng.standard_normal((3, 4)), rng.standard_normal((3, 3))
                res = []
                for n in (net, view):
                    n.zero_grad()
                    res.append([n.forward(x).copy(), n.backward(dy).copy()]
                               + [g.copy() for _, _, g in n.parameters()])
                assert all(rel_error(a, b) < 1e-12 for a, b in zip(*res)), (act, bias)
        p = [rng.standard_normal(5) for _ in range(2)]
        q = copy.deepcopy(p)
        a1 = ta.Adam([("p", p[0], p[1])], lr=0.1, weight_decay=0.01)
        a2 = ta.Adam([("p", q[0], q[1])], lr=0.1, weight_decay=0.01)
        a1.step(); fast.fast_step(a2)()
        assert rel_error(p[0], q[0]) < 1e-12
        X = rng.random((6, 5))
        assert np.array_equal(fast.gather_rows(X, [2, 0], None), X[[2, 0]])
        m1, m2 = ta.MSE(), fast.FastMSE()
        assert abs(m1.forward(X, 2 * X) - m2.forward(X, 2 * X)) < 1e-12
        assert rel_error(m1.backward(), m2.backward()) < 1e-12
        A, B = rng.random((6, 3)), rng.random((3, 5))
        assert np.allclose(matmul.matmul(A, B), A @ B, rtol=1e-12)
        print("ok")
    """, NUMBA_DISABLE_JIT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_uncachable_kernels_still_work(monkeypatch):
    import numba.core.dispatcher as dispatcher

    from tinyae.fast import kernels

    def no_cache(self):
        raise RuntimeError("cannot cache function: no locator available")
    monkeypatch.setattr(dispatcher.Dispatcher, "enable_caching", no_cache)
    monkeypatch.setattr(kernels._jit, "warned", False)

    def twice(a):
        return a * 2
    with pytest.warns(UserWarning, match="cannot cache compiled kernels") as record:
        f = kernels._jit(twice)
        g = kernels._jit(twice)
    assert len(record) == 1 and f(3.0) == 6.0 and g(2.0) == 4.0


def test_patched_methods_are_respected():
    """A user who wraps a stock object's method gets that method, not the kernel."""
    p, g = np.ones(3), np.ones(3)
    adam = ta.Adam([("p", p, g)], lr=0.1)
    calls = []
    adam.step = lambda: calls.append(1)
    fast.fast_step(adam)()
    assert calls == [1]
    relu = ta.ReLU()
    relu.forward = lambda x: 2 * x
    view = fast.accelerate(ta.Sequential(ta.Dense(3, 2), relu))
    assert [type(s) for s in view.steps] == [engine.DenseStep, engine.LayerStep]
    loss = ta.MSE()
    loss.forward = lambda pred, target: 0.0
    assert fast.fast_loss(loss) is loss


def test_subnormal_gradients_of_a_saturated_output_are_flushed_to_zero():
    """dz below float32's smallest normal number becomes 0 (subnormals are slow on many CPUs)."""
    plain, quick, x, dy = pair(ta.Sigmoid, (2, 3, 4), np.float32, True)
    plain.layers[0].params["b"][...] = -60            # y ~ 1e-26: a background pixel
    dy = np.full_like(dy, 1e-15)                        # dz ~ 1e-41: subnormal
    a, b = run(plain, x, dy), run(quick, x, dy)
    tiny = np.finfo(np.float32).tiny
    db_plain, db_fast = a[-1], b[-1]
    assert np.all((db_plain != 0) & (np.abs(db_plain) < tiny))     # the plain path keeps them
    assert np.all(db_fast == 0)                                    # the fast path flushes them
    for u, w in zip(a, b):
        assert np.max(np.abs(u - w)) < tiny * 100                  # a difference below 1e-36


def test_adam_flushes_subnormal_weights_and_moments_to_zero():
    """A weight whose only gradient is its decay (an input that is always 0) shrinks to 0
    through the subnormal range under Adam; subnormal arithmetic made the matmuls 5x slower.
    The fused step stores 0 instead of an m or v below the smallest normal number, or a
    weight below its square root (whose products with small gradients are subnormal)."""
    tiny = np.finfo(np.float32).tiny
    floor = np.sqrt(tiny)                              # 1.1e-19

    def subnormal(a):
        return int(((a != 0) & (np.abs(a) < tiny)).sum())

    runs = {}
    for name in ("plain", "fast"):
        dense = ta.Dense(3, 2, rng=np.random.default_rng(0))
        opt = ta.Adam(dense.parameters(), lr=1e-3, weight_decay=1e-5)
        step = engine.AdamKernel(opt) if name == "fast" else opt.step
        seen = 0
        for _ in range(4000):
            dense.zero_grad()                          # the data's gradient is 0: decay only
            step()
            W = dense.params["W"]
            seen += sum(subnormal(a) for a in (W, *opt.m, *opt.v))
            seen += int(((W != 0) & (np.abs(W) < floor)).sum()) if name == "fast" else 0
        runs[name] = seen, dense.params["W"].copy()
    assert runs["plain"][0] > 0                        # the plain formulas do go subnormal
    assert runs["fast"][0] == 0
    assert np.max(np.abs(runs["plain"][1] - runs["fast"][1])) < floor   # both are at ~0


# The elementwise kernels, with one float32 argument tuple each (arrays of 8 or (2, 4)).
def _float32_calls():
    from tinyae.fast import conv_kernels as CK
    from tinyae.fast import kernels as K
    f = np.float32
    v, m = np.ones(8, f), np.ones((2, 4), f)
    img, chan = np.ones((2, 3, 4), f), np.ones((3, 2, 4), f)
    return {
        "adam": (K.adam, (v, v, v, v) + tuple(f(a) for a in (1e-3, .9, .1, .999, 1e-3, 1, 1e-8,
                                                                0, 1e-38, 1e-19))),
        "act_grad": (K.act_grad, (m, m, K.SIGMOID, f(0), f(1), f(1e-38), m)),
        "sigmoid_from_exp": (K.sigmoid_from_exp, (m, m, f(1), f(1e-38))),
        "bias_act": (K.bias_act, (m, np.ones(4, f), K.LEAKY_RELU, f(.2))),
        "conv bias_act": (CK.bias_act, (chan, np.ones(3, f), K.RELU, f(.2), img)),
        "conv pool_bias_act": (CK.pool_bias_act, (chan, np.ones(3, f), K.RELU, f(.2), 2, 2, 2, 2,
                                                  2, np.ones((2, 3, 1, 1), f),
                                                  np.zeros((2, 3, 1, 1), np.int32))),
    }


@pytest.mark.parametrize("name", sorted(_float32_calls()))
def test_float32_kernels_compute_in_float32(name):
    """No float32 value is widened to float64 inside an elementwise loop.

    One widened value (``x * 0``: Numba types float32 * int as float64) made the
    whole Adam loop float64 arithmetic, 2.8x slower. Compiled afresh from the
    source, since Numba does not show the code of a cached kernel.
    """
    import numba
    kernel, args = _float32_calls()[name]
    fresh = numba.njit(cache=False, error_model="numpy")(kernel.py_func)
    fresh(*args)
    ir = next(iter(fresh.inspect_llvm().values()))
    widened = [line.strip() for line in ir.splitlines() if "fpext float" in line]
    assert not widened, f"{name} widens float32 to float64: {widened[:3]}"

