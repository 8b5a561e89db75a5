"""Convolutional autoencoders: images in, images out, rows at both ends.

Every model takes MNIST as (N, 784) rows and gives (N, 784) back, so ``fit``,
the checkpoints and the figures treat them like the dense ones: the encoder
starts with ``Reshape((1, 28, 28))`` and the decoder ends with ``Flatten()``.

    conv_autoencoder        the book "Generative Deep Learning" (Foster, ch. 3):
                            Conv2D 32-64-64-64, 3x3, strides 1-2-2-1, LeakyReLU,
                            Flatten, Dense to a 2-D code; the decoder mirrors it
    keras_conv_autoencoder  keras-io's "Convolutional autoencoder for image
                            denoising": Conv 32 + MaxPool 2, twice; ConvTranspose
                            32 stride 2, twice; Conv 1 sigmoid (28,353 parameters)
    conv_variational_autoencoder
                            keras-io's "Variational AutoEncoder": Conv 32 and 64
                            stride 2, Dense 16, heads to a 2-D code; Dense 7*7*64,
                            ConvTranspose 64 and 32 stride 2, ConvTranspose 1 (logits)
"""
import math

import numpy as np

from ..nn.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape
from ..nn.layers import ACTIVATION_LAYERS, Dense, LeakyReLU, ReLU, Sequential, Sigmoid
from .autoencoder import Autoencoder
from .vae import VariationalAutoencoder


def conv_autoencoder(image_shape=(1, 28, 28), filters=(32, 64, 64, 64), strides=(1, 2, 2, 1),
                     kernel_size: int = 3, code_size: int = 2, negative_slope: float = 0.3,
                     output: str = "sigmoid", rng: np.random.Generator | None = None,
                     dtype=np.float32) -> Autoencoder:
    """A convolutional autoencoder; the default is the book's, for 28x28 MNIST.

    Encoder: Reshape(image_shape), then per filter count a Conv2D (``kernel_size``,
    its stride, 'same' padding k // 2) and a LeakyReLU, Flatten, Dense to the code.
    Decoder, mirrored: Dense back to the last feature map, Reshape, then per
    encoder convolution in reverse a ConvTranspose2D back to that convolution's
    input (channels and size; ``output_padding`` chosen to hit it), LeakyReLU
    between and ``output`` on the last, Flatten.

    Args:
        image_shape: (C, H, W) of one image; the model takes rows of C*H*W.
        filters, strides: one entry per convolution of the encoder.
        negative_slope: the LeakyReLU's; 0.3 is Keras's default, which the book uses.
        output: the decoder's last activation ("sigmoid" for pixels in [0, 1]).
    Shapes:
        X (N, C H W) -> Z (N, code_size) -> X' (N, C H W)
    """
    image_shape, filters, strides = tuple(image_shape), tuple(filters), tuple(strides)
    if len(image_shape) != 3 or len(filters) != len(strides) or not filters:
        raise ValueError(f"conv_autoencoder: image_shape must be (C, H, W) and filters and "
                         f"strides one entry per convolution, got {image_shape}, {filters}, "
                         f"{strides}")
    if output not in ACTIVATION_LAYERS:
        raise ValueError(f"conv_autoencoder: unknown output {output!r}; choose one of "
                         f"{sorted(ACTIVATION_LAYERS)}")
    rng = np.random.default_rng() if rng is None else rng
    k, p = kernel_size, kernel_size // 2
    channels = (image_shape[0],) + filters                     # in and out of each conv

    encoder, shapes = [Reshape(image_shape)], [image_shape]   # shapes: each conv's input
    for c_in, c_out, s in zip(channels[:-1], filters, strides):
        conv = Conv2D(c_in, c_out, k, s, p, rng=rng, dtype=dtype)
        shapes.append(conv.output_width(shapes[-1]))           # refuses sizes that do not fit
        encoder += [conv, LeakyReLU(negative_slope)]
    features = shapes[-1]                                      # (64, 7, 7) for the book's
    encoder += [Flatten(), Dense(math.prod(features), code_size, init="glorot", rng=rng,
                                 dtype=dtype)]

    decoder = [Dense(code_size, math.prod(features), init="glorot", rng=rng, dtype=dtype),
               Reshape(features)]
    for i in reversed(range(len(filters))):
        (c_out, h, w), (_, n, m) = shapes[i], shapes[i + 1]
        # output_padding: the one of the stride's possible sizes the convolution came from
        extra = [size - ((small - 1) * s - 2 * p + k)
                 for size, small, s in ((h, n, strides[i]), (w, m, strides[i]))]
        last = i == 0
        decoder.append(ConvTranspose2D(filters[i], c_out, k, strides[i], p, extra,
                                       init="glorot" if last else "he", rng=rng, dtype=dtype))
        decoder.append(ACTIVATION_LAYERS[output]() if last else LeakyReLU(negative_slope))
    decoder.append(Flatten())
    return Autoencoder(Sequential(*encoder), Sequential(*decoder))


