"""The PyTorch module equivalent to a tinyae model, its weights loaded (PyTorch imported here
only, when asked: tinyae never depends on it).

    an Autoencoder   torch.nn.Sequential(encoder=Sequential(Linear, ReLU, ...), decoder=...):
                     forward(x) is the reconstruction, as tinyae's forward
    a VAE            torch_vae.VAE with encoder, mu_head, logvar_head and decoder
"""
from collections import OrderedDict

import numpy as np

from ..models.vae import VariationalAutoencoder
from ..nn.layers import Sequential
from .files import need
from .parts import plan
from .rules import rule
from .torch_names import state_dict

INSTALL_TORCH = ("pip install torch (tinyae never installs it; pytorch.org gives the command "
                 "for your machine)")


def to_torch(model):
    """A ``torch.nn.Module`` computing what ``model`` computes, with a copy of its weights."""
    torch = need("torch", "tinyae.export.to_torch", install=INSTALL_TORCH)
    state = state_dict(model)                   # a layer without an equivalent stops here
    parts = OrderedDict((name, torch_part(getattr(model, name), name, torch.nn))
                        for name in plan(model).parts)
    if isinstance(model, VariationalAutoencoder):
        from .torch_vae import VAE      # imports torch: only when one is asked for
        module = VAE(**parts)
    else:
        module = torch.nn.Sequential(parts)
    module.to(getattr(torch, np.dtype(model.dtype).name))
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
    return module


def torch_part(part, path, nn):
    """The ``torch.nn`` module of one part: a Sequential of the layers' equivalents."""
    if isinstance(part, Sequential):
        return nn.Sequential(*(torch_part(layer, f"{path}.{i}", nn)
                               for i, layer in enumerate(part.layers)))
    return rule(part, path).torch(part, nn)
