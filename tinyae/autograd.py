"""Autograd: a small reverse-mode engine on NumPy arrays.

The layers in ``nn/layers.py`` each carry a backward written by hand. Here the
backward is found instead: every operation on a ``Tensor`` records its
inputs (its *parents*) and a closure that maps the gradient of its output to
the gradients of its inputs. ``loss.backward()`` then walks that record from
the loss back to the leaves, the chain rule applied node by node:

    c = a * b           records  parents (a, b),  closure  g -> (g * b, g * a)
    c.backward()        a.grad = dc/da = b,  b.grad = dc/db = a

Tensors hold whole arrays, so one node is one NumPy call. The engine is
checked against finite differences (``tinyae.gradcheck.check_op``) and,
through ``layer_forward``, against the hand-written layers
(``tinyae.gradcheck.check_three_ways``).

dtype: float32 and float64 are kept as given. A Python number adopts the
dtype of the Tensor it meets; a float32 Tensor meeting a float64 one is an
error, never a silent upcast.
"""
import numpy as np

from .models.autoencoder import Autoencoder
from .nn.functional import sigmoid
from .nn.layers import Sequential, layer_parameters


class Tensor:
    """An array, its gradient, and how it was computed.

    Args:
        data: the array (kept as given: no copy, no dtype change).
        requires_grad: give this Tensor a gradient; False makes a constant
            (the data batch, a target). Gradients need floating point.
        name: a label for the graph picture.
        parents, op, backward: set by operations (see ``exp`` for the pattern):
            ``backward(g)`` returns one gradient per parent (None: skip it).
    """
    __array_ufunc__ = None        # ndarray * Tensor: NumPy hands over to Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = True, name: str = "", *,
                 parents=(), op: str = "", backward=None):
        if isinstance(data, Tensor):
            raise TypeError("Tensor(t) got a Tensor: use t itself, or Tensor(t.data) for a new "
                            "leaf on the same array (cut off from t's graph).")
        self.data = np.asarray(data)
        self.parents, self.op, self._backward, self.name = tuple(parents), op, backward, name
        # The result of an operation needs a gradient exactly when one of its inputs does.
        self.requires_grad = (any(p.requires_grad for p in self.parents) if parents
                              else requires_grad)
        if self.requires_grad and not np.issubdtype(self.data.dtype, np.floating):
            raise TypeError(f"Tensor: a gradient needs floating-point data, got {self.data.dtype}; "
                            "convert first, e.g. Tensor(x.astype(np.float64)), or pass "
                            "requires_grad=False for a constant.")
        self.grad = None                                  # dLoss/d(self), once backward reaches it

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)

    def item(self) -> float:
        """The value of a one-element Tensor as a Python number, e.g. ``loss.item()``."""
        return self.data.item()

    def __repr__(self):
        what = f"op={self.op!r}" if self.op else f"name={self.name!r}" if self.name else "leaf"
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, {what})"

    # --- the backward pass --------------------------------------------------------
    def backward(self, grad=None):
        """Add dself/d(leaf) (times ``grad``) into ``.grad`` of every Tensor it depends on.

        ``grad`` is the upstream gradient dLoss/d(self); it may be left out only
        when self is a single number (a loss), where it is 1.
        """
        if grad is None:
            if self.data.size != 1:
                raise ValueError(f"backward() on a Tensor of shape {self.shape} needs its upstream "
                                 "gradient: pass t.backward(g) with g of that shape, or reduce "
                                 "to a scalar first, e.g. t.sum().backward().")
            grad = np.ones_like(self.data)
        if not self.requires_grad:
            raise ValueError("backward() on a Tensor that needs no gradient: none of the Tensors "
                             "it was computed from has requires_grad=True.")
        grad = _lift(grad, self).data
        if grad.shape != self.shape or grad.dtype != self.dtype:
            raise ValueError(f"backward(): grad has shape {grad.shape} and dtype {grad.dtype}, but "
                             f"the Tensor has shape {self.shape} and dtype {self.dtype}; pass "
                             "dLoss/d(this Tensor), which has its shape and dtype.")
        # Why not recursion (each node calling its parents' backward right away)? A node used
        # twice, as b in c = b + b, would pass its gradient on after the first use, before the
        # second use has added its share: its parents get partial gradients more than once.
        # In reverse topological order every node has all of its gradient before sending any on.
        pending = {id(self): grad}                         # this pass's dLoss/d(node)
        for node in reversed(self.topological_order()):
            g = pending.pop(id(node))
            # Accumulate: a second backward() adds again (so zero_grad between steps). The
            # first gradient is copied, since g may be shared (+ passes g on unchanged).
            if node.grad is None:
                node.grad = np.array(g)                    # a copy, and an array even for ()
            else:
                node.grad += g
            if node._backward is None:                     # a leaf: nothing further back
                continue
            for parent, pg in zip(node.parents, _checked(node, node._backward(g))):
                if parent.requires_grad and pg is not None:
                    pending[id(parent)] = pending[id(parent)] + pg if id(parent) in pending else pg

    def topological_order(self, constants: bool = False):
        """Every Tensor that self depends on, each after its parents.

        Only those that need a gradient, unless ``constants`` (for pictures).
        Depth-first, with a stack rather than recursion: a graph deeper than
        Python's recursion limit (a loop of 1000 ops) still works.
        """
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))                 # comes back after all its parents
                stack.extend((p, False) for p in node.parents if p.requires_grad or constants)
        return order

    def zero_grad(self):
        """Set the gradient to zero, in place (gradients accumulate across backward calls)."""
        if self.grad is not None:
            self.grad.fill(0)

    # --- elementwise arithmetic, with NumPy broadcasting -------------------------
    def __add__(self, other):
        a, b = _broadcast("add (+)", self, other)
        return Tensor(a.data + b.data, parents=(a, b), op="add",
                      backward=lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))

    def __sub__(self, other):
        a, b = _broadcast("sub (-)", self, other)
        return Tensor(a.data - b.data, parents=(a, b), op="sub",
                      backward=lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))

    def __mul__(self, other):
        a, b = _broadcast("mul (*)", self, other)
        return Tensor(a.data * b.data, parents=(a, b), op="mul",           # d(ab) = b da + a db
                      backward=lambda g: (unbroadcast(g * b.data, a.shape),
                                          unbroadcast(g * a.data, b.shape)))

    def __truediv__(self, other):
        a, b = _broadcast("div (/)", self, other)
        return Tensor(a.data / b.data, parents=(a, b), op="div",        # d(a/b) = da/b - a db/b^2
                      backward=lambda g: (unbroadcast(g / b.data, a.shape),
                                          unbroadcast(-g * a.data / b.data ** 2, b.shape)))

    def __radd__(self, other):
        return _lift(other, self) + self

    def __rsub__(self, other):
        return _lift(other, self) - self

    def __rmul__(self, other):
        return _lift(other, self) * self

    def __rtruediv__(self, other):
        return _lift(other, self) / self

    def __neg__(self):
        return Tensor(-self.data, parents=(self,), op="neg", backward=lambda g: (-g,))

    def __pow__(self, p):
        if isinstance(p, Tensor) or np.ndim(p) != 0:
            raise TypeError("pow (**): the exponent must be a number, not a Tensor or array; "
                            "for a Tensor exponent write (b * a.log()).exp().")
        x, p = self.data, float(p)
        return Tensor(x ** p, parents=(self,), op=f"pow {p:g}",             # d x^p = p x^(p-1) dx
                      backward=lambda g: (g * p * x ** (p - 1),))

    # --- matrix product -----------------------------------------------------------
    def __matmul__(self, other):
        a, b = _same_dtype("matmul (@)", self, _lift(other, self))
        if a.data.ndim != 2 or b.data.ndim != 2:
            raise ValueError(f"matmul (@): expects 2-D Tensors, (N, D) @ (D, H), got {a.shape} @ "
                             f"{b.shape}; reshape first, e.g. x.reshape(1, -1) for one sample.")
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"matmul (@): {a.shape} @ {b.shape}: the left's columns "
                             f"({a.shape[1]}) must equal the right's rows ({b.shape[0]}); check the weight's "
                             "shape, (in_features, out_features), or transpose one side with .T")

        def backward(g):                                    # y = a b:  da = g b^T,  db = a^T g
            # The input batch of a first layer needs no gradient, and g b^T is a big product.
            return (g @ b.data.T if a.requires_grad else None,
                    a.data.T @ g if b.requires_grad else None)
        return Tensor(a.data @ b.data, parents=(a, b), op="matmul", backward=backward)

    def __rpow__(self, base):
        raise TypeError("pow (**): a Tensor exponent is not supported; write base ** t as "
                        "(t * np.log(base)).exp().")

    def __rmatmul__(self, other):
        return _lift(other, self) @ self

    # --- elementwise functions: each closure uses what the forward computed --------
    def exp(self):
        y = np.exp(self.data)
        return Tensor(y, parents=(self,), op="exp", backward=lambda g: (g * y,))

    def log(self):
        x = self.data
        return Tensor(np.log(x), parents=(self,), op="log", backward=lambda g: (g / x,))

    def relu(self):
        mask = self.data > 0                               # the slope: 1 where x > 0, else 0
        return Tensor(self.data * mask, parents=(self,), op="relu", backward=lambda g: (g * mask,))

    def sigmoid(self):
        y = sigmoid(self.data)                             # the overflow-free formula
        return Tensor(y, parents=(self,), op="sigmoid", backward=lambda g: (g * y * (1 - y),))

    def tanh(self):
        y = np.tanh(self.data)
        return Tensor(y, parents=(self,), op="tanh", backward=lambda g: (g * (1 - y * y),))

    # --- reductions and shape -----------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        """Sum over ``axis`` (all by default); its gradient copies g back over the summed axes."""
        shape = self.shape
        return Tensor(self.data.sum(axis=axis, keepdims=keepdims), parents=(self,), op="sum",
                      backward=lambda g: (_spread(g, shape, axis, keepdims),))

    def mean(self, axis=None, keepdims: bool = False):
        """Mean over ``axis``: the sum's gradient divided by the count n."""
        shape, y = self.shape, self.data.mean(axis=axis, keepdims=keepdims)
        n = self.data.size // max(1, y.size)                        # entries per mean
        return Tensor(y, parents=(self,), op="mean",
                      backward=lambda g: (_spread(g / n, shape, axis, keepdims),))

    def reshape(self, *shape):
        old = self.shape
        return Tensor(self.data.reshape(*shape), parents=(self,), op="reshape",
                      backward=lambda g: (g.reshape(old),))

    @property
    def T(self):
        return Tensor(self.data.T, parents=(self,), op="T", backward=lambda g: (g.T,))

    def transpose(self, *axes):
        """Axes permuted; the gradient is permuted back (the inverse permutation)."""
        back = np.argsort(axes)
        return Tensor(self.data.transpose(axes), parents=(self,), op="transpose",
                      backward=lambda g: (g.transpose(back),))

    def __getitem__(self, index):
        """x[index]; each picked entry's gradient goes back to where it was picked from."""
        shape = self.shape

        def backward(g):
            dx = np.zeros(shape, g.dtype)
            np.add.at(dx, index, g)                     # add.at: an entry picked twice adds twice
            return (dx,)
        return Tensor(self.data[index], parents=(self,), op="getitem", backward=backward)

    def max(self, axis=-1):
        """The largest entry along ``axis``; the gradient goes to it alone (the first, on ties)."""
        at = np.expand_dims(self.data.argmax(axis=axis), axis)

        def backward(g):
            dx = np.zeros(self.shape, g.dtype)
            np.put_along_axis(dx, at, np.expand_dims(g, axis), axis=axis)
            return (dx,)
        return Tensor(np.take_along_axis(self.data, at, axis=axis).squeeze(axis), parents=(self,),
                      op="max", backward=backward)

    # --- images (N, C, H, W): the pieces of a convolution -----------------------------
    def pad(self, widths):
        """np.pad with zeros, ``widths`` = ((before, after), ...) per axis; backward: the middle."""
        middle = tuple(slice(a, n + a) for (a, _), n in zip(widths, self.shape))
        return Tensor(np.pad(self.data, widths), parents=(self,), op="pad",
                      backward=lambda g: (g[middle],))

    def dilate(self, stride):
        """stride - 1 zeros between neighbouring pixels of the last two axes; backward: pick."""
        sh, sw = stride
        *lead, H, W = self.shape
        y = np.zeros((*lead, (H - 1) * sh + 1, (W - 1) * sw + 1), self.dtype)
        y[..., ::sh, ::sw] = self.data
        return Tensor(y, parents=(self,), op="dilate", backward=lambda g: (g[..., ::sh, ::sw],))

    def windows(self, kernel, stride):
        """Every kh x kw window of the last two axes: (N, C, H, W) -> (N, C, Ho, Wo, kh, kw).

        A gather: win[..., h, w, i, j] = x[..., h sh + i, w sw + j]. Its backward
        scatters each window's gradient back with np.add.at (overlaps add).
        """
        (kh, kw), (sh, sw), shape = kernel, stride, self.shape
        win = np.lib.stride_tricks.sliding_window_view(self.data, (kh, kw), axis=(-2, -1))
        win = win[..., ::sh, ::sw, :, :]
        Ho, Wo = win.shape[-4:-2]
        rows = (np.arange(Ho) * sh)[:, None] + np.arange(kh)          # (Ho, kh): h sh + i
        cols = (np.arange(Wo) * sw)[:, None] + np.arange(kw)          # (Wo, kw): w sw + j

        def backward(g):
            dx = np.zeros(shape, g.dtype)
            np.add.at(dx, (Ellipsis, rows[:, None, :, None], cols[None, :, None, :]), g)
            return (dx,)
        return Tensor(win, parents=(self,), op="windows", backward=backward)

    def conv2d(self, W, b, stride=(1, 1), padding=(0, 0)):
        """A convolution as the tape sees it: pad, windows, one matmul (im2col), plus b.

        x (N, C, H, W), W (O, C, kh, kw), b (O,) -> (N, O, Ho, Wo), as ``nn.Conv2D``.
        """
        ph, pw = padding
        win = self.pad(((0, 0), (0, 0), (ph, ph), (pw, pw))).windows(W.shape[2:], stride)
        N, C, Ho, Wo, kh, kw = win.shape
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, C * kh * kw)
        y = cols @ W.reshape(W.shape[0], C * kh * kw).T                  # (N Ho Wo, O)
        return y.reshape(N, Ho, Wo, W.shape[0]).transpose(0, 3, 1, 2) + b.reshape(-1, 1, 1)

    def conv_transpose2d(self, W, b, stride=(1, 1), padding=(0, 0), output_padding=(0, 0)):
        """A transposed convolution by its other formula: dilate x by the stride, pad it
        by kernel - 1 (and ``output_padding`` at the end), convolve with the kernel
        flipped and its channel axes swapped, crop ``padding``; plus b.

        x (N, C, H, W), W (C, O, kh, kw), b (O,) -> (N, O, Ho, Wo), as ``nn.ConvTranspose2D``.
        (``nn.ConvTranspose2D`` overlap-adds instead; the two formulas must agree.)
        """
        (kh, kw), (ph, pw), (oh, ow) = W.shape[2:], padding, output_padding
        full = self.dilate(stride).pad(((0, 0), (0, 0), (kh - 1, kh - 1 + oh),
                                        (kw - 1, kw - 1 + ow)))
        flipped = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)            # (O, C, kh, kw)
        zero = Tensor(np.zeros(W.shape[1], W.dtype), requires_grad=False)
        y = full.conv2d(flipped, zero)                                   # (N, O, Hp, Wp)
        return y[:, :, ph:y.shape[2] - ph, pw:y.shape[3] - pw] + b.reshape(-1, 1, 1)

    def max_pool2d(self, kernel, stride):
        """The largest entry of each window: (N, C, H, W) -> (N, C, Ho, Wo)."""
        win = self.windows(kernel, stride)                               # (N, C, Ho, Wo, kh, kw)
        return win.reshape(*win.shape[:4], kernel[0] * kernel[1]).max(axis=-1)


