"""Autoencoders built from the ``nn`` layers: one file per kind.

    models/autoencoder.py   Autoencoder and dense_autoencoder (the seed model)
    models/variants.py      denoising and sparse autoencoders; the kinds a checkpoint may hold
    models/vae.py           the variational autoencoder
    models/cvae.py          the conditional VAE: encoder and decoder told the class
    models/conv.py          convolutional autoencoders (the book's, keras-io's) and VAE
    models/contractive.py   the contractive autoencoder (Rifai et al. 2011)
    models/rbm.py           the RBM (CD-k, persistent CD) and a stack of them unrolled
"""
from .autoencoder import SEED_SIZES, Autoencoder, dense_autoencoder
from .cvae import ConditionalVAE, conditional_vae, one_hot, with_labels
from .contractive import ContractiveAutoencoder, contractive_autoencoder
from .conv import conv_autoencoder, conv_variational_autoencoder, keras_conv_autoencoder
from .rbm import RBM, pretrain_stack, train_rbm, unroll
from .vae import VariationalAutoencoder, variational_autoencoder
from .variants import (DenoisingAutoencoder, SparseAutoencoder, denoising_autoencoder,
                       sparse_autoencoder)

__all__ = ["SEED_SIZES", "Autoencoder", "dense_autoencoder", "DenoisingAutoencoder",
           "SparseAutoencoder", "denoising_autoencoder", "sparse_autoencoder",
           "VariationalAutoencoder", "variational_autoencoder", "conv_autoencoder",
           "keras_conv_autoencoder", "conv_variational_autoencoder", "ContractiveAutoencoder",
           "contractive_autoencoder", "RBM", "train_rbm", "unroll",
           "pretrain_stack", "ConditionalVAE", "conditional_vae", "with_labels", "one_hot"]
