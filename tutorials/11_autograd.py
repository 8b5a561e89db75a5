# %% [markdown]
# # 11. Autograd from scratch: the backward pass, found instead of written
#
# In tutorial 1 we derived each layer's backward by hand: Dense's
# dW = x^T dout, ReLU's mask, Sigmoid's y (1 - y). Frameworks find these for
# you. The idea is small enough to write in one file: every operation
# remembers its inputs and how to send a gradient back to them, and
# `backward()` walks that record from the loss to the weights.
#
# `tinyae/autograd.py` is that file (under 400 lines; read it beside this
# tutorial). Its `Tensor` holds a whole NumPy array, so one node of the
# graph is one NumPy call. We build it up from one multiply to the seed
# autoencoder, and check it three ways: against the hand-written layers,
# against finite differences, and by training.

# %%

import numpy as np

import tinyae as ta
from tinyae import fast
from tinyae.autograd import Tensor, layer_forward, mse, parameter_tensors, unbroadcast
from tinyae.gradcheck import check_op, check_three_ways, numerical_gradient, rel_error
from tinyae.tutorial import FAST, exercise, load, median_ms, show
from tinyae.viz import plot

rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## One multiply
#
# c = a b. Its gradient with respect to a is b, and with respect to b is a.
# The operation records both parents and a closure that, given the gradient
# g of its output, returns (g b, g a): one gradient per parent.

# %%
a, b = Tensor(2.0, name="a"), Tensor(3.0, name="b")
c = a * b
print(c, "parents:", [p.name for p in c.parents])
c.backward()                                  # dc/dc = 1, sent back through the closure
print(f"dc/da = {a.grad}, dc/db = {b.grad}")

# %% [markdown]
# ## A node used twice, and why backward needs a topological order
#
# Take b = 3 a and c = b + b. Then dc/db = 2 and dc/da = 6. The tempting
# implementation is recursion: each node adds what it receives to its
# gradient and immediately passes its gradient on. Here it is:

# %%
def naive_backward(node, g):
    """Add g to node.grad and pass the whole node.grad on at once (no waiting)."""
    node.grad = g if node.grad is None else node.grad + g
    if node.parents:
        for parent, pg in zip(node.parents, node._backward(node.grad)):   # the recorded closure
            if parent.requires_grad:
                naive_backward(parent, pg)


a = Tensor(2.0, name="a")
b = a * 3
c = b + b
naive_backward(c, np.float64(1.0))
print("naive recursion: dc/da =", a.grad)
a.grad = b.grad = c.grad = None
c.backward()
print("topological order: dc/da =", a.grad)

# %% [markdown]
# The naive walk gives 9: b passed on its gradient after its first use
# (1, so a got 3), then again after the second use (now 2, so a got 6 more).
# a received b's first share twice. Sending only the new share would be
# right, but would walk every *path* through the graph, and the number of
# paths doubles with each node that is used twice.
#
# `backward()` instead sorts the graph so that every node comes after all of
# its inputs, and walks that list backwards: by the time a node is reached,
# every use of it has added its share, and it sends its total on once.

# %%
print("forward order:", [t.op or t.name for t in c.topological_order()])

# %% [markdown]
# ## Gradients accumulate
#
# `backward()` *adds* into `.grad`, like the layers' `grads` dicts: a
# gradient summed over several losses or batches needs no extra code. The
# price is that calling it twice doubles every gradient, so a training step
# starts with `zero_grad()`.

# %%
c.backward()
print("after a second backward(): dc/da =", a.grad)
a.zero_grad()
c.backward()
print("after zero_grad() and backward(): dc/da =", a.grad)

# %% [markdown]
# ## Broadcasting's gradient
#
# `x + b` with x of shape (N, D) and b of shape (D,) copies b onto every row.
# Every copy influences the loss, so b's gradient is the sum of the copies'
# gradients: g summed over the rows. In general, `unbroadcast(g, shape)`
# sums g over the axes that broadcasting added or stretched.

