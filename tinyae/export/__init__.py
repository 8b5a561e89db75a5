"""The way out: a tinyae model as ONNX, as a PyTorch state dict (safetensors) or module, and
a state dict trained elsewhere back into tinyae.

    to_onnx(model, "ae.onnx")                       x -> reconstruction, code  (onnxruntime)
    to_onnx(model, "dec.onnx", part="decoder")      code -> reconstruction
    to_safetensors(model, "ae.safetensors")         PyTorch's names and layouts (W^T as weight)
    to_torch(model)                                 the equivalent torch.nn module, weights in
    from_safetensors("ae.safetensors", like=ckpt)   back into a new tinyae model

    export/rules.py         one rule per layer type: its ONNX nodes, PyTorch module and layouts
    export/parts.py         a model's named parts and layer paths; what each kind computes at use
    export/torch_names.py   the state dict in PyTorch's names and layouts, checked and loaded back
    export/safetensors.py   state dicts written and read as safetensors files
    export/onnx.py          the ONNX graphs
    export/torch_module.py  the PyTorch module (torch_vae.py: the VAE's)

``onnx`` and ``safetensors`` come with ``pip install 'tinyae[export]'``;
PyTorch is never a dependency (``to_torch`` says how to install it).
"""
from .onnx import onnx_model, to_onnx
from .rules import RULES, ExportError
from .safetensors import from_safetensors, to_safetensors
from .torch_module import to_torch
from .torch_names import state_dict

__all__ = ["to_onnx", "onnx_model", "to_safetensors", "from_safetensors", "to_torch",
           "state_dict", "ExportError", "RULES"]
