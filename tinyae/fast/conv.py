"""The convolution steps of the fast path: im2col, one BLAS product, a fused epilogue.

A convolution is a matrix product once every window is a column (``conv_kernels``):

    Conv2D           cols = im2col(x)                  (C kh kw, N Ho Wo)
                     y    = act(W2 @ cols + b)         W2 = W as (O, C kh kw)
      backward       dz = dy * act'(y);  dW2 (+)= dz cols^T;  dx = col2im(W2^T dz)
    ConvTranspose2D  the same two halves swapped (a transposed convolution is a
                     convolution's backward): y = act(col2im(W2^T x) + b), W2 = W
                     as (C, O kh kw); its backward takes windows with im2col
    Conv2D, act, MaxPool2D   y = act(maxpool(W2 @ cols) + b): the pool reads the
                     product, so the full-size activation is never written

Images stay NCHW between steps, so a student's layer or ``Flatten`` can sit
anywhere; a product's (O, N, L) channels become (N, O, L) images inside the
loop that adds the bias and applies the activation, which reads them anyway.
Each step computes what ``tinyae/nn/conv.py`` does, up to the order of BLAS's
sums (tests/test_fast_conv.py).
"""
import numpy as np

from ..nn.conv import ConvTranspose2D, as_images
from . import conv_kernels as C
from . import kernels as K


def _activate(y, b, code, alpha, z, buffers):
    """y (N, O, L) <- act(z + b) from the product's z (O, N, L): the bias and the stock
    activation in one pass (two for sigmoid and tanh, whose exp and tanh NumPy computes
    fastest)."""
    C.bias_act(z, b, _in_loop(code), y.dtype.type(alpha), y)
    _squash(y, code, buffers)


def _in_loop(code):
    """The code a bias loop applies itself: RELU and LEAKY_RELU, else IDENTITY."""
    return code if code in (K.RELU, K.LEAKY_RELU) else K.IDENTITY


def _squash(y, code, buffers):
    """y <- sigmoid(y) or tanh(y) in place, the activations the bias loops leave out."""
    flat = y.reshape(-1, y.shape[-1])
    if code == K.SIGMOID:
        e = buffers("e", flat.shape, flat.dtype)
        np.negative(np.abs(flat, out=e), out=e)
        np.exp(e, out=e)
        K.sigmoid_from_exp(flat, e, flat.dtype.type(1), np.finfo(flat.dtype).tiny)
    elif code == K.TANH:
        np.tanh(flat, out=flat)


def _act_grad(y, dy, code, alpha, buffers):
    """dz = dy * act'(y) (N, O, L), written with the output y; dy itself for IDENTITY."""
    if code == K.IDENTITY:
        return dy
    t, dz = dy.dtype.type, buffers("dz", dy.shape, dy.dtype)
    y2, dy2, dz2 = (a.reshape(-1, a.shape[-1]) for a in (y, dy, dz))    # (N O, L)
    K.act_grad(y2, dy2, code, t(alpha), t(1), np.finfo(dy.dtype).tiny, dz2)
    return dz


def _checked_dout(layer, y, dy):
    """dy as a C-contiguous array like the output y, refused before any loop reads it."""
    if y is None:
        raise RuntimeError(f"{type(layer).__name__}.backward() was called before forward(): "
                           "run forward on a batch first, since backward uses what it kept.")
    if np.shape(dy) != y.shape:                       # the loops do not check bounds
        raise ValueError(f"{layer!r}.backward(): dout has shape {np.shape(dy)}, expected the "
                         f"output's {y.shape}")
    return np.ascontiguousarray(dy, dtype=y.dtype)


