"""A tinyae model's parameters in the names and layouts of the equivalent PyTorch module.

    tinyae                        PyTorch
    encoder.0.W   (D, H)          encoder.0.weight   (H, D)     Linear.weight = W^T
    encoder.0.b   (H,)            encoder.0.bias     (H,)
    mu_head.W     (H, Z)          mu_head.weight     (Z, H)
    encoder.1.W   (O, C, kh, kw)  encoder.1.weight   (O, C, kh, kw)   Conv2d.weight = W

The layer paths are the same on both sides (``parts.layers``); each layer's
rule (``rules.RULES``) renames its parameters and maps their layouts.
"""
import numpy as np

from .parts import layers
from .rules import ExportError, rule


def state_views(model):
    """{PyTorch name: the parameter in PyTorch's layout}, as views of the model's arrays."""
    views, seen = {}, set()
    for path, layer in layers(model):
        r = rule(layer, path)
        for key, p in layer.params.items():
            if key not in r.params:
                raise ExportError(f"{path} has a parameter {key!r} that its rule does not know; "
                                  f"add it to the rule of {type(layer).__name__}")
            views[f"{path}.{r.params[key].torch_name}"] = r.params[key].out(p)
            seen.add(f"{path}.{key}")
    left = [name for name, _, _ in model.parameters() if name not in seen]
    if left:
        raise ExportError(f"parameters {left} are outside the parts tinyae.export knows for a "
                          f"{type(model).__name__}; add them to its Plan in tinyae.export.parts")
    return views


def state_dict(model):
    """{PyTorch name: C-contiguous array}: what ``Module.load_state_dict`` takes (as tensors).

    Arrays whose layout is the same on both sides (biases) share the model's memory,
    as PyTorch's own ``state_dict()`` does.
    """
    return {k: np.ascontiguousarray(v) for k, v in state_views(model).items()}


def signature(model):
    """{PyTorch name: (shape, dtype name)} that a state dict for ``model`` must have."""
    return {k: (v.shape, v.dtype.name) for k, v in state_views(model).items()}


def check_state(want, have, source, like):
    """Raise ``ExportError`` unless ``have`` {name: (shape, dtype name)} has ``want``'s names,
    shapes and dtypes; ``source`` names the state dict and ``like`` the model, for the message."""
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    if missing or extra:
        what = "; ".join(f"{label} {_few(keys)}" for label, keys in
                         (("missing", missing), ("unexpected", extra)) if keys)
        raise ExportError(f"{source} does not fit {like}: {what}. It holds another "
                          "architecture (or other names); give the architecture it was saved "
                          "from (like=, or the command's --like CKPT or --model and --sizes)")
    for key, (shape, dtype) in want.items():
        got_shape, got_dtype = have[key]
        if got_shape != shape:
            raise ExportError(f"{source}: {key} has shape {got_shape} but {like} needs {shape}; "
                              "it holds another architecture (give that one: like=, or the "
                              "command's --like CKPT or --model and --sizes)")
        if got_dtype != dtype:
            raise ExportError(f"{source}: {key} is {got_dtype} but {like} is {dtype}; save the "
                              f"state dict in {dtype} (in PyTorch: "
                              f"{{k: v.to(torch.{dtype}) for k, v in sd.items()}}) or use a "
                              f"{got_dtype} model as the template")


def _few(names, n=4):
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def load_state(model, state):
    """Copy ``state`` (checked with ``check_state``) into ``model``'s parameters, in place."""
    for path, layer in layers(model):
        r = rule(layer, path)
        for key, p in layer.params.items():
            p[...] = r.params[key].back(state[f"{path}.{r.params[key].torch_name}"])
    return model