# --- helpers for the operations ------------------------------------------------------
def _checked(node, grads):
    """The gradients a node's closure returned, checked: one per parent, each of its shape."""
    if not isinstance(grads, (tuple, list)) or len(grads) != len(node.parents):
        raise TypeError(f"the backward of {node.op!r} must return a tuple with one gradient per "
                        f"parent ({len(node.parents)}), e.g. (g * y,) for one parent.")
    grads = [None if pg is None else np.asarray(pg) for pg in grads]
    for k, (parent, pg) in enumerate(zip(node.parents, grads)):
        if parent.requires_grad and pg is not None and (pg.shape != parent.shape
                                                        or pg.dtype != parent.dtype):
            raise ValueError(f"the backward of {node.op!r} gave parent {k} a gradient of shape "
                             f"{pg.shape} and dtype {pg.dtype}, but the parent has shape "
                             f"{parent.shape} and dtype {parent.dtype}; after broadcasting, "
                             "sum back with unbroadcast(g, parent.shape).")
    return grads


def _lift(x, like):
    """A number or array met in an operation becomes a constant Tensor.

    Python numbers and integer arrays take the dtype of ``like`` (the Tensor
    they meet), so ``2 * x`` stays float32 when x is float32.
    """
    if isinstance(x, Tensor):
        return x
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":                                  # None, strings, objects
        raise TypeError(f"a Tensor meets {x.dtype} data ({x!r:.40}); operations take numbers, "
                        "NumPy arrays of numbers and Tensors.")
    if not np.issubdtype(x.dtype, np.floating) or x.ndim == 0:
        if np.issubdtype(like.dtype, np.floating):
            x = x.astype(like.dtype)
    return Tensor(x, requires_grad=False)


