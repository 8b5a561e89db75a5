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
from tinyae.evaluate.metrics import batched, mse_per_pixel
from tinyae.models.pca import PCA
from tinyae.train import fit
from tinyae.tutorial import FAST, MODEL_PATH, exercise, load, show
from tinyae.viz import plot

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

# %% [markdown]
# ## Exercise: PCA-2 by hand
#
# Compute the PCA-2 test error yourself, with `np.linalg.svd` instead of
# tinyae's `PCA`. Centre the training images on their mean image mu:
# X_c = X_train - mu. If X_c = U S V^T, the first two columns of V are the
# principal directions, V_2 of shape (784, 2). The SVD of X_c itself takes a
# minute or more on 60,000 images; the SVD of the 784 x 784 matrix
# X_c^T X_c = V S^2 V^T has the same V and takes a second. Encode
# Z = (X_test - mu) V_2, decode X' = Z V_2^T + mu, and return the mean
# squared error per pixel. The check compares your number with `pca_mse`
# above, tinyae's: they must agree to 0.1%. The full version has its
# solution at the end of the file: try yours first.

# %%
def pca2_test_error(X_train, X_test):
    """Mean squared error per pixel of X_test rebuilt from X_train's top two principal directions."""
    raise NotImplementedError("compute the PCA-2 test error with np.linalg.svd")


# %%
with exercise("PCA-2 by hand"):
    mine = pca2_test_error(X_train, X_test)
    print(f"PCA-2 test MSE per pixel   yours {mine:.5f}   tinyae {pca_mse:.5f}")
    assert np.isclose(mine, pca_mse, rtol=1e-3), "not tinyae's PCA-2 error: centred? right singular vectors?"

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **PCA-2 by hand.** The rows of V^T are the principal directions, largest
# singular value first; their signs do not matter for the reconstruction.

# %% tags=["solution"]
def pca2_test_error(X_train, X_test):
    """Mean squared error per pixel of X_test rebuilt from X_train's top two principal directions."""
    mu = X_train.mean(axis=0)
    Xc = X_train - mu
    _, _, Vt = np.linalg.svd(Xc.T @ Xc)                    # X_c^T X_c = V S^2 V^T
    V2 = Vt[:2].T                                          # (784, 2)
    rebuilt = (X_test - mu) @ V2 @ V2.T + mu
    return float(np.mean((X_test - rebuilt) ** 2))


mine = pca2_test_error(X_train, X_test)
print(f"PCA-2 test MSE per pixel   yours {mine:.5f}   tinyae {pca_mse:.5f}")
assert np.isclose(mine, pca_mse, rtol=1e-3), "not tinyae's PCA-2 error"
