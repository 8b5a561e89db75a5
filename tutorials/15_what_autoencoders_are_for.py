# %% [markdown]
# # 15. What autoencoders are for
#
# The model reconstructs. What is that good for? Three answers, each a few
# lines on top of what earlier tutorials built:
#
# 1. **Anomaly detection.** An autoencoder reconstructs what it was trained
#    on and little else. Train it on normal images only, and a bad
#    reconstruction flags an image unlike them.
# 2. **Conditional generation.** A VAE whose encoder and decoder are both
#    told the digit (a *conditional* VAE) draws the digit you ask for, in
#    any style its code holds.
# 3. **Arithmetic in the latent space.** The difference between the mean
#    code of thick digits and that of thin ones is a direction. Add it to
#    a code and the decoded digit gets thicker.
#
# Each part ends with an exercise; the solutions are at the end of the file.
#
# *Time:* about 3 minutes in full on a 2-core machine (all of MNIST, a few
# epochs per model). `TINYAE_FAST=1` trains on 3,000 images for 2 epochs;
# its numbers show the method, not the models' worth.

# %%
import numpy as np

import tinyae as ta
from tinyae.evaluate import anomaly, attributes
from tinyae.evaluate.cvae_eval import PixelKNN, digit_samples_figure, sample_accuracy, style_figure
from tinyae.evaluate.metrics import batched
from tinyae.train import fit
from tinyae.tutorial import FAST, exercise, load, show
from tinyae.viz import plot
from tinyae.viz.anomaly import extremes, roc_curves

X_train, y_train, data_name = load("train")
X_test, y_test, _ = load("test")
epochs = 2 if FAST else 5
print(f"{data_name}: {len(X_train):,} training and {len(X_test):,} test images; "
      f"{epochs} epoch(s) per model")

# %% [markdown]
# ## 1. Anomaly detection: the digit it never saw
#
# Hold one digit out. The autoencoder trains on the other nine; the test
# set keeps all ten, and its held-out digits are the anomalies. Each test
# image gets a score, its squared reconstruction error
#
#     s(x) = sum_d (x_d - x'_d)^2
#
# and we flag the images whose score is above a threshold t. Every t
# trades false alarms (normal images flagged) against misses; the ROC curve
# draws the false-alarm rate against the recall over every t, and the area
# under it, the AUC, is the chance that a random anomaly scores above a
# random normal image (0.5: a coin; 1: perfect). The baseline to beat is
# PCA with the same code width: its reconstruction error is a score too.

# %%
HELD = 7
train = anomaly.holdout(X_train, y_train, HELD)
test = anomaly.holdout(X_test, y_test, HELD)
print(f"training on {len(train.train):,} images without a {HELD}; testing on "
      f"{len(test.test):,}, of which {test.anomalous.sum():,} are {HELD}s")

ae = ta.dense_autoencoder(rng=np.random.default_rng(0))          # the seed model, 2-D code
fit(ae, train.train, epochs=epochs, seed=0, schedule="onecycle",
    optimizer=ta.Adam(ae.parameters(), lr=4e-3, betas=(0.9, 0.99)))
scores = {"autoencoder (2-D code)": anomaly.reconstruction_scores(ae, test.test),
          "PCA-2": anomaly.pca_scores(train.train, test.test, 2),
          "PCA-30": anomaly.pca_scores(train.train, test.test, 30)}
for name, s in scores.items():
    at = anomaly.at_false_alarm(s, test.anomalous, 0.05)
    print(f"{name:>24}: AUC {anomaly.auc(s, test.anomalous):.3f}; at 5% false alarms it "
          f"finds {at['recall']:.0%} of the {HELD}s, precision {at['precision']:.0%}")
show(roc_curves(scores, test.anomalous, title=f"ROC: the held-out {HELD}s flagged"),
     "15_roc.png")
show(extremes(test.test, scores["autoencoder (2-D code)"], anomalous=test.anomalous,
              title=f"highest (top) and lowest (bottom) scores; red: a held-out {HELD}"),
     "15_extremes.png")

