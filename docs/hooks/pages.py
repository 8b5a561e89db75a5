"""MkDocs hook: pages from elsewhere in the repository, links between them, maths as MathML.

- ``benchmarks/README.md`` is the Benchmarks page (read where it is).
- A link written for the repository (``../benchmarks/README.md`` in docs/results.md)
  is rewritten to the page that file became, so one Markdown file reads right
  on the code host and on the site.
- LaTeX (``$...$``, ``$$...$$`` through ``pymdownx.arithmatex``) is turned into
  MathML here, at build time, by latex2mathml: browsers draw MathML themselves,
  so the site loads no MathJax, no fonts and nothing from a CDN.
"""
import html as htmlib
import posixpath
import re
from pathlib import Path

from latex2mathml.converter import convert as latex_to_mathml
from mkdocs.structure.files import File

PAGES = {"benchmarks.md": "benchmarks/README.md"}          # site page: repository file
_LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def on_files(files, config):
    root = Path(config.config_file_path).parent
    for page, source in PAGES.items():
        files.append(File.generated(config, page, abs_src_path=str(root / source)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Rewrite relative links to repository files that are pages of the site."""
    if page.file.abs_src_path is None:
        return markdown
    site_of = {Path(f.abs_src_path).resolve(): f.src_uri for f in files if f.abs_src_path}
    here = Path(page.file.abs_src_path).resolve().parent

    def relink(match):
        target = match[2]
        if re.match(r"[a-z]+:", target) or target.startswith("/"):
            return match[0]
        repo_file = (here / target).resolve()
        if repo_file not in site_of:
            return match[0]
        new = posixpath.relpath(site_of[repo_file], posixpath.dirname(page.file.src_uri))
        return match[1] + new + (match[3] or "") + match[4]
    return _LINK.sub(relink, markdown)


# pymdownx.arithmatex (generic) wraps maths as \( \) in a span, \[ \] in a div.
_MATH = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\[)\]]\s*</\1>', re.DOTALL)


def on_page_content(html, page, config, files):
    def mathml(match):
        display = "block" if match[2] == "[" else "inline"
        return latex_to_mathml(htmlib.unescape(match[3]).strip(), display=display)
    return _MATH.sub(mathml, html)
