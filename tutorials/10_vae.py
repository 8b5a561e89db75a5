# %% [markdown]
# # 10. The variational autoencoder, by hand
#
# Tutorial 6 ended on a problem: a plain autoencoder's codes have no known
# shape, so to make new digits we had to fit a Gaussian to them afterwards,
# and samples that fell into the holes decoded to smudges. A variational
# autoencoder (Kingma & Welling 2014) asks for the shape while training.
#
# The encoder gives each image a Gaussian q(z|x) = N(mu(x), sigma(x)^2), not a
# point; a code z is *drawn* from it and decoded. Training maximises the
# evidence lower bound (ELBO), in two lines:
#
#     log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z)),     p(z) = N(0, I)
#     loss(x)   = BCE(x, decoder(z)) summed over the 784 pixels + KL(q(z | x) || N(0, I))
#
# The first term asks for good reconstructions; the second pulls every q(z|x)
# towards the prior N(0, I), so the codes fill a known Gaussian and sampling
# z ~ N(0, I) lands where the decoder has been trained.
#
# *Time:* about 8 minutes on a 2-core laptop: it trains four VAEs for 20
# epochs each (and the seed model, if tutorial 2 has not saved it), each
# printing a line per epoch. `TINYAE_FAST=1` runs it on a subset in under a
# minute.

# %%
import numpy as np
from matplotlib.figure import Figure

import tinyae as ta
from tinyae.evaluate.metrics import batched
from tinyae.evaluate.vae_eval import elbo_terms, quantile_grid_figure, samples
from tinyae.gradcheck import check_layer, check_penalty
from tinyae.models.vae import GaussianKL, Reparameterize, variational_autoencoder
from tinyae.train import fit
from tinyae.tutorial import FAST, exercise, load, show, trained_model
from tinyae.viz import plot

rng = np.random.default_rng(0)

# %% [markdown]
# ## The KL term in closed form, and its derivative
#
# For q = N(mu, sigma^2) per code dimension, with logvar = log sigma^2,
#
#     KL(q || N(0, 1)) = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2)
#                      = 1/2 (mu^2 + exp(logvar) - 1 - logvar)
#
# summed over the Z code dimensions and averaged over the N images of a batch.
# It is 0 exactly when mu = 0 and logvar = 0. Its derivatives are one line each:
#
#     dKL/dmu     = mu / N
#     dKL/dlogvar = (exp(logvar) - 1) / (2N)
#
# The encoder outputs logvar rather than sigma because logvar may be any real
# number, while sigma must stay positive.

# %%
kl = GaussianKL()
mu, logvar = rng.standard_normal((5, 2)), rng.uniform(-2, 1, (5, 2))
print("KL at the prior:", kl.forward(np.zeros((5, 2)), np.zeros((5, 2))))
print("KL here:", round(kl.forward(mu, logvar), 4))
dmu, dlogvar = kl.backward()
print("by hand:", np.allclose(dmu, mu / 5), np.allclose(dlogvar, (np.exp(logvar) - 1) / 10))

# %% [markdown]
# `tinyae.gradcheck.check_penalty` checks anything with `forward(Z) -> float`
# and `backward() -> dZ`. The KL term takes two arrays, so give it one: the
# columns of Z are [mu | logvar].


# %%
class KLOfBoth:
    """KL as a penalty on Z = [mu | logvar], for the gradient check."""

    def __init__(self, kl):
        self.kl = kl

    def forward(self, Z):
        mu, logvar = np.split(Z, 2, axis=1)
        return self.kl.forward(mu, logvar)

    def backward(self):
        return np.hstack(self.kl.backward())


print(check_penalty(KLOfBoth(GaussianKL()), np.hstack([mu, logvar])))

# %% [markdown]
# ## The reparameterisation trick: a node with its own backward
#
# Sampling z ~ N(mu, sigma^2) has no derivative with respect to mu and sigma.
# Draw the randomness first, eps ~ N(0, I), and the sample becomes an
# ordinary function of mu and logvar:
#
#     forward:   z = mu + exp(logvar / 2) * eps
#     backward:  dmu = dz,   dlogvar = dz * eps * exp(logvar / 2) / 2
#
# With eps held fixed, it is a layer like any other, so `check_layer` checks
# it. (Its input is again [mu | logvar].)


# %%
class SamplingLayer:
    """Reparameterize as a layer on x = [mu | logvar], with eps frozen."""

    def __init__(self, eps):
        self.node, self.eps, self.params, self.grads = Reparameterize(), eps, {}, {}

    def forward(self, x):
        mu, logvar = np.split(x, 2, axis=1)
        return self.node.forward(mu, logvar, self.eps)

    def backward(self, dz):
        return np.hstack(self.node.backward(dz))


