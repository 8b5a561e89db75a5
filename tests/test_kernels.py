"""The Numba kernels against their NumPy reference, and the backend seam."""
import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinyae as ta
from tinyae import kernels
from tinyae.gradcheck import check_layer, check_model
from tinyae.kernels import fast, matmul, reference

ACTS = list(kernels.ACTIVATIONS)
SHAPES = [(4, 4, 4), (5, 23, 7), (1, 1, 1), (3, 1, 8)]          # (N, D, H)
DTYPES = [np.float32, np.float64]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def arrays(shape, dtype, seed=0):
    N, D, H = shape
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, D)).astype(dtype), rng.standard_normal((D, H)).astype(dtype),
            rng.standard_normal(H).astype(dtype), rng.standard_normal((N, H)).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_forward_and_backward_match_reference(dtype, shape, act, bias):
    x, W, b, dy = arrays(shape, dtype)
    b = b if bias else None
    y_ref, y_fast = reference.dense_forward(x, W, b, act, 0.1), fast.dense_forward(x, W, b, act, 0.1)
    assert y_fast.dtype == dtype and y_fast.shape == y_ref.shape
    np.testing.assert_allclose(y_fast, y_ref, **tol(dtype))
    grads = []
    for k in (reference, fast):
        dW, db = np.zeros_like(W), (np.zeros_like(b) if bias else None)
        dx = k.dense_backward(x, W, y_ref, dy, dW, db, act, 0.1)
        grads.append((dx, dW, db))
    for a, c in zip(*grads):
        if a is not None:
            assert c.dtype == dtype
            np.testing.assert_allclose(c, a, **tol(dtype))
    dW = np.zeros_like(W)
    assert fast.dense_backward(x, W, y_ref, dy, dW, None, act, 0.1, need_dx=False) is None
    np.testing.assert_allclose(dW, grads[0][1], **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_activations_match_reference(dtype, act):
    z = (np.random.default_rng(1).standard_normal((5, 7)) * 5).astype(dtype)
    z[0, :3] = [-1e4, 1e4, 0]
    y_ref = reference.act_forward(z.copy(), act, 0.2)
    y = fast.act_forward(z.copy(), act, 0.2)
    np.testing.assert_allclose(y, y_ref, **tol(dtype))
    dy = np.ones_like(z)
    np.testing.assert_allclose(fast.act_backward(y_ref, dy, act, 0.2),
                               reference.act_backward(y_ref, dy, act, 0.2), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wd", [0.0, 0.01])
@pytest.mark.parametrize("shape", [(1,), (5, 23), (7, 3)])
def test_adam_matches_reference(dtype, wd, shape):
    rng = np.random.default_rng(2)
    p, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    state = [p, g, np.zeros(shape, dtype), np.zeros(shape, dtype)]          # p, g, m, v
    ref_state, fast_state = copy.deepcopy(state), copy.deepcopy(state)
    for t in (1, 2, 3):
        g = rng.standard_normal(shape).astype(dtype)
        ref_state[1][...] = fast_state[1][...] = g
        reference.adam_update(*ref_state, 1e-2, 0.9, 0.999, 1e-8, t, wd)
        fast.adam_update(*fast_state, 1e-2, 0.9, 0.999, 1e-8, t, wd)
    for a, c in zip(ref_state, fast_state):
        assert c.dtype == dtype
        np.testing.assert_allclose(c, a, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (5, 23), (1, 1), (3, 2, 5)])
def test_mse_grad_matches_reference(dtype, shape):
    rng = np.random.default_rng(5)
    pred, target = rng.random(shape).astype(dtype), rng.random(shape).astype(dtype)
    s_ref, g_ref = reference.mse_grad(pred, target)
    s, g = fast.mse_grad(pred, target)
    assert isinstance(s, float) and g.dtype == dtype and g.shape == shape
    np.testing.assert_allclose(s, s_ref, **tol(dtype))
    np.testing.assert_allclose(g, g_ref, **tol(dtype))
    diff = pred.astype(np.float64) - target            # the definition, in float64
    np.testing.assert_allclose(s, np.sum(diff ** 2), rtol=1e-5 if dtype == np.float32 else 1e-12)
    out = np.full(shape, np.nan, dtype)
    assert fast.mse_grad(pred[..., ::-1], target, out=out)[1] is out   # a strided pred works too
    np.testing.assert_allclose(out, reference.mse_grad(pred[..., ::-1], target)[1], **tol(dtype))
    strided = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    assert fast.mse_grad(pred, target, out=strided)[1] is strided       # so does a strided out
    np.testing.assert_allclose(strided, g_ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_matches_reference(dtype):
    X = np.random.default_rng(3).standard_normal((23, 5)).astype(dtype)
    idx = np.array([22, 0, 5, 5, 1])
    np.testing.assert_array_equal(fast.gather_rows(X, idx), reference.gather_rows(X, idx))
    assert fast.gather_rows(X, idx[:1]).shape == (1, 5)
    for k in (reference, fast):
        out = np.zeros((5, 5), dtype)
        assert k.gather_rows(X, idx, out=out) is out
        np.testing.assert_array_equal(out, X[idx])
    np.testing.assert_array_equal(fast.gather_rows(X, [-1, -23]), X[[-1, -23]])  # as NumPy
    for bad in ([0, 23], [-24]):                           # past either end: no silent garbage
        with pytest.raises(IndexError, match=r"\[-23, 23\)"):
            fast.gather_rows(X, bad)
    with pytest.raises(ValueError, match="differ"):
        fast.mse_grad(X, X[:-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4, 4), (5, 23, 7), (1, 1, 1), (9, 300, 130)])
def test_teaching_matmul(dtype, shape):
    x, W, _, _ = arrays(shape, dtype)
    C = matmul.matmul(x, W)
    assert C.dtype == dtype
    # The standard bound for a K-term dot product: |C - exact| <= K eps (|x| @ |W|).
    exact = x.astype(np.float64) @ W.astype(np.float64)
    bound = shape[1] * np.finfo(dtype).eps * (np.abs(x).astype(np.float64) @ np.abs(W))
    assert np.all(np.abs(C - exact) <= bound)
    with pytest.raises(ValueError, match="do not chain"):
        matmul.matmul(x, W.T if shape[1] != shape[2] else W[:-1] if shape[1] > 1 else np.ones((2, 2)))


def test_unknown_activation():
    x = np.ones((2, 2))
    for k in (reference, fast):
        with pytest.raises(ValueError, match="unknown activation 'swish'"):
            k.dense_forward(x, x, None, "swish")


# --- the backends train the same model ----------------------------------------------
@pytest.fixture
def restore_backend():
    before = kernels.get_backend()
    yield
    kernels.set_backend(before)


def grads_on(backend, model, X):
    kernels.set_backend(backend)
    model = copy.deepcopy(model)
    loss = ta.MSE()
    model.zero_grad()
    loss.forward(model.forward(X), X)
    dX = model.backward(loss.backward())
    return [g.copy() for _, _, g in model.parameters()] + [dX]


@pytest.mark.parametrize("dtype", DTYPES)
def test_backends_give_the_same_gradients(dtype, restore_backend):
    rng = np.random.default_rng(0)
    model = ta.dense_autoencoder((23, 11, 5, 2), rng=rng, dtype=dtype)
    X = rng.random((7, 23)).astype(dtype)
    for a, b in zip(grads_on("numpy", model, X), grads_on("numba", model, X)):
        np.testing.assert_allclose(b, a, **tol(dtype))


def test_one_adam_step_and_200_steps_agree(restore_backend):
    from tinyae.digits import load_builtin_digits
    X = load_builtin_digits("test", n=256)[0]
    start = ta.dense_autoencoder((784, 64, 16, 2), rng=np.random.default_rng(0))
    curves, first = {}, {}
    for backend in ("numpy", "numba"):
        kernels.set_backend(backend)
        model = copy.deepcopy(start)
        opt, loss = ta.Adam(model.parameters(), lr=1e-3), ta.MSE()
        curve = []
        for step in range(200):
            xb = X[(step % 4) * 64:(step % 4 + 1) * 64]
            opt.zero_grad()
            curve.append(loss.forward(model.forward(xb), xb))
            model.backward(loss.backward(), need_dx=False)
            opt.step()
            if step == 0:
                first[backend] = [p.copy() for _, p, _ in model.parameters()]
        curves[backend] = np.array(curve)
    for a, b in zip(first["numpy"], first["numba"]):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert curves["numpy"][-1] < 0.5 * curves["numpy"][0]                # it did learn
    np.testing.assert_allclose(curves["numba"], curves["numpy"], rtol=0.01)


def test_gradcheck_passes_on_the_numba_backend(restore_backend):
    kernels.set_backend("numba")
    rng = np.random.default_rng(4)
    assert check_layer(ta.Sequential(ta.Dense(5, 3, rng=rng), ta.Tanh()), rng.standard_normal((4, 5))).passed
    model = ta.dense_autoencoder((7, 5, 3), rng=rng)
    X = rng.random((3, 7))
    report = check_model(model, ta.BCE(), X, X)
    assert report.passed, report


def test_set_backend_and_env(restore_backend):
    kernels.set_backend("numpy")
    assert kernels.get_backend() == "numpy"
    kernels.set_backend("numba")
    assert kernels.get_backend() == "numba"
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        kernels.set_backend("cuda")
    out = subprocess.run([sys.executable, "-c", "import tinyae; print(tinyae.kernels.get_backend())"],
                         capture_output=True, text=True, env={**os.environ, "TINYAE_BACKEND": "numpy"})
    assert out.stdout.strip() == "numpy"


def run_python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **env})