def keras_conv_autoencoder(rng: np.random.Generator | None = None,
                           dtype=np.float32) -> Autoencoder:
    """keras-io's convolutional autoencoder for 28x28 MNIST (28,353 parameters).

    Encoder: Conv2D 32 3x3 'same' ReLU, MaxPool 2; the same again -> (32, 7, 7).
    Decoder: ConvTranspose2D 32 3x3 stride 2 'same' ReLU, twice -> (32, 28, 28);
    Conv2D 1 3x3 'same' sigmoid. The (32, 7, 7) maps are the code, flattened to
    1,568 so that ``encode`` and ``decode`` hand rows like every model.
    ('same' with stride 2 is padding 1, output_padding 1 here: Keras pads one
    side only, so the windows sit one pixel apart from Keras's.)

    Shapes:
        X (N, 784) -> Z (N, 1568) -> X' (N, 784)
    """
    rng = np.random.default_rng() if rng is None else rng
    encoder = Sequential(
        Reshape((1, 28, 28)),
        Conv2D(1, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
        Conv2D(32, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
        Flatten())
    decoder = Sequential(
        Reshape((32, 7, 7)),
        ConvTranspose2D(32, 32, 3, 2, 1, 1, rng=rng, dtype=dtype), ReLU(),
        ConvTranspose2D(32, 32, 3, 2, 1, 1, rng=rng, dtype=dtype), ReLU(),
        Conv2D(32, 1, 3, padding=1, init="glorot", rng=rng, dtype=dtype), Sigmoid(),
        Flatten())
    return Autoencoder(encoder, decoder)


def conv_variational_autoencoder(code_size: int = 2, beta: float = 1.0,
                                 rng: np.random.Generator | None = None,
                                 dtype=np.float32) -> VariationalAutoencoder:
    """keras-io's convolutional VAE for 28x28 MNIST (69,076 + 65,089 parameters at Z = 2).

    Body: Conv2D 32 and 64, 3x3, stride 2, 'same', ReLU -> (64, 7, 7), Flatten,
    Dense 16 ReLU; heads Dense 16 -> Z for mu and for logvar. Decoder: Dense
    Z -> 7*7*64 ReLU, Reshape, ConvTranspose2D 64 and 32 stride 2 ReLU, then
    ConvTranspose2D 32 -> 1 to logits (``decode`` applies the sigmoid), Flatten.

    Shapes:
        X (N, 784) -> h (N, 16) -> mu, logvar, z (N, Z) -> logits (N, 784)
    """
    rng = np.random.default_rng() if rng is None else rng
    body = Sequential(
        Reshape((1, 28, 28)),
        Conv2D(1, 32, 3, 2, 1, rng=rng, dtype=dtype), ReLU(),
        Conv2D(32, 64, 3, 2, 1, rng=rng, dtype=dtype), ReLU(),
        Flatten(), Dense(7 * 7 * 64, 16, rng=rng, dtype=dtype), ReLU())
    heads = [Dense(16, code_size, init="glorot", rng=rng, dtype=dtype) for _ in range(2)]
    decoder = Sequential(
        Dense(code_size, 7 * 7 * 64, rng=rng, dtype=dtype), ReLU(), Reshape((64, 7, 7)),
        ConvTranspose2D(64, 64, 3, 2, 1, 1, rng=rng, dtype=dtype), ReLU(),
        ConvTranspose2D(64, 32, 3, 2, 1, 1, rng=rng, dtype=dtype), ReLU(),
        ConvTranspose2D(32, 1, 3, 1, 1, init="glorot", rng=rng, dtype=dtype), Flatten())
    return VariationalAutoencoder(body, *heads, decoder, beta=beta, rng=rng)
