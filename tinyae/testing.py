"""Grading a student's layer: the checks a course runs, over several shapes and seeds.

An instructor's test file is a few lines (the README's "For instructors" has
a complete one):

    from tinyae.testing import assert_layer_ok, grade_layer
    from student import MyLeakyReLU

    def test_leaky_relu():
        assert_layer_ok(lambda: MyLeakyReLU(0.1))      # gradients and contract, float64

    def test_leaky_relu_partial_credit():
        assert grade_layer(lambda: MyLeakyReLU(0.1)).score >= 0.5

Each run is ``tinyae.gradcheck.check_layer`` on a fresh layer and a standard
normal batch drawn from one seed; a run checks every gradient and every point
of the contract (``tinyae.contract.CHECKS``). ``tinyae check FILE:NAME`` runs
the same grading from the command line.
"""
import copy
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .contract import CHECKS
from .gradcheck import check_layer
from .nn.layers import input_width

SEEDS = (0, 1, 2)
ROWS = (4, 7)                   # batch sizes: several rows, so a mean is not a sum


class LayerSpecError(ValueError):
    """``FILE:NAME`` does not lead to a layer that can be made (the message says why)."""


def factory(make):
    """A no-argument callable making a fresh layer: ``make`` itself (a class or a function),
    or, for a layer object, a function returning deep copies of it."""
    if isinstance(make, type) or (callable(make) and not hasattr(make, "forward")):
        return make
    return lambda: copy.deepcopy(make)


def default_shapes(make):
    """(rows, D) for each of ``ROWS``: D from the layer's first weight, else 6."""
    width = input_width(make())
    return [(n, width or 6) for n in ROWS]


@dataclass
class Grade:
    """The runs of one layer: ``parts`` maps each gradient and contract check to passed.

    A part passes when it passes in every run. ``score`` (partial credit) weighs
    the gradients and the contract equally: half the share of right gradients
    plus half the share of contract checks kept. ``passed`` is all of them.
    """
    name: str
    runs: list = field(default_factory=list)            # (shape, seed, GradcheckReport)
    parts: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        def share(kind):
            oks = [ok for k, ok in self.parts.items() if k.startswith("contract: ") == kind]
            return sum(oks) / max(1, len(oks))
        return 0.5 * share(False) + 0.5 * share(True)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(report.passed for _, _, report in self.runs)

    @property
    def first_failure(self):
        """The report of the first run that failed, else None."""
        return next((report for _, _, report in self.runs if not report.passed), None)

    def summary(self) -> str:
        shapes = ", ".join(sorted({str(shape) for shape, _, _ in self.runs}))
        seeds = ", ".join(sorted({str(seed) for _, seed, _ in self.runs}))
        verdict = "PASSED" if self.passed else "FAILED"
        failed = [k for k, ok in self.parts.items() if not ok]
        runs = f"{len(self.runs)} run{'s' * (len(self.runs) != 1)}"
        return (f"{self.name}: {verdict} {runs} (x of shape {shapes}; seeds "
                f"{seeds}); score {self.score:.2f}"
                + (f"; failed: {', '.join(failed)}" if failed else ""))

    def to_dict(self) -> dict:
        return {"name": self.name, "passed": self.passed, "score": self.score,
                "parts": dict(self.parts),
                "runs": [{"shape": list(shape), "seed": seed, **report.to_dict()}
                         for shape, seed, report in self.runs]}

    def __str__(self):
        shown = self.first_failure or (self.runs[0][2] if self.runs else None)
        return (f"{shown}\n" if shown is not None else "") + self.summary()

    __repr__ = __str__


def grade_layer(make, shapes=None, seeds=SEEDS, threshold=1e-7, samples=None) -> Grade:
    """Check a fresh layer from ``make`` on x of each shape, drawn from each seed.

    Args:
        make: a class or function making the layer (called with no arguments),
            or a layer object (copied for each run).
        shapes: input shapes; default (4, D) and (7, D), D read from the layer.
        seeds: one standard normal x per seed and shape.
        samples: check at most this many random entries of each array (big layers).
    """
    make = factory(make)
    shapes = [tuple(s) for s in (shapes or default_shapes(make))]
    first = make()
    grade = Grade(type(first).__name__)
    names = ["input"] + [f"gradient {k}" for k in getattr(first, "params", {})]
    grade.parts = {name: True for name in names} | {f"contract: {c}": True for c in CHECKS}
    for shape in shapes:
        for seed in seeds:
            x = np.random.default_rng(seed).standard_normal(shape)
            report = check_layer(make(), x, threshold=threshold, samples=samples,
                                 rng=np.random.default_rng(seed))
            grade.runs.append((shape, seed, report))
            _score(grade.parts, report)
    return grade


