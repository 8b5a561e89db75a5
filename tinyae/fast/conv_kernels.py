"""Numba kernels for the convolution steps (``tinyae/fast/conv.py``): the memory-bound
moves around the products, which stay BLAS calls.

    im2col     unfold: every window of an image as one column of a matrix
    col2im     fold: its adjoint, each column's entries added back onto their pixels
               (with stride 2 onto an image twice the grid: through its four parity planes)
    max_pool   the largest entry of each window and where it was; max_pool_grad
    bias_act   bias and activation, a product's (O, N, L) channels to (N, O, L) images
    pool_bias_act, unpool_bias_grad   a convolution, its activation and the max pooling
               after it in one pass each way (the activation only on the pooled maxima)

``cols`` has one row per window tap (c, i, j), in the order of
``W.reshape(O, C kh kw)``, and one column per output pixel (n, h, w); the kernels
take it as (C kh kw, N, Ho Wo), each image's run contiguous:

    cols[(c kh + i) kw + j, n, h Wo + w] = x[n, c, h sh + i - ph, w sw + j - pw]

The (C kh kw, N Ho Wo) matrix of one product is that array reshaped; a batch of
products, one per image (N, C kh kw, Ho Wo), is it transposed.

with zeros where the window reaches into the padding. So a convolution is one
matrix product ``W2 @ cols``, as ``tinyae/nn/conv.py``'s einsum computes it,
and every loop below runs along an image row w at its innermost: contiguous
reads and writes that the compiler vectorises (the range of w whose pixel is
inside the image is worked out before the loop, so the loop has no branch).
The loops are serial, as in ``kernels.py``: BLAS uses the cores for the products
(folds in parallel, with ``prange``, measured slower between OpenBLAS's calls).
"""
import numpy as np

from .kernels import LEAKY_RELU, RELU, ZERO, _jit


