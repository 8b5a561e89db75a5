# %% [markdown]
# # 1. Layers by hand: forward, backward, and checking them
#
# A neural network is a chain of small functions. For each one we need two
# things:
#
# - **forward**: compute the output from the input, and remember what the
#   backward pass will need;
# - **backward**: given dL/d(output) -- how the loss changes when the output
#   changes -- return dL/d(input), and add the gradients of the parameters.
#
# Chaining backward calls in reverse order is the chain rule: autograd at the
# level of layers (tutorial 11 builds the general kind). In this tutorial we derive the backward pass of
# `Dense`, `ReLU`, `Sigmoid` and `MSE` on tiny arrays, and let
# `tinyae.gradcheck` confirm each derivation numerically.

# %%
import numpy as np

import tinyae as ta
from tinyae.gradcheck import check_layer, check_loss, rel_error
from tinyae.tutorial import exercise

rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Dense: y = x W + b
#
# With x of shape (N, D), W of shape (D, H) and b of shape (H,), each output
# is y[n, h] = sum_d x[n, d] W[d, h] + b[h]. Differentiating:
#
# - dL/dW = x^T dout (every sample contributes the outer product of its input
#   and its output gradient),
# - dL/db = sum over the batch of dout,
# - dL/dx = dout W^T.
#
# Let us compute those by hand and compare with the layer.

# %%
dense = ta.Dense(3, 2, rng=rng, dtype=np.float64)
x = rng.standard_normal((4, 3))
y = dense.forward(x)
dout = rng.standard_normal(y.shape)          # pretend this came from the loss
dx = dense.backward(dout)

W = dense.params["W"]
print("dW by hand == layer:", np.allclose(x.T @ dout, dense.grads["W"]))
print("db by hand == layer:", np.allclose(dout.sum(axis=0), dense.grads["b"]))
print("dx by hand == layer:", np.allclose(dout @ W.T, dx))

# %% [markdown]
# ## Checking with finite differences
#
# A derivation can be wrong in ways that still give arrays of the right
# shape. The check: nudge one input by +h and -h, see how
# s = sum(forward(x) * dout) changes, and compare (s+ - s-) / 2h with the
# gradient from backward. In float64 with h = 1e-5 the two agree to about
# 1e-10 when the backward pass is right.

# %%
report = check_layer(ta.Dense(3, 2, rng=rng), rng.standard_normal((4, 3)))
print(report)

# %% [markdown]
# ## ReLU and Sigmoid
#
# ReLU: y = max(x, 0), so dy/dx is 1 where x > 0 and 0 elsewhere:
# dx = dout * [x > 0].
#
# Sigmoid: y = 1 / (1 + e^{-x}) has the neat derivative y (1 - y), so
# dx = dout * y * (1 - y). It is computed as e^{-|x|} / (1 + e^{-|x|}) for
# negative x, so no input overflows.

# %%
relu, sigmoid = ta.ReLU(), ta.Sigmoid()
z = np.array([[-2.0, -0.5, 0.5, 2.0]])
# ReLU computes x * [x > 0], and a negative number times 0 is -0.0 in floating point
# (it equals 0.0); adding 0.0 turns it into a plain 0 for printing.
print("relu:", relu.forward(z) + 0.0, " grad:", relu.backward(np.ones_like(z)) + 0.0)
s = sigmoid.forward(z)
print("sigmoid:", s, " grad:", sigmoid.backward(np.ones_like(z)), "= y(1-y):", s * (1 - s))
print(check_layer(ta.ReLU(), rng.standard_normal((3, 5))))
print(check_layer(ta.Sigmoid(), rng.standard_normal((3, 5))))

# %% [markdown]
# ## MSE
#
# The loss of the seed model is l(X, X') = 1/n sum (x_i - x'_i)^2, the mean
# over all n = N * D elements. Its gradient with respect to the
# reconstruction is 2 (x' - x) / n.

# %%
mse = ta.MSE()
pred, target = rng.random((2, 3)), rng.random((2, 3))
value = mse.forward(pred, target)
print(f"MSE = {value:.4f}; by hand {np.mean((pred - target) ** 2):.4f}")
print("gradient equals 2(pred - target)/n:", np.allclose(mse.backward(), 2 * (pred - target) / pred.size))
print(check_loss(ta.MSE(), pred, target))