# %% [markdown]
# Read the extremes figure before the AUC. In the full run (all of MNIST, 5
# epochs) the highest scores were thick 2s and 9s, a wide 5, and only one
# 7; the lowest were all thin 1s. Error says *unlike the training images*,
# and *a lot of ink*, more than it says *a seven*: an image with little ink
# has little to get wrong. The numbers of that run: AUC 0.696 for the
# autoencoder against 0.570 for PCA-2 and 0.626 for PCA-30 (fifteen times
# the code width), and at 5% false alarms it found 15% of the 7s. A better
# score than PCA's, and still a weak detector: sevens look like the 1s,
# 2s and 9s it was trained on. `benchmarks/bench_anomaly.py` holds out
# each digit in turn (a 2 or a 0 is flagged far better than a 7 or a 9).
# `tinyae train --hold-out 7` trains a model without 7s from the command
# line, and `tinyae anomaly CKPT --digit 7` does all of the above for it,
# with a VAE's negative ELBO as a second score.
#
# ## Exercise: the AUC by counting pairs
#
# The AUC is a probability over pairs: pick one anomalous image and one
# normal image; the AUC is the chance the anomalous one scores higher,
# ties counting a half. Write it that way, by comparing every anomalous
# score with every normal score (an (n1, n0) table of comparisons), and
# check it against `tinyae.evaluate.anomaly.auc`, which gets the same
# number from ranks without the table.

# %%
def auc_by_pairs(scores, anomalous):
    """P(s_anomalous > s_normal) + P(equal) / 2, over every pair: a float."""
    raise NotImplementedError("compare every anomalous score with every normal one")


# %%
def check_auc(fn):
    rng = np.random.default_rng(0)
    for n in (5, 40):
        s = rng.integers(0, 6, n).astype(float)                 # many ties on purpose
        a = np.arange(n) % 3 == 0
        assert abs(fn(s, a) - anomaly.auc(s, a)) < 1e-12, f"{fn(s, a)} vs {anomaly.auc(s, a)}"
    s = scores["autoencoder (2-D code)"][:2000]
    a = test.anomalous[:2000]
    assert abs(fn(s, a) - anomaly.auc(s, a)) < 1e-12
    print("the AUC by pairs equals the AUC by ranks: PASSED")


with exercise("AUC by pairs"):
    check_auc(auc_by_pairs)

# %% [markdown]
# ## 2. A conditional VAE: the digit you ask for
#
# Tutorial 10's VAE draws digits, but which digit comes out depends on
# where z lands. A conditional VAE (Sohn, Lee & Yan, 2015) gives the label
# y, one-hot over the ten digits, to both halves:
#
#     q(z | x, y):   mu, logvar = heads(f([x, y]))
#     p(x | z, y):   logits = g([z, y])
#
# The loss is the VAE's, -ELBO = BCE summed over the pixels + KL. Since the
# decoder is told the class, the code does not need to carry it: the KL term
# pushes every code towards N(0, I), and what is left in z is what the
# label does not say, the *style* (slant, thickness, width). To draw a 7:
# z ~ N(0, I), decode [z, onehot(7)].
#
# In tinyae the label travels in the input rows: `ta.with_labels(X, y)` is
# [X, onehot(y)], 794 numbers per image, so `fit` shuffles images with their
# labels and needs nothing new. The model's `target(rows)` is the image part,
# what the loss compares the reconstruction with. The backward is the
# VAE's; the label's columns also get the decoder's gradient, which
# `tinyae.gradcheck.check_model` verifies with the rest.

# %%
cvae = ta.conditional_vae(rng=np.random.default_rng(0))          # 2-D code, like the seed model
cvae.summary()
rows = ta.with_labels(X_train, y_train)
fit(cvae, rows, epochs=epochs, batch_size=128, seed=0, schedule="onecycle",
    optimizer=ta.Adam(cvae.parameters(), lr=2e-3))
show(digit_samples_figure(cvae), "15_cvae_digits.png")
show(style_figure(cvae, X_test, y_test), "15_cvae_styles.png")

# %% [markdown]
# Each row of the first figure was drawn with one label; each row of the
# second keeps one test image's code and changes only the label. The
# slant and thickness of the original carry over to every digit.
#
# Does it draw what it is asked for? A judge that never saw the model: a
# 5-nearest-neighbour vote in pixel space over the training images (no
# training of its own). We score the judge on real test digits first, then
# count, for each digit d, the share of 100 samples drawn with label d that
# it reads as d. (In the full run the judge read 96.1% of real test digits
# right, and the samples 93% to 100% per digit, the 6s lowest.)