eps = rng.standard_normal((5, 2))
print(check_layer(SamplingLayer(eps), np.hstack([mu, logvar])))

# %% [markdown]
# The model, `tinyae.variational_autoencoder()`, is the seed's network with
# the code layer split into two heads: body 784-512-256-64, heads 64 -> 2 for
# mu and for logvar, the sampling node, and the seed's decoder 2-64-256-512-784
# ending in logits (`decode` applies the sigmoid). Its backward goes through
# the decoder, the sampling node, adds beta times the KL gradient, then the two
# heads and the body. `fit` trains it like the others: the reconstruction term
# is the model's default loss (`BernoulliNLL`) and the KL term its `penalty()`.

# %%
X_train, y_train, data_name = load("train")
X_test, y_test, _ = load("test")
epochs = 3 if FAST else 20
print(f"{data_name}: {len(X_train):,} training images, {epochs} epochs")

vae = variational_autoencoder(rng=np.random.default_rng(0))
vae.summary()
history = fit(vae, X_train, epochs=epochs, batch_size=128 if FAST else 256)
r = history.records[-1]
print(f"after epoch {r.epoch}: loss {r.loss:.1f} = reconstruction {r.reconstruction:.1f} "
      f"+ KL {r.penalty:.2f} (nats per image)")

# %% [markdown]
# ## What goes wrong with a mean-reduced loss
#
# A common slip: use the usual binary cross-entropy, which averages over the
# 784 pixels as well as over the images, and add the KL term (a sum over the
# code). The reconstruction term is then 784 times too small against the KL,
# and the cheapest way to lower the loss is KL = 0: every q(z|x) becomes the
# prior, the code says nothing about the image, and every image decodes to the
# same average blur. This is *posterior collapse*.

# %%
mean_vae = variational_autoencoder(rng=np.random.default_rng(0))
fit(mean_vae, X_train, epochs=epochs, batch_size=128 if FAST else 256,
    loss=ta.BCE(from_logits=True))
for name, model in (("summed over pixels", vae), ("mean over pixels", mean_vae)):
    t = elbo_terms(model, X_test, np.random.default_rng(0))
    print(f"{name:>20}: test -ELBO {t['neg_elbo'].mean():6.1f} = reconstruction "
          f"{t['reconstruction'].mean():6.1f} + KL {t['kl'].mean():5.2f}")
show(plot.reconstructions(X_test[:10], mean_vae.reconstruct(X_test[:10]),
                          title="mean-reduced loss: every reconstruction is the same blur"),
     "10_collapse.png")

# %% [markdown]
# ## The map of mu, and samples from the prior
#
# The codes (here mu, the centre of each q) are pulled towards N(0, I): a
# round cloud around the origin with no far-flung arms. Sampling is now what
# the prior says: z ~ N(0, I), decoded. Beside it, the plain autoencoder of
# tutorial 2 with the best it can do: a Gaussian fitted to its codes.

# %%
Mu = batched(vae.encode, X_test)
show(plot.latent_scatter(Mu, y_test, title="VAE: mu of the test images"), "10_latent_map.png")
plain = trained_model()
sample_rng = np.random.default_rng(1)
show(plot.image_grid(vae.sample(64, sample_rng), 8, title="VAE: z ~ N(0, I), decoded"),
     "10_vae_samples.png")
show(plot.image_grid(samples(plain, 64, sample_rng, X_train), 8,
                     title="plain autoencoder: a Gaussian fitted to its codes"),
     "10_plain_samples.png")

# %% [markdown]
# ## The decoded grid, on the prior's scale
#
# A grid that is even in z wastes most of its cells on the prior's tails.
# Kingma & Welling space it evenly in *probability* instead: a linearly spaced
# unit square pushed through the inverse normal CDF
# (`statistics.NormalDist().inv_cdf`), so each cell holds the same prior mass.

# %%
show(quantile_grid_figure(vae, n=15), "10_quantile_grid.png")

# %% [markdown]
# ## beta: how hard the prior pulls
#
# Weighing the KL term by beta (beta-VAE, Higgins et al. 2017) trades
# reconstruction for a tidier code: a small beta lets the clusters spread out
# and separate (a plain autoencoder at beta = 0, plus noise); a large one
# squeezes them into the prior and mixes digits. (All three maps share axes.)

