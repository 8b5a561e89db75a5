"""The README's Python examples run as written, and every ``ta.x.y`` it names exists."""
import re

import pytest
from conftest import ROOT

import tinyae as ta

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


def test_readme_python_blocks_run_in_order(capsys):
    """The blocks build on each other (the second trains the first's model), as a reader runs them."""
    namespace = {"__name__": "readme"}
    for k, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md python block {k + 1}", "exec"), namespace)
        except Exception as exc:                     # name the block, not just the line
            pytest.fail(f"README python block {k + 1} fails: {type(exc).__name__}: {exc}\n{block}")
    out = capsys.readouterr().out
    assert "Total params" in out and "PASSED" in out


@pytest.mark.parametrize("name", sorted(set(re.findall(r"\bta\.([A-Za-z_][\w.]*[A-Za-z_0-9])", README))))
def test_every_ta_name_in_the_readme_exists(name):
    """Prose as well as code: `ta.train.fit(...)` must resolve after `import tinyae as ta`."""
    obj = ta
    for part in name.split("."):
        assert hasattr(obj, part), f"README mentions ta.{name}, but ta.{name} does not exist"
        obj = getattr(obj, part)


def test_every_image_in_the_readme_exists():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert "docs/gallery/explorer.png" in images
    for path in images:
        assert (ROOT / path).is_file(), path
