"""Checks on a checkpoint's contents before anything is loaded or built.

``expected_arrays`` walks the JSON config the way ``layer_from_config`` would
build it and returns the name, shape and kind of every array the model and its
optimiser need -- without creating a layer. ``io.read_checkpoint`` compares
that with the archive's .npy headers, so a 11 KB file that claims a
Dense(30000, 30000) is refused after reading a few hundred bytes.
"""
import json
import math

from ..models.autoencoder import MAX_PARAMETERS
from ..nn.init import INITIALISERS
from ..nn.layers import LAYERS

MAX_MEMBERS = 10_000            # arrays in one archive
MAX_CONFIG_CHARS = 1 << 22      # 4 M characters of JSON (16 MB as a NumPy unicode array)
MAX_DEPTH = 4                   # Sequential inside Sequential inside ...
MAX_WIDTH = 10_000_000          # features of one Dense layer


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
        if not isinstance(opt, dict) or not isinstance(opt.get("type"), str) or not _number(lr) \
                or not (math.isfinite(lr) and lr > 0):
            _fail(path, f"the optimizer entry {str(opt)[:80]} is not a type with a finite lr > 0")
    return config


def _number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def expected_arrays(path, config):
    """{"param/<name>" or "optim/<key>": (shape, dtype kinds)} for the model in ``config``."""
    model = config["model"]
    if model.get("type") not in MODEL_OPTIONS:
        raise CheckpointError(f"{path!r} holds a model of type {model.get('type')!r}, "
                              f"which tinyae.load cannot build (it builds {sorted(MODEL_OPTIONS)})")
    if set(model) - {"type", "encoder", "decoder", "dtype"} - MODEL_OPTIONS[model["type"]] or \
            model.get("dtype", "float32") not in ("float32", "float64"):
        _fail(path, "the model config has unknown keys or a dtype other than float32/float64")
    _model_options(path, model)
    params = {}
    width = _layer(path, model.get("encoder"), "encoder.", None, 0, params)
    if not params:
        _fail(path, "the encoder has no Dense layer")
    d_in = next(iter(params.values()))[0]
    if model["type"] == "VariationalAutoencoder":      # heads from the body to mu and logvar
        code = _layer(path, model.get("mu_head"), "mu_head.", width, 0, params)
        if _layer(path, model.get("logvar_head"), "logvar_head.", width, 0, params) != code:
            _fail(path, "the mu and logvar heads give codes of different widths")
        width = code
    n_enc = len(params)
    out = _layer(path, model.get("decoder"), "decoder.", width, 0, params)
    if len(params) == n_enc:
        _fail(path, "the decoder has no Dense layer")
    if out != d_in:
        _fail(path, f"the decoder ends with {out} features but the encoder takes {d_in}")
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


# The config keys each model type adds to an autoencoder's (tinyae.variants).
MODEL_OPTIONS = {"Autoencoder": set(), "DenoisingAutoencoder": {"noise"},
                 "SparseAutoencoder": {"code_penalty", "weight_decay"},
                 "VariationalAutoencoder": {"mu_head", "logvar_head", "beta"}}


def _model_options(path, model):
    """A denoising model's noise and a sparse model's penalty, checked by building them."""
    from ..nn.corrupt import parse
    from ..nn.penalties import penalty_from_config
    try:
        if "noise" in model or model["type"] == "DenoisingAutoencoder":
            if not isinstance(model.get("noise"), str):
                raise ValueError("the noise is not a text like gaussian:0.5")
            parse(model["noise"])
        if model["type"] == "VariationalAutoencoder":
            beta = model.get("beta", 1.0)
            if not _number(beta) or not 0 <= beta < math.inf:
                raise ValueError(f"beta {beta!r} is not a number >= 0")
        if model["type"] == "SparseAutoencoder":
            cfg = model.get("code_penalty")
            if not isinstance(cfg, dict) or not all(
                    _number(v) for k, v in cfg.items() if k != "type"):
                raise ValueError("the code penalty is not a type with numeric settings")
            penalty_from_config(cfg)
            decay = model.get("weight_decay", 0.0)
            if not _number(decay) or not 0 <= decay < math.inf:
                raise ValueError(f"weight_decay {decay!r} is not a number >= 0")
    except (ValueError, TypeError) as exc:
        _fail(path, f"the {model['type']} config is not valid ({str(exc)[:120]})")


def _layer(path, cfg, prefix, width, depth, params):
    """Add the parameter shapes of one layer config to ``params``; return its output width."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("type"), str):
        _fail(path, f"layer {prefix.rstrip('.')} is not described by a config with a type")
    kind, keys = cfg["type"], set(cfg) - {"type"}
    if kind == "Sequential":
        layers = cfg.get("layers")
        if keys != {"layers"} or not isinstance(layers, list) or depth >= MAX_DEPTH \
                or len(layers) > 1000:
            _fail(path, f"{prefix.rstrip('.')}: a Sequential needs a list of at most 1,000 "
                        f"layers, nested at most {MAX_DEPTH} deep")
        for i, c in enumerate(layers):
            width = _layer(path, c, f"{prefix}{i}.", width, depth + 1, params)
        return width
    if kind == "Dense":
        d, h = cfg.get("in_features"), cfg.get("out_features")
        if keys - {"in_features", "out_features", "bias", "init"} \
                or not all(type(n) is int and 1 <= n <= MAX_WIDTH for n in (d, h)) \
                or not isinstance(cfg.get("bias", True), bool) \
                or not isinstance(cfg.get("init", "he"), str) \
                or cfg.get("init", "he") not in INITIALISERS:
            _fail(path, f"{prefix.rstrip('.')}: a Dense config needs in_features and "
                        f"out_features in 1..{MAX_WIDTH:,}, a boolean bias and a known init")
        if width is not None and d != width:
            _fail(path, f"{prefix.rstrip('.')} takes {d} features but is given {width}")
        params[prefix + "W"] = (d, h)
        if cfg.get("bias", True):
            params[prefix + "b"] = (h,)
        return h
    if kind not in LAYERS:
        _fail(path, f"unknown layer type {kind!r} (known: {sorted(LAYERS)})")
    slope = cfg.get("negative_slope", 0.0)
    if keys - ({"negative_slope"} if kind == "LeakyReLU" else set()) or not _number(slope) \
            or not 0 <= slope < 1:
        _fail(path, f"{prefix.rstrip('.')}: unexpected settings {sorted(keys)} for {kind}")
    return width