class _WindowedStep:
    """What the two convolution steps share: the activation, the buffers, dW written or added.

    As ``DenseStep``: after ``zero_grad`` the next backward *writes* dW and db
    (it overwrites every entry, so the fill is skipped), unless ``skip_fill``
    was cleared because the layer's arrays are used twice.
    """

    def __init__(self, layer, code, alpha, buffers):
        self.layer, self.code, self.alpha, self.buffers = layer, code, alpha, buffers
        self.skip_fill, self.write, self.y = True, False, None

    def zero_grad(self):
        if self.skip_fill:
            self.write = True
        else:
            self.layer.zero_grad()

    def _settings(self):
        return (*self.layer.kernel_size, *self.layer.stride, *self.layer.padding)

    def _input(self, x):
        """x checked as the plain layer checks it; (x, its output's (O, Ho, Wo))."""
        x = as_images(x, self.layer.in_channels, self.layer.params["W"].dtype, self.layer)
        shape = self.layer.output_width(x.shape[1:])            # refuses bad sizes first
        return np.ascontiguousarray(x), shape                   # the kernels read image planes

    def _dout(self, dy):
        return _checked_dout(self.layer, self.y, dy)

    def _summed_product(self, a, b):
        """a @ b for the weight gradients, a (rows, M) and b (M, cols) with M = N Ho Wo long:
        computed as (b^T a^T)^T, since OpenBLAS sums these long products 1.3-1.9x faster
        when the output's rows are the wider side (benchmarks/README.md)."""
        out = self.buffers("dW_T", (b.shape[1], a.shape[0]), a.dtype)
        return np.matmul(b.T, a.T, out=out).T

    def _weight_grad(self, a, b):
        """dW (+)= a @ b, as the (rows of W, the rest) matrix W2."""
        self._store_kernel_grad(self._summed_product(a, b))

    def _store_kernel_grad(self, g2):
        """dW (+)= g2, W's gradient as the (rows of W, the rest) matrix W2."""
        g = self.layer.grads["W"]
        W2 = g.reshape(len(g), -1)                    # a view: grads are C-contiguous
        if self.write:
            np.copyto(W2, g2)
        else:
            W2 += g2


class ConvStep(_WindowedStep):
    """y = act(conv(x, W) + b) and its backward, for one ``Conv2D`` and the activation after it.

    Shapes: x (N, C, H, W);  cols (C kh kw, N Ho Wo);  W2 (O, C kh kw);  y (N, O, Ho, Wo)
    """

    def forward(self, x):
        x, (O, Ho, Wo) = self._input(x)
        z = self._product(x, Ho, Wo)
        N, b = len(x), self.layer.params["b"]
        y = self.buffers("y", (N, O, Ho, Wo), z.dtype)
        _activate(y.reshape(N, O, -1), b, self.code, self.alpha, z.reshape(O, N, -1),
                  self.buffers)
        self.y = y
        return y

    def _product(self, x, Ho, Wo):
        """z = W2 @ im2col(x): (O, N Ho Wo), the windows kept for backward."""
        W = self.layer.params["W"]
        M = len(x) * Ho * Wo
        self.cols = self.buffers("cols", (W[0].size, M), W.dtype)
        C.im2col(x, *self._settings(), Ho, Wo, self.cols.reshape(len(self.cols), len(x), -1))
        self.x_shape, self.grid = x.shape, (Ho, Wo)
        return np.matmul(W.reshape(len(W), -1), self.cols,
                         out=self.buffers("z", (len(W), M), W.dtype))

    def backward(self, dy, need_dx=True):
        dy = self._dout(dy)
        N, O, Ho, Wo = dy.shape
        dz = _act_grad(self.y, dy, self.code, self.alpha, self.buffers)    # (N, O, Ho, Wo)
        dzc = self.buffers("dz_channels", (O, N, Ho * Wo), dy.dtype)       # the product's layout
        C.to_channels_bias_grad(dz.reshape(N, O, -1), dzc, self.layer.grads["b"],
                                not self.write)
        return self._product_backward(dzc.reshape(O, -1), need_dx)

    def _product_backward(self, dzc, need_dx):
        """dW (+)= dz cols^T and dx = col2im(W2^T dz), from dz in the product's layout."""
        W = self.layer.params["W"]
        self._weight_grad(dzc, self.cols.T)                                # (O, C kh kw)
        self.write = False
        if not need_dx:
            return None
        dcols = np.matmul(W.reshape(len(W), -1).T, dzc,
                          out=self.buffers("dcols", self.cols.shape, dzc.dtype))
        dx = self.buffers("dx", self.x_shape, dzc.dtype)
        C.col2im(dcols.reshape(len(dcols), len(dx), -1), *self._settings(), *self.grid, dx)
        return dx