# %%
x = Tensor(rng.standard_normal((4, 3)), name="x")
bias = Tensor(np.zeros(3), name="b")              # a row, copied onto 4 rows
col = Tensor(np.zeros((4, 1)), name="col")        # a column, copied across 3 columns
g = rng.standard_normal((4, 3))
(x + bias + col).backward(g)
print("b.grad   =", bias.grad, " g.sum(axis=0) =", g.sum(axis=0))
print("col.grad =", col.grad.ravel(), " g.sum(axis=1) =", g.sum(axis=1))
print("unbroadcast(g, (1, 3)) =", unbroadcast(g, (1, 3)))

# %% [markdown]
# `check_op` tests an operation the way `check_layer` tests a layer: it
# compares the tape's gradient with centred differences, in float64.

# %%
print(check_op(lambda x, b: (x * b).sigmoid(), rng.standard_normal((4, 3)), rng.standard_normal(3)))

# %% [markdown]
# ## The seed model's loss as an expression
#
# The seed autoencoder is 784-512-256-64-2 and back, ReLU inside, a linear
# code, a sigmoid on the output, and the mean squared error. With Tensors
# wrapping the model's own weight arrays (`parameter_tensors` shares them,
# it does not copy), the loss is a few lines:

# %%
X_train, _, data_name = load("train")
X = X_train[:4].astype(np.float64)                       # float64 for the comparisons
model = ta.dense_autoencoder(rng=np.random.default_rng(0), dtype=np.float64)
P = parameter_tensors(model)                             # {"encoder.0.W": Tensor, ...}


def dense(h, part, k):
    return h @ P[f"{part}.{k}.W"] + P[f"{part}.{k}.b"]   # x W + b


def seed_loss(X):
    x = Tensor(X, requires_grad=False, name="X")         # data: no gradient needed
    h = x
    for k in (0, 2, 4):
        h = dense(h, "encoder", k).relu()
    z = dense(h, "encoder", 6)                           # the 2-D code, linear
    for k in (0, 2, 4):
        z = dense(z, "decoder", k).relu()
    return mse(dense(z, "decoder", 6).sigmoid(), x)      # X is the target too


loss = seed_loss(X)
print(f"{data_name}: tape loss {loss.item():.6f}, layers' loss "
      f"{ta.MSE().forward(model.forward(X), X):.6f}")

# %% [markdown]
# `layer_forward(model, x, P)` writes the same expression for any tinyae
# layer, container or model, so you do not have to.
#
# ## The same gradients: from the tape, the layers, finite differences
#
# The layers compute the gradient with their hand-written backward; the
# tape finds it from the expression; finite differences measure it by
# nudging single weights. All three should agree.

# %%
loss.backward()

mse_layer = ta.MSE()
model.zero_grad()
mse_layer.forward(model.forward(X), X)
model.backward(mse_layer.backward())


def loss_value(_):
    return ta.MSE().forward(model.forward(X), X)


print(f"{'parameter':<13}{'shape':>12}{'tape vs layers':>16}{'numeric vs layers':>19}")
for name, p, grad in model.parameters():
    # Nudging all 1.1 million weights would take a while: take the entries with the largest
    # gradients (a dead ReLU's weights have gradient 0, where only rounding noise is measured).
    idx = np.argsort(np.abs(grad).ravel())[-(4 if FAST else 20):]
    numeric = numerical_gradient(loss_value, p, 1.0, indices=idx).reshape(-1)[idx]
    print(f"{name:<13}{str(p.shape):>12}{rel_error(P[name].grad, grad):>16.1e}"
          f"{rel_error(numeric, grad.reshape(-1)[idx]):>19.1e}")

