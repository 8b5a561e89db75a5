"""The grading loop: `tinyae check` on a student's file, and the README's instructor test file."""
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from tinyae.testing import LayerSpecError, assert_layer_ok, grade_layer, load_layer

RIGHT = '''import numpy as np


class MyLeakyReLU:
    def __init__(self, a=0.01):
        self.a, self.params, self.grads = a, {}, {}

    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, self.a * x)

    def backward(self, dout):
        return np.where(self.mask, dout, self.a * dout)
'''
# The commonest slip: the slope forgotten in backward.
BROKEN = RIGHT.replace("np.where(self.mask, dout, self.a * dout)", "np.where(self.mask, dout, dout)")
DENSE = '''import numpy as np


class MyDense:
    def __init__(self, d=5, h=3):
        rng = np.random.default_rng(0)
        self.params = {"W": rng.standard_normal((d, h)), "b": np.zeros(h)}
        self.grads = {"W": np.zeros((d, h)), "b": np.zeros(h)}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T
'''


def readme_test_file():
    readme = (ROOT / "README.md").read_text()
    return re.search(r"```python title=test_my_layer.py\n(.*?)```", readme, re.S).group(1)


@pytest.mark.parametrize("layer, passes", [(RIGHT, True), (BROKEN, False)], ids=["right", "broken"])
def test_the_readme_grading_file_grades(tmp_path, layer, passes):
    (tmp_path / "my_layer.py").write_text(layer)
    (tmp_path / "test_my_layer.py").write_text(readme_test_file())
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "test_my_layer.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    if passes:
        assert r.returncode == 0, r.stdout[-3000:]
        assert "3 passed" in r.stdout
    else:
        assert r.returncode == 1, r.stdout[-3000:]
        assert "threshold 1e-07: FAILED: input" in r.stdout       # the table, in the message
        assert "1 failed, 2 passed" in r.stdout     # right forward; half credit: the contract


def run_check(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tinyae", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_check_command_passes_fails_and_writes_json(tmp_path):
    (tmp_path / "right.py").write_text(RIGHT)
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "dense.py").write_text(DENSE)
    r = run_check("right.py:MyLeakyReLU", cwd=tmp_path)
    assert r.returncode == 0 and "MyLeakyReLU: PASSED 6 runs" in r.stdout, r.stderr
    r = run_check("broken.py:MyLeakyReLU", "--json", "grade.json", cwd=tmp_path)
    assert r.returncode == 1 and "FAILED: input" in r.stdout
    import json
    grade = json.loads((tmp_path / "grade.json").read_text())
    assert grade["passed"] is False and grade["parts"]["input"] is False
    assert len(grade["runs"]) == 6
    r = run_check("dense.py:MyDense", "--shape", "3,5", "--seeds", "4", cwd=tmp_path)
    assert r.returncode == 1 and "1 run (x of shape (3, 5); seeds 4)" in r.stdout
    assert "= instead of +=" in r.stdout and "optimiser holds the old one" in r.stdout