class ConvPoolStep(ConvStep):
    """A ``Conv2D``, its stock activation and the ``MaxPool2D`` after them, as one step.

    The pool reads the product itself, so the full-size activation is never
    written, and backward writes dz only where a window took its max:

        forward    y = act(maxpool(W2 @ cols) + b)    = maxpool(act(conv(x) + b)): the
                   bias is one number per channel and act is nondecreasing
        backward   dz = dy * act'(y) at each window's max, 0 elsewhere

    (On ties the maxima of z decide, where ``MaxPool2D`` sees act's outputs; they
    differ only where act is flat, so act' is 0 there and dz is the same.)
    """

    def __init__(self, layer, code, alpha, buffers, pool):
        super().__init__(layer, code, alpha, buffers)
        self.pool = pool

    def forward(self, x):
        x, (O, Ho, Wo) = self._input(x)
        _, Hp, Wp = self.pool.output_width((O, Ho, Wo))         # refuses bad sizes first
        z = self._product(x, Ho, Wo)
        N, t = len(x), z.dtype.type
        self.y = self.buffers("y", (N, O, Hp, Wp), z.dtype)
        self.arg = self.buffers("arg", self.y.shape, np.int32)
        C.pool_bias_act(z.reshape(O, N, -1), self.layer.params["b"], _in_loop(self.code),
                        t(self.alpha), *self.pool.kernel_size, *self.pool.stride, Wo,
                        self.y, self.arg)
        _squash(self.y, self.code, self.buffers)
        return self.y

    def backward(self, dy, need_dx=True):
        dy = self._dout(dy)
        N, O = dy.shape[:2]
        (Ho, Wo), (_, kw), (sh, sw) = self.grid, self.pool.kernel_size, self.pool.stride
        dz = _act_grad(self.y, dy, self.code, self.alpha, self.buffers)    # (N, O, Hp, Wp)
        dzc = self.buffers("dz_channels", (O, N, Ho * Wo), dy.dtype)
        C.unpool_bias_grad(dz, self.arg, kw, sh, sw, Wo, dzc, self.layer.grads["b"],
                           not self.write)
        return self._product_backward(dzc.reshape(O, -1), need_dx)


