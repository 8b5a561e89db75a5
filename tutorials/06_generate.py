# %% [markdown]
# # 6. Generate: new digits from the latent space, and why it is hard
#
# If we knew which codes are "likely", we could draw new codes and decode
# them into new images. The simplest model of the codes is a Gaussian fitted
# to them: mean mu and covariance Sigma of the training codes.

# %%
import numpy as np

from tinyae.evaluate.metrics import batched
from tinyae.tutorial import exercise, load, show, trained_model
from tinyae.viz import plot
from tinyae.viz.latent import fit_gaussian, latent_range, sample_gaussian

model = trained_model()
X_train, y_train, _ = load("train")
Z = batched(model.encode, X_train)
mu, cov = fit_gaussian(Z)
print("mean", mu.round(2), "\ncovariance\n", cov.round(2))

# %%
rng = np.random.default_rng(0)
samples = sample_gaussian(mu, cov, 20, rng).astype(np.float32)
fig = plot.latent_scatter(Z, y_train, ranges=latent_range(Z), title="20 samples from one Gaussian")
fig.axes[0].scatter(samples[:, 0], samples[:, 1], marker="x", c="black", s=60)
show(fig, "06_samples_on_map.png")
show(plot.image_strip(model.decode(samples[:10]), title="decoded Gaussian samples"), "06_samples.png")

# %% [markdown]
# Many samples land between clusters or in empty corners the single Gaussian
# does not know are empty, and decode to smudges. The codes of a plain
# autoencoder are not Gaussian at all: they form arms and fans of uneven
# density, because nothing in the training asked them to be anything else.
#
# ## One Gaussian per digit
#
# Using the labels, fit a Gaussian to each digit's codes. Samples now stay
# inside a cluster, and most decode to that digit.

# %%
rows = []
for d in range(10):
    mu_d, cov_d = fit_gaussian(Z[y_train == d])
    rows.append(model.decode(sample_gaussian(mu_d, cov_d, 8, rng).astype(np.float32)))
fig = plot.image_grid(np.concatenate(rows), 8, title="8 samples from each digit's Gaussian",
                      row_labels=[f"digit {d}" for d in range(10)])
show(fig, "06_per_digit.png")

# %% [markdown]
# ## What this motivates
#
# A plain autoencoder is trained only to reconstruct. Nothing makes its
# latent space smooth, filled, or of a known shape, so:
#
# - **sampling is guesswork**: we must fit a density to the codes afterwards,
#   and the holes between clusters decode to nonsense;
# - **it can copy instead of understand**: with a wide enough code it learns
#   something close to the identity, and small changes of the input -- noise,
#   a slight rotation -- can move the code a long way.
#
# Two variants address this. A **denoising autoencoder** is fed corrupted
# images X + noise and asked to reconstruct the clean X, so it must learn the
# structure of digits rather than copy pixels. A **variational autoencoder**
# makes the encoder output a distribution N(mu(X), sigma(X)^2) and adds a KL
# term that pulls it towards N(0, I): the codes then fill a known Gaussian, so
# sampling Z ~ N(0, I) and decoding gives plausible digits.

# %% [markdown]
# ## Exercise: fit the Gaussian yourself
#
# Fit the Gaussian to the codes without `fit_gaussian` or `np.cov`: the mean
# mu is the average code; the covariance is Sigma = C^T C / (N - 1) with C
# the centred codes Z - mu (N - 1, not N: the unbiased estimate, as `np.cov`
# and tinyae use). Work in float64. The check compares your mu and Sigma with
# `tinyae.viz.latent.fit_gaussian` on all the training codes and on the codes of
# the digit 1 alone. The full version has its solution at the end of the
# file: try yours first.

# %%
def my_fit_gaussian(Z):
    """Mean (Z,) and covariance (Z, Z) of the codes Z (N, Z)."""
    raise NotImplementedError("compute the mean and the covariance of the codes")


# %%
def check_fit(fit):
    for name, codes in (("all codes", Z), ("the 1s", Z[y_train == 1])):
        mine, ref = fit(codes), fit_gaussian(codes)
        assert np.allclose(mine[0], ref[0]), f"{name}: the mean differs from fit_gaussian's"
        assert np.allclose(mine[1], ref[1], rtol=1e-6, atol=0), \
            f"{name}: the covariance differs from fit_gaussian's (divided by N - 1?)"
    print("my_fit_gaussian agrees with fit_gaussian")


with exercise("fit the Gaussian yourself"):
    check_fit(my_fit_gaussian)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **Fit the Gaussian yourself.** One matrix product sums the outer products
# of all the centred codes.

# %% tags=["solution"]
def my_fit_gaussian(Z):
    """Mean (Z,) and covariance (Z, Z) of the codes Z (N, Z)."""
    Z = np.asarray(Z, np.float64)
    mu = Z.mean(axis=0)
    C = Z - mu
    return mu, C.T @ C / (len(Z) - 1)


check_fit(my_fit_gaussian)
