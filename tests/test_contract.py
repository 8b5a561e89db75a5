"""The checker as a course uses it: student layers, right and wrong, each bug named.

Every student bug of issue 23 gets its own verdict here: a right layer passes
everything; in-place code is judged on its maths and the in-place change is
reported; each broken point of the contract is caught with its own message.
"""
import numpy as np
import pytest

import tinyae as ta
from tinyae.gradcheck import check_contract, check_layer, check_model


# --- student layers: one right version, then one bug each ----------------------------
class Dense:
    """A right dense layer written without tinyae's base class."""

    def __init__(self, d=5, h=3, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W": rng.standard_normal((d, h)), "b": rng.standard_normal(h)}
        self.grads = {"W": np.zeros((d, h)), "b": np.zeros(h)}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads["W"] += self.x.T @ dout
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


class NoReturn(Dense):
    def backward(self, dout):
        super().backward(dout)                       # forgot `return`


class Assigns(Dense):
    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout            # = instead of +=: a new array each time
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


class AssignsInPlace(Dense):
    def backward(self, dout):
        self.grads["W"][...] = self.x.T @ dout       # same array, but overwritten
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


class ReplacesArray(Dense):
    def backward(self, dout):
        self.grads["W"] = self.grads["W"] + self.x.T @ dout   # adds up, in a new array
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


class Float32(Dense):
    def forward(self, x):
        self.x = x.astype(np.float32)
        return self.x @ self.params["W"].astype(np.float32) + self.params["b"].astype(np.float32)


class TransposedW(Dense):
    def backward(self, dout):
        self.grads["W"] = dout.T @ self.x            # (H, D), W is (D, H)
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


class NoBatchSum(Dense):
    def backward(self, dout):
        self.grads["W"] += self.x.T @ dout
        self.grads["b"] += dout                      # (N, H) into (H,)
        return dout @ self.params["W"].T


class MeanBias(Dense):
    def backward(self, dout):
        self.grads["W"] += self.x.T @ dout
        self.grads["b"] += dout.mean(axis=0)         # right only for one row
        return dout @ self.params["W"].T


class Sigmoid:
    params, grads = {}, {}

    def forward(self, x):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, dout):
        return dout * self.y * (1 - self.y)


class InPlaceSigmoid(Sigmoid):
    def backward(self, dout):
        dout *= self.y * (1 - self.y)                # right maths, written into dout
        return dout


class ZeroesDout(Sigmoid):
    def backward(self, dout):
        dout[...] = 0                                # wrong, and hides it in the old checker
        return dout


class InPlaceLeakyReLU:
    params, grads = {}, {}

    def forward(self, x):
        self.mask = x > 0
        x[~self.mask] *= 0.1                         # right maths, written into x
        return x

    def backward(self, dout):
        return np.where(self.mask, dout, 0.1 * dout)


class Dropout:
    params, grads = {}, {}

    def forward(self, x):
        self.keep = np.random.random(x.shape) > 0.5   # global state: cannot be held fixed
        return x * self.keep

    def backward(self, dout):
        return dout * self.keep


class SeededDropout(Dropout):
    def __init__(self):
        self.rng = np.random.default_rng()

    def forward(self, x):
        self.keep = self.rng.random(x.shape) > 0.5
        return x * self.keep


class Jitter:
    """Adds noise from NumPy's global state: it cannot be held, and it changes every output."""
    params, grads = {}, {}

    def forward(self, x):
        return x + np.random.normal(size=x.shape)

    def backward(self, dout):
        return dout


class Raises(Sigmoid):
    def forward(self, x):
        raise RuntimeError("not finished")


class NaNs(Sigmoid):
    def forward(self, x):
        return np.log(x - 100)                       # NaN for every x below 100


class NoForward:
    params, grads = {}, {}

    def backward(self, dout):
        return dout


