"""The autoencoder: an encoder f: R^D -> R^Z and a decoder back to R^D.

    Z  = f(X)            encode: compress to the latent code
    X' = g(Z)            decode: reconstruct (the seed writes g as f^{-1})
    trained to minimise the reconstruction error l(X, X').
"""
import numpy as np

from ..nn.layers import (  # noqa: F401 (re-export)
    ACTIVATION_LAYERS,
    MAX_PARAMETERS,
    Dense,
    Sequential,
    check_model_size,
    input_width,
    layer_from_config,
    layer_parameters,
    output_width,
    zero_grads,
)

SEED_SIZES = (784, 512, 256, 64, 2)


class Autoencoder:
    """An encoder and a decoder chained: forward(X) = decoder(encoder(X)).

    Args:
        encoder, decoder: layers or containers following the layer contract.
    Shapes:
        X (N, D) -> Z (N, Z) -> X' (N, D);  ``encode``/``decode`` also take one
        sample (1-D) and then return one sample.
    """

    input_part = "encoder"       # the part that sees the data: training never needs its dx

    def __init__(self, encoder, decoder):
        self.encoder, self.decoder = encoder, decoder

    # --- the maths ---------------------------------------------------------------
    def forward(self, X):
        """X' = decoder(encoder(X)) for a batch X of shape (N, D)."""
        return self.decoder.forward(self.encoder.forward(X))

    __call__ = forward

    def backward(self, dX):
        """Chain rule through decoder then encoder: dZ = g'(dX), returns dLoss/dX = f'(dZ)."""
        dZ = self.decoder.backward(dX)
        return self.encoder.backward(dZ)

    def penalty(self) -> float:
        """The model's own term in the training objective, for its last forward.

        ``fit`` minimises ``loss(forward(X), X) + penalty()``. A plain
        autoencoder has none (0.0); a sparse one penalises its code's activity
        (and adds that term's gradient inside its own ``backward``).
        """
        return 0.0

    def encode(self, X, logvar: bool = False):
        """Z = f(X): (N, D) -> (N, Z), or (D,) -> (Z,)."""
        if logvar:
            raise ValueError(f"a {type(self).__name__} has no logvar: its encoder gives one code "
                             "per image, not a Gaussian; only a VariationalAutoencoder "
                             "(tinyae.variational_autoencoder, --model vae) has mu and logvar")
        return self._one_or_batch(self.encoder, X, self.input_width, "encode")

    def decode(self, Z):
        """X' = g(Z): (N, Z) -> (N, D), or (Z,) -> (D,)."""
        return self._one_or_batch(self.decoder, Z, self.latent_width, "decode")

    def reconstruct(self, X):
        """decode(encode(X)), keeping the rank of X."""
        return self.decode(self.encode(X))

    @staticmethod
    def _one_or_batch(net, x, width, who):
        x = np.asarray(x)
        if x.ndim not in (1, 2) or (width is not None and x.shape[-1] != width):
            raise ValueError(f"{who}() expects {width} features per sample, as shape ({width},) "
                             f"or (N, {width}); got shape {x.shape}")
        y = net.forward(np.atleast_2d(x))
        return y[0] if x.ndim == 1 else y

    # --- bookkeeping -------------------------------------------------------------
    def parameters(self, prefix=""):
        """Yield ``(name, param, grad)``, named like "encoder.0.W"."""
        yield from layer_parameters(self.encoder, prefix + "encoder.")
        yield from layer_parameters(self.decoder, prefix + "decoder.")

    def zero_grad(self):
        for part in self.children():
            zero_grads(part)

    def children(self):
        return [self.encoder, self.decoder]

    @property
    def input_width(self):
        """D, read from the encoder's first weight (None when no layer says)."""
        return input_width(self.encoder)

    @property
    def latent_width(self):
        """Z, read from the decoder's first weight (None when no layer says)."""
        return input_width(self.decoder)

    @property
    def dtype(self):
        return next(self.parameters())[1].dtype

    def num_parameters(self):
        return sum(p.size for _, p, _ in self.parameters())

    def config(self):
        return {"type": type(self).__name__, "encoder": self.encoder.config(),
                "decoder": self.decoder.config(), "dtype": np.dtype(self.dtype).name}

    @classmethod
    def from_config(cls, cfg, rng=None):
        dtype = np.dtype(cfg.get("dtype", "float32"))
        return cls(layer_from_config(cfg["encoder"], rng, dtype),
                   layer_from_config(cfg["decoder"], rng, dtype))

    # --- what a checkpoint of this kind may hold (tinyae.io.check asks, before building) ----
    OPTIONS = frozenset()           # config keys this kind adds to encoder, decoder, dtype

    @classmethod
    def check_options(cls, cfg):
        """``ValueError`` when the kind's own settings in ``cfg`` are not ones it writes."""

    @classmethod
    def code_width(cls, cfg, walk, width):
        """The code's width, from the encoder's output ``width``; ``walk(part_cfg, prefix,
        width)`` adds the parameter shapes of the parts between (none here) and returns
        their output width."""
        return width

    @classmethod
    def condition_width(cls, cfg):
        """What the encoder reads beside the decoder's output: nothing (a conditional VAE: the
        label)."""
        return 0

    def summary(self, print_fn=print):
        """Print each layer with its output shape and parameter count, then the total."""
        rows, width = layer_rows("encoder", self.encoder, self.input_width)
        rows += layer_rows("decoder", self.decoder, width)[0]
        print_table([input_row(self.input_width)] + rows, self.num_parameters(), print_fn)

    def __repr__(self):
        return f"{type(self).__name__}(\n encoder={self.encoder!r},\n decoder={self.decoder!r}\n)"


