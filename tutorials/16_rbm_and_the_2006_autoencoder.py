# %% [markdown]
# # 16. Before backprop: RBMs and the 2006 autoencoder
#
# The seed post sets the autoencoder beside the Restricted Boltzmann
# Machine, which has "almost the same goal": learn a compact description of
# the data. In 2006 the two met. Hinton & Salakhutdinov (Science 313) could
# not train a deep autoencoder (784-1000-500-250-30) from random weights
# with the methods of the day, so they first trained a stack of RBMs, one
# per layer, then *unrolled* the stack into an encoder and a decoder and
# fine-tuned it with backprop: 3.00 squared error per MNIST test image,
# against 13.87 for PCA with 30 components.
#
# This lesson derives the RBM's energy and its learning rule (contrastive
# divergence), checks both by enumerating every state of a tiny RBM,
# trains one on MNIST and looks at its filters and samples, then pretrains
# a small stack, unrolls it and fine-tunes it against the same network from
# random weights. Last, a relative from 2011 with a hand-derived gradient:
# the contractive autoencoder.
#
# *Time:* about 2.5 minutes in full on a 2-core machine. `TINYAE_FAST=1` uses
# 3,000 images and fewer epochs; its numbers show the method, not the
# models' worth.

# %%
import itertools

import numpy as np

import tinyae as ta
from tinyae.evaluate.metrics import batched, sq_error_per_image
from tinyae.gradcheck import check_model
from tinyae.models.rbm import RBM, pretrain_stack, train_rbm, unroll
from tinyae.train import fit
from tinyae.tutorial import FAST, exercise, load, show
from tinyae.viz import plot

X_train, y_train, data_name = load("train")
X_test, y_test, _ = load("test")
print(f"{data_name}: {len(X_train):,} training and {len(X_test):,} test images")

# %% [markdown]
# ## The energy and its two conditionals
#
# An RBM has visible units v (the D pixels) and hidden units h (H of them),
# each 0 or 1, connected only across the two layers. It scores every joint
# state with an energy
#
#     E(v, h) = -v^T W h - b_v^T v - b_h^T h,        p(v, h) = exp(-E(v, h)) / Z
#
# where Z sums exp(-E) over all 2^(D + H) states: hopeless to compute for
# MNIST, and never needed. With v fixed, the energy is a sum of one term per
# hidden unit, so the hidden units are independent given v, and each is a
# logistic unit:
#
#     p(h_j = 1 | v) = sigmoid(b_h_j + v^T W[:, j])
#     p(v_i = 1 | h) = sigmoid(b_v_i + W[i, :] h)          (the same argument, swapped)
#
# Summing h out of p(v, h) term by term gives the *free energy*, with
# p(v) = exp(-F(v)) / Z:
#
#     F(v) = -b_v^T v - sum_j log(1 + exp(b_h_j + v^T W[:, j]))
#
# A tiny RBM (D = 4, H = 3) has 128 joint states, few enough to check all
# three formulas against brute force.

# %%
tiny = RBM(4, 3, rng=np.random.default_rng(0), dtype=np.float64)
for p in tiny.params().values():
    p[...] = np.random.default_rng(1).normal(0, 1, p.shape)       # a model with some shape
V_all = np.array(list(itertools.product([0, 1], repeat=4)), float)     # (16, 4)
H_all = np.array(list(itertools.product([0, 1], repeat=3)), float)     # (8, 3)
E = np.array([[tiny.energy(v[None], h[None])[0] for h in H_all] for v in V_all])   # (16, 8)
joint = np.exp(-E) / np.exp(-E).sum()
p_h_given_v = joint / joint.sum(axis=1, keepdims=True)                 # (16, 8)
brute = p_h_given_v @ H_all                                            # E[h | v], (16, 3)
print("E[h | v]: formula vs enumeration, largest difference",
      f"{np.abs(tiny.p_h(V_all) - brute).max():.1e}")
F_brute = -np.log(np.exp(-E).sum(axis=1))
print(f"free energy: formula vs enumeration, largest difference "
      f"{np.abs(tiny.free_energy(V_all) - F_brute).max():.1e}")

# %% [markdown]
# ## Learning: the data pulls, the model pushes
#
# Differentiate log p(v) = -F(v) - log Z. The first term needs only v; the
# second is an average over what the model itself believes:
#
#     d log p(v) / dW = v E[h | v]^T  -  E_model[v h^T]
#
# (and v - E_model[v] for b_v, E[h | v] - E_model[h] for b_h). The first
# term raises the probability of the data; the second lowers that of
# everything the model currently likes. The model's expectation needs Z's
# sum again. Contrastive divergence (CD-k, Hinton 2002) replaces it by k
# steps of Gibbs sampling started *at the data*: v0 -> h0 -> v1 -> ... -> vk,
# and uses the statistics at vk. CD-1 is biased (it is not the gradient of
# anything), but it points the right way and is cheap: two matrix products
# more than a forward pass. With many steps the chains forget where they
# started and CD-k becomes the true gradient, which we can check: on the
# tiny RBM, the exact gradient by enumeration against CD-200 averaged over
# many chains.

