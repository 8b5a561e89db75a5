"""Stacked autoencoders, trained greedily: one shallow autoencoder per level, then fine-tuning.

For widths D = H0, H1, ..., HL (second seed; Hinton & Salakhutdinov 2006; Bengio et al. 2007):

    level 1:  train  H0 -> H1 -> H0   on the images X
    level 2:  train  H1 -> H2 -> H1   on the level-1 codes f1(X)
    ...
    stack:    encoder f = fL o ... o f1,   decoder g = g1 o ... o gL
    then fine-tune the whole H0-...-HL-...-H0 network end to end.

Each level is a small problem, so early layers get useful weights before
gradients have to travel through the whole deep network.

``split_levels(model)`` cuts a ``dense_autoencoder`` into its levels; the
levels *share* the model's layers, so training them trains the model (and
the stacked network starts from the same weights as an end-to-end run with
the same seed: a fair comparison). ``stack(levels)`` goes the other way for
autoencoders trained apart.
"""
import sys

import numpy as np

from ..models.autoencoder import Autoencoder, dense_autoencoder
from ..nn.layers import Dense, Sequential
from ..nn.optim import Adam
from .loop import fit
from .threads import batched


def _groups(net):
    """A Sequential as [[Dense, activation...], [Dense, ...], ...]."""
    groups = []
    for layer in net.layers:
        if isinstance(layer, Dense) or not groups:
            groups.append([])
        groups[-1].append(layer)
    return groups


def split_levels(model) -> list:
    """The levels of a mirrored dense autoencoder: [H0-H1-H0, H1-H2-H1, ...], sharing its layers."""
    enc, dec = _groups(model.encoder), _groups(model.decoder)
    if len(enc) != len(dec) or not all(isinstance(g[0], Dense) for g in enc + dec):
        raise ValueError("split_levels needs a mirrored dense autoencoder (as dense_autoencoder "
                         f"builds): got {len(enc)} encoder and {len(dec)} decoder Dense groups")
    levels = [Autoencoder(Sequential(*e), Sequential(*d)) for e, d in zip(enc, reversed(dec))]
    stack(levels)                                           # checks that the widths chain
    return levels


def stack(levels) -> Autoencoder:
    """One deep autoencoder from level autoencoders: f = fL o ... o f1, g = g1 o ... o gL.

    Level k+1 must take level k's codes: its input width is level k's code width.
    """
    levels = list(levels)
    if not levels:
        raise ValueError("stack() needs at least one autoencoder")
    for k, (a, b) in enumerate(zip(levels[:-1], levels[1:]), start=1):
        if a.latent_width != b.input_width:
            raise ValueError(f"stack(): level {k} makes codes of width {a.latent_width} but level "
                             f"{k + 1} takes inputs of width {b.input_width}; the widths must chain "
                             f"(H0-H1-H0, then H1-H2-H1, ...), so make level {k + 1}'s input "
                             f"width {a.latent_width}")
    encoder = Sequential(*(layer for ae in levels for layer in ae.encoder))
    decoder = Sequential(*(layer for ae in reversed(levels) for layer in ae.decoder))
    return Autoencoder(encoder, decoder)


def pretrain(model, X, epochs: int, *, batch_size: int = 256, lr: float = 1e-3,
             betas=(0.9, 0.999), seed: int = 0, progress: bool = True) -> list:
    """Greedy layer-wise training of ``model``'s levels, in place; returns their Historys.

    Level k trains for ``epochs`` epochs (Adam with ``lr`` and ``betas``, MSE) on the
    codes of the levels below it, which stay fixed from then on.
    """
    histories, codes = [], X
    levels = split_levels(model)
    for k, level in enumerate(levels, start=1):
        if progress:
            print(f"pretraining level {k}/{len(levels)}: {level.input_width}-"
                  f"{level.latent_width}-{level.input_width}", file=sys.stderr)
        histories.append(fit(level, codes, epochs=epochs, batch_size=batch_size, seed=seed + k,
                             optimizer=Adam(level.parameters(), lr=lr, betas=betas),
                             progress=progress))
        if k < len(levels):
            codes = np.ascontiguousarray(batched(level.encode, codes))   # the next level's data
    return histories


def stacked_autoencoder(sizes, X, pretrain_epochs: int, *, activation: str = "relu",
                        output: str = "sigmoid", rng: np.random.Generator | None = None,
                        dtype=np.float32, **fit_args) -> tuple:
    """``dense_autoencoder(sizes)`` with its levels trained greedily on X: (model, histories).

    Fine-tune it afterwards with ``fit(model, X, ...)``.
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"stacked sizes must list at least two positive widths, got {sizes}")
    model = dense_autoencoder(sizes, activation=activation, output=output, rng=rng, dtype=dtype)
    return model, pretrain(model, X, pretrain_epochs, **fit_args)