def _same_dtype(op, a, b):
    """Both operands in one float dtype: an integer constant adopts the other's dtype."""
    b = _lift(b, a)
    fa, fb = np.issubdtype(a.dtype, np.floating), np.issubdtype(b.dtype, np.floating)
    if fa and not fb:
        b = Tensor(b.data.astype(a.dtype), requires_grad=False)
    elif fb and not fa:
        a = Tensor(a.data.astype(b.dtype), requires_grad=False)
    elif a.dtype != b.dtype:
        raise TypeError(f"{op}: a {a.dtype} Tensor meets a {b.dtype} Tensor (shapes {a.shape}, "
                        f"{b.shape}); tinyae never converts silently: convert one side, e.g. "
                        f"Tensor(x.astype(np.{a.dtype})).")
    return a, b


def _broadcast(op, a, b):
    """The operands of an elementwise op, checked: one dtype, shapes that broadcast."""
    a, b = _same_dtype(op, a, b)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast. NumPy lines "
                         "shapes up from the right, and each pair of sizes must be equal or 1; "
                         "reshape one side, e.g. b.reshape(-1, 1) to make a column of (n,)."
                         ) from None
    return a, b


def unbroadcast(g, shape):
    """Sum the gradient ``g`` back to ``shape``: the backward of NumPy broadcasting.

    Broadcasting copies an operand along new leading axes and along its axes
    of size 1. Each copy feeds the output, so the operand's gradient is the
    sum of the copies' gradients:  (N, D) + (D,)  ->  db = g.sum(axis=0).
    """
    extra = g.ndim - len(shape)                                     # new leading axes
    g = g.sum(axis=tuple(range(extra))) if extra else g
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True) if stretched else g


