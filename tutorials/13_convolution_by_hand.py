# %% [markdown]
# # 13. Convolution by hand: a loop, then windows, then one matmul
#
# A dense layer connects every pixel to every unit: 784 x 512 weights for
# the seed model's first layer, and none of them knows that pixel 100 sits
# next to pixel 101. A **convolution** slides one small kernel over the
# image: the same few weights at every position, each output reading only a
# small window. Every image autoencoder after the dense one is built from
# it (the book "Generative Deep Learning", keras-io's examples).
#
# Here we write the convolution three ways (a loop, windows, im2col and a
# matmul), derive its backward, find that the *transposed* convolution of a
# decoder is that backward used as a forward, and check everything with
# `tinyae.gradcheck`. Images are NCHW: (N batch, C channels, H, W).

# %%
import numpy as np
from matplotlib.figure import Figure

import tinyae as ta
from tinyae.autograd import Tensor
from tinyae.gradcheck import check_layer
from tinyae.nn import conv
from tinyae.tutorial import exercise, load, show

rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The definition, as a loop
#
# With a kernel W of shape (O, C, kh, kw), stride s and the input padded
# with p zeros on each side (xp), output channel o at position (h, w) is
#
#     y[n, o, h, w] = b[o] + sum_{c, i, j} xp[n, c, h s + i, w s + j] W[o, c, i, j]
#
# (deep learning calls this a convolution; a mathematician would say
# cross-correlation, since the kernel is not flipped). The output size is
# Ho = (H + 2p - kh) / s + 1.

# %%
def conv_loop(x, W, b, s=1, p=0):
    N, C, H, Wd = x.shape
    O, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    Ho, Wo = (H + 2 * p - kh) // s + 1, (Wd + 2 * p - kw) // s + 1
    y = np.zeros((N, O, Ho, Wo))
    for n in range(N):
        for o in range(O):
            for h in range(Ho):
                for w in range(Wo):
                    window = xp[n, :, h * s:h * s + kh, w * s:w * s + kw]   # (C, kh, kw)
                    y[n, o, h, w] = b[o] + np.sum(window * W[o])
    return y


layer = ta.Conv2D(2, 3, kernel_size=3, stride=2, padding=1, rng=rng, dtype=np.float64)
layer.params["b"][...] = rng.standard_normal(3)
x = rng.standard_normal((4, 2, 7, 7))
y = layer.forward(x)
print("output shape:", y.shape, " (7 + 2 - 3) / 2 + 1 =", (7 + 2 - 3) // 2 + 1)
W, b = layer.params["W"], layer.params["b"]
print("loop == ta.Conv2D:", np.allclose(conv_loop(x, W, b, s=2, p=1), y))

# %% [markdown]
# ## Windows: the loop without the loop
#
# Four nested loops in Python are slow. NumPy can hand us every window at
# once, as a *view* of the padded input (no copy: the same memory read with
# other strides): `sliding_window_view` gives an array of shape
# (N, C, H - kh + 1, W - kw + 1, kh, kw), and taking every s-th position
# applies the stride. The sum over (c, i, j) is then one `einsum`.

# %%
xp = conv.pad(x, (1, 1))
win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
print("windows:", win.shape, " a view of xp:", np.shares_memory(win, xp))
y_win = np.einsum("nchwij,ocij->nohw", win, W) + b[:, None, None]
print("windows + einsum == loop:", np.allclose(y_win, y))

# %% [markdown]
# ## im2col: one matrix product
#
# Lay each window out as one row of C kh kw numbers ("image to columns"),
# and each output channel's kernel as one column: the convolution is a
# single matrix product, (N Ho Wo, C kh kw) @ (C kh kw, O), which BLAS does
# fast. This is what `einsum(..., optimize=True)` does inside, and what
# `tinyae/nn/conv.py` calls. The price: the rows repeat each pixel up to
# kh kw times in memory.

# %%
N, C, Ho, Wo, kh, kw = win.shape
cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, C * kh * kw)
kernels = W.reshape(3, C * kh * kw).T
y_mm = (cols @ kernels).reshape(N, Ho, Wo, 3).transpose(0, 3, 1, 2) + b[:, None, None]
print("im2col:", cols.shape, "@", kernels.shape, " == loop:", np.allclose(y_mm, y))

# %% [markdown]
# ## What a kernel sees, on a real digit
#
# A kernel is a pattern detector: its output is large where the window looks
# like it. Two hand-made 3x3 kernels find the vertical and horizontal
# strokes of a digit (the Sobel filters); a trained network learns its own.

