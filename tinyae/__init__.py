"""tinyae: a from-scratch NumPy autoencoder with hand-written gradients.

    import tinyae as ta
    model = ta.dense_autoencoder()          # the seed model 784-512-256-64-2
    model.summary()
"""
__version__ = "0.1.0"

# Submodules a user reaches as ta.train.fit, ta.data.load_dataset, ta.plot.latent_scatter, ...
from . import autograd, data, gradcheck, latent, metrics, plot, schedules, train
from .io import load, save
from .layers import Dense, Identity, Layer, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh
from .losses import BCE, MSE
from .models import Autoencoder, dense_autoencoder
from .optim import SGD, Adam
from . import corrupt, penalties
from .variants import (DenoisingAutoencoder, SparseAutoencoder, denoising_autoencoder,
                       sparse_autoencoder)

__all__ = ["Layer", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Identity", "Sequential",
           "MSE", "BCE", "SGD", "Adam", "Autoencoder", "dense_autoencoder", "save", "load",
           "autograd", "gradcheck", "data", "latent", "metrics", "plot", "schedules", "train", "__version__"]
__all__ += ["corrupt", "penalties", "DenoisingAutoencoder", "SparseAutoencoder",
            "denoising_autoencoder", "sparse_autoencoder"]
from .vae import VariationalAutoencoder, variational_autoencoder
__all__ += ["VariationalAutoencoder", "variational_autoencoder"]
