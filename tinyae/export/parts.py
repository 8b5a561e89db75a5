"""A model seen from outside: its named parts, its layers' paths, and what it computes at use.

    plan(model)     what the model computes when used, as steps over named parts:
                    an autoencoder:  code = encoder(x);  reconstruction = decoder(code)
                    a VAE:           h = encoder(x);  code = mu_head(h);  logvar = logvar_head(h);
                                     reconstruction = sigmoid(decoder(code))
    layers(model)   ("encoder.0", Dense), ("encoder.1", ReLU), ..., ("mu_head", Dense): every
                    layer with its path, which is also its name in PyTorch's state dict
                    (``torch.nn.Sequential`` numbers its layers as tinyae's does)

The VAE's plan decodes the mean code mu (no sampling): ``model.reconstruct(x)``,
the deterministic use of a trained VAE.
"""
from dataclasses import dataclass

from ..models.autoencoder import Autoencoder
from ..models.vae import VariationalAutoencoder
from ..nn.layers import Sequential
from .rules import ExportError

SIGMOID = "sigmoid"         # a step that is not a part: the VAE's decode ends in one


@dataclass(frozen=True)
class Plan:
    """Steps (part or SIGMOID, input name, output name) for encode and for decode.

    encode reads "x" and writes "code" (and a VAE's "logvar"); decode reads
    "code" and writes "reconstruction".
    """

    parts: tuple
    encode: tuple
    decode: tuple
    outputs: tuple = ("code",)          # what encode gives, in order


PLANS = {
    VariationalAutoencoder: Plan(
        parts=("encoder", "mu_head", "logvar_head", "decoder"),
        encode=(("encoder", "x", "h"), ("mu_head", "h", "code"), ("logvar_head", "h", "logvar")),
        decode=(("decoder", "code", "logits"), (SIGMOID, "logits", "reconstruction")),
        outputs=("code", "logvar")),
    Autoencoder: Plan(
        parts=("encoder", "decoder"),
        encode=(("encoder", "x", "code"),),
        decode=(("decoder", "code", "reconstruction"),)),
}


def plan(model):
    """The plan of ``model``'s class or of the nearest base class that has one."""
    if getattr(model, "n_classes", None) is not None:
        raise ExportError(f"a {type(model).__name__} cannot be exported or imported yet: its "
                          "decoder reads a one-hot label beside the code, and the exported "
                          "graphs take a code alone (use a model trained without labels)")
    for cls in type(model).__mro__:
        if cls in PLANS:
            return PLANS[cls]
    raise ExportError(f"a {type(model).__name__} is not a model kind tinyae.export knows (it "
                      f"knows {', '.join(cls.__name__ for cls in PLANS)} and their subclasses); "
                      "build it as one of those, or add a Plan for it to tinyae.export.parts.PLANS")


def part_layers(part, path):
    """(path, layer) for each layer of ``part``: a Sequential's layers numbered, else itself."""
    if not isinstance(part, Sequential):
        return [(path, part)]
    found = []
    for i, layer in enumerate(part.layers):
        found += part_layers(layer, f"{path}.{i}")
    return found


def layers(model):
    """(path, layer) for every layer of ``model``, part by part."""
    return [found for name in plan(model).parts for found in part_layers(getattr(model, name), name)]
