"""Checks on a checkpoint's contents before anything is loaded or built.

``expected_arrays`` walks the JSON config the way ``layer_from_config`` would
build it and returns the name, shape and kind of every array the model and its
optimiser need -- without creating a layer. ``io.read_checkpoint`` compares
that with the archive's .npy headers, so a 11 KB file that claims a
Dense(30000, 30000) is refused after reading a few hundred bytes.
"""
import json
import math

from ..models.autoencoder import MAX_PARAMETERS, number
from ..models.variants import MODELS
from ..nn.layers import LAYERS

MAX_MEMBERS = 10_000            # arrays in one archive
MAX_CONFIG_CHARS = 1 << 22      # 4 M characters of JSON (16 MB as a NumPy unicode array)
MAX_DEPTH = 4                   # Sequential inside Sequential inside ...


class CheckpointError(ValueError):
    """A file that cannot be loaded as a tinyae checkpoint for this model."""


def _fail(path, message):
    raise CheckpointError(f"{path!r}: {message}; the file was altered, is corrupt or is not "
                          "from tinyae.")


def check_members(path, headers):
    """Each member's declared uncompressed size must be its .npy header plus its data.

    ``headers``: {key: (ZipInfo, shape, dtype, header bytes)}. A member whose
    stream inflates beyond its declared size is cut off there by ``zipfile``
    (and fails its CRC), so after this check the bytes read are bounded by the shapes.
    """
    if len(headers) > MAX_MEMBERS:
        _fail(path, f"{len(headers)} arrays in the archive, more than a checkpoint has")
    for key, (info, shape, dtype, header_bytes) in headers.items():
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != header_bytes + nbytes:
            _fail(path, f"{key} declares {info.file_size:,} bytes but its header describes "
                        f"{header_bytes + nbytes:,}")
    _, shape, dtype, _ = headers["__config__"]
    if dtype.kind != "U" or shape != () or dtype.itemsize > 4 * MAX_CONFIG_CHARS:
        _fail(path, f"__config__ is {dtype} {shape}, not a JSON string of at most "
                    f"{MAX_CONFIG_CHARS:,} characters")


def parse_config(path, text, fmt, version):
    """The config dict from its JSON text, with its top-level fields checked."""
    try:
        config = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{path!r}: the checkpoint's config is not valid JSON "
                              f"({type(exc).__name__}: {str(exc)[:80]})") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise CheckpointError(f"{path!r} is not a tinyae checkpoint (format {got!r})")
    v = config.get("format_version")
    if type(v) is not int or not 1 <= v <= version:
        raise CheckpointError(f"{path!r} uses checkpoint format {v}, but this tinyae reads "
                              f"format {version} and older; upgrade tinyae (pip install -U tinyae).")
    if not isinstance(config.get("model"), dict):
        _fail(path, "the config has no model description")
    if not isinstance(config.get("extra") or {}, dict):
        _fail(path, "the config's 'extra' is not a JSON object")
    opt = config.get("optimizer")
    if opt is not None:
        lr = opt.get("lr") if isinstance(opt, dict) else None
        if not isinstance(opt, dict) or not isinstance(opt.get("type"), str) or not number(lr) \
                or not (math.isfinite(lr) and lr > 0):
            _fail(path, f"the optimizer entry {str(opt)[:80]} is not a type with a finite lr > 0")
    return config


def expected_arrays(path, config):
    """{"param/<name>" or "optim/<key>": (shape, dtype kinds)} for the model in ``config``."""
    model = config["model"]
    kind = MODELS.get(model.get("type")) if isinstance(model.get("type"), str) else None
    if kind is None:
        raise CheckpointError(f"{path!r} holds a model of type {model.get('type')!r}, "
                              f"which tinyae.load cannot build (it builds {sorted(MODELS)})")
    if set(model) - {"type", "encoder", "decoder", "dtype"} - kind.OPTIONS or \
            model.get("dtype", "float32") not in ("float32", "float64"):
        _fail(path, "the model config has unknown keys or a dtype other than float32/float64")
    try:                # the kind checks its own settings (noise, penalty, beta)
        kind.check_options(model)
    except (ValueError, TypeError) as exc:
        _fail(path, f"the {model['type']} config is not valid ({str(exc)[:120]})")
    params = {}
    width = _layer(path, model.get("encoder"), "encoder.", None, 0, params)
    if not params:
        _fail(path, "the encoder has no layer with weights")
    try:                # a VAE's heads sit between the encoder and the code
        width = kind.code_width(model, lambda c, prefix, w: _layer(path, c, prefix, w, 0, params),
                                width)
    except ValueError as exc:
        _fail(path, str(exc))
    n_enc = len(params)
    out = _layer(path, model.get("decoder"), "decoder.", width, 0, params)
    if len(params) == n_enc:
        _fail(path, "the decoder has no layer with weights")
    if type(out) is not int:
        _fail(path, f"the decoder ends with samples of shape {out}, not rows of features")
    # The decoder's rows are what the encoder reads: walk the encoder again from them, so
    # each of its layers checks what it is given (a Dense its in_features, a Reshape its
    # size, a Conv2D its channels and image size).
    try:                # (a conditional VAE's encoder reads the label too)
        _walk(model.get("encoder"), "encoder.", out + kind.condition_width(model), 0, {})
    except ValueError as exc:
        _fail(path, f"the decoder ends with {out} features, which the encoder does not take "
                    f"({exc})")
    total = sum(math.prod(s) for s in params.values())
    if total > MAX_PARAMETERS:
        raise CheckpointError(f"{path!r} describes a model with {total:,} parameters, more than "
                              f"tinyae's limit of {MAX_PARAMETERS:,}; refusing to build it.")
    expected = {f"param/{n}": (s, "f") for n, s in params.items()}
    opt = config.get("optimizer")
    if opt is not None:
        slots = {"Adam": ("m", "v"), "SGD": ("velocity",)}.get(opt["type"], ())
        if opt["type"] == "Adam":
            expected["optim/t"] = ((), "iu")
        for slot in slots:
            expected.update({f"optim/{slot}.{n}": (s, "f") for n, s in params.items()})
    return expected


def _layer(path, cfg, prefix, width, depth, params):
    """Add the parameter shapes of one layer config to ``params``; return its output width
    (an int for rows, a tuple for images, None when not known)."""
    try:
        return _walk(cfg, prefix, width, depth, params)
    except ValueError as exc:
        _fail(path, str(exc))


def _walk(cfg, prefix, width, depth, params):
    """``_layer``'s walk; ``ValueError`` naming the layer for a config it refuses."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("type"), str):
        raise ValueError(f"layer {prefix.rstrip('.')} is not described by a config with a type")
    kind, keys = cfg["type"], set(cfg) - {"type"}
    if kind == "Sequential":
        layers = cfg.get("layers")
        if keys != {"layers"} or not isinstance(layers, list) or depth >= MAX_DEPTH \
                or len(layers) > 1000:
            raise ValueError(f"{prefix.rstrip('.')}: a Sequential needs a list of at most "
                             f"1,000 layers, nested at most {MAX_DEPTH} deep")
        for i, c in enumerate(layers):
            width = _walk(c, f"{prefix}{i}.", width, depth + 1, params)
        return width
    if kind not in LAYERS:
        raise ValueError(f"unknown layer type {kind!r} (known: {sorted(LAYERS)})")
    try:                # the class says what its config may hold and which arrays it makes
        shapes, width = LAYERS[kind].shapes_from_config(cfg, width)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{prefix.rstrip('.')}: {exc}") from None
    params.update({prefix + k: shape for k, shape in shapes.items()})
    return width
