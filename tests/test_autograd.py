"""tinyae.autograd: every op against finite differences, the tape against the layers."""
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays, mutually_broadcastable_shapes

import tinyae as ta
from tinyae.autograd import (Tensor, bce_with_logits, layer_forward, mse, parameter_tensors,
                             unbroadcast)
from tinyae.gradcheck import check_op, check_three_ways, numerical_gradient, rel_error
from tinyae.viz import plot

# --- every op against central differences, float64, over broadcasting cases ------------------
BROADCAST = {"full": ((3, 4), (3, 4)), "scalar": ((3, 4), ()), "row": ((3, 4), (4,)),
             "column": ((3, 4), (3, 1)), "scalar left": ((), (3, 4)),
             "row left": ((4,), (3, 4)), "both stretched": ((3, 1), (1, 4)),
             "new axis": ((2, 3, 4), (3, 1))}
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}


def away_from_zero(rng, shape):
    """Entries in +-[0.5, 2]: kinks (relu at 0) and poles (1/b, log) are out of reach of h."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("case", BROADCAST)
@pytest.mark.parametrize("op", BINARY)
def test_binary_op_gradients(op, case, rng):
    a, b = (away_from_zero(rng, s) for s in BROADCAST[case])
    report = check_op(BINARY[op], a, b)
    assert report.passed, report


UNARY = {
    "neg": (lambda a: -a, None),
    "exp": (lambda a: a.exp(), None),
    "log": (lambda a: a.log(), "positive"),
    "relu": (lambda a: a.relu(), None),
    "sigmoid": (lambda a: a.sigmoid(), None),
    "tanh": (lambda a: a.tanh(), None),
    "pow 2": (lambda a: a ** 2, None),
    "pow 3": (lambda a: a ** 3, None),
    "pow 0.5": (lambda a: a ** 0.5, "positive"),
    "pow -1": (lambda a: a ** -1, None),
    "sum": (lambda a: a.sum(), None),
    "sum axis 0": (lambda a: a.sum(axis=0), None),
    "sum axis 1 keepdims": (lambda a: a.sum(axis=1, keepdims=True), None),
    "sum axis -1": (lambda a: a.sum(axis=-1), None),
    "sum axes (0, 1)": (lambda a: a.sum(axis=(0, 1)), None),
    "mean": (lambda a: a.mean(), None),
    "mean axis 0 keepdims": (lambda a: a.mean(axis=0, keepdims=True), None),
    "mean axis 1": (lambda a: a.mean(axis=1), None),
    "reshape": (lambda a: a.reshape(4, 3), None),
    "reshape -1": (lambda a: a.reshape(-1), None),
    "T": (lambda a: a.T, None),
    "scalar ops": (lambda a: 2.5 - 3 * a / 2 + 1, None),
    "number / tensor": (lambda a: 1 / a, None),
}


@pytest.mark.parametrize("op", UNARY)
def test_unary_op_gradients(op, rng):
    f, domain = UNARY[op]
    a = away_from_zero(rng, (3, 4))
    report = check_op(f, np.abs(a) if domain == "positive" else a)
    assert report.passed, report


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((1, 5), (5, 1)), ((6, 1), (1, 3))])
def test_matmul_gradient(shapes, rng):
    report = check_op(lambda a, b: a @ b, *(rng.standard_normal(s) for s in shapes))
    assert report.passed, report


def test_sigmoid_and_losses_at_extreme_inputs():
    z = np.array([[-800.0, -30.0, 0.0, 30.0, 800.0]])      # e^800 would overflow
    assert np.all(np.isfinite(Tensor(z).sigmoid().data))
    t = np.array([[0.0, 1.0, 0.5, 0.0, 1.0]])
    value = bce_with_logits(Tensor(z), t)
    assert value.data == pytest.approx(ta.BCE(from_logits=True).forward(z, t), rel=1e-12)


@pytest.mark.parametrize("loss, layer_loss", [(mse, ta.MSE()), (bce_with_logits, ta.BCE(from_logits=True))])
def test_losses_match_the_package_losses(loss, layer_loss, rng):
    pred, target = rng.standard_normal((5, 7)), rng.random((5, 7))
    pred[0, 0] = 0.0                                          # BCE's gradient at z = 0 is 1/2 - t
    p = Tensor(pred)
    value = loss(p, target)
    value.backward()
    assert value.data == pytest.approx(layer_loss.forward(pred, target), rel=1e-12)
    assert rel_error(p.grad, layer_loss.backward()) < 1e-12
    assert check_op(lambda a: loss(a, target), pred).passed


# --- broadcasting's backward, property-based -----------------------------------------------
@settings(max_examples=60, deadline=None)
@given(mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4), st.data())
def test_unbroadcast_is_the_adjoint_of_broadcasting(shapes, data):
    """<broadcast(a), g> == <a, unbroadcast(g)>: the sum of the copies' gradients, to shape."""
    (shape_a, _), out = shapes.input_shapes, shapes.result_shape
    floats = st.floats(-10, 10, allow_nan=False, width=64)
    a = data.draw(arrays(np.float64, shape_a, elements=floats))
    g = data.draw(arrays(np.float64, out, elements=floats))
    ga = unbroadcast(g, shape_a)
    assert ga.shape == shape_a
    assert np.sum(np.broadcast_to(a, out) * g) == pytest.approx(np.sum(a * ga), abs=1e-9)
    assert np.sum(ga) == pytest.approx(np.sum(g), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
def test_add_and_mul_send_gradients_of_each_operands_shape(shapes):
    (shape_a, shape_b), out = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(len(out))
    a, b = Tensor(rng.standard_normal(shape_a)), Tensor(rng.standard_normal(shape_b))
    g = rng.standard_normal(out)
    (a * b + a).backward(g)
    np.testing.assert_allclose(a.grad, unbroadcast(g * b.data + g, shape_a), atol=1e-12)
    np.testing.assert_allclose(b.grad, unbroadcast(g * np.broadcast_to(a.data, out), shape_b),
                               atol=1e-12)


# --- the backward pass --------------------------------------------------------------------
def test_one_multiply():
    a, b = Tensor(2.0), Tensor(3.0)
    c = a * b
    c.backward()
    assert (a.grad, b.grad, c.grad) == (3.0, 2.0, 1.0) and c.item() == 6.0
    c.backward()
    assert a.grad == 6.0
    a.zero_grad()                                 # a 0-d gradient is an array, zeroed in place
    c.backward()
    assert a.grad == 3.0


def test_a_node_used_twice_gets_the_sum_of_both_paths():
    a = Tensor(2.0)
    b = a * 3
    c = b + b                                  # dc/db = 2, dc/da = 6 (naive recursion gives 9)
    c.backward()
    assert b.grad == 2.0 and a.grad == 6.0
    x = Tensor(np.array([1.0, -2.0]))
    (x * x + x.exp() * x).sum().backward()     # d/dx (x^2 + x e^x) = 2x + e^x (1 + x)
    np.testing.assert_allclose(x.grad, 2 * x.data + np.exp(x.data) * (1 + x.data))


def test_backward_twice_doubles_every_gradient_and_zero_grad_clears_in_place(rng):
    W, x = Tensor(rng.standard_normal((3, 2))), Tensor(rng.standard_normal((4, 3)))
    h = (x @ W).tanh()
    loss = (h * h).mean()
    loss.backward()
    once = [t.grad.copy() for t in (W, x, h)]
    loss.backward()
    for t, g in zip((W, x, h), once):
        np.testing.assert_allclose(t.grad, 2 * g, rtol=1e-14)
    array = W.grad
    W.zero_grad()
    assert W.grad is array and not W.grad.any()            # same array: references stay valid
    loss.backward()
    np.testing.assert_allclose(W.grad, once[0], rtol=1e-14)


def test_constants_get_no_gradient_and_matmul_skips_their_product(rng):
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=False)
    W = Tensor(rng.standard_normal((3, 2)))
    (x @ W).sum().backward()
    assert x.grad is None and W.grad.shape == (3, 2)
    assert [t for t in (x @ W).topological_order()][0] is W   # x is not on the tape


