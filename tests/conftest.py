"""Shared test set-up: headless matplotlib and the MNIST folder beside the repo."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# The suite tests what the default install runs: NumPy's matmuls, even where the optional
# MKL extra is installed (.ci/run installs it for tests/test_blas.py, which picks it itself).
os.environ.setdefault("TINYAE_MATMUL", "numpy")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# Tests of over 10 s that run every tutorial end to end: `python -m pytest` leaves them out
# (setup.cfg) to keep the suite under 10 minutes on 2 cores; `.ci/run` runs them afterwards
# with `python -m pytest -m slow`.
SLOW_TUTORIALS = {"14_convolutional_autoencoder"}


def by_tutorial(paths):
    """One pytest parameter per tutorial script, named by its stem; the slowest marked slow."""
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW_TUTORIALS
                         else []) for p in paths]


def find_mnist_dir():
    """The folder with the four MNIST files: TINYAE_DATA_DIR, else ../shared/data/mnist."""
    for d in (os.environ.get("TINYAE_DATA_DIR"), SHARED_MNIST):
        if d and all((Path(d) / f).exists() for f in MNIST_FILES):
            return Path(d)
    return None


@pytest.fixture(scope="session")
def mnist_dir():
    """Skip without MNIST on a user's machine; fail in CI, which always has it."""
    d = find_mnist_dir()
    if d is None:
        msg = (f"MNIST files not found in TINYAE_DATA_DIR or {SHARED_MNIST}; "
               "set TINYAE_DATA_DIR to a folder with the four IDX .gz files")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must have MNIST: " + msg)
        pytest.skip(msg)
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# --- the browser tests (the explorer page, the documentation site) ---------------------
def chromium():
    """(sync_playwright, executable) or a skip (a failure when CI=true)."""
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if exe and sync_playwright:
        return sync_playwright, exe
    why = ("Debian's chromium is not installed (apt-get install -y chromium)" if not exe else
           "the playwright package is missing (pip install -e '.[test]')")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the browser tests: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    sync_playwright, exe = chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        yield b
        b.close()


def watched_page(browser):
    """A new 1200 x 900 page and what it records: every request, and every error (a failed
    request, an uncaught exception, a console error)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"requests": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["errors"].append(f"request failed: {r.url}"))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    return page, seen


# --- peak memory of a command ------------------------------------------------------------
PEAK_SCRIPT = """
import sys
from tinyae.cli import main
code = main(sys.argv[1:]) if sys.argv[1:] else 0
with open("/proc/self/status") as f:        # VmHWM: this process's own peak (not a parent's)
    print(next(line.split()[1] for line in f if line.startswith("VmHWM:")))
sys.exit(code)
"""


def peak_memory(*args, cwd=None):
    """(peak resident bytes, stderr) of ``tinyae ARGS`` in a fresh process; no ARGS: the
    import alone. ru_maxrss will not do: a child inherits its parent's at fork."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1]) * 1024, r.stderr

