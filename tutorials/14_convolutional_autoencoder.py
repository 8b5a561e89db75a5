# %% [markdown]
# # 14. A convolutional autoencoder
#
# Tutorial 13 built the layers: `Conv2D`, `ConvTranspose2D`, `MaxPool2D`.
# Here they make an autoencoder, the one of the book "Generative Deep
# Learning" (Foster, chapter 3): four 3x3 convolutions (32, 64, 64, 64
# filters, strides 1, 2, 2, 1) take a 28 x 28 digit down to 64 maps of 7 x 7,
# a Dense layer takes those to a 2-D code, and the decoder mirrors it with
# transposed convolutions. We put it beside the seed model of tutorial 2
# (784-512-256-64-2, dense) on the same MNIST split, trained the same way,
# and compare what each costs and what each gives: parameters, arithmetic,
# latent maps, reconstructions, test error, 5-NN accuracy of the codes. Last,
# keras-io's convolutional VAE, briefly. Nothing new is derived: every layer's
# forward and backward is tutorial 13's.
#
# *Time:* in full (all 60,000 training images, 3 epochs per model) this is
# the slowest tutorial: 26 minutes on a 2-core machine shared with other
# jobs, 4 to 11 of them per epoch of the convolutional autoencoder against
# 10 seconds for the dense one (less on an idle machine). The convolutions
# do many times the dense model's arithmetic per image (counted below), in
# NumPy. Every epoch prints its seconds.
# `TINYAE_FAST=1` trains on 3,000 images for 2 epochs, in about a minute;
# its numbers show the method, not the models' worth.

# %%
import math

import numpy as np
from matplotlib.figure import Figure

import tinyae as ta
from tinyae.evaluate.metrics import batched, knn_accuracy, mse_per_pixel
from tinyae.train import fit
from tinyae.tutorial import FAST, exercise, load, show
from tinyae.viz import plot
from tinyae.viz.latent import latent_range

X_train, y_train, data_name = load("train")
X_test, y_test, _ = load("test")
epochs, batch_size = (2, 64) if FAST else (3, 64)
print(f"{data_name}: {len(X_train):,} training and {len(X_test):,} test images; "
      f"{epochs} epoch(s), batches of {batch_size}")

# %% [markdown]
# ## Two models and their parameters
#
# Both take MNIST as rows of 784 pixels and give rows back: the convolutional
# encoder starts with `Reshape((1, 28, 28))` and its decoder ends with
# `Flatten()`, so `fit`, `encode` and the figures treat the two alike.

# %%
dense = ta.dense_autoencoder((784, 512, 256, 64, 2), rng=np.random.default_rng(0))
conv = ta.conv_autoencoder(rng=np.random.default_rng(0))
dense.summary()
print()
conv.summary()

# %% [markdown]
# ## What the convolution changes
#
# **Weight sharing.** A Dense layer from D to H units has D H + H
# parameters: every pixel has its own weight to every unit, so the seed
# model's first layer alone holds 784 x 512 + 512 = 401,920. A Conv2D with C
# input channels, O filters and a kh x kw kernel has O C kh kw + O, *whatever
# the image size*: the same kernel is used at every position. The book's
# 64 -> 64 layer holds 64 x 64 x 9 + 64 = 36,928 on a 14 x 14 map, and would
# on a 1000 x 1000 one.
#
# **Locality.** Each output reads one 3 x 3 window, so a first-layer feature
# can only be a local pattern (a stroke, an edge), and it is found wherever
# it is (a digit moved by a pixel gives the same maps, moved by a pixel). A
# Dense unit reads all 784 pixels and has to learn the same stroke separately
# at every place it might appear. Stacking convolutions with stride 2 widens
# what each unit sees: 3, 5, 9, then 17 pixels a side after the book's four
# layers, most of a digit.
#
# **The price is arithmetic.** A shared weight is used once per output
# position, a Dense weight once per image: multiply-adds per image are
# weights x positions for a convolution (positions of its output; for a
# transposed convolution, of its input, each of which stamps the kernel
# once) and just weights for a Dense layer. Counted for both models:

# %%
def uses_per_image(layer, width, out):
    """How often each of a layer's weights is used per image (``width``: its input's shape)."""
    if isinstance(layer, ta.Conv2D):
        return math.prod(out[1:])               # once per output pixel: Ho Wo
    if isinstance(layer, ta.ConvTranspose2D):
        return math.prod(width[1:])             # once per input pixel, stamping the kernel
    return 1                                    # Dense: once


def weights_and_multiply_adds(model, width=784):
    """Weights and multiply-adds per image, summed over the layers that have a W."""
    n_weights = n_madds = 0
    for layer in [*model.encoder, *model.decoder]:
        out = layer.output_width(width)
        if "W" in layer.params:
            W = layer.params["W"]
            n_weights += W.size
            n_madds += W.size * uses_per_image(layer, width, out)
        width = out
    return n_weights, n_madds


