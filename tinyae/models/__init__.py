"""Autoencoders built from the ``nn`` layers: one file per kind.

    models/autoencoder.py   Autoencoder and dense_autoencoder (the seed model)
    models/variants.py      denoising and sparse autoencoders; the kinds a checkpoint may hold
    models/vae.py           the variational autoencoder
"""
from .autoencoder import SEED_SIZES, Autoencoder, dense_autoencoder
from .vae import VariationalAutoencoder, variational_autoencoder
from .variants import (DenoisingAutoencoder, SparseAutoencoder, denoising_autoencoder,
                       sparse_autoencoder)

__all__ = ["SEED_SIZES", "Autoencoder", "dense_autoencoder", "DenoisingAutoencoder",
           "SparseAutoencoder", "denoising_autoencoder", "sparse_autoencoder",
           "VariationalAutoencoder", "variational_autoencoder"]
