# %% [markdown]
# # 2. Train the seed autoencoder on MNIST
#
# The encoder f maps an image X in R^784 to a code Z = f(X) in R^2; the
# decoder maps Z back to a reconstruction X' in R^784. Training minimises the
# reconstruction error, the mean squared error l(X, X') = 1/n sum (x_i - x'_i)^2.
#
# The architecture is the one from the *seed post*, the blog post on
# autoencoders that tinyae started from, so we call it the *seed model*:
# 784-512-256-64-2 for the encoder and the mirror image for the decoder, ReLU
# between layers, a sigmoid on the output (pixels live in [0, 1]), Adam with
# learning rate 1e-3.

# %%
import numpy as np

import tinyae as ta
from tinyae import plot
from tinyae.metrics import PCA, batched, mse_per_pixel
from tinyae.train import fit
from tinyae.tutorial import FAST, MODEL_PATH, load, show

X_train, y_train, data_name = load("train")
X_test, y_test, _ = load("test")
print(f"{data_name}: {X_train.shape[0]:,} training and {X_test.shape[0]:,} test images, "
      f"{X_train.shape[1]} pixels each, values in [{X_train.min():.0f}, {X_train.max():.0f}]")

# %% [markdown]
# ## The model and its parameter count
#
# A Dense layer from d to h inputs has d * h weights and h biases. The seed
# post lists 401,920 / 131,328 / 16,448 / 130 for the encoder and
# 192 / 16,640 / 131,584 / 402,192 for the decoder: 1,100,434 in all.

# %%
model = ta.dense_autoencoder((784, 512, 256, 64, 2), rng=np.random.default_rng(0))
model.summary()
seed_table = [401_920, 131_328, 16_448, 130, 192, 16_640, 131_584, 402_192]
dense = [layer for part in (model.encoder, model.decoder) for layer in part
         if isinstance(layer, ta.Dense)]
ours = [d.in_features * d.out_features + d.out_features for d in dense]     # d h + h
print("\nlayer  seed post  tinyae")
for k, (a, b) in enumerate(zip(seed_table, ours)):
    print(f"{k:>5}  {a:>9,}  {b:>6,}")
print(f"total  {sum(seed_table):>9,}  {model.num_parameters():,}")

# %% [markdown]
# ## Training
#
# `fit` shuffles the images every epoch, cuts them into mini-batches of 256
# and runs forward, loss, backward and an Adam step on each. The progress bar
# shows the running loss; each epoch ends with a line of train and validation
# loss.

# %%
epochs = 3 if FAST else 20
history = fit(model, X_train, epochs=epochs, batch_size=256, validation=(X_test,), seed=0)
ta.save(model, MODEL_PATH)
print(f"saved the trained model to {MODEL_PATH}")
show(plot.loss_curves(history), "02_loss.png")

# %% [markdown]
# ## Reconstructions
#
# Top row: test images; bottom row: what comes back through the 2-number
# bottleneck. Shapes and strokes survive, fine detail does not.

# %%
show(plot.reconstructions(X_test[:10], model.reconstruct(X_test[:10])), "02_reconstructions.png")

# %% [markdown]
# ## Against PCA
#
# PCA with two components is the best *linear* 2-D code: encode with the top
# two principal directions, decode by projecting back. The autoencoder is
# non-linear, so it should reconstruct better from the same two numbers.

# %%
pca = PCA(2).fit(X_train)
ae_mse = mse_per_pixel(X_test, batched(model.reconstruct, X_test))
pca_mse = mse_per_pixel(X_test, pca.decode(pca.encode(X_test)))
print(f"test MSE per pixel   autoencoder {ae_mse:.4f}   PCA-2 {pca_mse:.4f}   "
      f"ratio {ae_mse / pca_mse:.2f}")
# With the full 20 epochs on MNIST the ratio is about 0.63: the same two numbers per
# image, a third less error. (Fast mode trains too briefly to show it.)