# %% [markdown]
# ## A broken backward is caught
#
# Here is a dense layer as you might write it yourself, without tinyae's base
# class -- and with a typical mistake: the bias gradient uses the *mean* over
# the batch instead of the sum. The checker points at exactly that parameter.

# %%
class MyDense:
    def __init__(self, d, h, rng):
        self.params = {"W": rng.standard_normal((d, h)), "b": np.zeros(h)}
        self.grads = {"W": np.zeros((d, h)), "b": np.zeros(h)}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads["W"] += self.x.T @ dout
        self.grads["b"] += dout.mean(axis=0)          # the bug: should be .sum(axis=0)
        return dout @ self.params["W"].T


report = check_layer(MyDense(3, 2, rng), rng.standard_normal((5, 3)))
print(report)
print("wrong gradients:", report.failed)

# %% [markdown]
# `rel_error(a, b)` is max |a - b| / max(|a| + |b|): below 1e-7 means the
# derivation is right; around 1 means it is simply wrong.

# %%
print(rel_error([1.0, 2.0], [1.0, 2.0 + 1e-9]), rel_error([1.0, 2.0], [0.5, 1.0]))

# %% [markdown]
# Each row also names its *worst entry*: where backward and the finite
# difference disagree most, with both values. For the bias above the backward
# gives a fifth of the numeric value: the mean over 5 rows instead of the sum.
#
# ## Right maths is not enough: the layer contract
#
# A backward can compute the right numbers and still break training. The
# commonest slip: `self.grads["W"] = ...` instead of `+=`. Once, the numbers
# are the same; but an optimiser holds the array that was in `grads` when it
# was built, so a new array is never seen and W never changes. `check_layer`
# also runs `check_contract`, which calls the layer the way containers and
# optimisers do: it names this slip, and others (a backward without `return`,
# an input changed in place, float32 arithmetic), each with its fix.

# %%
class AssigningDense(MyDense):
    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout             # the slip: = instead of +=
        self.grads["b"] += dout.sum(axis=0)
        return dout @ self.params["W"].T


report = check_layer(AssigningDense(3, 2, rng), rng.standard_normal((5, 3)))
print(report)

# %% [markdown]
# ## Exercise: LeakyReLU
#
# LeakyReLU passes negative inputs through with a small slope a:
# y = x for x > 0 and y = a x otherwise. Derive dy/dx, then replace the two
# `raise NotImplementedError(...)` lines below with `forward` and `backward`.
# The cell after it checks your layer twice: `check_layer` compares your
# backward with finite differences of your forward, and your forward is
# compared with tinyae's `ta.LeakyReLU` (a forward and backward that are wrong
# in the same way would fool the gradient check alone).
# The full version has its solution at the end of the file: try yours first.

# %%
class MyLeakyReLU:
    def __init__(self, a=0.01):
        self.a, self.params, self.grads = a, {}, {}

    def forward(self, x):
        raise NotImplementedError("write MyLeakyReLU.forward")

    def backward(self, dout):
        raise NotImplementedError("write MyLeakyReLU.backward")


# %%
def check_leaky_relu(layer_class, a=0.1):
    x = rng.standard_normal((4, 6))
    layer = layer_class(a)
    assert np.allclose(layer.forward(x), ta.LeakyReLU(a).forward(x)), \
        "the forward differs from ta.LeakyReLU"
    print("same forward as ta.LeakyReLU: True")
    report = check_layer(layer_class(a), x)       # gradients and the layer contract
    report.assert_ok()            # if wrong: an AssertionError whose message is the table
    print(report)


with exercise("LeakyReLU"):
    check_leaky_relu(MyLeakyReLU)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions are here, at the end of the file, so that trying comes first.
#
# **LeakyReLU.** Remember where x > 0 in forward; backward lets dout through
# there and scales it by a elsewhere.

# %% tags=["solution"]
class MyLeakyReLU:
    def __init__(self, a=0.01):
        self.a, self.params, self.grads = a, {}, {}

    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, self.a * x)

    def backward(self, dout):
        return np.where(self.mask, dout, self.a * dout)


check_leaky_relu(MyLeakyReLU)