def _spread(g, shape, axis, keepdims):
    """The backward of a sum over ``axis``: every summed entry gets the same g."""
    if not keepdims and axis is not None:
        g = np.expand_dims(g, axis)                                 # back to rank of the input
    return np.broadcast_to(g, shape)


# --- losses, written from the operations above ----------------------------------------
def _same_shape(who, pred, target):
    if np.shape(pred.data) != np.shape(getattr(target, "data", target)):
        raise ValueError(f"{who}: pred has shape {pred.shape} but target has shape "
                         f"{np.shape(getattr(target, 'data', target))}; they must match "
                         "element for element (no broadcasting in a loss).")


def mse(pred: Tensor, target) -> Tensor:
    """Mean squared error over all N*D elements: mean((pred - target)^2), as ``tinyae.MSE``."""
    _same_shape("mse", pred, target)
    return ((pred - target) ** 2).mean()


def bce_with_logits(z: Tensor, target) -> Tensor:
    """Binary cross-entropy from logits, as ``tinyae.BCE(from_logits=True)``.

        L = mean(max(z, 0) - z t + log(1 + exp(-|z|)))

    with -|z| written as z - 2 relu(z): exp never overflows, and the gradient
    is sigmoid(z) - t even at z = 0, where relu's slope is taken as 0.
    """
    _same_shape("bce_with_logits", z, target)
    return (z.relu() - z * target + (1 + (z - 2 * z.relu()).exp()).log()).mean()


