"""The course commands: ``tinyae check`` grades a student's layer, ``tinyae exercises strip``
writes the tutorials without their solutions.

    tinyae check my_layer.py:MyLeakyReLU          # exit 0 passed, 1 failed, 2 cannot run
    tinyae exercises strip tutorials/ -o student/
"""
import argparse
import json
import math
import signal
import sys
from pathlib import Path

from ..exercises import write_student_versions
from ..io.checkpoint import atomic_write
from ..testing import LayerSpecError, grade_layer, load_layer

CHECK_HELP = ("Gradient-check a layer you wrote, and check it against the layer contract "
              "(backward returns dx, gradients add up with +=, inputs left alone, float64 "
              "in and out, ...). NAME is a class made with no arguments, a function "
              "returning a layer, or a layer object in FILE. It runs on x of several "
              "shapes and seeds (at most 500 random entries of each array are checked), "
              "prints the table of the first run that failed (or of the first run) and a "
              "summary, and exits 0 when every run passed, 1 when one failed, 2 when the "
              "layer could not be loaded or run.")


SAMPLES = 500               # entries checked per array: finite differences cost 2 forwards each
MAX_INPUT = 10_000          # entries of x: a batch of a few rows is what a check needs


def _integers(text, least):
    """The comma-separated integers of ``text``, each >= ``least``, or None."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        return None
    return values if values and min(values) >= least else None


def _shape(text):
    shape = _integers(text, 1)
    if shape is None or len(shape) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape such as 4,6 (rows, "
                                         "features; positive integers)")
    if math.prod(shape) > MAX_INPUT:
        raise argparse.ArgumentTypeError(f"{text!r} has {math.prod(shape):,} entries; a check "
                                         f"needs a few rows: at most {MAX_INPUT:,} (e.g. 4,784)")
    return shape


def _seeds(text):
    seeds = _integers(text, 0)
    if seeds is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of seeds such as 0,1,2")
    return seeds


def add_commands(command):
    """Add ``check`` and ``exercises`` with the CLI's ``command(name, help, description)``."""
    c = command("check", "gradient-check and contract-check a layer you wrote (FILE:NAME)",
                CHECK_HELP)
    c.add_argument("layer", metavar="FILE:NAME", help="e.g. my_layer.py:MyLeakyReLU")
    c.add_argument("--shape", type=_shape, action="append",
                   help="input shape N,D (repeat for several; default 4,D and 7,D with D "
                   "read from the layer's W, else 6)")
    c.add_argument("--seeds", type=_seeds, default=(0, 1, 2),
                   help="seeds of the inputs (default 0,1,2)")
    c.add_argument("--json", metavar="FILE",
                   help="also write every run's results to this .json file, for grading "
                   "(default: none)")
    c.epilog = ("Files: FILE is imported (its code runs, as on any import); the only file "
                "written is --json, never the layer's own file.")
    c.set_defaults(run=cmd_check)

    e = command("exercises", "write student versions of the tutorials, without solutions",
                "Copy the tutorials without the cells tagged as solutions (the "
                "'## Solutions' section at the end of each), so trying comes first. "
                "Without --force, OUT must not hold any of the files yet.")
    e.add_argument("action", choices=("strip",), help="strip: remove the solution cells")
    e.add_argument("source", help="the tutorials folder (or one tutorial .py)")
    e.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="folder for the student versions (created if missing)")
    e.add_argument("--force", action="store_true",
                   help="replace student versions already in OUT (default: refuse); the "
                   "sources are never written")
    e.epilog = ("Files: the sources are only read; OUT may not be the source folder, and a "
                "file already in OUT is replaced only with --force.")
    e.set_defaults(run=cmd_exercises)


def cmd_check(args):
    try:
        make = load_layer(args.layer)
        if args.json:
            _check_json_path(args.json, args.layer)
    except LayerSpecError as exc:
        print(f"tinyae check: error: {exc}", file=sys.stderr)
        return 2
    try:
        grade = grade_layer(make, args.shape, args.seeds, samples=SAMPLES)
    except NotImplementedError as exc:
        print(f"tinyae check: error: {args.layer} is not written yet (NotImplementedError: "
              f"{exc}); fill in its methods, then check again", file=sys.stderr)
        return 2
    except (Exception, SystemExit) as exc:      # e.g. making the layer a second time failed
        print(f"tinyae check: error: {args.layer} stopped the check: {type(exc).__name__}: "
              f"{exc}", file=sys.stderr)
        return 2
    if args.json:
        text = json.dumps(grade.to_dict(), indent=1)
        atomic_write(args.json, lambda f: f.write(text.encode()))
    fatal = next((f for _, _, r in grade.runs for f in r.findings if f.fatal), None)
    if fatal is not None:           # the layer cannot run: one line, as for a bad path
        shape = " (or give the input's shape: --shape N,D)" if (
            fatal.check == "forward runs" and not args.shape) else ""
        print(f"tinyae check: error: {fatal.message}{shape}", file=sys.stderr)
        return 2
    print(grade)
    return 0 if grade.passed else 1


def _first_byte(path):
    with open(path, "rb") as f:
        return f.read(1)


def _check_json_path(path, spec):
    out, source = Path(path), Path(str(spec).rpartition(":")[0])
    if out.is_dir():
        raise LayerSpecError(f"--json {path} is a folder; give a file name ending in .json")
    if out.suffix != ".json":
        raise LayerSpecError(f"--json {path}: give a file name ending in .json")
    if out.exists() and out.resolve() == source.resolve():
        raise LayerSpecError(f"--json {path} is the layer's own file; choose another name")
    if out.exists() and _first_byte(out) not in (b"{", b"["):
        raise LayerSpecError(f"--json {path} exists and is not a JSON file; choose another "
                             "name")


def cmd_exercises(args):


    def stop(signum, frame):        # SIGTERM as Ctrl-C: the files written so far are removed
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    written = write_student_versions(args.source, args.output, force=args.force)
    for path in written:
        print(path)
    print(f"{len(written)} files written to {args.output}: the exercises without their "
          "solutions", file=sys.stderr)
    return 0