class ConvTransposeStep(_WindowedStep):
    """y = act(conv_transpose(x, W) + b) and its backward, for one ``ConvTranspose2D``.

    Shapes: x (N, C, H, W) as channels (C, N H W);  W2 (C, O kh kw);  cols (O kh kw, N H W);
    y (N, O, Ho, Wo)

    forward    cols = W2^T x,  y = act(col2im(cols) + b)      (col2im: the overlap-add)
    backward   dcols = im2col(dz),  dW2 = x dcols^T,  dx = W2 dcols

    The three products and the layout of cols are the hooks ``_columns``,
    ``_dcols``, ``_kernel_grad`` and ``_input_grad``; the rest is shared.
    """

    def _kernel(self):
        """W in the transposed convolution's layout (C, O, kh, kw)."""
        return self.layer.params["W"]

    def forward(self, x):
        self.kernel = self._kernel()
        x, (O, Ho, Wo) = self._input(x)
        N, _, H, Wd = self.x_shape = x.shape
        y = self.buffers("y", (N, O, Ho, Wo), x.dtype)
        C.col2im(self._columns(x), *self._settings(), H, Wd, y)          # overlap-add
        y3 = y.reshape(N, O, -1)
        _activate(y3, self.layer.params["b"], self.code, self.alpha, y3.transpose(1, 0, 2),
                  self.buffers)
        self.y = y
        return y

    def backward(self, dy, need_dx=True):
        dy = self._dout(dy)
        N, O = dy.shape[:2]
        H, Wd = self.x_shape[2:]
        dz = _act_grad(self.y, dy, self.code, self.alpha, self.buffers)    # (N, O, Ho, Wo)
        C.channel_sums(dz.reshape(N, O, -1), self.layer.grads["b"], not self.write)
        dcols = self._dcols(N, H * Wd, dy.dtype)                          # (O kh kw, N, H W)
        C.im2col(dz, *self._settings(), H, Wd, dcols)                      # pad(dz)
        self._kernel_grad(dcols)
        self.write = False
        return self._input_grad(dcols) if need_dx else None

    def _columns(self, x):
        """cols = W2^T @ x in the channels' layout, (O kh kw, N, H W); x is kept in that
        layout for dW."""
        W, (N, Cin) = self.kernel, x.shape[:2]
        self.xc = self.buffers("x_channels", (Cin, N, x[0, 0].size), x.dtype)
        np.copyto(self.xc, x.reshape(N, Cin, -1).transpose(1, 0, 2))
        cols = self.buffers("cols", (W[0].size, self.xc[0].size), x.dtype)
        np.matmul(W.reshape(Cin, -1).T, self.xc.reshape(Cin, -1), out=cols)
        return cols.reshape(len(cols), N, -1)

    def _dcols(self, N, L, dtype):
        """The buffer im2col(dz) unfolds into, as (O kh kw, N, L)."""
        K = self.kernel[0].size
        return self.buffers("dcols", (K, N * L), dtype).reshape(K, N, L)

    def _kernel_grad(self, dcols):
        """dW2 (+)= x dcols^T: (C, O kh kw)."""
        self._weight_grad(self.xc.reshape(len(self.xc), -1), dcols.reshape(len(dcols), -1).T)

    def _input_grad(self, dcols):
        """dx = W2 @ dcols, from the channels' layout back to (N, C, H, W)."""
        W, (N, Cin) = self.kernel, self.x_shape[:2]
        dxc = np.matmul(W.reshape(Cin, -1), dcols.reshape(len(dcols), -1),
                        out=self.buffers("dx_channels", (Cin, dcols[0].size), dcols.dtype))
        dx = self.buffers("dx", self.x_shape, dcols.dtype)
        np.copyto(dx.reshape(N, Cin, -1), dxc.reshape(Cin, N, -1).transpose(1, 0, 2))
        return dx


class ImagewiseTransposeStep(ConvTransposeStep):
    """``ConvTransposeStep`` with its products run one per image on the images as they
    are, (N, C, H W): cols[n] (O kh kw, H W) = W2^T @ x[n], so neither x nor dx is copied
    into the channels' layout. Where the columns are short (O kh kw <= 2 C), those two
    copies cost more than one large product saves over N small ones: forward and
    backward at batch 128, one thread, 32 -> 1 channel at 28 x 28 take 5.9 ms this way
    against 12.6, 32 -> 4 18.1 against 25.9; 64 -> 8 stride 2 is even (19.3, 18.4) and
    64 -> 32 loses (76.9 against 63.3), so ``step_class`` picks this step only for
    short columns.
    """

    def _columns(self, x):
        W, (N, Cin) = self.kernel, x.shape[:2]
        self.x_images = x.reshape(N, Cin, -1)                              # kept for dW
        cols = self.buffers("cols", (N, W[0].size, self.x_images.shape[2]), x.dtype)
        np.matmul(W.reshape(Cin, -1).T, self.x_images, out=cols)
        return cols.transpose(1, 0, 2)

    def _dcols(self, N, L, dtype):
        return self.buffers("dcols", (N, self.kernel[0].size, L), dtype).transpose(1, 0, 2)

    def _kernel_grad(self, dcols):
        """dW2 = sum_n x[n] dcols[n]^T, (C, O kh kw)."""
        W, images = self.kernel, dcols.transpose(1, 0, 2)                 # (N, O kh kw, H W)
        per_image = np.matmul(self.x_images, images.transpose(0, 2, 1),
                              out=self.buffers("dW_images", (len(images), len(W), W[0].size),
                                               dcols.dtype))
        self._store_kernel_grad(per_image.sum(axis=0))

    def _input_grad(self, dcols):
        """dx[n] = W2 @ dcols[n], written straight into (N, C, H W)."""
        W, dx = self.kernel, self.buffers("dx", self.x_shape, dcols.dtype)
        np.matmul(W.reshape(len(W), -1), dcols.transpose(1, 0, 2),
                  out=dx.reshape(len(dx), len(W), -1))
        return dx


