"""Student versions of the tutorials: the same scripts without their solution cells.

The tutorials are percent-format scripts (``# %%`` starts a cell). Each ends with an
exercise whose solutions sit at the end of the file, every solution cell tagged in its
header, as jupytext writes cell metadata::

    # %% [markdown] tags=["solution"]
    # ## Solutions

    # %% tags=["solution"]
    def answer(): ...

``strip_solutions`` deletes those cells and keeps every other byte;
``write_student_versions`` writes stripped copies of a folder of tutorials (the
``tinyae exercises strip SRC -o OUT`` command).
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .io.checkpoint import atomic_write

SOLUTION_TAG = "solution"
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")          # a line with its own ending, byte for byte
_TAGS = re.compile(r"\btags=")


@dataclass(frozen=True)
class Cell:
    """One percent-format cell: its header line (empty for text before the first
    cell), the tags on that header, and its full text (header included)."""
    header: str
    tags: tuple
    text: str
    line: int                                     # 1-based line of the header

    @property
    def is_solution(self):
        return SOLUTION_TAG in self.tags

    @property
    def body(self):
        """The cell's lines after the header."""
        return self.text[len(self.header):]


def _tags(header, line):
    """The list after ``tags=`` on a cell header, as a tuple of strings (empty if none)."""
    match = _TAGS.search(header)
    if match is None:
        return ()
    try:
        tags, _ = json.JSONDecoder().raw_decode(header, match.end())
    except json.JSONDecodeError:
        tags = None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"line {line}: the cell header {header.strip()!r} has tags= without a "
                         f'JSON list of strings; write it like tags=["{SOLUTION_TAG}"]')
    return tuple(tags)


def split_cells(text):
    """``text`` cut into cells at each line that begins with ``# %%``; the text before
    the first cell, if any, is a cell with an empty header. Joined, they give ``text``."""
    cells, header, lines, start = [], "", [], 1
    for number, line in enumerate(_LINE.findall(text), 1):
        if line.startswith("# %%"):
            if lines:
                cells.append(Cell(header, _tags(header, start), "".join(lines), start))
            header, lines, start = line, [], number
        lines.append(line)
    if lines:
        cells.append(Cell(header, _tags(header, start), "".join(lines), start))
    return cells


def solution_cells(text):
    """The cells of ``text`` tagged ``solution``."""
    return [cell for cell in split_cells(text) if cell.is_solution]


def strip_solutions(text: str) -> str:
    """``text`` without its cells tagged ``solution``; everything else byte for byte.

    When cells were removed, the blank lines left at the end are cut to a single
    line ending; a text without solution cells comes back unchanged.
    """
    cells = split_cells(text)
    kept = [cell.text for cell in cells if not cell.is_solution]
    if len(kept) == len(cells):
        return text
    lines = _LINE.findall("".join(kept))
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return ""
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    lines[-1] = lines[-1].rstrip("\r\n") + newline
    return "".join(lines)


def _read(path, src):
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (a bad byte at offset {exc.start}); "
                         f"save it as UTF-8 or move it out of {src}") from None


def write_student_versions(src, out, force=False) -> list:
    """Write copies of the tutorials in ``src`` without their solution cells to folder ``out``.

    ``src`` is a folder (every ``*.py`` in it, and its ``README.md`` copied as is) or one
    file. A script without solution cells is copied unchanged. Nothing is overwritten:
    ``out`` may be new or an existing folder, but no file to be written may exist yet,
    and ``out`` may not be ``src`` itself (``force`` replaces earlier student versions,
    never a source). Every source is read and checked before anything is written; each
    copy is written atomically. Returns the paths written.
    """
    src, out = Path(src), Path(out)
    if not src.exists():
        raise ValueError(f"{src} does not exist; pass the tutorials folder (or one tutorial .py file)")
    if src.is_dir():
        sources = sorted(p for p in src.glob("*.py") if p.is_file())
        if not sources:
            raise ValueError(f"{src} holds no .py tutorials; pass the folder with the tutorial scripts")
        if (src / "README.md").is_file():
            sources.append(src / "README.md")
        if out.resolve() == src.resolve():
            raise ValueError(f"the output folder {out} is the source folder; "
                             "choose another folder, for example student/")
    elif src.suffix != ".py":
        raise ValueError(f"{src} is not a percent-format .py tutorial; for a notebook, write "
                         f"one first (jupytext --to py:percent {src.name}) and strip that")
    else:
        sources = [src]
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder; choose an empty folder for the student versions")
    targets = [out / p.name for p in sources]
    for target in targets:
        if target.exists() and any(target.resolve() == p.resolve() for p in sources):
            raise ValueError(f"{target} is one of the sources; choose another output folder")
        if (target.exists() or target.is_symlink()) and not (force and target.is_file()):
            raise ValueError(f"{target} already exists and would be overwritten; choose an "
                             f"empty folder, remove {target}, or add --force to replace it")
    texts = [_student_text(path, src) for path in sources]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for path, target, text in zip(sources, targets, texts):
            atomic_write(target, lambda f, text=text: f.write(text.encode("utf-8")))
            written.append(target)
    except BaseException:           # Ctrl-C, a full disk: no half set of student versions
        for target in written:
            target.unlink(missing_ok=True)
        raise
    return targets


def _student_text(path, src):
    """The student version of one source file, checked to be Python when the source was."""
    text = _read(path, src)
    if path.suffix != ".py":
        return text
    try:
        stripped = strip_solutions(text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        compile(text, str(path), "exec")
    except (SyntaxError, ValueError):
        return stripped                 # not Python to begin with: nothing to keep working
    try:
        compile(stripped, str(path), "exec")
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: without its solution cells it is no longer valid Python "
                         f"({exc.msg if isinstance(exc, SyntaxError) else exc}); is a '# %%' "
                         "line inside a string? Move it, then strip again") from None
    return stripped
