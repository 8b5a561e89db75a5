"""How good a variational autoencoder is: the ELBO's two terms, log p(x), and its figures.

    -ELBO(x)  = E_q[-log p(x | z)] + KL(q(z | x) || p(z))            >= -log p(x)
    log p(x) ~= log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),   z_k ~ q(z | x)

The second line is the importance-weighted estimate of Burda, Grosse &
Salakhutdinov (2015): a lower bound on log p(x) that tightens as K grows
(K = 1 is the ELBO). All numbers are nats per image, computed in float64.
"""
from statistics import NormalDist

import numpy as np

from ..nn.functional import bce_with_logits
from ..viz import plot
from ..viz.latent import fit_gaussian, sample_gaussian
from ..models.autoencoder import target_of
from ..progress import Progress
from ..train.loop import resolve_backend
from ..train.threads import BlasPool
from .metrics import batched, knn_accuracy, mse_per_pixel

LOG_2PI = np.log(2 * np.pi)


def _bernoulli_log_likelihood(logits, X):
    """log p(x | z) = -sum_d BCE(x_d, sigmoid(logit_d)), per image: (..., D) -> (...)."""
    z = np.asarray(logits, np.float64)
    return -np.sum(bce_with_logits(z, X), axis=-1)


def elbo_terms(model, X, rng, batch_size=1000):
    """Per-image reconstruction term, KL term and negative ELBO, one eps sample per image.

    Returns a dict of three (N,) float64 arrays: "reconstruction" (-log p(x | z)),
    "kl" and "neg_elbo" (their sum; beta is not applied: this is the ELBO).
    """
    rec, kl = [], []
    for i in range(0, len(X), batch_size):
        xb = np.asarray(X[i:i + batch_size])
        mu, logvar = (a.astype(np.float64) for a in model.encode(xb, logvar=True))
        z = mu + np.exp(logvar / 2) * rng.standard_normal(mu.shape)
        logits = model.logits(z.astype(model.dtype), model.condition(xb))
        rec.append(-_bernoulli_log_likelihood(logits, np.asarray(target_of(model, xb),
                                                                 np.float64)))
        kl.append(0.5 * np.sum(mu * mu + np.exp(logvar) - 1 - logvar, axis=1))
    rec, kl = np.concatenate(rec), np.concatenate(kl)
    return {"reconstruction": rec, "kl": kl, "neg_elbo": rec + kl}


