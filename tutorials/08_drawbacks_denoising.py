# %% [markdown]
# # 8. Drawbacks of a plain autoencoder, and the denoising autoencoder
#
# The seed post ends on two weaknesses of the plain autoencoder:
#
# 1. it is **sensitive to distortions** of its input (noise, rotation,
#    reflection);
# 2. it **can learn to copy** its input instead of learning what the data
#    look like, when its code is wide enough.
#
# Here we measure both, with numbers, and then train the first answer to
# them: the **denoising autoencoder** (Vincent et al. 2008), which sees
# corrupted images and must reconstruct the clean ones,
#
#     minimise  l(g(f(corrupt(X))), X)     instead of    l(g(f(X)), X).
#
# *Time:* about 2 minutes on a 2-core laptop (two models trained, each
# printing a line per epoch); `TINYAE_FAST=1` runs it on a subset in seconds.

# %%
import numpy as np

import tinyae as ta
from tinyae.evaluate import robustness
from tinyae.gradcheck import check_layer
from tinyae.nn import corrupt
from tinyae.train import fit
from tinyae.tutorial import FAST, exercise, load, show, trained_model
from tinyae.viz import plot

X_train, _, data_name = load("train")
X_test, _, _ = load("test")
X_test = X_test[:1000]
plain = trained_model()                      # the seed model 784-512-256-64-2 of tutorial 2
rng = np.random.default_rng(0)
print(f"{data_name}: {len(X_train):,} training images, {len(X_test):,} test images")

# %% [markdown]
# ## The distortions
#
# `tinyae.nn.corrupt` works on batches of flattened square images, (N, 784) for
# 28 x 28. Noise takes a seeded `rng`; the geometric ones are exact maps:
#
# - `gaussian(X, std, rng)`: clip(X + std * eps, 0, 1), eps ~ N(0, 1);
# - `masking(X, fraction, rng)`: each pixel set to 0 with probability `fraction`;
# - `salt_and_pepper(X, fraction, rng)`: each pixel set to 0 or 1 with that probability;
# - `rotate(X, degrees)`: each output pixel p reads the input at
#   R(-angle)(p - c) + c (c the centre), interpolating bilinearly between the
#   four pixels around that point;
# - `flip(X)`, `shift(X, dx, dy)`.

# %%
x = X_test[:1]
strip = np.concatenate([x, corrupt.gaussian(x, 0.5, rng), corrupt.masking(x, 0.3, rng),
                        corrupt.salt_and_pepper(x, 0.1, rng), corrupt.rotate(x, 30),
                        corrupt.flip(x), corrupt.shift(x, 3, -2)])
show(plot.image_strip(strip, labels=["clean", "gauss 0.5", "mask 0.3", "s&p 0.1", "rot 30",
                                     "flip", "shift"], title="one test image, distorted"),
     "08_distortions.png")

# %% [markdown]
# ## Drawback 1: sensitivity, measured
#
# For each distortion we feed the distorted images and compare the
# reconstruction with the **clean** images: squared error summed over the
# pixels, averaged over images. The last column is how far the distortion
# itself moved the input (what a model that copies perfectly would score).

# %%
table = robustness.robustness_table(plain, X_test, seed=0)
print("plain seed model")
print(robustness.format_table(table, robustness.copy_errors(plain)))
show(robustness.figure(plain, X_test, title="plain seed model: inputs, reconstructions"),
     "08_robustness_plain.png")

# %% [markdown]
# With a 2-D code the seed model cannot copy anything: every output is one of
# the digits it can draw. So noise hurts less than you might expect, but a
# flipped or rotated digit is "corrected" into some *other* upright digit,
# far from the clean image. The copy errors are large: random pen strokes
# and pure noise U(0, 1) both come out as digit-like blobs (the last rows of
# the figure).
#
# ## Drawback 2: copying
#
# A code wider than the image (here 1,000 units for 784 pixels) can learn
# the identity map: then every input, digit or not, comes out as it went in,
# and the model has learned nothing about digits. Let us train one briefly
# and look at the same numbers. `robustness.random_strokes` draws images of
# a few straight pen strokes: not digits, but made of the same ink on the
# same black paper.

