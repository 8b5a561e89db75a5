"""MkDocs hook: the API reference, one page per part of tinyae, written at build time.

Each page is the part's docstring followed by every module in it, rendered by
mkdocstrings from the docstrings. The modules are found in the folder, so a new
module appears without an edit here; they come in the order the package's own
docstring names them (``nn/layers.py`` before ``nn/losses.py``), unnamed ones last.
"""
from pathlib import Path

from mkdocs.structure.files import File

# page: the package, or the modules of a page that gathers top-level modules
PAGES = {
    "nn": "tinyae.nn",
    "models": "tinyae.models",
    "autograd": ["tinyae.autograd"],
    "gradcheck": ["tinyae.gradcheck", "tinyae.contract", "tinyae.report", "tinyae.testing"],
    "train": "tinyae.train",
    "data": "tinyae.data",
    "evaluate": "tinyae.evaluate",
    "viz": "tinyae.viz",
}


def modules(package, root):
    """The public modules of ``package`` (dotted), in the order its docstring names them."""
    folder = root / Path(*package.split("."))
    doc = (folder / "__init__.py").read_text(encoding="utf-8")
    names = [p.stem for p in folder.glob("*.py") if not p.name.startswith("_")]
    named = lambda m: doc.find(f"{m}.py") if f"{m}.py" in doc else len(doc)
    return [f"{package}.{m}" for m in sorted(names, key=lambda m: (named(m), m))]


def page(name, spec, root):
    """The Markdown of one API page."""
    if isinstance(spec, str):
        head = [f"::: {spec}", "    options:", "      show_root_heading: false",
                "      members: false", ""]
        spec = modules(spec, root)
        title = name
    else:
        head, title = [], name
    body = [f"::: {m}\n" for m in spec]
    return "\n".join([f"# `tinyae.{title}`", "", *head, *body])


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for name, spec in PAGES.items():
        files.append(File.generated(config, f"api/{name}.md", content=page(name, spec, root)))
    return files
