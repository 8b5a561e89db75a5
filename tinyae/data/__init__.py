"""Data: MNIST and Fashion-MNIST from their original IDX files (``data/mnist.py``, checked
by SHA-256, downloaded when missing) and built-in digits for offline use (``data/digits.py``).
"""
from .mnist import (FASHION_MNIST, MNIST, DataError, Dataset, DataUnavailable, data_dir,
                    ensure_files, load_dataset, load_fashion_mnist, load_mnist, read_idx)

__all__ = ["MNIST", "FASHION_MNIST", "Dataset", "DataError", "DataUnavailable", "data_dir",
           "ensure_files", "load_dataset", "load_mnist", "load_fashion_mnist", "read_idx"]