@pytest.mark.parametrize("spec, source, words", [
    ("missing.py:MyLeakyReLU", None, "missing.py: no such file"),
    ("layer.py", RIGHT, "is not FILE:NAME"),
    ("layer.py:Nope", RIGHT, "has no 'Nope'; it defines MyLeakyReLU"),
    ("layer.py:MyLeakyReLU", "class MyLeakyReLU:\n    params, grads = {}, {}\n", "has no forward, backward"),
    ("layer.py:MyLeakyReLU", RIGHT.replace("self.mask = x > 0", "raise RuntimeError('todo')"),
     "forward raised RuntimeError: todo"),
    ("layer.py:MyLeakyReLU", RIGHT.replace("return np.where(self.mask, x, self.a * x)",
                                          "return np.log(x)"), "returned NaN or inf"),
    ("layer.py:MyLeakyReLU", "def broken(:\n", "is not valid Python"),
    ("layer.py:MyLeakyReLU", "import no_such_module_here\n", "ModuleNotFoundError"),
    ("layer.py:MyLeakyReLU", RIGHT.replace("self.mask = x > 0", "raise NotImplementedError"),
     "is not written yet"),
])
def test_check_command_bad_input_is_one_line_and_exit_2(tmp_path, spec, source, words):
    if source is not None:
        (tmp_path / "layer.py").write_text(source)
    r = run_check(spec, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr


def test_check_command_refuses_to_write_json_over_the_layer(tmp_path):
    (tmp_path / "layer.py").write_text(RIGHT)
    r = run_check("layer.py:MyLeakyReLU", "--json", "layer.py", cwd=tmp_path)
    assert r.returncode == 2 and ".json" in r.stderr
    assert (tmp_path / "layer.py").read_text() == RIGHT


def test_grading_api_over_shapes_and_seeds(tmp_path):
    (tmp_path / "dense.py").write_text(DENSE)
    make = load_layer(f"{tmp_path / 'dense.py'}:MyDense")
    grade = grade_layer(make)
    assert [shape for shape, _, _ in grade.runs] == [(4, 5)] * 3 + [(7, 5)] * 3
    assert not grade.passed and grade.parts["gradient W"] and not grade.parts[
        "contract: gradients add up"]
    assert 0.5 < grade.score < 1
    with pytest.raises(AssertionError, match="= instead of"):
        assert_layer_ok(make)
    with pytest.raises(LayerSpecError, match="no such file"):
        load_layer(f"{tmp_path / 'nope.py'}:X")
    assert assert_layer_ok(lambda: __import__("tinyae").Tanh()).passed


@pytest.mark.parametrize("source, words", [
    ("import sys\nsys.exit(0)\nclass L:\n    pass\n", "called sys.exit(0)"),
    ("import sys\nsys.exit('bye')\n", "called sys.exit('bye')"),
    ("class L:\n    def __init__(self):\n        raise SystemExit(3)\n", "L() raised SystemExit: 3"),
    ("import numpy as np\nL = np\n", "is a module, not a layer"),
])
def test_a_file_that_exits_never_passes(tmp_path, source, words):
    (tmp_path / "layer.py").write_text(source)
    r = run_check("layer.py:L", cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr, (r.stdout, r.stderr)


def test_check_command_refuses_what_it_cannot_do_before_checking(tmp_path):
    (tmp_path / "layer.py").write_text(RIGHT)
    (tmp_path / "out.json").mkdir()
    r = run_check("layer.py:MyLeakyReLU", "--json", "out.json", cwd=tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr and r.stdout == ""
    r = run_check("layer.py:MyLeakyReLU", "--shape", "100000,100000", cwd=tmp_path)
    assert r.returncode == 2 and "at most 10,000" in r.stderr
    (tmp_path / "dir.py").mkdir()
    r = run_check("dir.py:L", cwd=tmp_path)
    assert r.returncode == 2 and "is a folder" in r.stderr


def test_a_big_layer_is_checked_on_samples(tmp_path):
    (tmp_path / "big.py").write_text(DENSE.replace("d=5, h=3", "d=300, h=200").replace(
        'self.grads["W"] = self.x.T @ dout', 'self.grads["W"] += self.x.T @ dout'))
    r = run_check("big.py:MyDense", "--seeds", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "500 sampled" in r.stdout


def test_torch_layout_weights_get_the_right_default_shape(tmp_path):
    (tmp_path / "torch_layout.py").write_text(DENSE.replace(
        "(d, h)", "(h, d)").replace('self.x.T @ dout', 'dout.T @ self.x').replace(
        'x @ self.params["W"] +', 'x @ self.params["W"].T +').replace(
        'dout @ self.params["W"].T', 'dout @ self.params["W"]').replace(
        'self.grads["W"] =', 'self.grads["W"] +='))
    r = run_check("torch_layout.py:MyDense", cwd=tmp_path)
    assert r.returncode == 0 and "(4, 5), (7, 5)" in r.stdout, r.stdout + r.stderr


def test_partial_credit_only_for_checks_that_ran():
    class Empty:
        pass

    class NoReturn:
        params, grads = {}, {}

        def forward(self, x):
            return x * 2

        def backward(self, dout):
            pass
    assert grade_layer(Empty).score == 0
    assert grade_layer(NoReturn).score < 0.5
