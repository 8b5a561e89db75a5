"""A gradient check's verdict: a table for people, an assertion for tests, a dict for graders.

``tinyae.gradcheck`` fills a ``GradcheckReport`` with one ``Row`` per checked
array (its relative error and worst entry) and one ``Finding`` per broken
point of the layer contract (``tinyae.contract``).
"""
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class Row(NamedTuple):
    """One checked gradient: ``error`` is ``rel_error(analytic, numeric)``.

    ``worst`` is (index, analytic, numeric) at the entry where they differ most.
    """
    name: str
    shape: object
    error: float
    worst: tuple | None = None


class Finding(NamedTuple):
    """A broken point of the contract; ``fatal`` when the gradients could not be checked."""
    check: str          # a short name, e.g. "backward returns dx"
    message: str        # one sentence: what happened, the likely cause and the fix
    fatal: bool = False


def worst_entry(analytic, numeric, shape=None, positions=None):
    """(index, analytic, numeric) where |analytic - numeric| is largest.

    ``positions`` (flat indices into an array of ``shape``) says where sampled
    entries came from, so the index names the entry of the whole array.
    """
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if analytic.size == 0 or analytic.shape != numeric.shape:
        return None
    with np.errstate(invalid="ignore"):                 # inf - inf: NaN, which argmax picks
        k = int(np.argmax(np.abs(analytic - numeric)))
    flat = k if positions is None else int(positions[k])
    index = np.unravel_index(flat, shape if shape is not None else analytic.shape)
    return tuple(int(i) for i in index), float(analytic.flat[k]), float(numeric.flat[k])


@dataclass
class GradcheckReport:
    """Relative error per checked array, and the contract's findings.

    ``passed`` when every error is below ``threshold`` and nothing in the
    contract is broken. It prints as its table (``str`` and ``repr``), so
    ``assert report`` in pytest shows the table; ``assert_ok()`` raises an
    ``AssertionError`` whose message is the table; ``to_dict()`` is for grading.
    """
    rows: list = field(default_factory=list)            # Row per array
    threshold: float = 1e-7
    findings: list = field(default_factory=list)        # Finding per broken contract point
    warnings: list = field(default_factory=list)        # str: nothing wrong, but weaker check
    title: str = ""
    hints: list = field(default_factory=list)           # str: what a wrong row's numbers suggest

    @property
    def passed(self) -> bool:
        return not self.findings and all(r.error < self.threshold for r in self.rows)

    @property
    def max_error(self) -> float:
        return max((r.error for r in self.rows), default=0.0)

    @property
    def failed(self):
        """Names of the arrays whose gradient is wrong."""
        return [r.name for r in self.rows if not r.error < self.threshold]

    @property
    def fatal(self) -> bool:
        """True when a finding stopped the gradient check (there are no rows to trust)."""
        return any(f.fatal for f in self.findings)

    def __bool__(self):
        return self.passed

    def assert_ok(self):
        """Raise ``AssertionError`` with the table unless the check passed."""
        if not self.passed:             # first line: pytest's short summary shows it
            raise AssertionError(f"{self.title or 'gradient check'}: {self._verdict()}\n{self}")

    def to_dict(self) -> dict:
        """Per-array and per-check results, JSON-ready (partial credit, CI logs)."""
        def worst(row):
            if row.worst is None:
                return None
            index, analytic, numeric = row.worst
            return {"index": list(index), "analytic": _json(analytic), "numeric": _json(numeric)}
        return {
            "title": self.title, "passed": self.passed, "threshold": self.threshold,
            "max_error": _json(self.max_error),
            "gradients": {r.name: {"shape": str(r.shape), "rel_error": _json(r.error),
                                   "passed": bool(r.error < self.threshold), "worst": worst(r)}
                          for r in self.rows},
            "contract": [{"check": f.check, "message": f.message, "fatal": f.fatal}
                         for f in self.findings],
            "warnings": list(self.warnings), "hints": list(self.hints),
        }

    def __str__(self):
        lines = [self.title] if self.title else []
        if self.rows:
            w = max([len(r.name) for r in self.rows] + [9])
            lines.append(f"{'gradient':<{w}}  {'shape':<14}{'rel error':>11}  ok   "
                         "worst entry: backward vs numeric")
            for r in self.rows:
                ok = "yes" if r.error < self.threshold else "NO "
                lines.append(f"{r.name:<{w}}  {str(r.shape):<14}{r.error:>11.2e}  {ok}  "
                             + _worst_text(r.worst))
        elif self.fatal:
            lines.append("gradients not checked: the layer could not be run (below)")
        for f in self.findings:
            lines.append(f"contract: {f.check}: {f.message}")
        for text in self.hints:
            lines.append(f"hint: {text}")
        for text in self.warnings:
            lines.append(f"warning: {text}")
        lines.append(f"threshold {self.threshold:.0e}: {self._verdict()}")
        return "\n".join(lines)

    __repr__ = __str__

    def _verdict(self):
        if self.passed:
            return "PASSED"
        contract = [f.check for f in self.findings]
        return "FAILED: " + "; ".join(part for part in (
            ", ".join(self.failed), "contract broken: " + ", ".join(contract) if contract else "")
            if part)


def _worst_text(worst):
    if worst is None:
        return ""
    index, analytic, numeric = worst
    return f"{list(index)}: {analytic + 0.0:.6g} vs {numeric + 0.0:.6g}"     # + 0.0: no "-0"


def _json(value):
    """A float as JSON allows it: NaN and the infinities as the strings Python prints."""
    return value if np.isfinite(value) else str(value)