def _score(parts, report):
    for finding in report.findings:
        parts[f"contract: {finding.check}"] = False
    if report.fatal:            # nothing after the stop was checked: none of it earns credit
        stop = min(CHECKS.index(f.check) for f in report.findings if f.fatal and f.check in CHECKS)
        for name in parts:
            if not name.startswith("contract: ") or name[10:] in CHECKS[stop:]:
                parts[name] = False
    for row in report.rows:
        key = "input" if row.name == "input" else f"gradient {row.name}"
        parts[key] = parts.get(key, True) and bool(row.error < report.threshold)


def assert_layer_ok(make, shapes=None, seeds=SEEDS, threshold=1e-7, samples=None) -> Grade:
    """``grade_layer``, raising ``AssertionError`` with the failing table unless all pass."""
    grade = grade_layer(make, shapes, seeds, threshold, samples)
    if not grade.passed:                # first line: pytest's short summary shows it
        raise AssertionError(f"{grade.summary()}\n{grade}")
    return grade


# --- FILE:NAME, for `tinyae check` ---------------------------------------------------
def load_layer(spec: str):
    """The factory named by ``FILE:NAME``: a class (made with no arguments), a function
    returning a layer, or a layer object, from the Python file FILE.

    Raises ``LayerSpecError`` with one sentence for each way that can go wrong.
    """
    path, sep, name = str(spec).rpartition(":")
    if not sep or not path or not name:
        raise LayerSpecError(f"{spec!r} is not FILE:NAME; name the file and the class in it, "
                             "e.g. tinyae check my_layer.py:MyLeakyReLU")
    file = Path(path)
    if file.is_dir():
        raise LayerSpecError(f"{file} is a folder; give the .py file of your layer (FILE:NAME)")
    if not file.is_file():
        raise LayerSpecError(f"{file}: no such file; check the path (FILE:NAME, e.g. "
                             "my_layer.py:MyLeakyReLU)")
    module = _import(file)
    if not hasattr(module, name):
        found = sorted(k for k, v in vars(module).items() if not k.startswith("_") and (
            getattr(v, "__module__", None) == module.__name__ or hasattr(v, "forward")))
        raise LayerSpecError(f"{file} has no {name!r}; it defines "
                             f"{', '.join(found) or 'no class or function'}")
    if isinstance(getattr(module, name), types.ModuleType):
        raise LayerSpecError(f"{name} in {file} is a module, not a layer; name your class, "
                             "e.g. my_layer.py:MyLeakyReLU")
    make = factory(getattr(module, name))
    try:
        layer = make()
    except TypeError as exc:
        raise LayerSpecError(f"{name}() could not be made without arguments ({exc}); give its "
                             "__init__ defaults, or add a function make_layer() returning "
                             f"one and check {file}:make_layer") from None
    except (Exception, SystemExit) as exc:
        raise LayerSpecError(f"{name}() raised {type(exc).__name__}: {exc}") from None
    missing = [a for a in ("forward", "backward", "params", "grads") if not hasattr(layer, a)]
    if missing:
        raise LayerSpecError(f"{name} has no {', '.join(missing)}; a layer needs forward(x), "
                             "backward(dout) and the dicts params and grads (see tutorial 01)")
    return make


def _import(file):
    """Run the student's file as a module (its folder first on the path, for its imports)."""
    spec = importlib.util.spec_from_file_location(f"tinyae_check_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise LayerSpecError(f"{file} is not a Python file; give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        raise LayerSpecError(f"{file} is not valid Python: {exc.msg}{where}") from None
    except SystemExit as exc:       # sys.exit() at import: it must not pass for a graded run
        raise LayerSpecError(f"importing {file} called sys.exit({exc.code!r}); a layer's file "
                             "should only define things (put scripts under "
                             "if __name__ == '__main__':)") from None
    except UnicodeDecodeError:
        raise LayerSpecError(f"{file} is not a text file; give the .py file of your layer") from None
    except Exception as exc:
        raise LayerSpecError(f"importing {file} raised {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(file.resolve().parent))
    return module
