"""NumPy reference kernels: the readable definition of every hot operation.

Each function here is the specification that a fast version (``fast.py``)
must reproduce. Activations are named by strings so that one dense kernel can
apply any of them; derivatives are written in terms of the output ``y``
because that is what the forward pass keeps.

    act           y = act(z)                   act'(z) written with y
    identity      z                            1
    relu          max(z, 0)                    [y > 0]
    leaky_relu    z if z > 0 else alpha z      1 if y > 0 else alpha
    sigmoid       1 / (1 + exp(-z))            y (1 - y)
    tanh          tanh(z)                      1 - y^2
"""
import math

import numpy as np

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")


def sigmoid(z, out=None):
    """Logistic function that cannot overflow: exp only ever sees -|z|."""
    e = np.exp(-np.abs(z))                        # in (0, 1], never inf
    return np.divide(np.where(z >= 0, 1, e), 1 + e, out=out)


def act_forward(z, act, alpha=0.0, out=None):
    """y = act(z), elementwise; ``out=z`` computes in place."""
    if act == "identity":
        if out is None or out is z:
            return z
        np.copyto(out, z)
        return out
    if act == "relu":
        return np.maximum(z, 0, out=out)
    if act == "leaky_relu":
        slope = np.where(z > 0, z.dtype.type(1), z.dtype.type(alpha))
        return np.multiply(z, slope, out=out)
    if act == "sigmoid":
        return sigmoid(z, out=out)
    if act == "tanh":
        return np.tanh(z, out=out)
    raise ValueError(f"unknown activation {act!r}; choose one of {ACTIVATIONS}")


def act_backward(y, dy, act, alpha=0.0):
    """dz = dy * act'(z), with act'(z) written in terms of the output y."""
    if act == "identity":
        return dy
    if act == "relu":
        return dy * (y > 0)
    if act == "leaky_relu":
        return np.where(y > 0, dy, dy * dy.dtype.type(alpha))
    if act == "sigmoid":
        return dy * y * (1 - y)
    if act == "tanh":
        return dy * (1 - y * y)
    raise ValueError(f"unknown activation {act!r}; choose one of {ACTIVATIONS}")


def dense_forward(x, W, b, act="identity", alpha=0.0, out=None):
    """y = act(x @ W + b).  x (N, D), W (D, H), b (H,) or None -> y (N, H), into ``out`` if given."""
    z = np.matmul(x, W, out=out)                  # (N, H)
    if b is not None:
        z += b
    return act_forward(z, act, alpha, out=z)


def dense_backward(x, W, y, dy, dW, db, act="identity", alpha=0.0, need_dx=True,
                   accumulate=True, dx_out=None):
    """Backward of y = act(x @ W + b); adds into dW and db, returns dx.

    dz = dy * act'(z)      (N, H)
    dW += x^T dz           (D, H)
    db += sum_n dz         (H,)
    dx  = dz W^T           (N, D), or None when ``need_dx`` is False

    ``accumulate=False`` overwrites dW and db instead of adding: the same
    result when they hold zeros, without a temporary the size of W.
    ``dx_out`` receives dx when given.
    """
    dz = act_backward(y, dy, act, alpha)
    if accumulate:
        dW += x.T @ dz
    else:
        np.matmul(x.T, dz, out=dW)
    if db is not None:
        if accumulate:
            db += dz.sum(axis=0)
        else:
            np.sum(dz, axis=0, out=db)
    return np.matmul(dz, W.T, out=dx_out) if need_dx else None


def adam_update(p, g, m, v, lr, beta1, beta2, eps, t, weight_decay=0.0):
    """One Adam step (Kingma & Ba, with bias correction), all arrays in place.

    g <- g + wd p                   (L2 penalty, as torch.optim.Adam)
    m <- b1 m + (1 - b1) g          first moment
    v <- b2 v + (1 - b2) g^2        second moment
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

    The last line is the paper's lr * m_hat / (sqrt(v_hat) + eps) with the bias
    corrections m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t) folded into
    scalars, the way torch.optim.Adam computes it.
    """
    if weight_decay:
        g = g + weight_decay * p                  # a copy: the stored grad stays as computed
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    step = lr / (1 - beta1 ** t)
    denom = np.sqrt(v)
    denom *= 1 / math.sqrt(1 - beta2 ** t)        # a multiply: cheaper than a divide
    denom += eps
    np.divide(m, denom, out=denom)
    denom *= step
    p -= denom


def mse_grad(pred, target, out=None):
    """The MSE loss and its gradient together: returns (s, g), into ``out`` when given.

    s = sum (pred - target)^2          a float; the loss is s / (N*D)
    g = 2 (pred - target) / (N*D)      dLoss/dpred, pred's shape

    Computed in the forward pass because it is one more write per element
    there: the fast version makes a single pass over pred and target.
    """
    diff = np.subtract(pred, target, out=out)
    s = float(np.vdot(diff, diff))                # sum of squares, no temporary
    diff *= diff.dtype.type(2.0 / diff.size)
    return s, diff


def gather_rows(X, idx, out=None):
    """X[idx]: the rows of one mini-batch, contiguous; into ``out`` when given.

    Reusing ``out`` every step matters more than it looks: a fresh batch of a
    few hundred KiB costs page faults that take longer than the copy.
    """
    return X[idx] if out is None else np.take(X, idx, axis=0, out=out)