# %%
X, labels, name = load("test")
digit = X[:1].reshape(1, 1, 28, 28).astype(np.float64)
edges = ta.Conv2D(1, 2, 3, padding=1, dtype=np.float64)
sobel = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
edges.params["W"][:, 0] = [sobel, sobel.T]              # vertical, horizontal strokes
maps = edges.forward(digit)                              # (1, 2, 28, 28): same size, padding 1

fig = Figure(figsize=(7.5, 2.8), layout="constrained")
top = np.abs(maps).max()                                 # one colour scale, 0 in the middle
axes = fig.subplots(1, 3)
axes[0].imshow(digit[0, 0], cmap="gray")
axes[0].set_title(f"a digit ({name})")
for ax, image, title in zip(axes[1:], maps[0], ["vertical strokes", "horizontal strokes"]):
    ax.imshow(image, cmap="RdBu_r", vmin=-top, vmax=top)
    ax.set_title(title)
for ax in axes:
    ax.axis("off")
show(fig, "13_edges.png")

# %% [markdown]
# ## The backward pass
#
# Each output y[n, o, h, w] read one window through W[o]. Differentiating the
# definition, with dout = dL/dy:
#
# - dW[o, c, i, j] = sum_{n,h,w} dout[n, o, h, w] xp[n, c, h s + i, w s + j]:
#   the same windows, contracted with dout instead of W;
# - db[o] = sum_{n,h,w} dout[n, o, h, w];
# - dxp[n, c, h s + i, w s + j] += sum_o dout[n, o, h, w] W[o, c, i, j]: every
#   window sends its share back onto the pixels it read, and where windows
#   overlap the shares add up ("overlap-add", the adjoint of taking windows);
#   dx is dxp without its padding.

# %%
dout = rng.standard_normal(y.shape)
layer.zero_grad()
dx = layer.backward(dout)
dW = np.einsum("nohw,nchwij->ocij", dout, win)
dxp = np.zeros_like(xp)
for h in range(Ho):
    for w in range(Wo):
        share = np.einsum("no,ocij->ncij", dout[:, :, h, w], W)     # (N, C, 3, 3)
        dxp[:, :, 2 * h:2 * h + 3, 2 * w:2 * w + 3] += share
print("dW by hand == layer:", np.allclose(dW, layer.grads["W"]))
print("db by hand == layer:", np.allclose(dout.sum(axis=(0, 2, 3)), layer.grads["b"]))
print("dx by hand == layer:", np.allclose(dxp[:, :, 1:-1, 1:-1], dx))
print(check_layer(ta.Conv2D(2, 3, (3, 2), stride=(2, 1), padding=1, rng=rng), x))

# %% [markdown]
# ## Sizes that do not come out whole
#
# With 8 pixels, kernel 3 and stride 2 and no padding, the windows start at
# 0, 2, 4 and end at pixel 6: the last row would never be read. PyTorch
# silently drops it; tinyae refuses and says what would fit. (With padding 1
# the row left over is a row of padding, which is fine: 28 pixels with
# kernel 3, stride 2, padding 1 give 14, as Keras's 'same'.)

# %%
try:
    ta.Conv2D(1, 1, 3, stride=2).forward(np.zeros((1, 1, 8, 8)))
except ValueError as err:
    print(err)

# %% [markdown]
# ## The transposed convolution is the backward
#
# A decoder must go the other way: from a small map (7 x 7) to a large one
# (14 x 14). dx above does exactly that: it maps a gradient of the output's
# size to the input's size, using the same W. Used as a forward layer, that
# map is the **transposed convolution** (`ta.ConvTranspose2D`, PyTorch's
# `ConvTranspose2d`). Its weight has shape (in, out, kh, kw): the W of the
# convolution it transposes. Its backward, in turn, is a convolution.

# %%
up = ta.ConvTranspose2D(3, 2, 3, stride=2, padding=1, dtype=np.float64)
up.params["W"][...] = layer.params["W"]            # the convolution's own kernel
print("convT(dout) == Conv2D.backward(dout):", np.allclose(up.forward(dout), dx))

# %% [markdown]
# Being the backward means being the *adjoint*: for any x and any y,
# <conv(x), y> = <x, convT(y)> (the matrix of one is the transpose of the
# other's; hence the name). And `output_padding` picks which input size to
# return to: a stride-2 convolution maps both 13 and 14 pixels to 7.

