"""Shared set-up for the tutorials in tutorials/: output folder, fast mode, data, a model, figures.

It lives in the package, not beside the tutorials, so that ``from tinyae.tutorial
import ...`` works from any folder: a script, a notebook opened from the repository
root, a notebook copied elsewhere. Every tutorial runs on its own: later ones load
the model saved by 02_train_autoencoder.py when it exists and train one otherwise.

    TINYAE_TUTORIAL_OUT   where figures and models go (default tutorials/out/ in a
                          checkout, else ./tinyae-tutorials-out)
    TINYAE_FAST=1         a small subset and few epochs (the tests run them this way)
"""
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

from .data import load_dataset
from .io import load as load_model
from .io import save
from .models import dense_autoencoder
from .train import fit

_CHECKOUT = Path(__file__).resolve().parents[1]          # the repository, for an editable install
_TUTORIALS = _CHECKOUT / "tutorials"
OUT = Path(os.environ.get("TINYAE_TUTORIAL_OUT") or
           (_TUTORIALS / "out" if _TUTORIALS.is_dir() else Path.cwd() / "tinyae-tutorials-out"))
OUT.mkdir(parents=True, exist_ok=True)
FAST = os.environ.get("TINYAE_FAST", "") not in ("", "0")      # small subset, few epochs
# "seed model": the 784-512-256-64-2 architecture of the blog post the project started from.
MODEL_PATH = OUT / ("seed_model_fast.npz" if FAST else "seed_model.npz")

# MNIST beside the repository, when this is a checkout with ../shared next to it.
_SHARED = _CHECKOUT.parent / "shared" / "data" / "mnist"
if "TINYAE_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["TINYAE_DATA_DIR"] = str(_SHARED)


def load(split):
    """MNIST ``split`` (the built-in digits when MNIST cannot be had), subset in fast mode."""
    limit = (3000 if split == "train" else 1000) if FAST else None
    X, y, name = load_dataset("auto", split, limit, progress=False)
    return X, y, name


def trained_model(epochs=20):
    """The model saved by tutorial 02, or a freshly trained one."""
    if MODEL_PATH.exists():
        return load_model(MODEL_PATH)
    X, _, _ = load("train")
    model = dense_autoencoder(rng=np.random.default_rng(0))
    fit(model, X, epochs=2 if FAST else epochs)
    save(model, MODEL_PATH)
    return model


def in_notebook():
    """True inside a Jupyter kernel (where figures are shown inline)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show(fig, name):
    """Save ``fig`` as OUT/name; in a notebook, also show it below the cell.

    The figures are plain ``matplotlib.figure.Figure`` objects (no pyplot), which a
    notebook would print as ``<Figure size ...>``: so the PNG itself is displayed.
    """
    path = OUT / name
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    path.write_bytes(buffer.getvalue())
    if in_notebook():
        from IPython.display import Image, display     # only inside a notebook
        display(Image(data=buffer.getvalue(), format="png"))
    else:
        print(f"saved {path}")


def median_ms(fn, repeat=None):
    """Milliseconds per call of ``fn()``: the median of ``repeat`` timed calls after one
    untimed warm-up (where Numba compiles and caches fill). ``repeat``: 5 in fast mode, else 20."""
    fn()
    times = []
    for _ in range(repeat or (5 if FAST else 20)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


@contextlib.contextmanager
def exercise(name):
    """Run an exercise's check; while its skeleton still raises ``NotImplementedError``,
    print that it is not done yet instead of stopping the tutorial.

        with exercise("LeakyReLU"):
            check_layer(MyLeakyReLU(), x).assert_ok()

    Every other error (a wrong answer's ``AssertionError`` too) propagates.
    """
    try:
        yield
    except NotImplementedError as exc:
        print(f"exercise {name!r}: not done yet ({exc or 'fill in the code above'}); "
              "write your answer in the exercise cell, then run this cell again.")