# --- the layers as Tensor expressions --------------------------------------------------
def layer_forward(layer, x: Tensor, params: dict, prefix: str = "") -> Tensor:
    """The forward of a tinyae layer, container or model, written with Tensors.

    ``params`` maps each parameter's dotted name (as in ``model.parameters()``)
    to its Tensor. Containers chain their parts; every layer writes its own
    forward with Tensors in its method ``tensor_forward(x, params)``, taking its
    own {"W": Tensor, ...} (tinyae's layers have one; give yours one too).
    """
    if isinstance(layer, Autoencoder):
        z = layer_forward(layer.encoder, x, params, prefix + "encoder.")
        return layer_forward(layer.decoder, z, params, prefix + "decoder.")
    if isinstance(layer, Sequential):
        for i, child in enumerate(layer.layers):
            x = layer_forward(child, x, params, f"{prefix}{i}.")
        return x
    if hasattr(layer, "tensor_forward"):
        return layer.tensor_forward(x, {k: params[prefix + k] for k in layer.params})
    raise TypeError(f"autograd has no Tensor version of {type(layer).__name__}: give the class a "
                    "method tensor_forward(self, x, params) that computes its forward with "
                    "Tensor operations (params: its own {name: Tensor}).")


def parameter_tensors(model) -> dict:
    """{dotted name: Tensor} wrapping the model's own parameter arrays (shared, not copied)."""
    return {name: Tensor(p, name=name) for name, p, _ in layer_parameters(model)}