conv1 = conv.encoder[1]
C, O, (kh, kw) = conv1.in_channels, conv1.out_channels, conv1.kernel_size
print(f"first Conv2D: O C kh kw + O = {O} x {C} x {kh} x {kw} + {O} = {O * C * kh * kw + O}"
      f"   (summary: {sum(p.size for p in conv1.params.values())})")
print(f"\n{'model':>6} {'parameters':>11} {'weights':>10} {'multiply-adds per image':>25}")
for name, model in (("dense", dense), ("conv", conv)):
    n_weights, n_madds = weights_and_multiply_adds(model)
    print(f"{name:>6} {model.num_parameters():>11,} {n_weights:>10,} {n_madds:>25,}")

# %% [markdown]
# The convolutional model has about a fifth of the parameters and does many
# times the arithmetic. Most of its parameters sit in the 64 -> 64
# convolutions; its Dense layers to and from the code are small (3,136 x 2),
# where the seed model's are its largest.
#
# ## Training both the same way
#
# The same images, epochs, batch size, optimiser (Adam, lr 1e-3), loss (MSE)
# and shuffling seed. `fit` trains the convolutional layers through their
# own forward and backward (the fast path fuses only the layers it knows).

# %%
histories = {}
for name, model in (("dense", dense), ("conv", conv)):
    print(f"{name}:")
    histories[name] = fit(model, X_train, epochs=epochs, batch_size=batch_size, seed=0)
for name, h in histories.items():
    last = h.records[-1]
    print(f"{name:>6}: training loss {last.loss:.4f} after epoch {last.epoch}, "
          f"{np.mean([r.seconds for r in h.records]):.1f} s per epoch")

# %% [markdown]
# ## The two latent maps
#
# Each test image's 2-D code, coloured by its digit, and the 5-NN accuracy
# of the codes: each test code takes the majority digit of its 5 nearest
# training codes (tutorial 3). The higher it is, the better the digits
# separate in the code.

# %%
codes, accuracy = {}, {}
for name, model in (("dense", dense), ("conv", conv)):
    codes[name] = batched(model.encode, X_test)
    accuracy[name] = knn_accuracy(batched(model.encode, X_train), y_train, codes[name], y_test, k=5)

fig = Figure(figsize=(11.0, 4.6), layout="constrained")
axes = fig.subplots(1, 2)
for ax, (name, Z) in zip(axes, codes.items()):
    dots = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=2, alpha=0.6,
                      vmin=-0.5, vmax=9.5, rasterized=True)
    (x0, x1), (y0, y1) = latent_range(Z)          # 1st-99th percentiles: outliers off the axes
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("z1")
    ax.set_title(f"{name}: 5-NN accuracy {accuracy[name]:.1%}", fontsize=10)
axes[0].set_ylabel("z2")
fig.colorbar(dots, ax=axes, ticks=range(10), label="digit", shrink=0.9)
fig.suptitle("2-D codes of the test images", fontsize=11)
show(fig, "14_latent_maps.png")

# %% [markdown]
# ## Reconstructions and test error
#
# The same ten test digits through both bottlenecks of two numbers, and the
# mean squared error per pixel over the whole test set.

# %%
n = 10
rows = [X_test[:n], dense.reconstruct(X_test[:n]), conv.reconstruct(X_test[:n])]
show(plot.image_grid(np.concatenate(rows), n, row_labels=["original", "dense", "conv"],
                     title="test digits and their reconstructions"), "14_reconstructions.png")
print(f"{'model':>6} {'parameters':>11} {'test MSE per pixel':>19} {'5-NN accuracy':>14}")
for name, model in (("dense", dense), ("conv", conv)):
    error = mse_per_pixel(X_test, batched(model.reconstruct, X_test))
    print(f"{name:>6} {model.num_parameters():>11,} {error:>19.4f} {accuracy[name]:>14.1%}")

# %% [markdown]
# Read the two tables together: parameters, arithmetic, error, accuracy. In
# fast mode both models have seen 3,000 images twice, which says little
# about either. In full, after 3 epochs, the dense model had test MSE
# 0.0383 and 5-NN accuracy 77.5%, the convolutional one 0.0437 and 66.9%: a
# fifth of the parameters and locality built in did not buy a better 2-D
# code in that time (both training losses were still falling, by about 5%
# in the last epoch). For longer training change `epochs` above, or train
# from the command line: `tinyae train --model conv --epochs 20 --out
# runs/conv` (and `--model ae` for the seed model) writes the test MSE and
# the 5-NN accuracy of the codes to the run's `metrics.json`
# (`test_mse_per_pixel`, `knn5_accuracy_latent`). Both models squeeze a
# digit through the same two numbers, and the reconstructions show it:
# neither keeps fine detail.
#
# ## The convolutional VAE
#
# keras-io's variational autoencoder puts tutorial 10's Gaussian code and
# sampling node between convolutions: two Conv2D with stride 2 (32 and 64
# filters), Dense 16, the mu and logvar heads; a Dense back to 64 maps of
# 7 x 7 and transposed convolutions up to logits. `fit` trains it on the
# ELBO, as tutorial 10's: BCE summed over the pixels plus the KL term. Its
# map of mu, and digits decoded from z ~ N(0, I). (keras-io trains it for 30
# epochs, batches of 128; in fast mode expect noise more than digits.)

