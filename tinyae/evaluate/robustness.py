"""The plain autoencoder's drawbacks, measured: distorted inputs, and copying.

1. Sensitivity. Feed the model distorted images and score the reconstruction
   against the *clean* ones:

       error(distortion) = (1/N) sum_n ||g(f(distort(x_n))) - x_n||^2      per image

   A model that learned what digits look like maps a noisy digit back near the
   digit; one that learned to pass pixels through reproduces the noise.
2. Copying. Feed images that are not digits, u, and compare the output with u:

       copy error = (1/N) sum_n ||g(f(u_n)) - u_n||^2

   Small means the model copies whatever it is given (an over-complete code
   can learn the identity); a narrow code, like the seed's 2-D one, cannot,
   and maps the input to something digit-like instead. Two kinds of u:
   random pen strokes (lines on a black background, in the range of pixel
   values the model was trained on) and pure noise U(0, 1) (far outside it:
   every pixel grey, where digits are mostly black). Measured on MNIST, an
   over-complete 784-1000-784 model copies the strokes almost exactly but
   not the noise: what it learned to copy is the kind of image it saw.
"""
import numpy as np

from ..nn import corrupt
from ..viz.plot import image_grid
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


def random_strokes(n: int, width: int, rng: np.random.Generator, dtype=np.float32,
                   strokes: int = 3):
    """(n, width) square images of ``strokes`` random straight pen strokes: not digits.

    Each stroke joins two points drawn in the central part of the image; a
    pixel's value is 1 within 1 pixel of the segment, fading to 0 over the
    next (the anti-aliasing of a real pen), as bright as MNIST's ink.
    """
    side = int(round(width ** 0.5))
    if side * side != width:
        raise ValueError(f"random_strokes draws square images; width {width} is not a square "
                         "number (28 x 28 = 784 is)")
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    margin = side / 7                                          # 4 pixels of 28, like MNIST's
    images = np.zeros((n, side, side))
    for image in images:
        for _ in range(strokes):
            p, q = rng.uniform(margin, side - margin, (2, 2))  # end points (x, y)
            d = q - p
            t = ((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / max(d @ d, 1e-12)
            t = np.clip(t, 0, 1)                               # nearest point on the segment
            dist = np.hypot(xx - p[0] - t * d[0], yy - p[1] - t * d[1])
            np.maximum(image, np.clip(1.5 - dist, 0, 1), out=image)
    return images.reshape(n, width).astype(dtype)


# name -> images(n, width, rng, dtype): the inputs of the copy test.
COPY_INPUTS = {"random strokes": random_strokes, "pure noise": pure_noise}


def copy_inputs(n: int, width: int, rng: np.random.Generator, dtype=np.float32):
    """Yield (name, (n, width) images) of each copy input; no strokes when the image is
    not square."""
    for name, make in COPY_INPUTS.items():
        if make is not random_strokes or round(width ** 0.5) ** 2 == width:
            yield name, make(n, width, rng, dtype)


def copy_errors(model, n: int = 1000, seed: int = 0) -> dict:
    """{input kind: squared error per image between the input and its reconstruction}."""
    inputs = copy_inputs(n, model.input_width, np.random.default_rng(seed), model.dtype)
    return {name: sq_error_per_image(U, batched(model.reconstruct, U)) for name, U in inputs}


def format_table(table, copy=None) -> str:
    """The table as text, one row per distortion (and the copy errors when given)."""
    lines = [f"{'input':<16}{'error vs clean':>16}{'MSE per pixel':>15}{'input itself':>14}",
             f"{'':<16}{'(per image)':>16}{'':>15}{'(per image)':>14}"]
    for name, row in table.items():
        lines.append(f"{name:<16}{row['sq_error_per_image']:>16.2f}{row['mse_per_pixel']:>15.4f}"
                     f"{row['input_sq_error_per_image']:>14.2f}")
    if copy:
        lines.append("copying: how far the output is from an input that is not a digit, per image "
                     "(small = the model copies its input)")
        lines += [f"{name:<16}{error:>16.2f}" for name, error in copy.items()]
    return "\n".join(lines)


def figure(model, X, n: int = 8, seed: int = 0, path=None, title=None):
    """A row of inputs and a row of reconstructions for each distortion, then the copy inputs."""
    rng = np.random.default_rng(seed)
    X = X[:n]
    images, labels = [], []
    inputs = [(name, distort(X, rng).astype(model.dtype, copy=False))
              for name, distort in DISTORTIONS.items()]
    inputs += copy_inputs(len(X), X.shape[1], rng, model.dtype)
    for name, X_in in inputs:
        images += [X_in, model.reconstruct(X_in)]
        labels += [f"{name}: in", "out"]
    return image_grid(np.concatenate(images), len(X), path=path, row_labels=labels,
                      title=title or "each pair of rows: inputs, then the model's reconstructions")
