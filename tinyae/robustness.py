"""The plain autoencoder's drawbacks, measured: distorted inputs, and copying.

1. Sensitivity. Feed the model distorted images and score the reconstruction
   against the *clean* ones:

       error(distortion) = (1/N) sum_n ||g(f(distort(x_n))) - x_n||^2      per image

   A model that learned what digits look like maps a noisy digit back near the
   digit; one that learned to pass pixels through reproduces the noise.
2. Copying. Feed pure noise u ~ U(0, 1)^D and compare the output with u:

       copy error = (1/N) sum_n ||g(f(u_n)) - u_n||^2

   Small means the model copies whatever it is given (an over-complete code
   can learn the identity); a narrow code, like the seed's 2-D one, cannot,
   and maps the noise to something digit-like instead.
"""
import numpy as np

from . import corrupt
from .metrics import batched, sq_error_per_image

# name -> distortion(X, rng); the four inputs of the robustness table.
DISTORTIONS = {
    "clean": lambda X, rng: X,
    "gaussian 0.5": lambda X, rng: corrupt.gaussian(X, 0.5, rng),
    "rotated 30 deg": lambda X, rng: corrupt.rotate(X, 30),
    "flipped": lambda X, rng: corrupt.flip(X),
}


def robustness_table(model, X, seed: int = 0) -> dict:
    """For each distortion: the model's error against the clean images, and the input's own.

    Returns ``{name: {"sq_error_per_image", "mse_per_pixel", "input_sq_error_per_image"}}``;
    ``input_sq_error_per_image`` is how far the distortion itself moved the images
    (what the identity map would score), ``sq_error_per_image`` the model's error.
    """
    rng = np.random.default_rng(seed)
    table = {}
    for name, distort in DISTORTIONS.items():
        X_in = distort(X, rng).astype(model.dtype, copy=False)
        X_rec = batched(model.reconstruct, X_in)
        err = sq_error_per_image(X, X_rec)
        table[name] = {"sq_error_per_image": err, "mse_per_pixel": err / X.shape[1],
                       "input_sq_error_per_image": sq_error_per_image(X, X_in)}
    return table


def pure_noise(n: int, width: int, rng: np.random.Generator, dtype=np.float32):
    """(n, width) pixels drawn uniformly from [0, 1]: images of nothing."""
    return rng.random((n, width)).astype(dtype)


def copy_error(model, n: int = 1000, seed: int = 0) -> float:
    """Squared error per image between pure noise and the model's reconstruction of it."""
    U = pure_noise(n, model.input_width, np.random.default_rng(seed), model.dtype)
    return sq_error_per_image(U, batched(model.reconstruct, U))


def format_table(table, copy=None) -> str:
    """The table as text, one row per distortion (and the copy error when given)."""
    lines = [f"{'input':<16}{'error vs clean':>16}{'MSE per pixel':>15}{'input itself':>14}",
             f"{'':<16}{'(per image)':>16}{'':>15}{'(per image)':>14}"]
    for name, row in table.items():
        lines.append(f"{name:<16}{row['sq_error_per_image']:>16.2f}{row['mse_per_pixel']:>15.4f}"
                     f"{row['input_sq_error_per_image']:>14.2f}")
    if copy is not None:
        lines.append(f"pure noise: the output is {copy:.2f} per image from the noise it was given "
                     "(small = the model copies its input)")
    return "\n".join(lines)


def figure(model, X, n: int = 8, seed: int = 0, path=None, title=None):
    """A row of inputs and a row of reconstructions for each distortion, then pure noise."""
    from .plot import image_grid
    rng = np.random.default_rng(seed)
    X = X[:n]
    images, labels = [], []
    inputs = [(name, distort(X, rng).astype(model.dtype, copy=False))
              for name, distort in DISTORTIONS.items()]
    inputs.append(("pure noise", pure_noise(len(X), X.shape[1], rng, model.dtype)))
    for name, X_in in inputs:
        images += [X_in, model.reconstruct(X_in)]
        labels += [f"{name}: in", "out"]
    return image_grid(np.concatenate(images), len(X), path=path, row_labels=labels,
                      title=title or "each pair of rows: inputs, then the model's reconstructions")
