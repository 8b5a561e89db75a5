"""``tinyae export`` and ``tinyae import``: a checkpoint's model out as ONNX or as a PyTorch
state dict (safetensors), and a state dict trained elsewhere back into a checkpoint.

    tinyae export runs/<time>/last.npz --to onnx -o ae.onnx [--part decoder]
    tinyae export runs/<time>/last.npz --to safetensors -o ae.safetensors
    tinyae import trained.safetensors --like runs/<time>/last.npz -o trained.npz
"""
import os

from .. import export, io
from ..export.files import need
from ..export.onnx import OPSET, PARTS
from ..io import safety
from ..models.kinds import KINDS
from . import flags as policy
from .runs import build_model, encoder_sizes

SUFFIXES = {"onnx": ".onnx", "safetensors": ".safetensors"}
PACKAGES = {"onnx": "onnx", "safetensors": "safetensors.numpy"}
FILES = ("Files: the inputs are only read and -o may not be one of them; -o is written to a "
         "temporary file first, then renamed, and an existing file is replaced only with --force.")

EXPORT_HELP = (
    "Write a checkpoint's model for other tools. --to onnx: an ONNX graph (opset "
    f"{OPSET}) with input x and outputs reconstruction and code (a VAE: its mean code mu, "
    "and logvar), for onnxruntime, browsers and phones; --part encoder or decoder writes "
    "that half alone (decoder: code -> reconstruction). --to safetensors: the state dict of "
    "the equivalent PyTorch module, in its names and layouts (a Dense's W, stored (in, out), "
    "becomes Linear.weight (out, in)), which load_state_dict(..., strict=True) takes; "
    "tinyae.export.to_torch(model) builds that module. Needs pip install 'tinyae[export]'.")
IMPORT_HELP = (
    "Read a safetensors state dict in PyTorch's names and layouts (from tinyae export, or "
    "safetensors.torch.save_file(module.state_dict(), path) after training in PyTorch) into "
    "a tinyae checkpoint, so that tinyae info, encode, explore and robustness use it. The "
    "architecture comes from --like (a checkpoint of it) or from --model and --sizes (as "
    "tinyae train builds them): every name, shape and dtype is checked against it before "
    "anything is built. The new checkpoint keeps --like's training flags (or records "
    "--model and --sizes), not its history or metrics.")


def add_commands(command):
    """Add ``export`` and ``import`` with the CLI's ``command(name, help, description)``."""
    x = command("export", "write a checkpoint's model as ONNX or as a PyTorch state dict "
                "(.safetensors)", EXPORT_HELP)
    x.add_argument("checkpoint", help="a .npz checkpoint, e.g. runs/<time>/last.npz")
    x.add_argument("--to", choices=tuple(SUFFIXES), required=True,
                   help="onnx: a graph for onnxruntime; safetensors: a PyTorch state dict")
    x.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the file to write, ending in .onnx or .safetensors as --to says")
    x.add_argument("--part", choices=PARTS, default="model",
                   help="with --to onnx: the whole model (default; x -> reconstruction, code), "
                   "the encoder (x -> code) or the decoder (code -> reconstruction)")
    x.add_argument("--force", action="store_true", help="replace OUT if it exists (default: refuse)")
    x.epilog = FILES
    x.set_defaults(run=cmd_export)

    i = command("import", "read a PyTorch state dict (.safetensors) into a tinyae checkpoint",
                IMPORT_HELP)
    i.add_argument("state", metavar="STATE.safetensors", help="the state dict to read")
    arch = i.add_mutually_exclusive_group(required=True)
    arch.add_argument("--like", metavar="CKPT",
                      help="a tinyae checkpoint of the same architecture (its weights are not "
                      "used); this or --model is required (no default)")
    arch.add_argument("--model", choices=tuple(KINDS),
                      help="the architecture as tinyae train --model builds it (with --sizes); "
                      "this or --like is required (no default)")
    i.add_argument("--sizes", type=policy.PARSE["sizes"],
                   help="with --model: its widths, as for tinyae train (default: the kind's "
                   "default sizes)")
    i.add_argument("-o", "--output", required=True, metavar="OUT.npz",
                   help="the checkpoint to write")
    i.add_argument("--force", action="store_true", help="replace OUT.npz if it exists (default: refuse)")
    i.epilog = FILES
    i.set_defaults(run=cmd_import)


def cmd_export(args):
    if args.part != "model" and args.to != "onnx":
        raise ValueError(f"--part {args.part} applies to --to onnx; a safetensors state dict "
                         "holds the whole model (leave --part out)")
    _check_output(args, SUFFIXES[args.to], [args.checkpoint])
    _need(PACKAGES[args.to], f"tinyae export --to {args.to}")
    _, model = io.read_model(args.checkpoint)
    if args.to == "onnx":
        export.to_onnx(model, args.output, part=args.part, force=args.force)
        what = "" if args.part == "model" else f"the {args.part} of "
        print(f"wrote {args.output}: {what}the {type(model).__name__} as ONNX (opset {OPSET}); "
              "run it with onnxruntime.InferenceSession")
    else:
        export.to_safetensors(model, args.output, force=args.force)
        tensors = len(list(model.parameters()))
        print(f"wrote {args.output}: {tensors} tensors, {model.num_parameters():,} "
              "parameters in PyTorch's names and layouts; load them with "
              "module.load_state_dict(safetensors.torch.load_file(path), strict=True)")
    return 0


def cmd_import(args):
    if args.sizes is not None and args.model is None:
        raise ValueError("--sizes goes with --model (with --like, the checkpoint gives the "
                         "sizes): leave it out, or name the --model")
    _check_output(args, ".npz", [args.state] + ([args.like] if args.like else []))
    _need(PACKAGES["safetensors"], "tinyae import")
    if args.like:
        like = io.read_checkpoint(args.like, optimizer=False)
        flags, source = like.extra.get("args"), args.like
    else:                                   # the architecture tinyae train would build
        flags = policy.new_run({"model": args.model,
                                **({"sizes": args.sizes} if args.sizes else {})})
        like, source = build_model(flags), f"--model {args.model}"
        flags = {**policy.recorded(flags), "sizes": encoder_sizes(like, flags["sizes"])}
    model = export.from_safetensors(args.state, like=like)
    extra = {"imported": {"state": os.path.basename(args.state),
                          "like": os.path.basename(args.like or source)},
             **({"args": flags} if isinstance(flags, dict) else {})}
    io.save(model, args.output, extra=extra)
    print(f"wrote {args.output}: the {type(model).__name__} of {source} with the weights of "
          f"{args.state} ({model.num_parameters():,} parameters)")
    return 0


def _check_output(args, suffix, inputs):
    """-o ends in ``suffix``, is none of ``inputs``, and exists only with --force."""
    out = args.output
    if not out.lower().endswith(suffix):
        raise safety.UnsafePathError(f"-o {out!r} should end in {suffix} (the kind of file "
                                     "this command writes)")
    safety.check_outputs({"-o": out}, inputs, force=args.force)
    if os.path.lexists(out) and not args.force:
        raise safety.UnsafePathError(f"-o {out!r} exists already; choose another name, or add "
                                     "--force to replace it")


def _need(package, why):
    """The optional package, or a one-line ValueError with the install command."""
    try:
        need(package, why)
    except ModuleNotFoundError as exc:
        raise ValueError(str(exc)) from None