def test_a_deep_graph_needs_no_recursion():
    x = Tensor(np.ones(3))
    y = x
    for _ in range(5000):                                       # deeper than the recursion limit
        y = y * 1.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(3))


def test_ndarray_on_the_left_defers_to_the_tensor(rng):
    a = Tensor(rng.standard_normal(3))
    y = np.full(3, 2.0) * a
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, np.full(3, 2.0))


# --- dtype: kept as given, no silent casts --------------------------------------------------
ALL_OPS = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b, lambda a, b: a / b,
           lambda a, b: a @ b.T, lambda a, b: -a, lambda a, b: a.exp(), lambda a, b: (a * a).log(),
           lambda a, b: a.relu(), lambda a, b: a.sigmoid(), lambda a, b: a.tanh(),
           lambda a, b: a ** 2, lambda a, b: a.sum(axis=0), lambda a, b: a.mean(axis=1, keepdims=True),
           lambda a, b: a.reshape(-1), lambda a, b: a.T, lambda a, b: 2 * a + 1 - 0.5 / a,
           lambda a, b: a + np.arange(4), lambda a, b: mse(a, b), lambda a, b: bce_with_logits(a, b)]


@pytest.mark.parametrize("k", range(len(ALL_OPS)))
def test_float32_stays_float32(k, rng):
    a = Tensor(rng.uniform(0.5, 2, (3, 4)).astype(np.float32))
    b = Tensor(rng.uniform(0.5, 2, (3, 4)).astype(np.float32))
    y = ALL_OPS[k](a, b)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, np.float32))
    assert a.grad.dtype == np.float32 and b.grad is None or b.grad.dtype == np.float32


