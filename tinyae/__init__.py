"""tinyae: a from-scratch NumPy autoencoder with hand-written gradients.

    import tinyae as ta
    model = ta.dense_autoencoder()          # the seed model 784-512-256-64-2
    model.summary()

The folders are the architecture: ``nn`` (the maths students read), ``models``
(autoencoders built from it), ``autograd``/``gradcheck`` (the two checks of
the core), ``fast`` (the fused engine), ``train``, ``data``, ``io``,
``evaluate``, ``viz`` and ``cli`` (the ``tinyae`` command around them).
"""
from . import nn
from .version import __version__
from .nn import corrupt, penalties, schedules      # noqa: E402
from .nn.layers import (Dense, Identity, Layer, LeakyReLU, ReLU, Sequential,  # noqa: E402
                        Sigmoid, Tanh)
from .nn.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape  # noqa: E402
from .nn.losses import BCE, MSE                    # noqa: E402
from .nn.optim import SGD, Adam                    # noqa: E402
from . import models                                # noqa: E402
from .models import (Autoencoder, DenoisingAutoencoder, SparseAutoencoder,  # noqa: E402
                     VariationalAutoencoder, dense_autoencoder, denoising_autoencoder,
                     sparse_autoencoder, variational_autoencoder)
from .models import (conv_autoencoder, conv_variational_autoencoder,  # noqa: E402
                     keras_conv_autoencoder)
from .models import RBM, ContractiveAutoencoder, contractive_autoencoder  # noqa: E402
from .models import ConditionalVAE, conditional_vae, with_labels  # noqa: E402
from . import autograd, data, gradcheck, io, train  # noqa: E402
from .io import load, save                          # noqa: E402
from . import export                                # noqa: E402 (onnx, safetensors: when used)
# ta.metrics, ta.latent and ta.plot, as before the modules moved into evaluate/ and viz/
from .evaluate import metrics                       # noqa: E402
from .viz import latent, plot                       # noqa: E402

__all__ = ["Layer", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Sequential",
           "MSE", "BCE", "SGD", "Adam", "Autoencoder", "dense_autoencoder", "save", "load",
           "autograd", "gradcheck", "data", "latent", "metrics", "plot", "schedules", "train",
           "__version__", "corrupt", "penalties", "DenoisingAutoencoder", "SparseAutoencoder",
           "denoising_autoencoder", "sparse_autoencoder", "VariationalAutoencoder",
           "variational_autoencoder", "nn", "models", "io", "export", "Conv2D",
           "ConvTranspose2D", "MaxPool2D", "Flatten", "Reshape", "conv_autoencoder",
           "keras_conv_autoencoder", "conv_variational_autoencoder", "ContractiveAutoencoder",
           "contractive_autoencoder", "RBM", "ConditionalVAE", "conditional_vae", "with_labels"]
