"""The core students read: layers with hand-written backward, losses, penalties, optimisers,
schedules, initialisers and corruptions. Plain NumPy; nothing here imports the rest of tinyae.

    nn/layers.py       Layer, Dense, the activations, Sequential; the layer contract
    nn/conv.py         Conv2D, ConvTranspose2D, MaxPool2D, Flatten, Reshape (images, NCHW)
    nn/losses.py       MSE, BCE (stable, from logits)
    nn/penalties.py    L1 and KL sparsity on a code
    nn/optim.py        SGD (momentum), Adam: the update formulas
    nn/schedules.py    learning-rate schedules (step, cosine, one-cycle, warm-up)
    nn/init.py         He and Glorot starts
    nn/corrupt.py      the noise of a denoising autoencoder
    nn/functional.py   sigmoid, BCE from logits, a dtype's epsilon: once each
"""
from .layers import Dense, Identity, Layer, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh
from .conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape
from .losses import BCE, MSE
from .optim import SGD, Adam

__all__ = ["Layer", "Dense", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Sequential",
           "Conv2D", "ConvTranspose2D", "MaxPool2D", "Flatten", "Reshape", "MSE", "BCE", "SGD",
           "Adam"]