# --- bad input: errors that name the op, the shapes and the fix ------------------------------
def test_backward_on_a_non_scalar_needs_a_gradient():
    y = Tensor(np.ones((2, 3))) * 2
    with pytest.raises(ValueError, match=r"shape \(2, 3\) needs its upstream gradient.*sum\(\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\).*shape \(2, 3\)"):
        y.backward(np.ones(3))
    with pytest.raises(ValueError, match="float32.*float64"):
        y.backward(np.ones((2, 3), np.float32))


def test_backward_on_a_constant_is_an_error():
    with pytest.raises(ValueError, match="needs no gradient"):
        (Tensor(np.ones(2), requires_grad=False) * 2).sum().backward()


@pytest.mark.parametrize("data", [np.arange(3), [1, 2], np.array([True, False])])
def test_integer_data_cannot_carry_a_gradient(data):
    with pytest.raises(TypeError, match=r"floating-point.*astype\(np.float64\).*requires_grad=False"):
        Tensor(data)
    c = Tensor(data, requires_grad=False)                  # fine as a constant ...
    y = Tensor(np.ones(len(c.data), np.float32)) * c       # ... adopting the other's dtype
    assert y.dtype == np.float32


OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
       "@": operator.matmul}


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "@"])
def test_mixing_float32_and_float64_is_an_error(op):
    a, b = Tensor(np.ones((2, 2), np.float32)), Tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"float32 Tensor meets a float64 Tensor.*\(2, 2\).*astype"):
        OPS[op](a, b)
    with pytest.raises(TypeError, match="float32 Tensor meets a float64"):
        OPS[op](a, np.ones((2, 2)))                          # a raw float64 array, too


def test_matmul_shape_errors_name_the_shapes_and_the_fix():
    x, W = Tensor(np.ones((4, 3))), Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"matmul \(@\): \(4, 3\) @ \(5, 2\).*columns \(3\).*rows \(5\).*\.T"):
        x @ W
    with pytest.raises(ValueError, match=r"matmul \(@\): expects 2-D.*\(3,\).*reshape"):
        Tensor(np.ones(3)) @ W


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_broadcast_errors_name_the_op_the_shapes_and_the_fix(op):
    a, b = Tensor(np.ones((3, 4))), Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(3,\) do not broadcast.*reshape\(-1, 1\)"):
        OPS[op](a, b)


def test_what_is_not_a_number_is_refused():
    a = Tensor(np.ones(2))
    for other in (None, "a", [object()]):
        with pytest.raises(TypeError, match="operations take numbers"):
            a + other
    with pytest.raises(TypeError, match=r"Tensor\(t\) got a Tensor"):
        Tensor(a)