# %%
vae = ta.conv_variational_autoencoder(rng=np.random.default_rng(0))
print(f"convolutional VAE: {vae.num_parameters():,} parameters")
fit(vae, X_train, epochs=epochs, batch_size=batch_size, seed=0)
Mu = batched(vae.encode, X_test)
show(plot.latent_scatter(Mu, y_test, title="convolutional VAE: mu of the test images"),
     "14_vae_latent_map.png")
show(plot.image_grid(vae.sample(64, np.random.default_rng(1)), 8,
                     title="convolutional VAE: z ~ N(0, I), decoded"), "14_vae_samples.png")

# %% [markdown]
# ## Exercise: keras-io's autoencoder from the layers
#
# keras-io's "Convolutional autoencoder for image denoising" has no Dense
# layer at all. Build it from tinyae's layers, for rows of 784 pixels:
#
# - encoder: `Reshape((1, 28, 28))`; Conv2D 32 filters 3x3, 'same' padding
#   (1), ReLU, MaxPool2D 2; the same again (32 -> 32); `Flatten()`. The code
#   is the (32, 7, 7) maps, as a row of 1,568.
# - decoder: `Reshape((32, 7, 7))`; ConvTranspose2D 32 -> 32, 3x3, stride 2,
#   padding 1, output_padding 1, ReLU, twice (7 -> 14 -> 28); Conv2D 32 -> 1
#   3x3 'same', Sigmoid; `Flatten()`.
#
# Count its parameters by hand first with O C kh kw + O per convolution
# (a transposed convolution's W is (in, out, kh, kw), the same count): keras-io
# reports 28,353. Then fill in `my_keras_autoencoder` (`ta.Autoencoder(encoder,
# decoder)` with two `ta.nn.Sequential`). The check asks for 28,353
# parameters, the same parameter shapes layer for layer as tinyae's
# `keras_conv_autoencoder()`, codes of 1,568 and reconstructions of 784.
# The full version has its solution at the end of the file: try yours first.

# %%
def my_keras_autoencoder(rng):
    """keras-io's convolutional autoencoder: (N, 784) -> (N, 1568) -> (N, 784)."""
    raise NotImplementedError("build the encoder and decoder from tinyae's layers")


# %%
def check_keras_autoencoder(build):
    model = build(np.random.default_rng(0))
    shapes = [p.shape for _, p, _ in model.parameters()]
    reference = [p.shape for _, p, _ in ta.keras_conv_autoencoder().parameters()]
    print(f"parameters: {model.num_parameters():,} (keras-io: 28,353)")
    assert model.num_parameters() == 28_353, "not 28,353 parameters: which layer differs?"
    assert shapes == reference, f"parameter shapes {shapes}, expected {reference}"
    Z = model.encode(X_test[:4])
    assert Z.shape == (4, 1568), f"codes of shape {Z.shape}, expected (4, 1568)"
    assert model.decode(Z).shape == (4, 784), "the decoder must give rows of 784 pixels"
    print("the same model as keras-io's: PASSED")


with exercise("keras-io's autoencoder"):
    check_keras_autoencoder(my_keras_autoencoder)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **keras-io's autoencoder.** By hand: 32 x 1 x 9 + 32 = 320 and
# 32 x 32 x 9 + 32 = 9,248 in the encoder; 9,248 twice and 1 x 32 x 9 + 1 = 289
# in the decoder: 320 + 3 x 9,248 + 289 = 28,353. Pooling, reshapes and
# activations have none.

# %% tags=["solution"]
def my_keras_autoencoder(rng):
    """keras-io's convolutional autoencoder: (N, 784) -> (N, 1568) -> (N, 784)."""
    encoder = ta.nn.Sequential(
        ta.Reshape((1, 28, 28)),
        ta.Conv2D(1, 32, 3, padding=1, rng=rng), ta.ReLU(), ta.MaxPool2D(2),      # (32, 14, 14)
        ta.Conv2D(32, 32, 3, padding=1, rng=rng), ta.ReLU(), ta.MaxPool2D(2),     # (32, 7, 7)
        ta.Flatten())
    decoder = ta.nn.Sequential(
        ta.Reshape((32, 7, 7)),
        ta.ConvTranspose2D(32, 32, 3, stride=2, padding=1, output_padding=1, rng=rng),
        ta.ReLU(),                                                                # (32, 14, 14)
        ta.ConvTranspose2D(32, 32, 3, stride=2, padding=1, output_padding=1, rng=rng),
        ta.ReLU(),                                                                # (32, 28, 28)
        ta.Conv2D(32, 1, 3, padding=1, rng=rng), ta.Sigmoid(),
        ta.Flatten())
    return ta.Autoencoder(encoder, decoder)


print(f"by hand: {320 + 3 * (32 * 32 * 9 + 32) + (1 * 32 * 9 + 1):,}")
check_keras_autoencoder(my_keras_autoencoder)
