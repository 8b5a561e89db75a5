# %% [markdown]
# # 4. Decode: from points in the latent plane back to images
#
# The decoder is a function from R^2 to images: any point Z gives a picture
# X' = g(Z). Points near the codes of real digits decode to digits; the map
# also has empty regions, and there the decoder has never been trained.

# %%
import numpy as np

from tinyae.evaluate.metrics import batched
from tinyae.tutorial import exercise, load, show, trained_model
from tinyae.viz import plot
from tinyae.viz.latent import grid, latent_range

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

# %% [markdown]
# ## Exercise: a grid on the quantiles
#
# The evenly spaced grid spends many of its points in the holes. Put the grid
# where the codes are instead: its n columns at the quantiles (i + 0.5) / n,
# i = 0 ... n - 1, of the codes' z1 (`np.quantile`), its n rows at the same
# quantiles of z2, every column crossed with every row. Return the n * n
# points in the order of `tinyae.viz.latent.grid`: row by row from the top
# (highest z2), left to right within a row.
#
# The check maps your points back to the quantile scale (the share of codes
# below each coordinate) and compares them with `grid` on that scale, which
# must be evenly spaced from 0.5 / n to 1 - 0.5 / n. Then it counts how many
# points of each grid land near the data, and decodes yours. The full
# version has its solution at the end of the file: try yours first.

# %%
def quantile_grid(Z, n=10):
    """An n x n grid of latent points on the quantiles of the codes Z, in grid's order: (n*n, 2)."""
    raise NotImplementedError("place the grid on the quantiles of the codes")


# %%
def check_quantile_grid(make_grid, n=10):
    points = make_grid(Z, n)
    assert np.shape(points) == (n * n, 2), f"want shape {(n * n, 2)}, got {np.shape(points)}"
    share = np.stack([np.mean(Z[:, a][None] <= np.asarray(points)[:, a, None], axis=1)
                      for a in range(2)], axis=1)                     # the quantile of each coordinate
    even = grid((0.5 / n, 1 - 0.5 / n), (0.5 / n, 1 - 0.5 / n), n)
    assert np.allclose(share, even, atol=0.01), "not on the quantiles, or not in grid's order"
    for name, pts in (("even", grid(ranges[0], ranges[1], n)), ("quantile", points)):
        gap = np.array([np.sqrt(((Z - p) ** 2).sum(-1)).min() for p in pts])
        print(f"{name:>8} grid: {np.mean(gap <= 5 * typical):.0%} of its points near a test code")
    show(plot.image_grid(model.decode(np.asarray(points, np.float32)), n,
                         title="decoded on a grid of quantiles"), "04_quantile_grid.png")


with exercise("a grid on the quantiles"):
    check_quantile_grid(quantile_grid)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **A grid on the quantiles.** `np.meshgrid` crosses the columns with the rows;
# reversing the z2 quantiles puts the highest row on top.

# %% tags=["solution"]
def quantile_grid(Z, n=10):
    """An n x n grid of latent points on the quantiles of the codes Z, in grid's order: (n*n, 2)."""
    q = (np.arange(n) + 0.5) / n
    xs, ys = np.quantile(Z[:, 0], q), np.quantile(Z[:, 1], q)[::-1]
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


check_quantile_grid(quantile_grid)
