"""A matrix multiply in Numba, written to teach how fast matmuls are organised.

C = A @ B with A (M, K), B (K, N), all row-major (C order). Three ideas:

1. Loop order i-k-j. For a fixed row i and a fixed k, the innermost loop does
   C[i, j] += A[i, k] * B[k, j] over j: every array is read along its
   contiguous axis, so the compiler turns that loop into SIMD instructions.
2. Register blocking over rows (MR = 4). Four rows of C are updated together,
   so each B[k, j] loaded from memory is used four times.
3. Cache blocking over columns (NC = 128). The K x NC panel of B (for K = 784:
   392 KiB in float32) stays in the L2 cache while all M rows stream past it,
   instead of B being fetched from L3 or RAM for every block of rows.

OpenBLAS does all of this and more (packing, assembly micro-kernels, C kept in
registers across k, threads), so it usually wins; benchmarks/bench_kernels.py
measures by how much, and tinyae uses BLAS wherever it does.
"""
import numpy as np

from .kernels import _jit

MR = 4          # rows of C updated together (register block)
NC = 128        # columns of B per panel (cache block)


@_jit
def matmul_into(A, B, C):
    """C <- A @ B, in place. A (M, K), B (K, N), C (M, N), one dtype."""
    M, K = A.shape
    N = B.shape[1]
    C[:, :] = 0
    for j0 in range(0, N, NC):                      # phase 1: one L2-sized panel of B
        w = min(NC, N - j0)
        i0 = 0
        while i0 + MR <= M:                         # phase 2: MR rows of C at a time
            # Row views: indexing a 1-D view with 0 <= j < w lets the compiler drop
            # negative-index checks and vectorise; 2-D indexing C[i, j] did not (18x slower).
            c0, c1 = C[i0, j0:j0 + w], C[i0 + 1, j0:j0 + w]
            c2, c3 = C[i0 + 2, j0:j0 + w], C[i0 + 3, j0:j0 + w]
            for k in range(K):
                a0, a1, a2, a3 = A[i0, k], A[i0 + 1, k], A[i0 + 2, k], A[i0 + 3, k]
                b = B[k, j0:j0 + w]
                for j in range(w):                  # phase 3: SIMD over contiguous j
                    bj = b[j]                       # loaded once, used MR times
                    c0[j] += a0 * bj
                    c1[j] += a1 * bj
                    c2[j] += a2 * bj
                    c3[j] += a3 * bj
            i0 += MR
        for i in range(i0, M):                      # phase 4: leftover rows (M % MR)
            c = C[i, j0:j0 + w]
            for k in range(K):
                a = A[i, k]
                b = B[k, j0:j0 + w]
                for j in range(w):
                    c[j] += a * b[j]


def matmul(A, B):
    """A @ B computed by ``matmul_into``: (M, K) @ (K, N) -> (M, N)."""
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} do not chain (need (M, K) @ (K, N))")
    dtype = np.result_type(A, B)
    A = np.ascontiguousarray(A, dtype=dtype)
    B = np.ascontiguousarray(B, dtype=dtype)
    C = np.empty((A.shape[0], B.shape[1]), dtype=dtype)
    matmul_into(A, B, C)
    return C