# %%
judge = PixelKNN(X_train, y_train, k=5)
held = slice(0, 1000)
print(f"the judge reads {np.mean(judge(X_test[held]) == y_test[held]):.1%} of real test "
      "digits right")
per_digit = sample_accuracy(cvae, judge, n=100)
print("samples read as the digit asked for: "
      + ", ".join(f"{d}: {a:.0%}" for d, a in per_digit.items()))
mu = batched(cvae.encode, ta.with_labels(X_test, y_test))
show(plot.latent_scatter(mu, y_test, title="conditional VAE: mu of the test set, by digit"),
     "15_cvae_latent.png")

# %% [markdown]
# The last map is the point of the model: coloured by digit, the codes
# *mix*. A plain autoencoder's map (tutorial 3) sorts the digits into
# clusters because the code is all it has; here the label carries the
# class, and the code is free to hold style alone.
#
# ## Exercise: between two labels
#
# The decoder reads the label as ten numbers, and nothing stops us giving it
# a mixture. Write `label_path(model, z, a, b, steps)`: decode one code z
# with the label vectors (1 - t) onehot(a) + t onehot(b) for `steps` values
# of t from 0 to 1, and return the (steps, 784) images. (`model.logits(Z,
# labels)` takes any (N, 10) label rows; the sigmoid of the logits is the
# image.) The check compares the two ends with `model.decode(z, a)` and
# `model.decode(z, b)`.

# %%
def label_path(model, z, a, b, steps=8):
    """Images decoded from one code z with labels sliding from onehot(a) to onehot(b)."""
    raise NotImplementedError("decode z with the mixed label rows")


# %%
def check_label_path(fn):
    z = np.zeros(2, np.float32)
    images = fn(cvae, z, 3, 8, steps=6)
    assert images.shape == (6, 784), f"shape {images.shape}, expected (6, 784)"
    assert np.allclose(images[0], cvae.decode(z, 3), atol=1e-5), "t = 0 is not the 3"
    assert np.allclose(images[-1], cvae.decode(z, 8), atol=1e-5), "t = 1 is not the 8"
    show(plot.image_strip(images, title="one code, the label sliding from 3 to 8"),
         "15_label_path.png")
    print("label path: PASSED")


with exercise("label path"):
    check_label_path(label_path)

# %% [markdown]
# ## 3. Arithmetic in the latent space
#
# Measure an attribute on every training image from its pixels, here the
# ink fraction (thickness). Take the codes of the fifth of images with the
# most ink and the fifth with the least; the difference of their means is a
# direction d in the code space. Then decode encode(x) + t d for a few t:
#
#     d = mean{z_i : thickest 20%} - mean{z_i : thinnest 20%}
#
# For a plain autoencoder, whose code also sorts the digits, d mixes "thick"
# with "which digits are thick" (a 0 is more ink than a 1). A VAE's code
# (tutorial 10; mu here) sorts the digits too, but fills its space without
# holes. The conditional VAE's code holds style only, and its label is held
# fixed while we walk.

# %%
plain = ta.dense_autoencoder(rng=np.random.default_rng(0))
fit(plain, X_train, epochs=epochs, seed=0, schedule="onecycle",
    optimizer=ta.Adam(plain.parameters(), lr=4e-3, betas=(0.9, 0.99)))
ink = attributes.thickness(X_train)
steps = (-1.5, -0.75, 0, 0.75, 1.5)
picks = [int(np.argmax(y_test == d)) for d in (1, 4, 7)]

d_plain = attributes.direction(batched(plain.encode, X_train), ink)
show(attributes.walk_figure(X_test[picks], attributes.walk(plain, X_test[picks], d_plain, steps),
                            steps, title="plain autoencoder: code + t (thick - thin)"),
     "15_thickness_plain.png")

vae = ta.variational_autoencoder(rng=np.random.default_rng(0))     # the seed sizes, 2-D code
fit(vae, X_train, epochs=epochs, batch_size=128, seed=0)
d_vae = attributes.direction(batched(vae.encode, X_train), ink)
show(attributes.walk_figure(X_test[picks], attributes.walk(vae, X_test[picks], d_vae, steps),
                            steps, title="VAE: mu + t (thick - thin)"),
     "15_thickness_vae.png")

