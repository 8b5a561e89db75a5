# %% [markdown]
# # 5. Interpolate: walking from one digit to another
#
# Take two test images X_1 and X_2 with codes Z_1 and Z_2. The straight line
# between the codes is
#
#     Z_t = Z_1 (1 - t) + Z_2 t,    t in [0, 1],
#
# and decoding each point, X'_t = g(Z_t), shows how the network morphs one
# digit into the other.

# %%
import numpy as np

from tinyae.evaluate.metrics import batched
from tinyae.tutorial import exercise, load, show, trained_model
from tinyae.viz import plot
from tinyae.viz.latent import latent_range, lerp, slerp

model = trained_model()
X_test, y_test, _ = load("test")
Z = batched(model.encode, X_test)
i = int(np.argmax(y_test == 1))                      # the first 1 ...
j = int(np.argmax(y_test == 0))                      # ... and the first 0
print(f"from test image {i} (a {y_test[i]}) to test image {j} (a {y_test[j]})")
print("Z_1 =", Z[i].round(2), " Z_2 =", Z[j].round(2))

# %%
steps = 10
path = lerp(Z[i], Z[j], steps).astype(np.float32)       # (steps, 2)
show(plot.image_strip(model.decode(path), title="decoded linear interpolation"), "05_lerp.png")

# %% [markdown]
# ## Against blending pixels
#
# The naive alternative mixes the images themselves:
# X_t = X_1 (1 - t) + X_2 t. Halfway, that is a faint 1 on top of a faint
# 0 -- two digits, not one. The latent path instead passes through images
# that each look like a single (if strange) digit.

# %%
t = np.linspace(0, 1, steps)[:, None]
blend = X_test[i] * (1 - t) + X_test[j] * t
show(plot.image_strip(blend, title="blending the pixels instead"), "05_pixel_blend.png")

# %% [markdown]
# ## Spherical interpolation
#
# `slerp` follows an arc instead of the chord:
# Z_t = sin((1 - t) w) / sin(w) Z_1 + sin(t w) / sin(w) Z_2 with
# cos w = <Z_1, Z_2> / (|Z_1| |Z_2|). It is made for codes drawn from a
# Gaussian N(0, I), where the chord cuts through the unlikely region near the
# origin. Our codes are not centred at the origin, so we bend the arc around
# their mean c instead: slerp of Z_1 - c and Z_2 - c, plus c.

# %%
arc = slerp(Z[i], Z[j], steps, center=Z.mean(axis=0)).astype(np.float32)
show(plot.image_strip(model.decode(arc), title="decoded spherical interpolation"), "05_slerp.png")

# %% [markdown]
# ## Both paths on the map
#
# The chord runs straight across; the arc keeps its distance from the centre
# of the codes, so when the two codes lie on opposite sides of it the arc
# swings wide and passes through other digits' regions on the way.

# %%
# The map's usual box, widened where the arc swings out of it, so both paths show whole.
ranges = latent_range(Z)
both = np.concatenate([path, arc])
pad = 0.05 * (ranges[:, 1] - ranges[:, 0])
ranges = np.stack([np.minimum(ranges[:, 0], both.min(axis=0) - pad),
                   np.maximum(ranges[:, 1], both.max(axis=0) + pad)], axis=1)
fig = plot.latent_scatter(Z, y_test, ranges=ranges, title="linear (black) and spherical (red) paths")
ax = fig.axes[0]
ax.plot(path[:, 0], path[:, 1], "k.-", lw=2, ms=8)
ax.plot(arc[:, 0], arc[:, 1], "r.-", lw=2, ms=8)
show(fig, "05_paths_on_map.png")

# %% [markdown]
# ## Exercise: slerp yourself
#
# Write spherical interpolation from the formula above: subtract the centre
# c (the origin when `center` is None), find the angle w between Z_1 - c
# and Z_2 - c, take `steps` values of t from 0 to 1 (`np.linspace`), weight
# the two vectors by sin((1 - t) w) / sin(w) and sin(t w) / sin(w), and add
# c back. Return shape (steps, 2). The check compares yours with
# `tinyae.viz.latent.slerp` on this tutorial's arc (about the codes' mean) and on
# a second pair about the origin. (Leave out the case sin w = 0, opposite
# or parallel codes, where tinyae falls back to `lerp`.) The full version
# has its solution at the end of the file: try yours first.

# %%
def my_slerp(z1, z2, steps=10, center=None):
    """``steps`` points on the arc from z1 to z2 around ``center`` (default the origin)."""
    raise NotImplementedError("write slerp from the formula")


# %%
def check_slerp(fn):
    c = Z.mean(axis=0)
    assert np.allclose(fn(Z[i], Z[j], steps, center=c), slerp(Z[i], Z[j], steps, center=c),
                       atol=1e-4), "not tinyae's arc about the codes' mean"
    a, b = np.array([3.0, 1.0]), np.array([-1.0, 2.0])
    assert np.allclose(fn(a, b, 7), slerp(a, b, 7)), "not tinyae's arc about the origin"
    print("my_slerp follows tinyae's arcs")


with exercise("slerp yourself"):
    check_slerp(my_slerp)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **slerp yourself.** The angle comes from the normalised dot product
# (clipped, so rounding cannot push it past 1); t is a column, so each row
# of the result is one point.

# %% tags=["solution"]
def my_slerp(z1, z2, steps=10, center=None):
    """``steps`` points on the arc from z1 to z2 around ``center`` (default the origin)."""
    c = np.zeros(len(z1)) if center is None else np.asarray(center, np.float64)
    a, b = np.asarray(z1, np.float64) - c, np.asarray(z2, np.float64) - c
    w = np.arccos(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    t = np.linspace(0, 1, steps)[:, None]
    return c + (np.sin((1 - t) * w) * a + np.sin(t * w) * b) / np.sin(w)


check_slerp(my_slerp)
