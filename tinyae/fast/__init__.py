"""The fast training path, kept apart from the plain layers you read.

    tinyae/layers.py, losses.py, optim.py    the definition: plain NumPy, one formula a line
    tinyae/fast/kernels.py                   the same formulas fused into Numba loops
    tinyae/fast/engine.py                    accelerate(model): a view of a model on those kernels
    tinyae/fast/conv.py, conv_kernels.py     the convolutions: im2col / col2im loops, BLAS products
    tinyae/fast/blas.py                      the dense matmuls: NumPy's, or MKL's with tinyae[mkl]
    tinyae/fast/matmul.py                    a matmul written to teach how BLAS is organised

``fit`` trains on this path by default and on the plain one with
``fit(..., backend="numpy")`` or ``TINYAE_BACKEND=numpy``. Both give the same
numbers (tests/test_fast.py); this one is faster (benchmarks/README.md).
Importing this package imports Numba (about half a second).
"""
from . import blas
from .engine import (AdamKernel, FastMSE, FastSequential, accelerate, fast_loss, fast_step,
                     gather_rows)

__all__ = ["blas", "accelerate", "FastSequential", "FastMSE", "AdamKernel", "fast_loss", "fast_step",
           "gather_rows"]