def iw_log_likelihood(model, X, k=100, rng=None, batch_size=64, progress=False):
    """The importance-weighted estimate of log p(x) with ``k`` samples, per image: (N,).

    log w_k = log p(x | z_k) + log N(z_k; 0, I) - log N(z_k; mu, sigma^2)
    log p(x) ~= logsumexp_k(log w_k) - log k

    That is k decodes per image, a million for MNIST's test set at k = 100. They
    run one sample of ``batch_size`` images a call (through the convolutional
    VAE's decoder 5,000 codes a call cost 1.3 ms a code, 64 cost 0.3 ms: the
    activations stay in the caches), on one BLAS thread (two are slower at these
    sizes), on the fast path unless ``TINYAE_BACKEND=numpy``. ``progress``: a bar.
    """
    if k < 1:
        raise ValueError(f"iw_log_likelihood: k (samples per image) must be >= 1, got {k}")
    if batch_size < 1:
        raise ValueError(f"iw_log_likelihood: batch_size (images a call) must be >= 1, got "
                         f"{batch_size}")
    rng = np.random.default_rng(0) if rng is None else rng
    decoder, pool = _decoding_view(model), BlasPool()
    bar = Progress(progress, 1, -(-len(X) // batch_size), what=f"log p(x), {k} samples")
    out = []
    try:
        pool.set(1)
        bar.start(1)
        for i in range(0, len(X), batch_size):
            xb = np.asarray(X[i:i + batch_size], np.float64)                 # (B, D)
            mu, logvar = (a.astype(np.float64) for a in model.encode(xb, logvar=True))
            eps = rng.standard_normal((k,) + mu.shape)                        # (k, B, Z)
            z = mu + np.exp(logvar / 2) * eps
            y, target = model.condition(xb), target_of(model, xb)
            log_px_z = np.stack([_bernoulli_log_likelihood(
                decoder.logits(z_s.astype(model.dtype), y), target) for z_s in z])  # (k, B)
            log_pz = -0.5 * np.sum(z * z + LOG_2PI, axis=-1)
            log_qz = -0.5 * np.sum(eps * eps + logvar + LOG_2PI, axis=-1)
            log_w = log_px_z + log_pz - log_qz
            top = log_w.max(axis=0)                                            # stable logsumexp
            out.append(top + np.log(np.mean(np.exp(log_w - top), axis=0)))
            bar.step()
    finally:
        bar.close()
        pool.restore()
    return np.concatenate(out)


def _decoding_view(model):
    """``model`` on the fast path (the same arrays, fused kernels) unless the plain path
    is asked for (``TINYAE_BACKEND=numpy``) or Numba is missing."""
    if resolve_backend() == "numpy":
        return model
    from ..fast import accelerate          # here: it imports Numba
    return accelerate(model)


def evaluate_vae(model, X_train, y_train, X_test, y_test, k=5, iw_samples=100, seed=0,
                 progress=False):
    """The metrics of ``tinyae train --model vae``, on the test set (nats per image);
    ``progress``: a bar over the importance-weighted estimate, the long part."""
    rng = np.random.default_rng(seed)
    terms = elbo_terms(model, X_test, rng)
    mu_train, mu_test = batched(model.encode, X_train), batched(model.encode, X_test)
    m = {"test_neg_elbo_per_image": float(terms["neg_elbo"].mean()),
         "test_reconstruction_per_image": float(terms["reconstruction"].mean()),
         "test_kl_per_image": float(terms["kl"].mean()),
         "test_mse_per_pixel_of_mu": mse_per_pixel(X_test, batched(model.decode, mu_test)),
         f"knn{k}_accuracy_mu": knn_accuracy(mu_train, y_train, mu_test, y_test, k)}
    if iw_samples:
        m[f"test_log_px_iw{iw_samples}"] = float(iw_log_likelihood(model, X_test, iw_samples,
                                                                   rng, progress=progress).mean())
    return m


# --- latent points and figures ---------------------------------------------------------
def quantile_grid(n=20):
    """n x n codes on Gaussian quantiles: cell centres of the unit square through the inverse CDF.

    Equal steps in probability, not in z, as in Kingma & Welling's manifold
    figure: each cell holds the same prior mass. Rows from top (high z2) to
    bottom, like ``tinyae.viz.latent.grid``. Shape (n*n, 2).
    """
    if n < 1:
        raise ValueError(f"quantile_grid: n must be >= 1, got {n}")
    q = np.array([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])
    gx, gy = np.meshgrid(q, q[::-1])
    return np.column_stack([gx.ravel(), gy.ravel()])


def quantile_grid_figure(model, n=20, path=None, title="decoded Gaussian quantiles"):
    """Decode ``quantile_grid(n)`` of a 2-D code; ticks at the quantiles' z values."""
    if model.latent_width != 2:
        raise ValueError(f"the quantile grid needs a 2-D code; this model's code has "
                         f"{model.latent_width} dimensions")
    Z = quantile_grid(n)
    fig = plot._figure(6.0, 6.0)
    ax = fig.subplots()
    ax.imshow(plot.tile(model.decode(Z.astype(model.dtype)), n, pad=0), cmap="gray",
              vmin=0, vmax=1)
    ticks = [0, n // 2, n - 1]
    ax.set_xticks([28 * t + 14 for t in ticks], [f"{Z[t, 0]:.2f}" for t in ticks])
    ax.set_yticks([28 * t + 14 for t in ticks], [f"{Z[t * n, 1]:.2f}" for t in ticks])
    ax.set_xlabel("z1 (Gaussian quantiles)")
    ax.set_ylabel("z2")
    ax.set_title(title, fontsize=10)
    return plot._save(fig, path)


def samples(model, n, rng, X_fit=None):
    """n new images: prior samples from a VAE (``model.sample``'s draws); from a plain
    autoencoder, decoded draws from a Gaussian fitted to its codes of ``X_fit``. Decoded
    in batches, so a wide decoder's activations stay small for any n."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"samples: n must be a positive integer, got {n!r}")
    if hasattr(model, "sample"):        # the codes model.sample(n, rng) draws, in batches
        Z = rng.standard_normal((int(n), model.latent_width)).astype(model.dtype)
        return batched(model.decode, Z)
    if X_fit is None:
        raise ValueError("a plain autoencoder has no prior: pass X_fit, the images whose codes "
                         "the Gaussian is fitted to")
    mean, cov = fit_gaussian(batched(model.encode, X_fit))
    return batched(model.decode, sample_gaussian(mean, cov, int(n), rng).astype(model.dtype))
