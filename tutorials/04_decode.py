# %% [markdown]
# # 4. Decode: from points in the latent plane back to images
#
# The decoder is a function from R^2 to images: any point Z gives a picture
# X' = g(Z). Points near the codes of real digits decode to digits; the map
# also has empty regions, and there the decoder has never been trained.

# %%
import numpy as np

from tinyae import plot
from tinyae.latent import grid, latent_range
from tinyae.metrics import batched
from tinyae.tutorial import load, show, trained_model

model = trained_model()
X_test, y_test, _ = load("test")
Z = batched(model.encode, X_test)
ranges = latent_range(Z)                       # the map's extent: 1st-99th percentile, padded
print("latent box:", np.round(ranges, 2).tolist())

# %% [markdown]
# ## Random points in the bounding box
#
# Draw eight points uniformly in the box the test codes occupy, mark them on
# the map, and decode each one.

# %%
rng = np.random.default_rng(1)
points = rng.uniform(ranges[:, 0], ranges[:, 1], size=(8, 2)).astype(np.float32)
fig = plot.latent_scatter(Z, y_test, ranges=ranges, title="8 random latent points")
ax = fig.axes[0]
ax.scatter(points[:, 0], points[:, 1], marker="x", s=80, c="black")
for k, (a, b) in enumerate(points):
    ax.annotate(str(k), (a, b), xytext=(4, 4), textcoords="offset points", fontsize=11)
show(fig, "04_points_on_map.png")
labels = [f"{k}: ({a:.1f}, {b:.1f})" for k, (a, b) in enumerate(points)]
show(plot.image_strip(model.decode(points), title="decoded random points", labels=labels),
     "04_points_decoded.png")
for text in labels:
    print("z =", text)

# %% [markdown]
# ## A grid over the whole map
#
# Decode a 20 x 20 grid spanning the same box. The axes are in z units and
# match the scatter plot above, so you can lay one over the other: each
# region of the grid shows the digit whose cluster sits there, and the
# boundaries show how one digit morphs into the next.

# %%
show(plot.decoded_grid(model, ranges, n=20), "04_decoded_grid.png")

# %% [markdown]
# ## The holes
#
# How far is each random point from the nearest real code? Points far from
# every code land in a hole of the latent space; their images are blurry
# blends or nothing recognisable at all. A plain autoencoder only promises
# good images *where the data went*.

# %%
nearest = np.sqrt(((points[:, None, :] - Z[None]) ** 2).sum(-1)).min(axis=1)
# For scale: the typical distance from a test code to its nearest neighbour.
d = np.sqrt(((Z[:500, None] - Z[None]) ** 2).sum(-1))           # (500, N)
d[np.arange(500), np.arange(500)] = np.inf                        # not itself
typical = np.median(d.min(axis=1))
print(f"typical gap between neighbouring codes: {typical:.3f}")
for k, dist in enumerate(nearest):
    note = "far from the data" if dist > 5 * typical else "near data"
    print(f"point {k}: distance to the nearest test code {dist:.2f} ({note})")

# %% [markdown]
# To see the holes on purpose, search the box for its emptiest places: lay a
# 40 x 40 grid over it and keep the six points farthest from any code (each
# at least a fifth of the box apart, so they are six different holes).
# What comes out is not controlled by anything in training: smeared strokes,
# blends of neighbouring digits, or a digit stretched far beyond its shape.

# %%
candidates = grid(ranges[0], ranges[1], 40).astype(np.float32)          # (1600, 2)
gaps = np.array([np.sqrt(((Z - c) ** 2).sum(-1)).min() for c in candidates])
spacing = 0.2 * np.linalg.norm(ranges[:, 1] - ranges[:, 0])
picked = []
for k in np.argsort(-gaps):
    if all(np.linalg.norm(candidates[k] - candidates[p]) > spacing for p in picked):
        picked.append(k)
    if len(picked) == 6:
        break
holes = candidates[picked]
fig = plot.latent_scatter(Z, y_test, ranges=ranges, title="the six emptiest places in the box")
fig.axes[0].scatter(holes[:, 0], holes[:, 1], marker="o", s=90, facecolors="none", edgecolors="black")
show(fig, "04_holes_on_map.png")
show(plot.image_strip(model.decode(holes), title="decoded from the holes",
                      labels=[f"gap {g:.1f}" for g in gaps[picked]]), "04_holes.png")