# %% [markdown]
# The tape and the layers agree to the last bit or nearly (same products,
# same order); finite differences agree to about 1e-9, their own accuracy
# in float64 with h = 1e-5. (Try 16 images instead of 4: some ReLU inputs
# then sit within a nudge of 0, where finite differences measure a corner
# instead of a slope, and a few rows get much worse. The tape does not.)
#
# `check_three_ways` does this for any layer or model in one call, with a
# random upstream gradient. A layer of your own joins in by giving it a
# method `tensor_forward(x, params)`, its forward written with Tensors (or
# pass `forward=` to the call).

# %%
class MyTanhDense:
    """y = tanh(x W + b), as a student would write it."""

    def __init__(self, d, h, rng):
        self.params = {"W": rng.standard_normal((d, h)), "b": np.zeros(h)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x, self.y = x, np.tanh(x @ self.params["W"] + self.params["b"])
        return self.y

    def backward(self, dout):
        dz = dout * (1 - self.y ** 2)
        self.grads["W"] += self.x.T @ dz
        self.grads["b"] += dz.sum(axis=0)
        return dz @ self.params["W"].T

    def tensor_forward(self, x, params):
        return (x @ params["W"] + params["b"]).tanh()


print(check_three_ways(MyTanhDense(5, 3, rng), rng.standard_normal((4, 5))))

# %% [markdown]
# ## Training with the tape gives the same weights
#
# Three Adam steps from the same start: one model trained with its layers'
# gradients, one with the tape's (copied into the `grads` arrays that Adam
# reads).

# %%
twins = [ta.dense_autoencoder(rng=np.random.default_rng(1), dtype=np.float64) for _ in range(2)]
by_layers, by_tape = twins
opts = [ta.Adam(m.parameters(), lr=1e-3) for m in twins]
P_tape = parameter_tensors(by_tape)
for step in range(3):
    opts[0].zero_grad()
    mse_layer.forward(by_layers.forward(X), X)
    by_layers.backward(mse_layer.backward())
    opts[0].step()

    for t in P_tape.values():
        t.zero_grad()
    mse(layer_forward(by_tape, Tensor(X, requires_grad=False), P_tape), X).backward()
    for name, _, grad in by_tape.parameters():
        grad[...] = P_tape[name].grad
    opts[1].step()
diff = max(np.abs(p1 - p2).max() for (_, p1, _), (_, p2, _) in
           zip(by_layers.parameters(), by_tape.parameters()))
print(f"largest weight difference after 3 steps: {diff:.1e}")

# %% [markdown]
# ## A picture of the graph
#
# `tinyae.viz.plot.graph(t)` draws the record behind a Tensor t: operations in blue with
# their output shapes, parameters in orange, constants in grey. First one
# Dense layer with a sigmoid and the MSE:

# %%
xs = Tensor(rng.random((4, 3)), requires_grad=False, name="x")
W, bb = Tensor(rng.standard_normal((3, 2)), name="W"), Tensor(np.zeros(2), name="b")
small = mse((xs @ W + bb).sigmoid(), Tensor(rng.random((4, 2)), requires_grad=False, name="target"))
show(plot.graph(small, title="one Dense layer, sigmoid, MSE"), "11_graph_small.png")

# %% [markdown]
# And the seed model's loss: 8 matmuls, 8 bias adds, 6 ReLUs, the sigmoid
# and the loss, with X used twice (input and target).

# %%
show(plot.graph(seed_loss(X), title="the seed autoencoder's loss (batch of 4)"),
     "11_graph_seed.png")

# %% [markdown]
# ## The price
#
# The tape is general: any expression gets its gradient. It pays for that
# in time and memory: every operation is its own pass over memory (the bias
# add, the ReLU, each backward multiply), every intermediate array is kept
# until backward, and each backward step allocates new arrays. The plain
# layers know their maths ahead of time, and the fast path (tutorial 7)
# fuses it into Numba loops that reuse their arrays. Here is one training
# step of the seed model (float32, batch 256, Adam) three ways, on your
# machine:

# %%
Xb = X_train[:256]                                  # float32, like training
net = ta.dense_autoencoder(rng=np.random.default_rng(2))
opt, mse32 = ta.Adam(net.parameters()), ta.MSE()
P32 = parameter_tensors(net)
view, fast_mse, fast_adam = fast.accelerate(net), fast.FastMSE(), fast.fast_step(opt)


def plain_step():
    opt.zero_grad()
    mse32.forward(net.forward(Xb), Xb)
    net.backward(mse32.backward())
    opt.step()


def fast_step():
    view.zero_grad()
    fast_mse.forward(view.forward(Xb), Xb)
    view.backward(fast_mse.backward())
    fast_adam()


def tape_step():
    for t in P32.values():
        t.zero_grad()
    mse(layer_forward(net, Tensor(Xb, requires_grad=False), P32), Xb).backward()
    for name, _, grad in net.parameters():
        grad[...] = P32[name].grad                  # where Adam reads them
    opt.step()


ms = {name: median_ms(f) for name, f in (("plain layers", plain_step), ("fast path", fast_step),
                                          ("autograd tape", tape_step))}
for name, t in ms.items():
    print(f"{name:<14} {t:7.1f} ms per step   ({t / ms['plain layers']:.2f}x the plain layers)")

# %% [markdown]
# ## Exercise: two new operations
#
# Add `abs`: y = |x|, whose slope is sign(x) (we avoid x = 0, where |x| has
# a kink). An operation is a `Tensor` made with `parents`, `op` and a
# `backward` closure that returns one gradient per parent -- see `exp` in
# `tinyae/autograd.py` for the pattern.
#
# Then `maximum(a, b)` for Tensors that may broadcast against each other:
# the gradient goes to whichever input is larger, and each parent's share
# must be summed back to its own shape with `unbroadcast`. The engine
# refuses a gradient of the wrong shape, so it tells you if you forget.
#
# Fill in the two functions below. Each is checked with
# `tinyae.gradcheck.check_op` (the tape against finite differences), which
# must report PASSED: `abs` on inputs away from 0, `maximum` on a (3, 4)
# and a (4,) input, without ties.

# %%
def tensor_abs(x):
    raise NotImplementedError("your turn: return Tensor(np.abs(x.data), parents=(x,), ...)")


def maximum(a, b):
    raise NotImplementedError("your turn: return Tensor(np.maximum(a.data, b.data), ...)")


away_from_zero = rng.uniform(0.5, 2, (3, 4)) * rng.choice([-1, 1], (3, 4))
a_in, b_in = rng.standard_normal((3, 4)), rng.standard_normal(4)


def check(op, *inputs):
    report = check_op(op, *inputs)
    print(report)
    assert report.passed, report


# %%
with exercise("abs"):
    check(tensor_abs, away_from_zero)

# %%
with exercise("maximum"):
    check(maximum, a_in, b_in)

# %% [markdown] tags=["solution"]
# ## Solutions
#
# The solutions sit here, at the end, so that trying comes first.
#
# **abs**: the forward keeps the sign, the backward multiplies by it.

# %% tags=["solution"]
def tensor_abs(x):
    s = np.sign(x.data)
    return Tensor(np.abs(x.data), parents=(x,), op="abs", backward=lambda g: (g * s,))


with exercise("abs"):
    check(tensor_abs, away_from_zero)

# %% [markdown] tags=["solution"]
# **maximum**: a mask says where a wins; each share is summed back to its
# parent's shape. (At ties the gradient goes to a; the check avoids ties.)

# %% tags=["solution"]
def maximum(a, b):
    a_wins = a.data >= b.data                             # broadcast shape
    return Tensor(np.maximum(a.data, b.data), parents=(a, b), op="maximum",
                  backward=lambda g: (unbroadcast(g * a_wins, a.shape),
                                      unbroadcast(g * ~a_wins, b.shape)))


with exercise("maximum"):
    check(maximum, a_in, b_in)