Z_cvae = batched(cvae.encode, rows)
d_cvae = attributes.direction(Z_cvae, ink)
mu = cvae.encode(ta.with_labels(X_test[picks], y_test[picks]))
walked = np.stack([cvae.decode(mu + t * d_cvae, y_test[picks]) for t in steps], axis=1)
show(attributes.walk_figure(X_test[picks], walked, steps,
                            title="conditional VAE: code + t (thick - thin), label kept"),
     "15_thickness_cvae.png")
print(f"thickness direction: plain {np.round(d_plain, 2)}, VAE {np.round(d_vae, 2)}, "
      f"conditional VAE {np.round(d_cvae, 2)}")

# %% [markdown]
# Compare the three figures row by row. Along the plain model's direction
# (in the full run) the 4 turned into a 9 and then a 0, the 7 into a 6: in
# its code "more ink" and "another digit" are the same move. The VAE's
# code sorts the digits as well, so its walk can change the class too.
# Along the conditional VAE's, the 1, the 4 and the 7 stay what they are
# and gain ink, because the label holds the class. `tinyae.evaluate.attributes` also measures slant (the
# shear of the ink's second moments); try `attributes.slant` in place of
# thickness.
#
# ## Exercise: a direction from pixels
#
# Write `my_direction(Z, values, quantile)` yourself: sort the images by
# their attribute values, take the top and the bottom `quantile` of them
# (floor(quantile N) each), and return the difference of their mean codes.
# Refuse, with a `ValueError`, groups of fewer than 20 images: the mean of
# a handful of codes is mostly noise. The check compares yours with
# `attributes.direction` on the conditional VAE's codes.

# %%
def my_direction(Z, values, quantile=0.2):
    """Mean code of the top ``quantile`` of images by value minus that of the bottom: (Z,)."""
    raise NotImplementedError("sort, take both ends, subtract their means")


# %%
def check_direction(fn):
    got, want = fn(Z_cvae, ink, 0.2), attributes.direction(Z_cvae, ink, 0.2)
    assert np.allclose(got, want, atol=1e-6), f"{got} vs {want}"
    try:
        fn(Z_cvae[:50], ink[:50], 0.2)
    except ValueError:
        pass
    else:
        raise AssertionError("10 images per group should be refused with a ValueError")
    print("attribute direction: PASSED")


with exercise("attribute direction"):
    check_direction(my_direction)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **AUC by pairs.** `s[a][:, None] > s[~a][None, :]` is the (n1, n0) table
# of wins; its mean, plus half the mean of the ties, is the AUC. It takes
# n1 n0 comparisons (memory too); the rank formula takes a sort.

# %% tags=["solution"]
def auc_by_pairs(scores, anomalous):
    """P(s_anomalous > s_normal) + P(equal) / 2, over every pair: a float."""
    s, a = np.asarray(scores, np.float64), np.asarray(anomalous, bool)
    pos, neg = s[a][:, None], s[~a][None, :]
    return float(np.mean(pos > neg) + 0.5 * np.mean(pos == neg))


check_auc(auc_by_pairs)

# %% [markdown] tags=["solution"]
# **Label path.** The label rows are a (steps, 10) array; the code is
# repeated once per row.

# %% tags=["solution"]
def label_path(model, z, a, b, steps=8):
    """Images decoded from one code z with labels sliding from onehot(a) to onehot(b)."""
    t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
    eye = np.eye(model.n_classes, dtype=np.float32)
    labels = (1 - t) * eye[a] + t * eye[b]                            # (steps, K)
    Z = np.repeat(np.asarray(z, np.float32)[None, :], steps, axis=0)    # (steps, Z)
    return 1 / (1 + np.exp(-model.logits(Z, labels)))


check_label_path(label_path)

# %% [markdown] tags=["solution"]
# **Attribute direction.** A stable sort keeps equal values in their order,
# as `attributes.direction` does, so that ties pick the same images.

# %% tags=["solution"]
def my_direction(Z, values, quantile=0.2):
    """Mean code of the top ``quantile`` of images by value minus that of the bottom: (Z,)."""
    Z, values = np.asarray(Z, np.float64), np.asarray(values, np.float64)
    k = int(quantile * len(Z))
    if k < 20:
        raise ValueError(f"{k} images per group; use at least {int(np.ceil(20 / quantile))}")
    order = np.argsort(values, kind="stable")
    return Z[order[-k:]].mean(axis=0) - Z[order[:k]].mean(axis=0)


check_direction(my_direction)