def x_batch(shape=(4, 5), seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


def checks(report):
    return [f.check for f in report.findings]


def text(report):
    return "\n".join(f.message for f in report.findings)


# --- verdicts ----------------------------------------------------------------------
@pytest.mark.parametrize("make", [Dense, Sigmoid, lambda: ta.Dense(5, 3, rng=np.random.default_rng(0)),
                                  ta.Sigmoid, ta.Tanh, lambda: ta.LeakyReLU(0.2), SeededDropout],
                         ids=["student Dense", "student Sigmoid", "Dense", "Sigmoid", "Tanh",
                              "LeakyReLU", "seeded dropout"])
def test_right_layers_pass_everything(make):
    report = check_layer(make(), x_batch())
    assert report.passed, report
    assert report.findings == [] and report.warnings == []
    report.assert_ok()


def test_backward_without_return_says_so():
    report = check_layer(NoReturn(), x_batch())
    assert not report.passed and report.fatal
    assert checks(report) == ["backward returns dx"]
    assert "returned None" in text(report) and "return dx" in text(report)
    assert "shapes differ" not in str(report)


def test_assigning_a_new_gradient_array_is_caught_twice():
    report = check_layer(Assigns(), x_batch())
    assert set(checks(report)) == {"keeps grads arrays", "gradients add up"}
    assert "optimiser holds the old one" in text(report)
    assert "= instead of +=" in text(report) and "self.grads['W'] +=" in text(report)
    assert report.failed == []                   # the maths is right: only the contract fails
    assert not report.passed


def test_overwriting_the_same_array_is_caught_as_not_adding():
    report = check_layer(AssignsInPlace(), x_batch())
    assert checks(report) == ["gradients add up"]


def test_a_replaced_array_that_adds_up_is_caught_as_replaced():
    report = check_layer(ReplacesArray(), x_batch())
    assert checks(report) == ["keeps grads arrays"]


def test_float32_compute_is_named():
    report = check_layer(Float32(), x_batch())
    assert "float64 in, float64 out" in checks(report)
    assert "float32" in text(report)


def test_transposed_weight_gradient_is_caught():
    report = check_layer(TransposedW(), x_batch())
    assert report.fatal and checks(report)[-1] == "gradient shapes"
    assert "(3, 5)" in text(report) and "x.T @ dout" in text(report)


def test_missing_batch_sum_is_caught():
    report = check_layer(NoBatchSum(), x_batch())
    assert report.fatal and checks(report) == ["backward runs"]
    assert "dout.sum(axis=0)" in text(report)


def test_mean_for_sum_passes_one_row_with_a_warning_and_fails_several():
    one = check_layer(MeanBias(), x_batch((1, 5)))
    assert one.passed and "one row" in one.warnings[0]
    assert "warning: x has one row" in str(one)
    several = check_layer(MeanBias(), x_batch((4, 5)))
    assert several.failed == ["b"]


def test_in_place_sigmoid_backward_is_right_maths_and_reported():
    report = check_layer(InPlaceSigmoid(), x_batch())
    assert report.failed == [] and report.max_error < 1e-7
    assert checks(report) == ["backward keeps dout"]


def test_backward_that_zeroes_dout_fails_the_gradient():
    report = check_layer(ZeroesDout(), x_batch())
    assert report.failed == ["input"] and report.max_error > 0.5


def test_in_place_forward_is_right_maths_and_reported():
    report = check_layer(InPlaceLeakyReLU(), x_batch())
    assert report.failed == [] and checks(report) == ["forward keeps x"]


def test_unheld_randomness_is_named():
    report = check_layer(Dropout(), x_batch())
    assert report.fatal and checks(report) == ["same x, same y"]
    assert "self.rng" in text(report)


@pytest.mark.parametrize("layer, check, words", [
    (Raises(), "forward runs", "RuntimeError: not finished"),
    (NaNs(), "forward is finite", "NaN or inf"),
    (NoForward(), "has forward", "no forward() method"),
])
def test_layers_that_cannot_run_get_one_finding(layer, check, words):
    report = check_layer(layer, x_batch())
    assert report.fatal and checks(report) == [check] and words in text(report)
    assert report.rows == []


def test_check_contract_alone_has_no_gradient_rows():
    assert check_contract(Dense(), x_batch()).passed
    report = check_contract(Assigns(), x_batch())
    assert report.rows == [] and not report.passed


def test_the_layer_passed_in_is_untouched():
    layer = InPlaceSigmoid()
    x = x_batch()
    x0 = x.copy()
    check_layer(layer, x)
    np.testing.assert_array_equal(x, x0)
    assert not hasattr(layer, "y")


# --- reports for grading -------------------------------------------------------------
def test_report_prints_as_its_table_everywhere():
    report = check_layer(MeanBias(), x_batch())
    assert repr(report) == str(report)
    assert str(report).splitlines()[-1] == "threshold 1e-07: FAILED: b"
    with pytest.raises(AssertionError) as caught:
        report.assert_ok()
    assert "FAILED: b" in str(caught.value) and "worst entry" in str(caught.value)


def test_rows_name_the_worst_entry():
    report = check_layer(MeanBias(), x_batch())
    row = next(r for r in report.rows if r.name == "b")
    index, analytic, numeric = row.worst
    assert len(index) == 1 and 0 <= index[0] < 3
    assert analytic == pytest.approx(numeric / 4)      # the mean over 4 rows, not the sum
    assert f"[{index[0]}]: " in str(report)


def test_to_dict_gives_partial_credit():
    d = check_layer(MeanBias(), x_batch()).to_dict()
    assert d["passed"] is False
    assert {k: v["passed"] for k, v in d["gradients"].items()} == {"input": True, "W": True,
                                                                  "b": False}
    assert d["gradients"]["b"]["worst"]["index"] and d["contract"] == []
    d = check_layer(Assigns(), x_batch()).to_dict()
    assert {c["check"] for c in d["contract"]} == {"keeps grads arrays", "gradients add up"}


# --- models --------------------------------------------------------------------------
def test_a_vae_is_checked_with_its_noise_held():
    model = ta.variational_autoencoder((6, 5, 2), rng=np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0, 1, (4, 6))
    report = check_model(model, model.default_loss(), x, x)
    assert report.passed, report
    assert model.fixed_eps is None                    # nothing was set on the model itself


def test_a_model_with_unheld_noise_gets_a_finding():
    model = ta.dense_autoencoder((5, 3, 2), rng=np.random.default_rng(0))
    # Additive noise, not a dropout mask: a mask can land on entries a ReLU zeroes anyway,
    # and then two forwards agree by chance (about 1 global seed in 100 did).
    model.encoder.layers.insert(1, Jitter())
    x = x_batch((4, 5))
    report = check_model(model, ta.MSE(), x, x)
    assert report.fatal and checks(report) == ["same x, same loss"]


# --- the contract in containers: a student's layer trains ----------------------------
def tutorial_class(name, path="tutorials/01_layers_by_hand.py"):
    """The last definition of class ``name`` in a tutorial (its solution), as written there."""
    import ast

    from conftest import ROOT
    source = (ROOT / path).read_text()
    node = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == name][-1]
    scope = {"np": np}
    exec(compile(ast.Module([node], []), path, "exec"), scope)
    return scope[name]