def test_without_numba_everything_runs_on_the_reference():
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
            assert ta.gradcheck.check_model(model, ta.MSE(), X[:3], X[:3]).passed
        notices = [w for w in caught if "Numba is not available" in str(w.message)]
        print(ta.kernels.get_backend(), len(notices), h.loss[1] < h.loss[0])
    """, TINYAE_BACKEND="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "1", "True"]


def test_kernel_logic_without_jit():
    """NUMBA_DISABLE_JIT=1 runs the kernel bodies as Python: the logic, line by line."""
    out = run_python("""
        import numpy as np
        from tinyae.kernels import fast, matmul, reference
        rng = np.random.default_rng(0)
        x, W, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
        dy = rng.standard_normal((3, 2))
        for act in reference.ACTIVATIONS:
            y = reference.dense_forward(x, W, b, act, 0.1)
            assert np.allclose(fast.dense_forward(x, W, b, act, 0.1), y), act
            g1, g2 = [np.zeros_like(W), np.zeros_like(b)], [np.zeros_like(W), np.zeros_like(b)]
            dx1 = reference.dense_backward(x, W, y, dy, *g1, act, 0.1)
            dx2 = fast.dense_backward(x, W, y, dy, *g2, act, 0.1)
            assert np.allclose(dx1, dx2) and np.allclose(g1[0], g2[0]) and np.allclose(g1[1], g2[1]), act
        p = [rng.standard_normal(5) for _ in range(2)] + [np.zeros(5), np.zeros(5)]
        q = [a.copy() for a in p]
        reference.adam_update(*p, 0.1, 0.9, 0.999, 1e-8, 1, 0.01)
        fast.adam_update(*q, 0.1, 0.9, 0.999, 1e-8, 1, 0.01)
        assert all(np.allclose(a, c) for a, c in zip(p, q))
        assert np.array_equal(fast.gather_rows(x, [2, 0]), x[[2, 0]])
        s1, g1 = reference.mse_grad(x, 2 * x)
        s2, g2 = fast.mse_grad(x, 2 * x)
        assert np.isclose(s1, s2) and np.allclose(g1, g2)
        assert np.allclose(matmul.matmul(rng.random((6, 3)), rng.random((3, 5))).shape, (6, 5))
        print("ok")
    """, NUMBA_DISABLE_JIT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_uncachable_kernels_still_work(monkeypatch):
    import numba.core.dispatcher as dispatcher

    def no_cache(self):
        raise RuntimeError("cannot cache function: no locator available")
    monkeypatch.setattr(dispatcher.Dispatcher, "enable_caching", no_cache)
    monkeypatch.setattr(fast._jit, "warned", False)

    def twice(a):
        return a * 2
    with pytest.warns(UserWarning, match="cannot cache compiled kernels") as record:
        f = fast._jit(twice)
        g = fast._jit(twice)
    assert len(record) == 1 and f(3.0) == 6.0 and g(2.0) == 4.0