# %%
fig = Figure(figsize=(13.0, 4.4), layout="constrained")
axes = fig.subplots(1, 3, sharex=True, sharey=True)
for ax, beta in zip(axes, (0.1, 1.0, 4.0)):
    model = vae if beta == 1.0 else variational_autoencoder(beta=beta, rng=np.random.default_rng(0))
    if model is not vae:
        print(f"beta = {beta}:")
        fit(model, X_train, epochs=epochs, batch_size=128 if FAST else 256)
    Z = batched(model.encode, X_test)
    t = elbo_terms(model, X_test, np.random.default_rng(0))
    dots = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=2, vmin=-0.5, vmax=9.5,
                      rasterized=True)
    ax.set_xlim(-4, 4)                       # the same axes for all three: the prior's scale
    ax.set_ylim(-4, 4)
    ax.set_xlabel("mu_1")
    ax.set_title(f"beta = {beta}: reconstruction {t['reconstruction'].mean():.0f}, "
                 f"KL {t['kl'].mean():.1f}", fontsize=10)
axes[0].set_ylabel("mu_2")
fig.colorbar(dots, ax=axes, ticks=range(10), label="digit", shrink=0.9)
fig.suptitle("mu of the test images for three betas (reconstruction and KL in nats per image)",
             fontsize=11)
show(fig, "10_beta.png")

# %% [markdown]
# ## Exercise: the KL term for a wider prior
#
# N(0, I) is a choice, not a law. Write the KL term for the prior
# p(z) = N(0, s^2) in every code dimension, forward and backward. The KL
# between two Gaussians in one dimension is
#
#     KL(N(m1, v1) || N(m2, v2)) = 1/2 (log(v2 / v1) + (v1 + (m1 - m2)^2) / v2 - 1);
#
# put in m1 = mu, v1 = exp(logvar), m2 = 0, v2 = s^2, sum over the code and
# average over the batch, as `GaussianKL` does; then differentiate with
# respect to mu and logvar.
#
# Fill in `WidePriorKL` below. The check asks three things: at s = 1 it
# must give what tinyae's `GaussianKL` gives (value and gradients); at
# s = 2 it must be 0 when q is the prior itself (mu = 0, logvar = log 4);
# and `check_penalty` (on [mu | logvar], with `KLOfBoth` from above) must
# report PASSED at s = 2.

# %%
class WidePriorKL:
    """KL(N(mu, exp(logvar)) || N(0, s^2)), summed over the code, averaged over the batch."""

    def __init__(self, s):
        self.s = s

    def forward(self, mu, logvar) -> float:
        raise NotImplementedError("forward: the KL as a float")

    def backward(self):
        raise NotImplementedError("backward: (dKL/dmu, dKL/dlogvar), each of mu's shape")


def check_wide_prior_kl(cls):
    """The three checks of the exercise; an AssertionError says which one failed."""
    ours, theirs = GaussianKL(), cls(1.0)
    assert np.isclose(theirs.forward(mu, logvar), ours.forward(mu, logvar), rtol=1e-12), \
        "at s = 1 the value differs from GaussianKL's"
    for mine, reference, name in zip(theirs.backward(), ours.backward(), ("dmu", "dlogvar")):
        assert np.allclose(mine, reference, rtol=1e-12, atol=0), f"at s = 1, {name} differs"
    at_prior = cls(2.0).forward(np.zeros_like(mu), np.full_like(logvar, np.log(4.0)))
    assert abs(at_prior) < 1e-12, f"KL(prior || prior) should be 0, got {at_prior}"
    report = check_penalty(KLOfBoth(cls(2.0)), np.hstack([mu, logvar]))
    print(report)
    assert report.passed, report


# %%
with exercise("the KL term for a wider prior"):
    check_wide_prior_kl(WidePriorKL)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions sit here, at the end, so that trying comes first.
#
# **The KL term for a wider prior.** With v1 = exp(logvar) and v2 = s^2,
#
#     KL = (1/N) sum 1/2 (mu^2 / s^2 + exp(logvar) / s^2 - 1 - logvar + log s^2)
#     dKL/dmu     = mu / (N s^2)
#     dKL/dlogvar = (exp(logvar) / s^2 - 1) / (2N)
#
# At s = 1 these are `GaussianKL`'s formulas. A wider prior costs less KL
# for a spread-out code, so the clusters may spread further before the
# prior pulls them back.

# %% tags=["solution"]
class WidePriorKL(WidePriorKL):
    def forward(self, mu, logvar) -> float:
        self._cache = (mu, logvar)
        v2 = self.s ** 2
        return float(0.5 * np.sum(mu ** 2 / v2 + np.exp(logvar) / v2 - 1 - logvar + np.log(v2))
                     / len(mu))

    def backward(self):
        mu, logvar = self._cache
        n, v2 = len(mu), self.s ** 2
        return mu / (n * v2), (np.exp(logvar) / v2 - 1) / (2 * n)


with exercise("the KL term for a wider prior"):
    check_wide_prior_kl(WidePriorKL)
