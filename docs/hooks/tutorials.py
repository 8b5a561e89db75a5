"""MkDocs hook: the tutorials in tutorials/ become pages, executed by mkdocs-jupyter.

- The scripts are read where they are (``tutorials/NN_*.py``, jupytext percent
  format) and listed, in order, in the nav's Tutorials section; nothing is copied
  into docs/.
- Fast mode by default: ``TINYAE_FAST=1`` unless the environment says otherwise
  (``TINYAE_FAST=0 mkdocs build`` runs them full size, as the scripts do).
- Executed pages are cached by mkdocs-jupyter per script content in
  ``.cache/docs/<mode>-<digest of tinyae's sources>``, so a rebuild re-runs only
  what changed; the tutorials' own outputs go to ``.cache/docs/out-<mode>``, never
  over a user's ``tutorials/out``. ``TINYAE_DOCS_CACHE`` moves ``.cache/docs``.
- ``TINYAE_DOCS_EXECUTE=01,03`` executes only those tutorials (the others are
  rendered without outputs): the browser test's small build.
- A cell that raises stops the build with the tutorial, the cell and its line.
- Each tutorial page starts with download links (the script, and the notebook
  jupytext makes of it); its solutions are folded away under the exercise.
"""
import hashlib
import os
import shutil
from pathlib import Path

import jupytext
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
PATTERN = "[0-9][0-9]_*.py"
PLUGIN = "mkdocs-jupyter"


def _tutorials(config):
    """The tutorial scripts: ``tutorials/`` beside the config file."""
    return sorted((Path(config.config_file_path).parent / "tutorials").glob(PATTERN))


def _sources_digest():
    """A digest of tinyae's code: executed outputs depend on it as much as on the script."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "tinyae").rglob("*.py")):
        h.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def on_config(config):
    os.environ.setdefault("TINYAE_FAST", "1")
    mode = "full" if os.environ["TINYAE_FAST"] in ("", "0") else "fast"
    cache = Path(os.environ.get("TINYAE_DOCS_CACHE") or
                 Path(config.config_file_path).parent / ".cache" / "docs")
    os.environ.setdefault("TINYAE_TUTORIAL_OUT", str(cache / f"out-{mode}"))
    jupyter = config.plugins[PLUGIN].config
    jupyter["cache_dir"] = str(cache / f"{mode}-{_sources_digest()}")
    _add_to_nav(config, [f"tutorials/{p.name}" for p in _tutorials(config)])
    only = os.environ.get("TINYAE_DOCS_EXECUTE", "").strip()
    if only:
        keep = {n.strip().zfill(2) for n in only.split(",") if n.strip()}
        jupyter["execute_ignore"] = [f"tutorials/{p.name}" for p in _tutorials(config)
                                     if p.name[:2] not in keep]
    return config


def _add_to_nav(config, pages):
    """Every tutorial in the nav's Tutorials section, in order: a new one needs no edit."""
    for item in config.nav or []:
        if isinstance(item, dict) and isinstance(item.get("Tutorials"), list):
            item["Tutorials"] += [p for p in pages if p not in item["Tutorials"]]
            return
    raise PluginError("mkdocs.yml: the nav needs a 'Tutorials' section (a list) for the tutorials")


def on_post_build(config):
    """Drop the caches of tinyae's earlier sources (mkdocs-jupyter prunes within its own)."""
    current = Path(config.plugins[PLUGIN].config["cache_dir"])
    mode = current.name.split("-")[0]
    for old in current.parent.glob(f"{mode}-*"):
        if old != current and old.is_dir():
            shutil.rmtree(old)


@event_priority(100)                    # before mkdocs-jupyter turns them into notebook pages
def on_files(files, config):
    root = Path(config.config_file_path).parent

    def from_repo(src_uri):         # a file read in place: the repository is its source folder
        return File(src_uri, src_dir=str(root), dest_dir=config.site_dir,
                    use_directory_urls=config.use_directory_urls)
    if (root / "tutorials" / "README.md").is_file():
        files.append(from_repo("tutorials/README.md"))
    for path in _tutorials(config):
        files.append(from_repo(f"tutorials/{path.name}"))
        notebook = jupytext.writes(jupytext.read(path), fmt="ipynb")
        files.append(File.generated(config, f"tutorials/{path.stem}.ipynb", content=notebook))
    return files


def _is_tutorial(page):
    return page.file.src_uri.startswith("tutorials/") and page.file.src_uri.endswith(".py")


@event_priority(-100)                   # after mkdocs-jupyter has set its render
def on_pre_page(page, config, files):
    if _is_tutorial(page):
        page.render = _named_errors(page.render, Path(page.file.abs_src_path))
    return page


def _named_errors(render, path):
    """``render``, with a failing cell reported as the tutorial, the cell and its line."""
    def render_or_say_where(config, files):
        try:
            render(config, files)
        except Exception as exc:
            ename = getattr(exc, "ename", type(exc).__name__)
            evalue = getattr(exc, "evalue", (str(exc).strip().splitlines() or [""])[-1])
            raise PluginError(f"tutorials/{path.name}: {_which_cell(path, str(exc))} raised "
                              f"{ename}: {evalue}; the site is not built with a failing "
                              f"tutorial (run `python tutorials/{path.name}` to see it)"
                              f"\n{exc}") from exc
    return render_or_say_where


def _which_cell(path, message):
    """'cell K (line L)' for the code cell whose source the error message quotes."""
    from tinyae.exercises import split_cells
    cells = [c for c in split_cells(path.read_text(encoding="utf-8")) if c.header]
    for k, cell in enumerate(cells, 1):
        source = cell.body.strip()
        if "[markdown]" not in cell.header and source and source in message:
            return f"cell {k} (line {cell.line})"
    return "a cell"


def on_page_content(html, page, config, files):
    if not _is_tutorial(page):
        return html
    html = _fold_solutions(html)
    title_end = html.find("</h1>")                  # the links go under the tutorial's title
    at = title_end + len("</h1>") if title_end >= 0 else 0
    executed = page.file.src_uri not in config.plugins[PLUGIN].config["execute_ignore"]
    return html[:at] + _downloads(page, executed) + html[at:]


def _downloads(page, executed):
    stem = Path(page.file.src_uri).stem
    fast = os.environ.get("TINYAE_FAST", "") not in ("", "0")
    how = ("shown without outputs in this build (<code>TINYAE_DOCS_EXECUTE</code>)"
           if not executed else
           "executed for this site in fast mode (<code>TINYAE_FAST=1</code>: a small "
           "subset, a few epochs); the full-size run is the script itself" if fast
           else "executed for this site at full size")
    return (f'<p class="tinyae-downloads">Download <a href="{stem}.py" download>the script'
            f'</a> or <a href="{stem}.ipynb" download>the notebook</a>; {how}.</p>\n')


# nbconvert marks each tagged cell with a CSS class (on the cell, or on a markdown cell's text).
_SOLUTION = "celltag_solution"
_CELL = '<div class="jp-Cell '
_NOTEBOOK_END = "</div> <!-- jp-Notebook -->"


def _fold_solutions(html):
    """Wrap the cells from the first solution cell to the notebook's end in <details>."""
    first = html.find(_SOLUTION)
    start = html.rfind(_CELL, 0, first) if first >= 0 else -1
    end = html.find(_NOTEBOOK_END, first)
    if start < 0 or end < 0:
        return html
    summary = "<summary>Solutions (try the exercise first)</summary>"
    return (html[:start] + f'<details class="solutions">{summary}\n'
            + html[start:end] + "</details>\n" + html[end:])