def low_rank_data(n, seed=2):
    """Images a 3-D code can reconstruct: sigmoid of 3 factors mixed into 12 pixels."""
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-rng.standard_normal((n, 3)) @ rng.standard_normal((3, 12))))


def student_model(leaky, seed=0):
    rng = np.random.default_rng(seed)
    first = Dense(12, 8, seed)
    first.params["W"] *= 0.3
    encoder = ta.Sequential(first, leaky(0.1), ta.Dense(8, 3, rng=rng, dtype=np.float64))
    decoder = ta.Sequential(ta.Dense(3, 8, rng=rng, dtype=np.float64), leaky(0.1),
                            ta.Dense(8, 12, rng=rng, dtype=np.float64), ta.Sigmoid())
    return ta.Autoencoder(encoder, decoder)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_tutorial_01_leaky_relu_trains_in_fit(backend):
    leaky = tutorial_class("MyLeakyReLU")
    assert check_layer(leaky(0.1), x_batch()).passed
    model = student_model(leaky)
    X = low_rank_data(256)
    W0 = model.encoder[0].params["W"].copy()
    history = ta.train.fit(model, X, epochs=15, batch_size=32, progress=False, backend=backend,
                           optimizer=ta.Adam(model.parameters(), lr=1e-2))
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert not np.allclose(model.encoder[0].params["W"], W0)   # the student's Dense moved too


