# %% [markdown]
# # 9. Sparse codes and stacked training
#
# Two more answers to "how do we make an autoencoder learn something useful
# instead of copying?":
#
# - **sparse autoencoders** let the code be wide but make each unit pay for
#   being active, so only a few units describe each image (the Keras blog's
#   L1 penalty; the KL penalty of Andrew Ng's UFLDL notes);
# - **stacked autoencoders** (the second seed post; Hinton & Salakhutdinov
#   2006) build a deep network one level at a time, each level a small
#   autoencoder trained on the codes of the level below.
#
# Both fit tinyae's one design for models with an extra term: the model
# computes a penalty P on its code in `forward`, reports it from `penalty()`,
# adds dP/dZ to the gradient reaching the code in its own `backward`, and
# `fit` minimises `loss(X', X) + model.penalty()`.
#
# *Time:* about 2 minutes on a 2-core laptop (four models trained, each
# printing a line per epoch); `TINYAE_FAST=1` runs it on a subset in seconds.

# %%
import numpy as np

import tinyae as ta
from tinyae.evaluate.metrics import batched, sq_error_per_image
from tinyae.gradcheck import check_model, check_penalty
from tinyae.nn.penalties import KLSparsity, L1Activity
from tinyae.train import fit
from tinyae.train.stacked import pretrain, split_levels
from tinyae.tutorial import FAST, exercise, load, show
from tinyae.viz import plot

X_train, _, data_name = load("train")
X_test, _, _ = load("test")
rng = np.random.default_rng(0)
EPOCHS = 2 if FAST else 20                 # the sparse models: about a minute in all
print(f"{data_name}: {len(X_train):,} training images")

# %% [markdown]
# ## The L1 penalty
#
# On a code Z of shape (N, H), averaged over the batch:
#
#     P = lambda (1/N) sum_n sum_j |z_nj|,      dP/dz_nj = lambda sign(z_nj) / N.
#
# ## The KL sparsity penalty
#
# For a sigmoid code (each z in (0, 1)), let rho_hat_j = (1/N) sum_n z_nj be
# unit j's mean activation over the batch. The penalty keeps it near a small
# target rho, as the KL divergence between two coins:
#
#     P = beta sum_j [rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j))]
#
# Differentiating: dP/drho_hat_j = beta (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)),
# and every z_nj moves rho_hat_j by 1/N, so
#
#     dP/dz_nj = beta / N (-rho / rho_hat_j + (1 - rho) / (1 - rho_hat_j)),
#
# the same for every image n. It is zero when rho_hat_j = rho, positive
# (push down) when the unit is more active than rho. Both checked:

# %%
Z = rng.uniform(0.01, 0.99, size=(6, 5))
print(check_penalty(L1Activity(0.1), rng.standard_normal((6, 5))))
print(check_penalty(KLSparsity(rho=0.05, beta=3.0), Z))

# %% [markdown]
# And the whole sparse model, penalty included (`check_model` adds
# `model.penalty()` to the loss, as `fit` does):

# %%
small = ta.sparse_autoencoder((12, 5), "kl", rho=0.1, beta=0.5, rng=rng, dtype=np.float64)
x = rng.random((4, 12))
print(check_model(small, ta.MSE(), x, x))

# %% [markdown]
# ## Training a sparse autoencoder
#
# UFLDL's sparse autoencoder: 784-196-784 with a sigmoid code, target mean
# activation rho = 0.05, and **weight decay**: the penalty is
#
#     P = beta sum_j KL(rho || rho_hat_j) + (lambda / 2) sum_l ||W_l||^2,
#
# whose gradient adds lambda W_l to each weight matrix's dW (the model does
# that at the end of its `backward`). tinyae's MSE is a mean over pixels, so
# beta and lambda are relative to that: UFLDL's beta = 3 and lambda = 3e-3,
# which weigh half the squared error *summed* over 784 pixels, become
# 3 * 2 / 784 = 0.008 and 3e-3 * 2 / 784 = 7.7e-6 here
# (`sparse_autoencoder`'s defaults are beta = 0.01 and lambda = 7.7e-6).
# We train it beside the same model with beta = 0 and no decay.