@_jit
def inside(j, pw, sw, W, Wo):
    """The outputs w in [w0, w1) whose tap j reads a pixel of the image: 0 <= w sw + j - pw < W
    (the same for rows, with i, ph, sh, H, Ho)."""
    w0 = min(Wo, max(0, -((j - pw) // sw)))               # ceil((pw - j) / sw)
    w1 = max(w0, min(Wo, (W - 1 + pw - j) // sw + 1))
    return w0, w1


@_jit(inline="always")
def copy_run(dst, src):
    """dst[:] = src for two 1-D views of one length (a strided one too).

    Indexed by the loop's own counter from 0, so Numba knows no index is negative
    and drops its wrap-around check, which otherwise stops the compiler from
    vectorising: the stride-1 folds run 1.5-2.6x faster than indexing whole planes with
    offsets (benchmarks/README.md).
    """
    for q in range(len(dst)):
        dst[q] = src[q]


@_jit(inline="always")
def add_run(dst, src):
    """dst[:] += src for two 1-D views of one length, as ``copy_run``."""
    for q in range(len(dst)):
        dst[q] += src[q]


@_jit(inline="always")
def zero_run(dst, a, b):
    """dst[a:b] = 0 (a few entries: a loop is cheaper than a slice here)."""
    for q in range(a, b):
        dst[q] = 0


@_jit
def im2col(x, kh, kw, sh, sw, ph, pw, Ho, Wo, cols):
    """cols (C kh kw, N, Ho Wo) <- the windows of x (N, C, H, W), C-contiguous; 0 in the padding.

    With stride 1 and Wo = W ('same' along w), tap (i, j) reads each image as
    one run shifted by d = (i - ph) W + (j - pw): one long copy per image (rows
    of 14 pixels are too short to vectorise), then the few entries that
    wrapped round a row's end are set to 0.
    """
    N, C, H, W = x.shape
    if halves(sh, sw, H, W, Ho, Wo):
        return im2col_halves(x, kh, kw, ph, pw, Ho, Wo, cols)
    L, run = Ho * Wo, sh == 1 and sw == 1 and Wo == W
    planes = x.reshape(N, C, H * W)
    for c in range(C):
        for i in range(kh):
            h0, h1 = inside(i, ph, sh, H, Ho)
            for j in range(kw):
                k = (c * kh + i) * kw + j
                w0, w1 = inside(j, pw, sw, W, Wo)
                for n in range(N):
                    out, src = cols[k, n], planes[n, c]
                    if h0 == h1 or w0 == w1:
                        zero_run(out, 0, L)
                    elif run:
                        a, b, d = h0 * Wo + w0, (h1 - 1) * Wo + w1, (i - ph) * W + j - pw
                        zero_run(out, 0, a)
                        copy_run(out[a:b], src[a + d:b + d])
                        zero_run(out, b, L)
                        for h in range(h0, h1):
                            zero_run(out, h * Wo, h * Wo + w0)
                            zero_run(out, h * Wo + w1, (h + 1) * Wo)
                    else:
                        zero_run(out, 0, h0 * Wo)
                        for h in range(h0, h1):
                            at, r = h * Wo, (h * sh + i - ph) * W + j - pw
                            zero_run(out, at, at + w0)
                            copy_run(out[at + w0:at + w1], src[r + w0 * sw:r + w1 * sw:sw])
                            zero_run(out, at + w1, at + Wo)
                        zero_run(out, h1 * Wo, L)


@_jit
def col2im(cols, kh, kw, sh, sw, ph, pw, Ho, Wo, x):
    """x (N, C, H, W) <- each entry of cols added onto its pixel; the adjoint of im2col
    (entries in the padding are dropped). (Ho, Wo) is the grid of windows; x is
    C-contiguous. ``cols`` is scratch: with stride 1 and Wo = W its entries in the
    padding are set to 0, so that one long shifted add per image (as in im2col)
    adds nothing where a run wraps round a row's end.
    """
    N, C, H, W = x.shape
    if halves(sh, sw, H, W, Ho, Wo):
        return col2im_halves(cols, kh, kw, ph, pw, Ho, Wo, x)
    run = sh == 1 and sw == 1 and Wo == W
    planes = x.reshape(N, C, H * W)
    planes[...] = 0
    for c in range(C):
        for i in range(kh):
            h0, h1 = inside(i, ph, sh, H, Ho)
            for j in range(kw):
                k = (c * kh + i) * kw + j
                w0, w1 = inside(j, pw, sw, W, Wo)
                if h0 == h1 or w0 == w1:
                    continue
                for n in range(N):
                    src, dst = cols[k, n], planes[n, c]
                    if run:
                        for h in range(h0, h1):
                            zero_run(src, h * Wo, h * Wo + w0)
                            zero_run(src, h * Wo + w1, (h + 1) * Wo)
                        a, b, d = h0 * Wo + w0, (h1 - 1) * Wo + w1, (i - ph) * W + j - pw
                        add_run(dst[a + d:b + d], src[a:b])
                    else:
                        for h in range(h0, h1):
                            at, r = h * Wo, (h * sh + i - ph) * W + j - pw
                            add_run(dst[r + w0 * sw:r + w1 * sw:sw], src[at + w0:at + w1])


# --- stride 2 on an image of exactly twice the grid: through its four half-size planes ---
#
# With stride 2 a tap reads every other pixel of a row: a strided gather of Wo entries,
# too short to vectorise. Split the image into its four parity planes first,
#     P[2a + b][u, v] = x[2u + a, 2v + b]        (a, b in {0, 1}; each plane Ho x Wo)
# and tap (i, j) reads one of them, shifted:  x[2h + i - ph, 2w + j - pw] = P[2a + b][h + di,
# w + dj] with i - ph = 2 di + a (and likewise j). That is the stride-1 case's one long
# contiguous run per tap. One plane's four parts stay in the L1 cache.
# At keras-io's shapes (batch 128, 32 channels, quiet machine): unfolding on a 7 x 7 grid
# 2.46 -> 1.16 ms, on 14 x 14 7.72 -> 5.22 ms; folding 2.48 -> 1.50 and 8.17 -> 4.47 ms.
# The two kernels' tap loops are written out in each: a shared helper returning the
# plane, shift and bounds measured 5-15% slower in the unfold.


@_jit(inline="always")
def halves(sh, sw, H, W, Ho, Wo):
    """True when the windows step by 2 and the image is exactly twice their grid."""
    return sh == 2 and sw == 2 and H == 2 * Ho and W == 2 * Wo


@_jit(inline="always")
def parity(i, ph):
    """(a, di) with i - ph = 2 di + a and a in {0, 1}: the plane a tap reads, and its shift."""
    a = (i - ph) % 2
    return a, (i - ph - a) // 2


@_jit
def im2col_halves(x, kh, kw, ph, pw, Ho, Wo, cols):
    """``im2col`` with stride 2 on an (2 Ho, 2 Wo) image, through its parity planes."""
    N, C = x.shape[:2]
    L = Ho * Wo
    P = np.empty((4, L), x.dtype)
    for n in range(N):
        for c in range(C):
            for a in range(2):                              # the image's rows into P
                for u in range(Ho):
                    row, even, odd = x[n, c, 2 * u + a], P[2 * a, u * Wo:], P[2 * a + 1, u * Wo:]
                    for v in range(Wo):
                        even[v] = row[2 * v]
                        odd[v] = row[2 * v + 1]
            for i in range(kh):
                a, di = parity(i, ph)
                h0, h1 = inside(i, ph, 2, 2 * Ho, Ho)
                for j in range(kw):
                    b, dj = parity(j, pw)
                    w0, w1 = inside(j, pw, 2, 2 * Wo, Wo)
                    out = cols[(c * kh + i) * kw + j, n]
                    if h0 == h1 or w0 == w1:
                        zero_run(out, 0, L)
                        continue
                    lo, hi, d = h0 * Wo + w0, (h1 - 1) * Wo + w1, di * Wo + dj
                    zero_run(out, 0, lo)
                    copy_run(out[lo:hi], P[2 * a + b, lo + d:hi + d])
                    zero_run(out, hi, L)
                    for h in range(h0, h1):                 # what the run read past a row
                        zero_run(out, h * Wo, h * Wo + w0)
                        zero_run(out, h * Wo + w1, (h + 1) * Wo)


@_jit
def col2im_halves(cols, kh, kw, ph, pw, Ho, Wo, x):
    """``col2im`` with stride 2 onto an (2 Ho, 2 Wo) image, through its parity planes;
    ``cols`` is scratch, as there."""
    N, C = x.shape[:2]
    L = Ho * Wo
    P = np.empty((4, L), x.dtype)
    for n in range(N):
        for c in range(C):
            P[...] = 0
            for i in range(kh):
                a, di = parity(i, ph)
                h0, h1 = inside(i, ph, 2, 2 * Ho, Ho)
                for j in range(kw):
                    b, dj = parity(j, pw)
                    w0, w1 = inside(j, pw, 2, 2 * Wo, Wo)
                    if h0 == h1 or w0 == w1:
                        continue
                    src = cols[(c * kh + i) * kw + j, n]
                    for h in range(h0, h1):                 # entries the run must not add
                        zero_run(src, h * Wo, h * Wo + w0)
                        zero_run(src, h * Wo + w1, (h + 1) * Wo)
                    lo, hi, d = h0 * Wo + w0, (h1 - 1) * Wo + w1, di * Wo + dj
                    add_run(P[2 * a + b, lo + d:hi + d], src[lo:hi])
            for a in range(2):                              # P back into the image's rows
                for u in range(Ho):
                    row, even, odd = x[n, c, 2 * u + a], P[2 * a, u * Wo:], P[2 * a + 1, u * Wo:]
                    for v in range(Wo):
                        row[2 * v] = even[v]
                        row[2 * v + 1] = odd[v]


@_jit
def bias_act(z, b, code, alpha, y):
    """y[n, o, l] = act(z[o, n, l] + b[o]) for IDENTITY, RELU and LEAKY_RELU.

    z (O, N, L) is the product's output, one row per channel; y (N, O, L) the images.
    ``z = y.transpose(1, 0, 2)`` works in place: each entry reads only itself.
    """
    O, N, L = z.shape
    for n in range(N):
        for o in range(O):
            src, dst, bo = z[o, n], y[n, o], b[o]
            if code == RELU:
                for m in range(L):
                    v = src[m] + bo
                    dst[m] = v if v >= 0 else v * ZERO
            elif code == LEAKY_RELU:
                for m in range(L):
                    v = src[m] + bo
                    dst[m] = v if v >= 0 else v * alpha
            else:
                for m in range(L):
                    dst[m] = src[m] + bo


# The bias gradients sum in float64; ``reassoc`` lets the compiler split each sum into SIMD
# partial sums (a strict left-to-right sum is one add at a time: 4x slower here).
@_jit(fastmath={"reassoc"})
def to_channels_bias_grad(dz, dzc, db, accumulate):
    """dzc[o, n, l] = dz[n, o, l] (the product's layout) and db (+)= sum_{n,l} dz[n, o, l]."""
    N, O, L = dz.shape
    if not accumulate:
        db[:] = 0
    for n in range(N):
        for o in range(O):
            src, dst = dz[n, o], dzc[o, n]
            s = 0.0
            for m in range(L):
                dst[m] = src[m]
                s += src[m]
            db[o] += s


@_jit(fastmath={"reassoc"})
def channel_sums(dz, db, accumulate):
    """db (+)= sum_{n,l} dz[n, o, l]: the bias gradient of an (N, O, L) image batch."""
    N, O, L = dz.shape
    if not accumulate:
        db[:] = 0
    for n in range(N):
        for o in range(O):
            s = 0.0
            for m in range(L):
                s += dz[n, o, m]
            db[o] += s


@_jit(inline="always")
def window_max(src, h0, w0, kh, kw):
    """The largest entry of the window src[h0:h0 + kh, w0:w0 + kw] and its tap i kw + j.

    The first maximum in (i, j) order wins, and a NaN beats any number, as
    ``np.argmax`` decides in ``MaxPool2D``. The update is a select, not a
    branch: on random data a branch is mispredicted every other tap (2x slower).
    """
    best, a = src[h0, w0], 0
    for i in range(kh):
        for j in range(kw):
            v = src[h0 + i, w0 + j]
            up = (v > best) | (np.isnan(v) & (not np.isnan(best)))
            best = v if up else best
            a = i * kw + j if up else a
    return best, a


@_jit(inline="always")
def window_max_of(src, h0, w0, kh, kw):
    """``window_max``, with the bounds written out as constants for 2 x 2 windows (the pool
    of nearly every network): the compiler then unrolls the window, 1.7-1.9x faster."""
    if kh == 2 and kw == 2:
        return window_max(src, h0, w0, 2, 2)
    return window_max(src, h0, w0, kh, kw)


@_jit
def max_pool(x, kh, kw, sh, sw, y, arg):
    """y[n, c, h, w] = the max of x's window at (h sh, w sw); arg = its tap i kw + j."""
    N, C, Ho, Wo = y.shape
    for n in range(N):
        for c in range(C):
            src, dst, at = x[n, c], y[n, c], arg[n, c]
            for h in range(Ho):
                for w in range(Wo):
                    dst[h, w], at[h, w] = window_max_of(src, h * sh, w * sw, kh, kw)


@_jit(inline="always")
def tap_at(a, kw):
    """Tap a = i kw + j as (i, j); for kw = 2 a shift and a mask, not two divisions."""
    if kw == 2:
        return a // 2, a % 2
    return a // kw, a % kw


@_jit
def max_pool_grad(dy, arg, kw, sh, sw, dx):
    """dx <- dy[n, c, h, w] added onto the pixel its window's max came from, 0 elsewhere."""
    N, C, Ho, Wo = dy.shape
    dx[...] = 0
    for n in range(N):
        for c in range(C):
            for h in range(Ho):
                for w in range(Wo):
                    i, j = tap_at(arg[n, c, h, w], kw)
                    dx[n, c, h * sh + i, w * sw + j] += dy[n, c, h, w]


@_jit
def pool_bias_act(z, b, code, alpha, kh, kw, sh, sw, Wo, y, arg):
    """y[n, o, h, w] = act(the max of z's window at (h sh, w sw) + b[o]); arg = its tap.

    z (O, N, Ho Wo) is a convolution's product, one row per channel, with image
    rows Wo long; y and arg (N, O, Hp, Wp) are the pooled images. Pooling before
    the bias and the activation gives the same numbers, as both are the same
    nondecreasing map on every entry of a window:
    max_k act(z_k + b) = act(max_k z_k + b). IDENTITY, RELU and LEAKY_RELU here.
    """
    N, O, Hp, Wp = y.shape
    Ho = z.shape[2] // Wo
    for n in range(N):
        for o in range(O):
            src, dst, at, bo = z[o, n].reshape((Ho, Wo)), y[n, o], arg[n, o], b[o]
            for h in range(Hp):
                for w in range(Wp):
                    best, a = window_max_of(src, h * sh, w * sw, kh, kw)
                    v = best + bo
                    if code == RELU:
                        v = v if v >= 0 else v * ZERO
                    elif code == LEAKY_RELU:
                        v = v if v >= 0 else v * alpha
                    dst[h, w], at[h, w] = v, a


@_jit(fastmath={"reassoc"})
def unpool_bias_grad(dzp, arg, kw, sh, sw, Wo, dzc, db, accumulate):
    """dzc[o, n] <- dzp[n, o, h, w] added at the tap arg[n, o, h, w] of its window, 0 where
    no window took its max (the product's (O, N, Ho Wo) layout); db (+)= sum_{n,h,w} dzp."""
    N, O, Hp, Wp = dzp.shape
    if not accumulate:
        db[:] = 0
    for o in range(O):
        s = 0.0
        for n in range(N):
            dst, src, at = dzc[o, n], dzp[n, o], arg[n, o]
            dst[:] = 0
            for h in range(Hp):
                for w in range(Wp):
                    i, j = tap_at(at[h, w], kw)
                    dst[(h * sh + i) * Wo + w * sw + j] += src[h, w]
                    s += src[h, w]
        db[o] += s