# %%
data = V_all[[1, 6, 9, 14]]                                             # a 4-image data set
exact_pos = data.T @ tiny.p_h(data) / len(data)
p_v = np.exp(-tiny.free_energy(V_all))
p_v /= p_v.sum()
exact_neg = (V_all * p_v[:, None]).T @ tiny.p_h(V_all)                  # E_model[v h^T]
exact = exact_pos - exact_neg
cd = tiny.contrastive_divergence(np.repeat(data, 5000, axis=0), k=200,
                                 rng=np.random.default_rng(2))["W"]
print(f"dlog p / dW: CD-200 (20,000 chains) against the exact gradient: largest difference "
      f"{np.abs(cd - exact).max():.3f} (of entries up to {np.abs(exact).max():.3f})")

# %% [markdown]
# ## An RBM on MNIST
#
# Hinton & Salakhutdinov's settings: CD-1, batches of 100, learning rate
# 0.1, momentum 0.5, weight decay 2e-4. The pixels are grey levels, which
# the Bernoulli visible units read as probabilities. We watch the
# reconstruction error ||v - p(v | E[h | v])||^2 per image: not what CD
# follows, but a number that falls while the RBM learns.

# %%
rbm_epochs = 2 if FAST else 5
rbm = RBM(784, 256, rng=np.random.default_rng(0))
errors = train_rbm(rbm, X_train, epochs=rbm_epochs, lr=0.1, k=1, batch_size=100,
                   rng=np.random.default_rng(0))
print("reconstruction error per image, epoch by epoch: " + ", ".join(f"{e:.1f}" for e in errors))
W = rbm.W.T[:100]                                       # the first 100 hidden units' weights
W = (W - W.min(axis=1, keepdims=True)) / np.ptp(W, axis=1, keepdims=True)
show(plot.image_grid(W, 10, title="RBM filters: each hidden unit's weights, as an image"),
     "16_rbm_filters.png")
show(plot.image_grid(rbm.sample(20, k=200, rng=np.random.default_rng(3), start=X_test[:20]), 10,
                     title="p(v | h) after 200 Gibbs steps started at 20 test digits"),
     "16_rbm_samples.png")

# %% [markdown]
# The filters are strokes, blobs and whole digit-like shapes, many with a
# dark spot or ring: a unit that wants ink in one place and none in
# another. (In the full run the reconstruction error fell from 11.9 to 6.4
# per image over 5 epochs.) The samples after 200 Gibbs steps are
# digit-like, though the chains wander from the digit they started at.
#
# ## Stack, unroll, fine-tune
#
# The recipe: train an RBM on the images; its hidden probabilities are the
# data of the next RBM; and so on up. The top RBM has Gaussian (linear)
# hidden units, so the code can take any real value (a smaller learning
# rate, 0.001, keeps it stable). Then *unroll*: the encoder is the stack's
# up-passes, sigmoid(v W + b_h) layer by layer; the decoder its down-passes
# with the same weights transposed, sigmoid(h W^T + b_v). That is an
# ordinary autoencoder, which backprop fine-tunes. Here a smaller stack than
# the paper's, so that it trains in a minute, against the same network from
# random weights trained for the same epochs.

# %%
sizes = (784, 256, 64, 16)
pre_epochs, tune_epochs = (1, 2) if FAST else (3, 5)
stack = pretrain_stack(X_train, sizes, epochs=pre_epochs, rng=np.random.default_rng(0))
pretrained = unroll(stack)
fresh = unroll([RBM(d, h, "gaussian" if d == sizes[-2] else "bernoulli",
                    rng=np.random.default_rng(1)) for d, h in zip(sizes[:-1], sizes[1:])])
errors = {}
for name, model in (("before fine-tuning", pretrained), ):
    errors[name] = sq_error_per_image(X_test, batched(model.reconstruct, X_test))
for name, model in (("RBM-pretrained", pretrained), ("random start", fresh)):
    fit(model, X_train, epochs=tune_epochs, batch_size=128, seed=0,
        optimizer=ta.Adam(model.parameters(), lr=1e-3))
    errors[name] = sq_error_per_image(X_test, batched(model.reconstruct, X_test))
pca = ta.models.pca.PCA(16).fit(X_train)
errors["PCA-16"] = sq_error_per_image(X_test, pca.decode(pca.encode(X_test)))
for name, e in errors.items():
    print(f"{name:>20}: {e:6.2f} squared error per test image")