# %%
wide = ta.dense_autoencoder((784, 1000), rng=np.random.default_rng(0))
subset = X_train[:3000 if FAST else 20000]
fit(wide, subset, epochs=2 if FAST else 5)              # one line per epoch
wide_table = robustness.robustness_table(wide, X_test, seed=0)
print("over-complete 784-1000-784")
print(robustness.format_table(wide_table, robustness.copy_errors(wide)))
strokes = robustness.random_strokes(4, 784, rng)
show(plot.image_grid(np.concatenate([strokes, plain.reconstruct(strokes), wide.reconstruct(strokes)]),
                     4, row_labels=["strokes", "2-D model", "wide model"],
                     title="copying: random strokes in,\neach model's reconstruction out"),
     "08_copying.png")
show(robustness.figure(wide, X_test, title="over-complete 784-1000: inputs, reconstructions"),
     "08_robustness_wide.png")

# %% [markdown]
# Look at the rows "flipped" and "rotated": the wide model reproduces the
# flipped digit as a flipped digit, so its error against the clean image is
# close to the distortion's own (last column): it passes the input through.
# And the random strokes come out as strokes (on MNIST after 3 epochs: 3.2
# per image, against 51 for the 2-D model, which turns them into digits;
# docs/results.md). That is the copying drawback in numbers.
#
# Pure noise is different: the wide model does *not* copy it (its copy
# error there is as large as the 2-D model's). Every pixel of the noise is
# grey, where digits are mostly black, and pixels that are black in every
# training image (the border) never taught the model anything. What a model
# learns to copy is the kind of image it was trained on, which is exactly
# why a wide code plus training images lets it "cheat".
#
# ## The denoising autoencoder
#
# `ta.denoising_autoencoder(sizes, noise)` is the same network; the
# difference is in training. `fit` calls the model's `corrupt(X, rng)` on each
# mini-batch and scores the output against the clean batch:
#
#     xin = model.corrupt(xb, rng)           # e.g. gaussian(xb, 0.5, rng)
#     L   = loss(model.forward(xin), xb)     # clean target
#
# Copying is now useless (the input is not the target), so the model has to
# learn what digits look like.

# %%
denoising = ta.denoising_autoencoder((784, 512, 256, 64, 2), "gaussian:0.5",
                                     rng=np.random.default_rng(0))
fit(denoising, X_train, epochs=2 if FAST else 20)
dn_table = robustness.robustness_table(denoising, X_test, seed=0)
print(f"{'input':<16}{'plain':>10}{'denoising':>11}   (squared error per image vs clean)")
for name in table:
    print(f"{name:<16}{table[name]['sq_error_per_image']:>10.2f}"
          f"{dn_table[name]['sq_error_per_image']:>11.2f}")
show(robustness.figure(denoising, X_test, title="denoising seed model: inputs, reconstructions"),
     "08_robustness_denoising.png")

# %% [markdown]
# The denoising model pays a little on clean images and gains on noisy ones:
# it was trained for exactly that. Rotation and reflection were not in its
# training noise, so it is no better there: a model is robust to the
# distortions it was trained against. (Try `"masking:0.3"`, or add rotated
# copies of the training images.) From the command line:
#
#     tinyae train --model denoising --noise gaussian:0.5 --out runs/dae
#     tinyae robustness runs/dae/last.npz -o robustness.png
#
# ## Exercise: masking noise as a layer, with its gradient
#
# Masking noise multiplies the input by a 0/1 mask m (drawn once):
# y = m * x. Write it as a layer: `forward` is given, write `backward`
# (dL/dx from dL/dy). The check runs `tinyae.gradcheck.check_layer`, which
# compares your backward with finite differences of the forward and must
# report PASSED. Hint: which pixels can change the output?

# %%
class MyMasking:
    def __init__(self, mask):
        self.mask, self.params, self.grads = mask, {}, {}

    def forward(self, x):
        return self.mask * x

    def backward(self, dout):
        raise NotImplementedError("your turn: return dL/dx")


mask = (np.random.default_rng(1).random((5, 784)) >= 0.3).astype(np.float64)
x = np.random.default_rng(2).random((5, 784))

# %%
with exercise("masking as a layer"):
    report = check_layer(MyMasking(mask), x)
    report.assert_ok()
    print(report)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions sit here, at the end, so that trying comes first.
#
# **Masking as a layer.** y = m * x elementwise, so dy/dx = m: the gradient
# flows only through the pixels the mask kept, and a masked pixel cannot
# change the output.

# %% tags=["solution"]
class MyMasking(MyMasking):
    def backward(self, dout):
        return self.mask * dout


with exercise("masking as a layer"):
    report = check_layer(MyMasking(mask), x)
    report.assert_ok()
    print(report)