@pytest.mark.parametrize("loss", [mse, bce_with_logits])
def test_losses_refuse_to_broadcast(loss):
    with pytest.raises(ValueError, match=r"pred has shape \(2, 3\) but target has shape \(3,\)"):
        loss(Tensor(np.zeros((2, 3))), np.zeros(3))


def test_pow_takes_a_number_only():
    a = Tensor(np.ones(2))
    with pytest.raises(TypeError, match="exponent must be a number"):
        a ** a
    with pytest.raises(TypeError, match="exponent must be a number"):
        a ** np.ones(2)
    with pytest.raises(TypeError, match="exp"):
        2 ** a


def test_a_hand_made_op_with_a_wrong_gradient_shape_is_caught():
    a, b = Tensor(np.ones((3, 4))), Tensor(np.ones(4))
    bad = Tensor(a.data + b.data, parents=(a, b), op="my_add", backward=lambda g: (g, g))
    with pytest.raises(ValueError, match=r"'my_add' gave parent 1 a gradient of shape \(3, 4\).*unbroadcast"):
        bad.sum().backward()
    single = Tensor(a.data * 2, parents=(a,), op="double", backward=lambda g: g * 2)
    with pytest.raises(TypeError, match="one gradient per parent"):
        single.sum().backward()
    s = Tensor(3.0)
    Tensor(6.0, parents=(s,), op="twice", backward=lambda g: (2.0,)).backward()   # a bare number
    assert s.grad == 2.0 and isinstance(s.grad, np.ndarray)


# --- the tape against the hand-written layers -----------------------------------------------
LAYERS = {"Dense": lambda rng: ta.Dense(5, 3, rng=rng),
          "Dense no bias": lambda rng: ta.Dense(5, 3, bias=False, rng=rng),
          "ReLU": lambda rng: ta.ReLU(), "LeakyReLU": lambda rng: ta.LeakyReLU(0.2),
          "Sigmoid": lambda rng: ta.Sigmoid(), "Tanh": lambda rng: ta.Tanh(),
          "Identity": lambda rng: ta.Identity(),
          "Sequential": lambda rng: ta.Sequential(ta.Dense(5, 4, rng=rng), ta.LeakyReLU(),
                                                  ta.Dense(4, 3, rng=rng), ta.Tanh()),
          "Autoencoder": lambda rng: ta.dense_autoencoder((5, 4, 3, 2), rng=rng)}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", LAYERS)
def test_every_layer_agrees_with_the_tape_and_finite_differences(name, seed):
    rng = np.random.default_rng(seed)
    layer = LAYERS[name](rng)
    for _, p, _ in ta.gradcheck.layer_parameters(layer):
        if p.ndim == 1:             # biases off zero: a unit fed only by dead ReLUs sits on the kink
            p[...] = rng.uniform(-1, 1, p.shape)
    x = away_from_zero(rng, (4, 5))
    report = check_three_ways(layer, x)
    assert report.passed, report
    assert max(r.error for r in report.rows if "tape" in r.name) < 1e-12
    assert all(p.dtype == np.float32 for _, p, _ in layer.parameters())   # the layer untouched


class StudentTanhDense:
    """y = tanh(x W + b), a student's layer with its own backward and Tensor forward."""

    def __init__(self, d, h, rng, wrong=False):
        self.params = {"W": rng.standard_normal((d, h)), "b": np.zeros(h)}
        self.grads = {k: np.zeros_like(p) for k, p in self.params.items()}
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        self.y = np.tanh(x @ self.params["W"] + self.params["b"])
        return self.y

    def backward(self, dout):
        dz = dout * (1 - self.y ** 2) if not self.wrong else dout * (1 - self.y)
        self.grads["W"] += self.x.T @ dz
        self.grads["b"] += dz.sum(axis=0)
        return dz @ self.params["W"].T

    def tensor_forward(self, x, params):
        return (x @ params["W"] + params["b"]).tanh()


def test_a_student_layer_checked_three_ways(rng):
    x = rng.standard_normal((4, 3))
    assert check_three_ways(StudentTanhDense(3, 2, rng), x).passed
    inside = ta.Sequential(ta.Dense(3, 3, rng=rng), ta.ReLU(), StudentTanhDense(3, 2, rng))
    assert check_three_ways(inside, x).passed                 # tensor_forward inside a container
    report = check_three_ways(StudentTanhDense(3, 2, rng, wrong=True), x)
    assert not report.passed
    assert {"W: tape vs layer", "b: numeric vs layer", "input: tape vs layer"} <= set(report.failed)


