"""The library behind the fast path's dense matmuls: NumPy's own BLAS, or MKL when installed.

NumPy's wheels bring OpenBLAS. On Intel's AVX-512 processors MKL's sgemm
takes 0.71-0.84x OpenBLAS's time at the seed model's shapes; on an AMD EPYC
with AVX-512 it took 1.02-1.09x, and the epoch was slower with it at every batch
(benchmarks/README.md). So "auto" takes MKL only on Intel's processors. MKL
is an optional extra, never a requirement:

    pip install "tinyae[mkl]"      # Linux x86-64 only; about 320 MB under Intel's licences

With it installed, the fast path's Dense steps call MKL's ``cblas_sgemm`` /
``cblas_dgemm`` through ctypes; without it, ``np.matmul``. MKL is set up in
code (LP64 integers, Intel's OpenMP): no environment variable is needed, and
``fit`` sets MKL's thread count with OpenBLAS's (threadpoolctl sees both). A
broken MKL install is skipped with a warning.

    library()               "mkl" or "numpy": what the matmuls use now (TINYAE_MATMUL may pin it)
    use(name)               "auto" (MKL when installed and the CPU is Intel's), "mkl" or
                            "numpy"; returns the last choice
    gemm(A, B, C, ...)      C = op(A) @ op(B), or C += it
    find_mkl()              the path of MKL's library, or None where it is not installed
    cpu_vendor()            the processor's maker as the CPU reports it ("GenuineIntel", ...)

These three are the methods of ``MATMULS``, the package's one ``Matmuls``: the
choice and the loaded library are its state.
"""
import ctypes
import os
import warnings
from importlib import metadata

import numpy as np

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112          # CBLAS's enums
LP64, INTEL_OPENMP = 0, 0                           # MKL_Set_Interface_Layer, _Threading_Layer


def find_mkl():
    """MKL's single dynamic library from the ``mkl`` wheel, or None when it is not installed."""
    try:
        files = metadata.files("mkl") or []
    except metadata.PackageNotFoundError:
        return None
    found = [f.locate() for f in files if f.name.startswith("libmkl_rt.so")]
    return next((str(p) for p in found if p.exists()), None)