# %% [markdown]
# The unrolled stack reconstructs before any backprop, which a random start
# cannot. In the full run (all of MNIST, 3 pretraining epochs per level, 5
# fine-tuning epochs) the pretrained network reached 11.6 squared error per
# test image, the random start 41.7, PCA-16 21.1: for this sigmoid network
# pretraining is the difference between learning and not yet learning.
# Whether it still helps after long fine-tuning depends on the budget and
# the units: with ReLU units, a modern optimiser and a schedule, the
# paper's deep network also trains from random weights (`docs/results.md` has the measured
# runs: 3.57 end to end, 3.28 with greedy autoencoder levels, 2.92 over five
# seeds with a little weight decay, against the paper's 3.00). From the command line,
# the paper's network and pretraining:
#
#     tinyae train --data mnist --model stacked --pretrain rbm --pretrain-epochs 10 \
#         --sizes 784,1000,500,250,30 --epochs 45 --batch-size 128 --lr 5e-3 \
#         --schedule onecycle --weight-decay 1e-6
#
# It fine-tunes on the cross-entropy, as the paper did (`--loss bce`, the
# default with `--pretrain rbm`), and not on the squared error used above:
# a sigmoid output that is far off and saturated gets almost no gradient
# from the squared error, 2 (y - x) y (1 - y), but the full y - x from the
# cross-entropy. On the squared error the same run stalls near 5.1.
#
# ## The contractive autoencoder
#
# Rifai et al. (ICML 2011) asked for a code that small input changes barely
# move: penalise the encoder's Jacobian. For a sigmoid code layer
# h = sigmoid(x W + b), dh_j / dx_i = h_j (1 - h_j) W_ij, so
#
#     ||J_f(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ij^2
#
# cheap to compute, and its gradient follows by hand
# (`tinyae.nn.penalties.Contractive` has it). We check the formula against
# a Jacobian by finite differences, and the whole model's gradient.
#
# What it buys, measured on all of MNIST over five seeds (`docs/results.md`,
# `benchmarks/bench_contractive.py`): with lambda = 1e-5 the code's
# ||J||_F^2 is 4.7x smaller than the plain 784-196-784 model's, and under
# Gaussian noise of std 0.2 the reconstruction error is half the plain
# model's (3.50 against 7.10), for 1.47 against 1.30 on clean images.

# %%
cae = ta.contractive_autoencoder((12, 5), lam=0.1, rng=np.random.default_rng(0),
                                 dtype=np.float64)
x = np.random.default_rng(1).random(12)
dense = cae.encoder.layers[0]
h = cae.encode(x)
J = np.array([(cae.encode(x + 1e-6 * e) - cae.encode(x - 1e-6 * e)) / 2e-6
              for e in np.eye(12)]).T                                  # (5, 12)
formula = np.sum((h * (1 - h)) ** 2 * np.sum(dense.params["W"] ** 2, axis=0))
print(f"||J||_F^2: finite differences {np.sum(J ** 2):.6f}, formula {formula:.6f}")
X_small = np.random.default_rng(2).random((6, 12))
report = check_model(cae, ta.MSE(), X_small, X_small)
print(f"whole contractive model, gradient check: largest relative error "
      f"{report.max_error:.1e} ({'passed' if report.passed else 'FAILED'})")

# %% [markdown]
# ## Exercise: the free energy
#
# Write the free energy of a Bernoulli RBM yourself, for a batch of visible
# vectors V (N, D): F(v) = -b_v^T v - sum_j softplus(b_h_j + v^T W[:, j]),
# with softplus(c) = log(1 + exp(c)) computed so that a large c does not
# overflow (`np.logaddexp(0, c)` is one way). The check compares it with
# the enumeration above and with `RBM.free_energy`, on the tiny RBM and on
# the MNIST one.

# %%
def my_free_energy(rbm, V):
    """F(v) for each row of V: (N, D) -> (N,)."""
    raise NotImplementedError("the visible bias term, then one softplus per hidden unit")


# %%
def check_free_energy(fn):
    assert np.allclose(fn(tiny, V_all), F_brute, atol=1e-9), "the tiny RBM's F differs"
    got, want = fn(rbm, X_test[:50]), rbm.free_energy(X_test[:50])
    assert got.shape == (50,), f"shape {got.shape}, expected (50,)"
    assert np.allclose(got, want, rtol=1e-5), "the MNIST RBM's F differs"
    big = RBM(3, 2, dtype=np.float64)
    big.W[...] = 1000.0                                  # softplus of 3000: must not overflow
    with np.errstate(over="raise"):
        assert np.isfinite(fn(big, np.ones((1, 3)))).all()
    print("free energy: PASSED")


with exercise("free energy"):
    check_free_energy(my_free_energy)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **The free energy.** c = V W + b_h is every hidden unit's input at once,
# (N, H); `np.logaddexp(0, c)` is log(exp(0) + exp(c)) without forming
# exp(c).

# %% tags=["solution"]
def my_free_energy(rbm, V):
    """F(v) for each row of V: (N, D) -> (N,)."""
    c = V @ rbm.W + rbm.b_h
    return -V @ rbm.b_v - np.logaddexp(0, c).sum(axis=1)


check_free_energy(my_free_energy)