def test_a_tensor_forward_given_as_an_argument(rng):
    layer = ta.Sequential(ta.Dense(3, 2, rng=rng), ta.Tanh())
    report = check_three_ways(layer, rng.standard_normal((4, 3)),
                              forward=lambda x, p: (x @ p["0.W"] + p["0.b"]).tanh())
    assert report.passed, report
    with pytest.raises(ValueError, match="Tensor forward disagrees"):
        check_three_ways(layer, rng.standard_normal((4, 3)),
                         forward=lambda x, p: (x @ p["0.W"] + p["0.b"]).sigmoid())


def test_a_layer_without_a_tensor_version_gets_a_clear_error(rng):
    class Mystery:
        params, grads = {}, {}

        def forward(self, x):
            return x

        def backward(self, dout):
            return dout
    with pytest.raises(TypeError, match="no Tensor version of Mystery.*tensor_forward"):
        check_three_ways(Mystery(), rng.standard_normal((2, 3)))


def test_the_tape_uses_the_models_own_arrays(rng):
    model = ta.dense_autoencoder((6, 4, 2), rng=rng, dtype=np.float64)
    params = parameter_tensors(model)
    for name, p, _ in model.parameters():
        assert params[name].data is p


# --- the seed model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed_model():
    return ta.dense_autoencoder(rng=np.random.default_rng(3), dtype=np.float64)


def test_seed_model_loss_gradients_three_ways(seed_model):
    rng = np.random.default_rng(4)
    X = rng.random((4, 784))
    params = parameter_tensors(seed_model)
    loss = mse(layer_forward(seed_model, Tensor(X, requires_grad=False), params), X)
    loss.backward()

    layer_loss = ta.MSE()
    seed_model.zero_grad()
    value = layer_loss.forward(seed_model.forward(X), X)
    seed_model.backward(layer_loss.backward())
    assert loss.data == pytest.approx(value, rel=1e-13)

    def scalar(_):
        return ta.MSE().forward(seed_model.forward(X), X)
    for name, p, g in seed_model.parameters():
        assert rel_error(params[name].grad, g) < 1e-10, name
        idx = np.argsort(np.abs(g).ravel())[-6:]             # the largest: not rounding noise
        num = numerical_gradient(scalar, p, 1.0, indices=idx).reshape(-1)[idx]
        assert rel_error(params[name].grad.reshape(-1)[idx], num) < 1e-6, name


def test_seed_model_adam_steps_give_the_same_weights():
    rng = np.random.default_rng(5)
    X = rng.random((16, 784))
    by_layers = ta.dense_autoencoder(rng=np.random.default_rng(6), dtype=np.float64)
    by_tape = ta.dense_autoencoder(rng=np.random.default_rng(6), dtype=np.float64)
    opt_layers, opt_tape = ta.Adam(by_layers.parameters()), ta.Adam(by_tape.parameters())
    params, loss = parameter_tensors(by_tape), ta.MSE()
    for _ in range(3):
        opt_layers.zero_grad()
        loss.forward(by_layers.forward(X), X)
        by_layers.backward(loss.backward())
        opt_layers.step()

        for t in params.values():
            t.zero_grad()
        mse(layer_forward(by_tape, Tensor(X, requires_grad=False), params), X).backward()
        for name, _, g in by_tape.parameters():
            g[...] = params[name].grad                          # Adam reads the layers' grads
        opt_tape.step()
    for (name, p1, _), (_, p2, _) in zip(by_layers.parameters(), by_tape.parameters()):
        np.testing.assert_allclose(p2, p1, rtol=1e-10, atol=1e-13, err_msg=name)
    start = ta.dense_autoencoder(rng=np.random.default_rng(6), dtype=np.float64)
    moved = next(start.parameters())[1] - next(by_tape.parameters())[1]
    assert np.abs(moved).max() > 1e-4                             # the steps did move the weights