def cpu_vendor(cpuinfo="/proc/cpuinfo"):
    """The processor's maker as it names itself ("GenuineIntel", "AuthenticAMD"), read from
    Linux's /proc/cpuinfo (MKL's wheel is Linux-only); None where that cannot be read."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _load(path):
    lib = ctypes.CDLL(path)
    lib.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
    lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
    lib.MKL_Set_Interface_Layer(LP64)                # 32-bit sizes, as the prototypes below
    lib.MKL_Set_Threading_Layer(INTEL_OPENMP)
    functions = {}
    for dtype, name, scalar in ((np.float32, "cblas_sgemm", ctypes.c_float),
                                (np.float64, "cblas_dgemm", ctypes.c_double)):
        f = getattr(lib, name)
        i, p = ctypes.c_int, ctypes.c_void_p
        f.argtypes = [i, i, i, i, i, i, scalar, p, i, p, i, scalar, p, i]
        f.restype = None
        functions[np.dtype(dtype)] = f
    return functions


class Matmuls:
    """The matmul library chosen, and MKL's cblas functions once loaded.

    The package uses one, ``MATMULS``, whose methods are this module's ``use``,
    ``library`` and ``gemm``; a test can make its own with another ``find``.
    """

    def __init__(self, find=find_mkl, vendor=cpu_vendor):
        self.find = find         # the path of MKL's library, or None where it is not installed
        self.vendor = vendor     # the processor's maker: "auto" takes MKL only on Intel's
        self.mkl = None          # the loaded cblas functions by dtype, once found
        self.choice = None       # "mkl" or "numpy"; None until the first call decides ("auto")

    def use(self, name="auto"):
        """Choose the matmul library: "auto" (MKL when installed and the processor is
        Intel's, else NumPy's), "mkl" or "numpy".

        Returns the previous choice ("mkl", "numpy", or None before the first), so
        ``use(use("numpy"))`` puts it back; ``use(None)`` forgets the choice, and the next
        ``library()`` decides again.
        """
        before = self.choice
        if name is None:
            self.choice = None
            return before
        if name not in ("auto", "mkl", "numpy"):
            raise ValueError(f"the matmul library must be 'auto', 'mkl' or 'numpy', got {name!r}")
        if name == "numpy" or (name == "auto" and self.vendor() != "GenuineIntel"):
            self.choice = "numpy"            # MKL measured slower than OpenBLAS on AMD's EPYC
            return before
        why = self._load_mkl()
        if self.mkl is None:
            if name == "mkl":
                raise RuntimeError(f"{why}: pip install 'tinyae[mkl]' (Linux x86-64) to use it, "
                                   "or keep NumPy's matmuls with use('numpy') or "
                                   "TINYAE_MATMUL=numpy")
            if why != "MKL is not installed":
                warnings.warn(f"tinyae: {why}; the fast path uses NumPy's matmuls", stacklevel=2)
            self.choice = "numpy"
            return before
        self.choice = "mkl"
        return before

    def _load_mkl(self):
        """Load MKL once; why it is not there (not installed, or a broken install)."""
        if self.mkl is not None:
            return None
        path, why = self.find(), "MKL is not installed"
        try:
            self.mkl = _load(path) if path else None
        except (OSError, AttributeError) as exc:        # a broken install: a library missing
            why = f"MKL is installed but does not load ({exc})"
        return why

    def library(self):
        """The library the fast path's dense matmuls use now: "mkl" or "numpy".

        Decided at the first call: ``TINYAE_MATMUL`` (auto, mkl or numpy) when set, else auto.
        """
        if self.choice is None:
            wanted = os.environ.get("TINYAE_MATMUL", "").strip() or "auto"
            if wanted not in ("auto", "mkl", "numpy"):
                raise ValueError(f"TINYAE_MATMUL must be auto, mkl or numpy, got {wanted!r}")
            self.use(wanted)
        return self.choice

    def gemm(self, A, B, C, trans_a=False, trans_b=False, accumulate=False):
        """C = op(A) @ op(B), or C += op(A) @ op(B); op transposes when asked. Returns C.

        A, B, C: 2-D; op(A) (M, K), op(B) (K, N), C (M, N). MKL runs it when chosen and
        ``_mkl_can`` holds; otherwise ``np.matmul`` does (and raises NumPy's error for
        shapes that do not chain).
        """
        if (self.choice or self.library()) == "mkl" and _mkl_can(self.mkl, A, B, C, trans_a,
                                                                 trans_b):
            M, K = A.shape[::-1] if trans_a else A.shape
            N = B.shape[0] if trans_b else B.shape[1]
            self.mkl[C.dtype](ROW_MAJOR, TRANS if trans_a else NO_TRANS,
                              TRANS if trans_b else NO_TRANS, M, N, K, 1.0, A.ctypes.data,
                              A.shape[1], B.ctypes.data, B.shape[1], 1.0 if accumulate else 0.0,
                              C.ctypes.data, C.shape[1])
            return C
        a = A.T if trans_a else A
        b = B.T if trans_b else B
        if accumulate:
            C += a @ b
        else:
            np.matmul(a, b, out=C)
        return C


def _mkl_can(mkl, A, B, C, trans_a, trans_b):
    """MKL takes it: one float dtype, C-contiguous, shapes that chain, no size 0, C apart."""
    if not (C.dtype in mkl and A.dtype == B.dtype == C.dtype
            and A.ndim == B.ndim == C.ndim == 2
            and A.flags.c_contiguous and B.flags.c_contiguous and C.flags.c_contiguous):
        return False
    M, K = A.shape[::-1] if trans_a else A.shape
    K2, N = B.shape[::-1] if trans_b else B.shape
    return (K == K2 and C.shape == (M, N) and 0 not in (M, N, K)
            and not np.may_share_memory(C, A) and not np.may_share_memory(C, B))


MATMULS = Matmuls()
use, library, gemm = MATMULS.use, MATMULS.library, MATMULS.gemm