def number(x):
    """A JSON number (an int or float, not a bool): what a config's setting must be."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def target_of(model, X):
    """What the model's output is compared with: X itself, or the model's ``target(X)`` (a
    conditional VAE's rows carry labels beside the images)."""
    target = getattr(model, "target", None)
    return X if target is None else target(X)


def model_penalty(model) -> float:
    """``model.penalty()`` for its last forward, or 0.0 for a model without one."""
    penalty = getattr(model, "penalty", None)
    return 0.0 if penalty is None else float(penalty())


# --- the summary table: one row per layer -------------------------------------------
def batch_shape(width):
    """The shape of a batch of samples of ``width`` (an int, a tuple for images, or None),
    as Keras prints it: "(None, 784)", "(None, 32, 28, 28)", "(None, ?)"."""
    dims = width if isinstance(width, tuple) else ("?" if width is None else width,)
    return f"(None, {', '.join(map(str, dims))})"


def input_row(width):
    return ("Input", batch_shape(width), 0)


def layer_rows(part, net, width):
    """(rows, width out): "part.i Name", its output shape and parameter count, per layer."""
    rows = []
    for i, layer in enumerate(net.layers if isinstance(net, Sequential) else [net]):
        width = output_width(layer, width)
        n = sum(p.size for _, p, _ in layer_parameters(layer))
        rows.append((f"{part}.{i} {type(layer).__name__}", batch_shape(width), n))
    return rows, width


def print_table(rows, total, print_fn=print):
    """Print (name, shape, parameters) rows under a header, then the total."""
    w = max(len(r[0]) for r in rows) + 2
    s = max(16, max(len(r[1]) for r in rows) + 2)          # images: (None, 32, 28, 28)
    line = "-" * (w + s + 14)
    print_fn(f"{'Layer':<{w}}{'Output shape':<{s}}{'Params':>14}")
    print_fn(line)
    for name, shape, n in rows:
        print_fn(f"{name:<{w}}{shape:<{s}}{n:>14,}")
    print_fn(line)
    print_fn(f"{'Total params':<{w + s}}{total:>14,}")


def dense_autoencoder(sizes=SEED_SIZES, activation: str = "relu", output: str = "sigmoid",
                      rng: np.random.Generator | None = None, dtype=np.float32,
                      init: str | None = None) -> Autoencoder:
    """A dense autoencoder with a mirrored decoder; the default is the seed model.

    ``sizes=(784, 512, 256, 64, 2)`` gives encoder 784-512-256-64-2 and
    decoder 2-64-256-512-784: ``activation`` after every hidden layer, a linear
    latent layer (the code may take any value), ``output`` on the last layer.
    Weights: He init before ReLU-like activations, Glorot otherwise; or ``init`` for
    every layer (e.g. "torch", torch.nn.Linear's start).
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
    for name in (activation, output):
        if name not in ACTIVATION_LAYERS:
            raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATION_LAYERS)}")
    widths = list(zip(sizes[:-1], sizes[1:]))
    check_model_size(2 * sum(d * h for d, h in widths) + sum(sizes[1:]) + sum(sizes[:-1]),
                     f"dense_autoencoder({sizes})")
    rng = np.random.default_rng() if rng is None else rng
    return Autoencoder(dense_stack(sizes, activation, "identity", rng, dtype, init),
                       dense_stack(sizes[::-1], activation, output, rng, dtype, init))


def dense_stack(widths, activation, last, rng, dtype=np.float32, init=None) -> Sequential:
    """Dense layers widths[0] -> widths[1] -> ..., ``activation`` after each hidden one and
    ``last`` after the final one ("identity": none). He init before ReLU-like activations,
    Glorot otherwise, unless ``init`` names one for every layer."""
    layers = []
    for k, (d, h) in enumerate(zip(widths[:-1], widths[1:])):
        act = last if k == len(widths) - 2 else activation
        start = init or ("he" if act in ("relu", "leaky_relu") else "glorot")
        layers.append(Dense(d, h, init=start, rng=rng, dtype=dtype))
        if act != "identity":
            layers.append(ACTIVATION_LAYERS[act]())
    return Sequential(*layers)
