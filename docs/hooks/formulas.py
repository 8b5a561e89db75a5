"""Griffe extension: a docstring's formula lines stay lines in the API reference.

tinyae's docstrings write their maths as aligned plain text::

    forward:   y = x W + b
    backward:  dW += x^T dout,  db += sum_n dout,  dx = dout W^T

and their shapes under ``Shapes:``. Markdown would run those lines together into
one paragraph; this extension fences each such block, so it reads as written.
"""
import re

from griffe import Extension

# "label:" then two spaces or more, then the formula: forward/backward, lerp, stack, ...
_FORMULA = re.compile(r"^\w[\w ]*:\s{2,}\S")


def fence_formulas(text):
    """``text`` with each run of formula lines, and each Shapes: block, in a text fence."""
    lines, out, k = text.splitlines(), [], 0
    while k < len(lines):
        if _FORMULA.match(lines[k]):
            end = k
            while end < len(lines) and (_FORMULA.match(lines[end]) or _continues(lines, end)):
                end += 1
            out += ["", "```text", *lines[k:end], "```", ""]
            k = end
        elif lines[k].strip() == "Shapes:" and k + 1 < len(lines) and lines[k + 1][:1] == " ":
            end = k + 1
            while end < len(lines) and lines[end][:1] == " ":
                end += 1
            block = [line[4:] if line.startswith("    ") else line.lstrip() for line in lines[k + 1:end]]
            out += ["", "**Shapes:**", "", "```text", *block, "```", ""]
            k = end
        else:
            out.append(lines[k])
            k += 1
    return "\n".join(out)


def _continues(lines, k):
    """An indented line right under a formula line continues it."""
    return k > 0 and lines[k][:1] == " " and lines[k].strip() != ""


class FormulaLines(Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = fence_formulas(obj.docstring.value)