def vae_loss(mu, logvar, eps, decode, X):
    """Issue 11's VAE loss as a Tensor expression, per image: summed BCE + KL, batch mean.

    z = mu + exp(logvar / 2) eps;  KL(q || N(0, I)) = -1/2 sum(1 + logvar - mu^2 - exp(logvar)).
    """
    z = mu + (logvar * 0.5).exp() * eps
    n = X.shape[0]
    recon = bce_with_logits(decode(z), X) * X.size / n           # summed over pixels
    kl = ((1 + logvar - mu ** 2 - logvar.exp()) * -0.5).sum() / n
    return recon + kl


def test_vae_loss_expression_has_the_closed_form_kl_gradient(rng):
    """The derivatives issue 11 writes by hand: dKL/dmu = mu, dKL/dlogvar = (exp(logvar) - 1) / 2."""
    mu, logvar = Tensor(rng.standard_normal((5, 2))), Tensor(rng.standard_normal((5, 2)))
    X = rng.random((5, 3))
    zero_decoder = lambda z: z @ Tensor(np.zeros((2, 3)), requires_grad=False)   # recon: constant
    vae_loss(mu, logvar, rng.standard_normal((5, 2)), zero_decoder, X).backward()
    np.testing.assert_allclose(mu.grad, mu.data / 5, rtol=1e-12)
    np.testing.assert_allclose(logvar.grad, (np.exp(logvar.data) - 1) / 2 / 5, rtol=1e-12)
    W = rng.standard_normal((2, 3))
    report = check_op(lambda m, lv, e: vae_loss(m, lv, e, lambda z: z @ Tensor(W, requires_grad=False), X),
                      mu.data, logvar.data, rng.standard_normal((5, 2)))
    assert report.passed, report


def test_vae_loss_agrees_with_its_hand_written_backward(rng):
    """The VAE's loss built from its parts as Tensors (eps frozen) against its backward by hand."""
    from tinyae.models.vae import BernoulliNLL, variational_autoencoder
    model = variational_autoencoder((12, 9, 6, 3), beta=1.0, rng=rng, dtype=np.float64)
    X = rng.random((5, 12))
    eps = rng.standard_normal((5, 3))
    model.fixed_eps = eps
    loss = BernoulliNLL()
    model.zero_grad()
    value = loss.forward(model.forward(X), X) + model.penalty()
    model.backward(loss.backward())
    by_hand = {n: g.copy() for n, _, g in model.parameters()}

    params = parameter_tensors(model)
    h = layer_forward(model.encoder, Tensor(X, requires_grad=False), params, "encoder.")
    mu = layer_forward(model.mu_head, h, params, "mu_head.")
    logvar = layer_forward(model.logvar_head, h, params, "logvar_head.")
    decode = lambda z: layer_forward(model.decoder, z, params, "decoder.")   # noqa: E731
    tape = vae_loss(mu, logvar, eps, decode, X)
    tape.backward()
    assert abs(tape.item() - value) < 1e-10 * abs(value)
    assert by_hand.keys() == params.keys()
    for name, g in by_hand.items():
        assert rel_error(g, params[name].grad) < 1e-10, name


# --- the picture ---------------------------------------------------------------------------------
def test_graph_picture(tmp_path, rng):
    x = Tensor(rng.random((4, 3)), requires_grad=False, name="x")
    W, b = Tensor(rng.standard_normal((3, 2)), name="W"), Tensor(np.zeros(2), name="b")
    loss = mse((x @ W + b).sigmoid(), x @ W)                  # x used twice
    fig = plot.graph(loss, tmp_path / "g.png", title="a small graph")
    assert (tmp_path / "g.png").stat().st_size > 5000
    nodes = loss.topological_order(constants=True)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_text()]     # arrows have none
    assert len(labels) == len(nodes) == 10                   # x @ W is computed twice
    assert {"matmul\n(4, 2)", "W\n(3, 2)", "x\n(4, 3)", "mean\n()", "pow 2\n(4, 2)"} <= set(labels)
    arrows = [c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]
    assert len(arrows) == sum(len(n.parents) for n in loss.topological_order(constants=True))


def test_graph_of_a_huge_computation_is_refused():
    y = Tensor(np.ones(2))
    for _ in range(400):
        y = y * 1.0
    with pytest.raises(ValueError, match="too many to draw legibly"):
        plot.graph(y)
