"""Shared test set-up: headless matplotlib and the MNIST folder beside the repo."""
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


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