# %%
models = {}
for beta, decay in ((0.0, 0.0), (0.01, 7.7e-6)):
    m = ta.sparse_autoencoder((784, 196), "kl", rho=0.05, beta=beta, weight_decay=decay,
                              rng=np.random.default_rng(0))
    print(f"beta {beta}, weight decay {decay}:")
    history = fit(m, X_train, epochs=EPOCHS, optimizer=ta.Adam(m.parameters(), lr=3e-3))
    models[beta] = m
    last = history.records[-1]
    print(f"beta {beta}: loss {last.loss:.4f} = reconstruction {last.reconstruction:.4f} "
          f"+ penalty {last.penalty:.4f}")

print(f"\n{'beta':>5} {'mean activation':>16} {'share < 0.05':>13} {'test sq. error/image':>21}")
for beta, m in models.items():
    codes = batched(m.encode, X_test)
    err = sq_error_per_image(X_test, batched(m.reconstruct, X_test))
    print(f"{beta:>5} {codes.mean():>16.4f} {np.mean(codes < 0.05):>13.3f} {err:>21.2f}")

# %% [markdown]
# With the penalty, the mean activation moves to rho and most activations
# are near zero (docs/results.md has the numbers on all of MNIST): each
# image is described by a few active units. The price is a larger
# reconstruction error.
#
# What did the units learn? Each column of the first layer's W (784 numbers)
# is the input pattern that excites that unit most; we draw 49 of them as
# 28 x 28 pictures. The sparse units learn **pen strokes** and parts of
# digits, as in UFLDL's figure. Without the penalty the units share the work
# and their patterns are harder to read; and without weight decay the
# border of every picture stays noisy: a pixel that is blank in every
# training image sends no gradient to its weights, which keep their random
# start (decay pulls them to 0). With `FAST` set (2 epochs) the strokes have
# not formed yet.

# %%
def weight_images(model, n=49):
    W = model.encoder[0].params["W"][:, :n].T                   # (n, 784)
    W = W - W.min(axis=1, keepdims=True)
    return W / W.max(axis=1, keepdims=True)


show(plot.image_grid(weight_images(models[0.01]), 7, title="sparse: first-layer weights"),
     "09_weights_sparse.png")
show(plot.image_grid(weight_images(models[0.0]), 7,
                     title="beta = 0, no weight decay: first-layer weights"),
     "09_weights_plain.png")

# %% [markdown]
# ## Stacked autoencoders, trained greedily
#
# For widths H0-H1-...-HL: train H0-H1-H0 on the images; encode the images
# and train H1-H2-H1 on those codes; and so on. Then stack the encoders
# (f = fL o ... o f1) and the decoders (g = g1 o ... o gL) and fine-tune the
# whole network end to end. `split_levels(model)` cuts a `dense_autoencoder`
# into its levels, which share the model's layers, so training the levels
# trains the model, from the very weights an end-to-end run would start from.

# %%
sizes = (784, 256, 64, 16)
for level in split_levels(ta.dense_autoencoder(sizes, rng=np.random.default_rng(0))):
    print([type(layer).__name__ for layer in level.encoder], "->",
          [type(layer).__name__ for layer in level.decoder])

# %% [markdown]
# Now the comparison, with the same number of epochs in all: greedy
# pretraining (one epoch per level in fast mode, two otherwise) plus
# fine-tuning, against end-to-end training.

# %%
per_level = 1 if FAST else 2
levels = len(sizes) - 1
total = levels * per_level + (1 if FAST else 4)
end_to_end = ta.dense_autoencoder(sizes, rng=np.random.default_rng(0))
print("end to end:")
fit(end_to_end, X_train, epochs=total)
stacked = ta.dense_autoencoder(sizes, rng=np.random.default_rng(0))
print("greedy, level by level:")
pretrain(stacked, X_train, per_level)
pretrained_err = sq_error_per_image(X_test, batched(stacked.reconstruct, X_test))
print("fine-tuning:")
fit(stacked, X_train, epochs=total - levels * per_level)
for name, m in (("end to end", end_to_end), ("greedy + fine-tuning", stacked)):
    print(f"{name:<22} {sq_error_per_image(X_test, batched(m.reconstruct, X_test)):8.2f}"
          f"  (squared error per test image, {total} epochs)")