def test_both_backends_train_a_student_model_alike():
    leaky = tutorial_class("MyLeakyReLU")
    X = low_rank_data(128)
    losses = [ta.train.fit(student_model(leaky), X, epochs=3, batch_size=32, progress=False,
                           backend=b, threads=1).loss for b in ("numpy", "numba")]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-9)


def test_summary_of_a_student_model(capsys):
    model = student_model(tutorial_class("MyLeakyReLU"))
    assert model.input_width == 12 and model.latent_width == 3
    model.summary()
    out = capsys.readouterr().out
    assert "encoder.0 Dense" in out and "encoder.1 MyLeakyReLU  (None, 8)" in out
    assert "decoder.3 Sigmoid" in out and "(None, 12)" in out


def test_a_sequential_of_student_layers_trains_without_a_width():
    """No layer with a W first: the width comes from the first W further in."""
    leaky = tutorial_class("MyLeakyReLU")
    model = ta.Sequential(leaky(0.1), Dense(6, 4), leaky(0.1), Dense(4, 6, seed=1))
    assert ta.nn.layers.input_width(model) == 6
    X = np.random.default_rng(0).uniform(0, 1, (64, 6))
    history = ta.train.fit(model, X, epochs=3, batch_size=16, progress=False, backend="numpy",
                           optimizer=ta.Adam(model.parameters(), lr=1e-2))
    assert history.loss[-1] < history.loss[0]
    with pytest.raises(ValueError, match="expects 6 input features, got 5"):
        ta.train.fit(model, X[:, :5], epochs=1, progress=False)


def test_every_finding_names_a_listed_check():
    """Graders key partial credit on these names: each finding uses one of CHECKS."""
    from tinyae.contract import CHECKS
    bugs = [NoReturn, Assigns, AssignsInPlace, ReplacesArray, Float32, TransposedW, NoBatchSum,
            InPlaceSigmoid, InPlaceLeakyReLU, Dropout, Raises, NaNs, NoForward]
    names = {f.check for bug in bugs for f in check_layer(bug(), x_batch()).findings}
    assert names <= set(CHECKS) and len(names) >= 12


def test_a_skeleton_is_not_done_yet_rather_than_wrong():
    """An exercise's NotImplementedError reaches the caller (tinyae.tutorial.exercise says
    "not done yet"); it is not reported as a broken layer."""
    class Skeleton(Sigmoid):
        def backward(self, dout):
            raise NotImplementedError("write backward")
    with pytest.raises(NotImplementedError, match="write backward"):
        check_layer(Skeleton(), x_batch())


# --- found by a red-team pass: each now has its own verdict --------------------------
class TorchLayout(Dense):
    """W stored (out, in) as torch.nn.Linear does: right maths in its own layout."""

    def __init__(self):
        super().__init__(6, 3)
        self.params["W"] = self.params["W"].T.copy()
        self.grads["W"] = np.zeros_like(self.params["W"])

    def forward(self, x):
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dout):
        self.grads["W"] += dout.T @ self.x
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"]


def test_a_weight_in_torch_layout_gives_the_right_width():
    assert ta.nn.layers.input_width(TorchLayout()) == 6
    model = ta.Autoencoder(ta.Sequential(TorchLayout()), ta.Sequential(ta.Dense(3, 6)))
    assert model.input_width == 6
    X = np.random.default_rng(0).uniform(0, 1, (32, 6)).astype(np.float32)
    ta.train.fit(model, X, epochs=1, progress=False, backend="numpy")