class ConvAsTransposeStep(ImagewiseTransposeStep):
    """A stride-1 ``Conv2D`` to fewer channels (O < C), computed as the transposed
    convolution it equals, whose windows are taken on the output's side:

        conv(x, W, padding p) = conv_transpose(x, W~, padding k - 1 - p),
        W~[c, o, i, j] = W[o, c, kh - 1 - i, kw - 1 - j]

    im2col would unfold C kh kw rows per output pixel (288 for keras-io's last
    layer, 32 -> 1 channel); this way there are O kh kw (9) and the products
    run over the channels instead, one per image. dW is dW~ flipped back.
    """

    def _settings(self):
        (kh, kw), (ph, pw) = self.layer.kernel_size, self.layer.padding
        return kh, kw, 1, 1, kh - 1 - ph, kw - 1 - pw

    def _kernel(self):
        W = self.layer.params["W"]                                         # (O, C, kh, kw)
        Wt = self.buffers("W_flipped", (W.shape[1], W.shape[0], *W.shape[2:]), W.dtype)
        np.copyto(Wt, W.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])          # (C, O, kh, kw)
        return Wt

    def _store_kernel_grad(self, gt):
        """dW (+)= dW~ (C, O kh kw) flipped back to W's (O, C, kh, kw)."""
        g = self.layer.grads["W"]
        back = gt.reshape(g.shape[1], g.shape[0], *g.shape[2:]).transpose(1, 0, 2, 3)
        if self.write:
            np.copyto(g, back[:, :, ::-1, ::-1])
        else:
            g += back[:, :, ::-1, ::-1]


def step_class(layer, pooled=False):
    """The step for a stock ``Conv2D`` or ``ConvTranspose2D``: windows on the side with
    fewer channels (a stride-1 convolution to fewer channels as a transposed one); a
    ``Conv2D`` with a max pool behind it (``pooled``) takes the pool into its step."""
    k, p = layer.kernel_size, layer.padding
    if type(layer) is ConvTranspose2D:           # short columns: per image (measured, above)
        few = layer.out_channels * k[0] * k[1] <= 2 * layer.in_channels
        return ImagewiseTransposeStep if few else ConvTransposeStep
    if (layer.stride == (1, 1) and layer.out_channels < layer.in_channels
            and all(pi <= ki - 1 for pi, ki in zip(p, k))):
        return ConvAsTransposeStep
    return ConvPoolStep if pooled else ConvStep


class MaxPoolStep:
    """``MaxPool2D`` with the tap of each window's max kept for backward, one loop each way."""

    def __init__(self, layer, buffers):
        self.layer, self.buffers = layer, buffers
        self.y, self.plain = None, False

    def zero_grad(self):
        pass                                          # no parameters

    def forward(self, x):
        x = as_images(x, None, None, self.layer)
        self.plain = x.dtype not in (np.float32, np.float64)   # no kernel for float16
        if self.plain:
            return self.layer.forward(x)
        Cin, Ho, Wo = self.layer.output_width(x.shape[1:])
        shape = (len(x), Cin, Ho, Wo)
        self.y = self.buffers("y", shape, x.dtype)
        self.arg = self.buffers("arg", shape, np.int32)
        C.max_pool(x, *self.layer.kernel_size, *self.layer.stride, self.y, self.arg)
        self.x_shape = x.shape
        return self.y

    def backward(self, dy, need_dx=True):
        if self.plain:
            return self.layer.backward(dy)
        dy = _checked_dout(self.layer, self.y, dy)
        if not need_dx:
            return None
        dx = self.buffers("dx", self.x_shape, dy.dtype)
        C.max_pool_grad(dy, self.arg, self.layer.kernel_size[1], *self.layer.stride, dx)
        return dx