print(f"{'greedy, no fine-tuning':<22} {pretrained_err:8.2f}")

# %% [markdown]
# On a network this shallow, with ReLU and Adam, end-to-end training is
# usually as good or better: greedy pretraining was invented when deep
# sigmoid networks could not be trained from random weights at all. Its
# advantage grows with depth (Hinton & Salakhutdinov's 784-1000-500-250-30),
# and each level is cheaper to train than the whole network. From the
# command line: `tinyae train --model stacked --pretrain-epochs 2 --epochs 4`.
#
# ## The deep autoencoder of Hinton & Salakhutdinov (2006)
#
# Their 784-1000-500-250-30 network (a linear 30-D code) reconstructs the
# MNIST test digits with a squared error of **3.00** per image, against
# **13.87** for PCA with 30 components. tinyae's PCA-30 gives exactly 13.87
# (a test checks it). Training the deep network for 50 epochs takes 8 to 17
# minutes on one core of a small machine, so it is not run here; these are
# the commands and what they gave (docs/results.md has every run):
#
#     tinyae train --data mnist --sizes 784,1000,500,250,30 --epochs 50 \
#         --batch-size 128 --lr 2e-3 --schedule onecycle \
#         --anneal cos --adam-beta2 0.999                         # end to end: 3.57
#     tinyae train --data mnist --model stacked --pretrain-epochs 5 --epochs 45 \
#         --sizes 784,1000,500,250,30 --batch-size 128 --lr 2e-3 --schedule onecycle   # 3.28
#     (the same) --weight-decay 1e-6                                                    # 2.91
#
# Here greedy pretraining helps, where it did not on the shallow network
# above: at the end the end-to-end network reconstructs its *training*
# images better than the stacked one (1.94 against 2.39 per image) but the
# test images worse (3.57 against 3.28). It has memorised more; the greedy
# start keeps it nearer to weights that describe digits in general. That
# is the regularising effect the paper credited to pretraining. A little
# weight decay in the fine-tuning (Adam's, lambda = 1e-6) regularises a bit
# more, and the network ends below the paper's 3.00: the schedule, the
# greedy start and the decay each close part of the gap.
#
# ## Exercise: the KL penalty's backward, yourself
#
# Complete `backward` of `MyKL` from the derivative above (dP/dz_nj, the
# same for every n; return an array of Z's shape). The check runs
# `tinyae.gradcheck.check_penalty`, which compares it with finite
# differences of `forward` and must report PASSED.

# %%
class MyKL:
    def __init__(self, rho, beta):
        self.rho, self.beta = rho, beta

    def forward(self, Z):
        self.Z, self.rho_hat = Z, Z.mean(axis=0)
        r, q = self.rho, self.rho_hat
        return self.beta * np.sum(r * np.log(r / q) + (1 - r) * np.log((1 - r) / (1 - q)))

    def backward(self):
        raise NotImplementedError("your turn: return dP/dZ, shape (N, H)")


# %%
with exercise("the KL penalty's backward"):
    report = check_penalty(MyKL(0.05, 3.0), Z)
    report.assert_ok()
    print(report)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions sit here, at the end, so that trying comes first.
#
# **The KL penalty's backward.** rho_hat_j = (1/N) sum_n z_nj, so
# dP/dz_nj = (1/N) dP/drho_hat_j, the same row for every image: broadcast it
# to the shape of Z.

# %% tags=["solution"]
class MyKL(MyKL):
    def backward(self):
        r, q = self.rho, self.rho_hat
        per_unit = self.beta * (-r / q + (1 - r) / (1 - q)) / len(self.Z)     # (H,)
        return np.broadcast_to(per_unit, self.Z.shape).copy()


with exercise("the KL penalty's backward"):
    report = check_penalty(MyKL(0.05, 3.0), Z)
    report.assert_ok()
    print(report)