# %%
b[...] = 0                                          # the adjoint holds for the linear part
y2 = rng.standard_normal(y.shape)
print("<conv(x), y> =", np.sum(layer.forward(x) * y2))
print("<x, convT(y)> =", np.sum(x * up.forward(y2)))
for op in (0, 1):
    print(f"7 x 7 -> output_padding={op}:",
          ta.ConvTranspose2D(1, 1, 3, 2, 1, op).forward(np.zeros((1, 1, 7, 7))).shape[2:])

# %% [markdown]
# The same layer has a second formula, the one most books draw: spread the
# input out by inserting s - 1 zeros between its pixels, pad it by k - 1,
# and *convolve* with the kernel flipped. `tinyae.autograd` builds its
# transposed convolution that way, so the tape checks the layer's overlap-add
# against an independent derivation. One pixel in shows the picture: the
# kernel stamped once per input pixel, s apart, overlapping where kernels
# meet.

# %%
stamp = ta.ConvTranspose2D(1, 1, 3, stride=2, dtype=np.float64)
stamp.params["W"][...] = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
one = np.zeros((1, 1, 3, 3))
one[0, 0, 1, 1] = 1.0
two = np.zeros((1, 1, 3, 3))
two[0, 0, 1, 1] = two[0, 0, 1, 2] = 1.0
tape = Tensor(two).conv_transpose2d(Tensor(stamp.params["W"]), Tensor(np.zeros(1)), (2, 2))
print("flipped-kernel formula == overlap-add:", np.allclose(tape.data, stamp.forward(two)))

fig = Figure(figsize=(6, 3), layout="constrained")
for ax, image, title in zip(fig.subplots(1, 2), [stamp.forward(one), stamp.forward(two)],
                            ["one pixel: the kernel", "two pixels: overlap adds"]):
    ax.imshow(image[0, 0], cmap="viridis")
    ax.set_title(title)
    ax.axis("off")
show(fig, "13_transposed.png")

# %% [markdown]
# ## Max pooling
#
# `MaxPool2D(2)` keeps the largest value of each 2 x 2 window: it halves the
# map and keeps "is the pattern somewhere here". Its gradient goes to the
# one pixel that won each window, since only that pixel moves the output.
# That backward is the exercise.
#
# ## Exercise: MaxPool2D
#
# Fill in `forward` and `backward` for windows of k x k with stride k
# (side by side, no overlap). Hints: reshape the windows to (..., k k) and use
# `argmax` in forward; in backward, put dout where the argmax was and zeros
# elsewhere, then overlap-add back (`conv.overlap_add(cols, x_shape, (k, k))`,
# cols of shape (N, C, Ho, Wo, k, k)). The check compares your forward with
# `ta.MaxPool2D` and your backward with finite differences.
# The full version has its solution at the end of the file: try yours first.

# %%
class MyMaxPool2D:
    def __init__(self, k=2):
        self.k, self.params, self.grads = k, {}, {}

    def forward(self, x):
        raise NotImplementedError("write MyMaxPool2D.forward")

    def backward(self, dout):
        raise NotImplementedError("write MyMaxPool2D.backward")


# %%
def check_max_pool(layer_class, k=2):
    x = rng.standard_normal((3, 2, 6, 4))
    assert np.allclose(layer_class(k).forward(x), ta.MaxPool2D(k).forward(x)), \
        "the forward differs from ta.MaxPool2D"
    print("same forward as ta.MaxPool2D: True")
    report = check_layer(layer_class(k), x)       # gradients and the layer contract
    report.assert_ok()
    print(report)


with exercise("MaxPool2D"):
    check_max_pool(MyMaxPool2D)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **MaxPool2D.** Forward keeps the argmax of each window; backward makes a
# one-hot window per output, scaled by dout, and overlap-adds them (with
# stride k they do not overlap, so this only places them).

# %% tags=["solution"]
class MyMaxPool2D:
    def __init__(self, k=2):
        self.k, self.params, self.grads = k, {}, {}

    def forward(self, x):
        k = self.k
        win = conv.windows(x, (k, k), (k, k))                   # (N, C, Ho, Wo, k, k)
        flat = win.reshape(*win.shape[:4], k * k)
        self.argmax, self.x_shape = flat.argmax(axis=-1), x.shape
        return flat.max(axis=-1)

    def backward(self, dout):
        k = self.k
        one_hot = self.argmax[..., None] == np.arange(k * k)    # (N, C, Ho, Wo, k k)
        cols = (one_hot * dout[..., None]).reshape(*dout.shape, k, k)
        return conv.overlap_add(cols, self.x_shape, (k, k))


check_max_pool(MyMaxPool2D)
