"""Shared set-up for the tutorials: output folder, fast mode, data, a trained model.

Every tutorial runs on its own: later ones load the model saved by
02_train_autoencoder.py when it exists and train one themselves otherwise.
"""
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = Path(os.environ.get("TINYAE_TUTORIAL_OUT", HERE / "out"))
OUT.mkdir(parents=True, exist_ok=True)
FAST = os.environ.get("TINYAE_FAST", "") not in ("", "0")      # small subset, few epochs
MODEL_PATH = OUT / ("seed_model_fast.npz" if FAST else "seed_model.npz")

# MNIST beside the repository, when this is a checkout with ../shared next to it.
_SHARED = HERE.parent.parent / "shared" / "data" / "mnist"
if "TINYAE_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["TINYAE_DATA_DIR"] = str(_SHARED)


def load(split):
    """MNIST ``split`` (the built-in digits when MNIST cannot be had), subset in fast mode."""
    from tinyae.data import load_dataset
    limit = (3000 if split == "train" else 1000) if FAST else None
    X, y, name = load_dataset("auto", split, limit, progress=False)
    return X, y, name


def trained_model(epochs=20):
    """The model saved by tutorial 02, or a freshly trained one."""
    import tinyae as ta
    from tinyae.train import fit
    if MODEL_PATH.exists():
        return ta.load(MODEL_PATH)
    X, _, _ = load("train")
    model = ta.dense_autoencoder(rng=np.random.default_rng(0))
    fit(model, X, epochs=2 if FAST else epochs, progress=sys.stderr.isatty())
    ta.save(model, MODEL_PATH)
    return model


def show(fig, name):
    """Save ``fig`` as OUT/name and return it (a notebook then displays it)."""
    path = OUT / name
    fig.savefig(path, dpi=100)
    print(f"saved {path}")
    return fig
