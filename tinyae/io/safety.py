"""Path safety for the files tinyae reads and writes.

Three promises, kept here so that every command keeps them the same way:

    no command writes over one of its own inputs (same path, symlink or hard link);
    an existing output is replaced only when it is of the kind the command writes
    (or with --force), never when it is a folder;
    what is read as data is a regular file (a FIFO or /dev/zero would block or never end).
"""
import os
import stat

# The first bytes of the kinds of file tinyae writes, and of a few it is often handed by mistake.
MAGIC = {"npy": b"\x93NUMPY", "png": b"\x89PNG\r\n\x1a\n", "npz": b"PK\x03\x04",
         "gzip": b"\x1f\x8b", "pdf": b"%PDF", "jpeg": b"\xff\xd8\xff", "html": b"<!DOCTYPE html>"}
KIND_NAMES = {"npy": "a NumPy .npy array", "png": "a PNG image", "npz": "a zip archive (.npz)",
              "gzip": "a gzip file", "pdf": "a PDF document", "jpeg": "a JPEG image",
              "html": "an HTML page"}


class UnsafePathError(ValueError):
    """A path the command refuses to read or write, with the reason and the fix."""


def regular_file(path, what="file"):
    """Raise unless ``path`` is an existing regular file (symlinks followed)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path!r}") from None
    if stat.S_ISDIR(mode):
        raise UnsafePathError(f"{path!r} is a folder, not a {what}; give the path of the file.")
    if not stat.S_ISREG(mode):
        raise UnsafePathError(f"{path!r} is not a regular file (a device, pipe or socket); "
                              f"tinyae reads a {what} only from an ordinary file on disk.")
    return path


def sniff(path, n=16):
    """What the file at ``path`` looks like from its first bytes: "npy", "png", "text", ..."""
    with open(path, "rb") as f:
        head = f.read(n)
    return kind_of(head)


def kind_of(head):
    """The kind of a file from its first bytes (see ``MAGIC``), "text", "empty" or "binary"."""
    if not head:
        return "empty"
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary"
    return "text" if all(c.isprintable() or c in "\t\r\n" for c in text) else "binary"


def describe(kind):
    return KIND_NAMES.get(kind, {"text": "a text file", "empty": "an empty file"}.get(
        kind, "binary data of an unknown kind"))


def _same(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)           # hard links; both must exist
    except OSError:
        return False


def check_outputs(outputs, inputs=(), kinds=None, force=False):
    """Refuse outputs that are inputs, repeat each other, are folders or hold another kind.

    Args:
        outputs: {flag or role: path} that the command will write.
        inputs: paths the command reads.
        kinds: {role: kind} the file written there is (e.g. "npy"); an existing file of
            another kind is replaced only with ``force``. Empty files are always replaced.
    """
    kinds = kinds or {}
    seen = {}
    for role, out in outputs.items():
        if out is None:
            continue
        out = os.fspath(out)
        for path in inputs:
            if path is not None and _same(out, path):
                raise UnsafePathError(f"{role} {out!r} is an input of this command ({path!r}); "
                                      "writing it would destroy the input. Choose another path.")
        for other, path in seen.items():
            if _same(out, path):
                raise UnsafePathError(f"{role} and {other} are the same file ({out!r}); "
                                      "give each output its own path.")
        seen[role] = out
        parent = os.path.dirname(os.path.abspath(out))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            raise UnsafePathError(f"{role} {out!r}: {parent!r} is a file, not a folder; "
                                  "check the path.")
        if os.path.isdir(out):
            raise UnsafePathError(f"{role} {out!r} is a folder; give a file name inside it.")
        if os.path.lexists(out) and not force and role in kinds:
            have = sniff(out) if os.path.isfile(out) else "not a regular file"
            if have not in (kinds[role], "empty"):
                raise UnsafePathError(
                    f"{role} {out!r} exists and is {describe(have)}, not "
                    f"{describe(kinds[role])} as this command writes; refusing to replace it. "
                    "Choose another path, or add --force to replace it.")


def default_output(path, default, force=False):
    """``path`` as given, or ``default`` when none was: a name the user did not type never
    replaces a file (unless ``force``)."""
    if path is not None:
        return path
    if os.path.lexists(default) and not force:
        raise UnsafePathError(f"{default!r} (the default -o) already exists; give -o a new "
                              "name, or add --force to replace it.")
    return default


def require_suffix(path, suffix, role):
    if not os.fspath(path).lower().endswith(suffix):
        raise UnsafePathError(f"{role} {os.fspath(path)!r} should end in {suffix} "
                              f"(this command writes {describe(suffix[1:])}).")