class ReturnsList(Sigmoid):
    def forward(self, x):
        return super().forward(x).tolist()


class IntWeights(Dense):
    def __init__(self):
        super().__init__()
        self.params["W"] = np.ones((5, 3), dtype=np.int64)


class ListWeights(Dense):
    def __init__(self):
        super().__init__()
        self.params["b"] = [0.0, 0.0, 0.0]


class FailsLater(Sigmoid):
    calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 8:
            raise RuntimeError("tired")
        return super().forward(x)


class ParamsProperty(Dense):
    @property
    def params(self):
        return {"W": np.ones((5, 3))}

    @params.setter
    def params(self, value):
        pass


class NormalisesW(Dense):
    def forward(self, x):
        self.params["W"] /= np.linalg.norm(self.params["W"])      # state changed by forward
        return super().forward(x)


class LegacyDropout(Dropout):
    def __init__(self):
        self.rng = np.random.RandomState(0)

    def forward(self, x):
        self.keep = self.rng.random_sample(x.shape) > 0.5
        return x * self.keep


class Wrapper(Sigmoid):
    """A composite without children(): its dropout lives in an attribute."""

    def __init__(self):
        self.drop = SeededDropout()

    def forward(self, x):
        return self.drop.forward(super().forward(x))

    def backward(self, dout):
        return super().backward(self.drop.backward(dout))


class InfGrad(Dense):
    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["W"][0, 0] = np.inf
        return dx


class SquareTransposed(Dense):
    def __init__(self):
        super().__init__(4, 4)

    def backward(self, dout):
        self.grads["W"] += dout.T @ self.x
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


@pytest.mark.parametrize("layer, check, fatal, words", [
    (ReturnsList(), "forward returns y", False, "returned a list"),
    (IntWeights(), "params are float arrays", True, "dtype int64"),
    (ListWeights(), "params are float arrays", True, "a list"),
    (FailsLater(), "forward runs", True, "then raised RuntimeError: tired"),
    (ParamsProperty(), "has params", True, "new dict on every access"),
    (NormalisesW(), "forward keeps params", True, "forward changed W"),
    (InfGrad(), "gradients are finite", True, "NaN or inf into grads of W"),
    (ta.dense_autoencoder((6, 4, 2)), "has params", True, "check_model(model, loss, x, target)"),
], ids=lambda v: type(v).__name__ if not isinstance(v, (str, bool)) else None)
def test_more_ways_to_break_the_contract(layer, check, fatal, words):
    report = check_layer(layer, x_batch((4, 6) if isinstance(layer, (Sigmoid, ta.models.Autoencoder))
                                        else (4, 5)))
    assert not report.passed
    assert check in checks(report) and words in text(report), report
    assert report.fatal == fatal


@pytest.mark.parametrize("make", [LegacyDropout, Wrapper])
def test_noise_in_a_legacy_generator_or_a_sub_object_is_held(make):
    assert check_layer(make(), x_batch()).passed


def test_wrong_rows_get_hints():
    report = check_layer(SquareTransposed(), x_batch((4, 4)))
    assert report.failed == ["W"] and "transposed" in report.hints[0]
    report = check_layer(MeanBias(), x_batch())
    assert "divided by the batch size 4" in report.hints[0] and "hint: b:" in str(report)


def test_non_finite_results_stay_valid_json():
    import json
    report = check_layer(ZeroesDout(), x_batch())
    report.rows.append(report.rows[0]._replace(name="extra", error=np.inf))
    text = json.dumps(report.to_dict(), allow_nan=False)     # raises on NaN or Infinity
    assert '"inf"' in text


def test_nested_containers_name_the_layer():
    report = check_layer(ta.Sequential(Dense(5, 4), ta.Sequential(Assigns(4, 3))), x_batch())
    assert "1.0: grads['W'] holds only the last" in text(report)
