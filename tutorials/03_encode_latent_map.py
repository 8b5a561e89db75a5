# %% [markdown]
# # 3. Encode: the 2-D latent map of MNIST
#
# The encoder compresses each 784-pixel image into Z = f(X), just two
# numbers. Because there are two, we can draw every test image as a point and
# colour it by the digit it shows -- a picture of what the network learned
# without ever seeing a label.

# %%
import numpy as np

from tinyae.evaluate.metrics import batched, knn_accuracy
from tinyae.models.pca import PCA
from tinyae.tutorial import exercise, load, show, trained_model
from tinyae.viz import plot

model = trained_model()
X_train, y_train, data_name = load("train")
X_test, y_test, _ = load("test")
Z_test = batched(model.encode, X_test)            # (N, 2)
Z_train = batched(model.encode, X_train)
print(f"{len(Z_test):,} test codes; z1 in [{Z_test[:, 0].min():.1f}, {Z_test[:, 0].max():.1f}], "
      f"z2 in [{Z_test[:, 1].min():.1f}, {Z_test[:, 1].max():.1f}]")

# %%
show(plot.latent_scatter(Z_test, y_test, title=f"autoencoder codes of the {data_name} test set"),
     "03_latent_map.png")

# %% [markdown]
# ## What separates and what mixes
#
# Some digits get a region of their own: 0 and 1 look like nothing else, and
# their clusters sit apart. Others -- 4 and 9, or 3, 5 and 8 -- share strokes
# and overlap in the middle of the map. A simple way to put a number on it:
# for each digit, how far is its cluster's centre from the nearest other
# centre, relative to its own spread?

# %%
centres = np.array([Z_test[y_test == d].mean(axis=0) for d in range(10)])
spread = np.array([Z_test[y_test == d].std(axis=0).mean() for d in range(10)])
dist = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(10) * 1e9
for d in np.argsort(-dist.min(axis=1) / spread):
    print(f"digit {d}: nearest other cluster {dist[d].argmin()}, separation "
          f"{dist[d].min() / spread[d]:.2f} (centre distance / spread)")

# %% [markdown]
# ## The same picture from PCA
#
# PCA's two principal components are the best linear 2-D projection. Its map
# is one overlapping cloud: a linear map cannot untangle the digits the way
# the non-linear encoder does.

# %%
pca = PCA(2).fit(X_train)
P_train, P_test = pca.encode(X_train), pca.encode(X_test)
fig = plot.latent_scatter(P_test, y_test, title="PCA-2 projection of the same test set")
fig.axes[0].set_xlabel("PC1")
fig.axes[0].set_ylabel("PC2")
show(fig, "03_pca_map.png")

# %% [markdown]
# ## How well do the digits separate? 5 nearest neighbours
#
# Classify every test code by a vote of its 5 nearest training codes. The
# better the digits separate in the map, the higher the accuracy. Neither map
# was trained with labels.

# %%
acc_ae = knn_accuracy(Z_train, y_train, Z_test, y_test, k=5)
acc_pca = knn_accuracy(P_train, y_train, P_test, y_test, k=5)
print(f"5-NN accuracy in 2-D:  autoencoder {acc_ae:.3f}   PCA-2 {acc_pca:.3f}")

# %% [markdown]
# ## Exercise: 5-NN accuracy by hand
#
# Write the 5-nearest-neighbour vote yourself: for each test code, the
# squared distances to every training code, the labels of the 5 nearest
# (`np.argpartition` finds them without a full sort), and the label with the
# most votes (`np.bincount(..., minlength=10).argmax()`, so a tie goes to the
# smaller digit, as in tinyae). Work through the test codes a few hundred at
# a time so the distance matrix stays small. The check runs yours on the
# first 1,000 test codes of the autoencoder's map and compares it with
# `tinyae.evaluate.metrics.knn_accuracy` on the same codes: they must agree to
# 0.2 percentage points (two codes in 1,000, for ties at equal distance). The
# full version has its solution at the end of the file: try yours first.

# %%
def my_knn_accuracy(Z_train, y_train, Z_test, y_test, k=5):
    """Share of test codes whose k nearest training codes vote for their own label."""
    raise NotImplementedError("write the k-nearest-neighbour vote")


# %%
def check_knn(knn):
    mine = knn(Z_train, y_train, Z_test[:1000], y_test[:1000], k=5)
    tinyae_acc = knn_accuracy(Z_train, y_train, Z_test[:1000], y_test[:1000], k=5)
    print(f"5-NN accuracy on 1,000 test codes   yours {mine:.3f}   tinyae {tinyae_acc:.3f}")
    assert abs(mine - tinyae_acc) <= 0.002, "not tinyae's 5-NN accuracy"


with exercise("5-NN accuracy by hand"):
    check_knn(my_knn_accuracy)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **5-NN accuracy by hand.** |q - z|^2 = |q|^2 - 2 q.z + |z|^2 gives a whole
# block of distances with one matrix product.

# %% tags=["solution"]
def my_knn_accuracy(Z_train, y_train, Z_test, y_test, k=5):
    """Share of test codes whose k nearest training codes vote for their own label."""
    Z_train, Z_test = np.asarray(Z_train, np.float64), np.asarray(Z_test, np.float64)
    right = 0
    for start in range(0, len(Z_test), 500):
        q = Z_test[start:start + 500]
        d = (q ** 2).sum(1)[:, None] - 2 * q @ Z_train.T + (Z_train ** 2).sum(1)[None]
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]          # (500, k), any order
        votes = [np.bincount(labels, minlength=10).argmax() for labels in y_train[nearest]]
        right += int(np.sum(np.array(votes) == y_test[start:start + 500]))
    return right / len(Z_test)


check_knn(my_knn_accuracy)
