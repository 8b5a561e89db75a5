"""The documentation site: built offline with warnings as errors, then read in headless Chromium.

The build runs ``mkdocs build --strict`` on the real mkdocs.yml with tutorials 01 and 03
executed (``TINYAE_DOCS_EXECUTE``; the others are rendered without outputs, since
tests/test_tutorials.py runs them all): about 20 s. It needs the ``docs`` extra and skips
without it, except under CI=true, where it fails. The browser tests drive Debian's
chromium through playwright, as tests/test_explore.py does.
"""
import functools
import html.parser
import http.server
import importlib.util
import json
import os
import subprocess
import sys
import threading
from urllib.parse import unquote, urlsplit

import pytest
from conftest import ROOT, find_mnist_dir, watched_page

CI = os.environ.get("CI", "").lower() == "true"
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
EXECUTED = "03_encode_latent_map"           # its two figures are checked in the browser
API = ["nn", "models", "autograd", "gradcheck", "train", "data", "evaluate", "viz"]


def _need(module, why):
    if importlib.util.find_spec(module) is None:
        msg = f"{module} is not installed ({why}): pip install -e '.[docs]'"
        if CI:
            pytest.fail("CI must build the docs site: " + msg)
        pytest.skip(msg)


def _env(tmp, **extra):
    """The build's environment: fast mode, MNIST beside the repo (or the built-in digits,
    never the network), caches and tutorial outputs in ``tmp``."""
    mnist = find_mnist_dir()
    return {**os.environ, "TINYAE_FAST": "1", "MPLBACKEND": "Agg",
            "TINYAE_DATA_DIR": str(mnist or tmp / "no-data"),
            "TINYAE_DOCS_CACHE": str(tmp / "cache"), "TINYAE_TUTORIAL_OUT": str(tmp / "out"),
            "NO_MKDOCS_2_WARNING": "1", **extra}


def _mkdocs(config, site, env):
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], capture_output=True, text=True, env=env, timeout=500)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    _need("mkdocs", "the site's builder")
    _need("mkdocs_jupyter", "the tutorials' pages")
    tmp = tmp_path_factory.mktemp("docs")
    r = _mkdocs(ROOT / "mkdocs.yml", tmp / "site", _env(tmp, TINYAE_DOCS_EXECUTE=f"01,{EXECUTED[:2]}"))
    assert r.returncode == 0, r.stderr[-5000:]
    return tmp / "site"


# --- the built files -----------------------------------------------------------------
def test_every_page_is_built(site):
    for t in TUTORIALS:
        for suffix in (".html", ".py", ".ipynb"):            # the page and its downloads
            assert (site / "tutorials" / (t.stem + suffix)).is_file(), t.stem + suffix
        page = (site / "tutorials" / f"{t.stem}.html").read_text()
        assert f'href="{t.stem}.py"' in page and f'href="{t.stem}.ipynb"' in page
    for name in ["index", "results", "benchmarks", "explorer", "instructors", "tutorials/index"]:
        assert (site / f"{name}.html").is_file(), name
    for name in API:
        assert (site / "api" / f"{name}.html").is_file(), name
    notebook = json.loads((site / "tutorials" / f"{EXECUTED}.ipynb").read_text())
    assert notebook["nbformat"] == 4 and len(notebook["cells"]) > 5


def test_tutorial_pages_show_outputs_and_fold_the_solutions(site):
    page = (site / "tutorials" / f"{EXECUTED}.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "TINYAE_FAST=1" in page
    for t in TUTORIALS:
        page = (site / "tutorials" / f"{t.stem}.html").read_text()
        folded = page.split('<details class="solutions">', 1)
        assert len(folded) == 2, f"{t.stem}: no folded solutions"
        assert "celltag_solution" not in folded[0], f"{t.stem}: a solution before the fold"
        assert 'id="solutions"' in folded[1]


def test_api_reference_keeps_formulas_and_renders_maths(site):
    nn = (site / "api" / "nn.html").read_text()
    assert "Dense" in nn and "Adam" in nn and "MSE" in nn
    # The docstring's formula lines stay lines: one preformatted block, not a paragraph.
    assert "forward:   y = x W + b\nbackward:  dW += x^T dout" in nn.replace("&gt;", ">")
    instructors = (site / "instructors.html").read_text()
    assert instructors.count("<math") >= 5 and "arithmatex" not in instructors
    assert 'href="api/gradcheck.html#tinyae.testing.grade_layer"' in instructors


def test_every_module_has_its_api_section(site):
    """The reference lists the modules it finds: one added to a subpackage appears."""
    for name in API:
        folder = ROOT / "tinyae" / name
        modules = [f"tinyae.{name}.{p.stem}" for p in folder.glob("[!_]*.py")] \
            if folder.is_dir() else [f"tinyae.{name}"]
        page = (site / "api" / f"{name}.html").read_text()
        for module in modules:
            assert f'id="{module}"' in page, f"api/{name}.html has no section {module}"


def test_search_index_finds_adam(site):
    index = json.loads((site / "search" / "search_index.json").read_text())
    hits = [d["location"] for d in index["docs"] if "Adam" in d["text"] or "Adam" in d["title"]]
    assert any(h.startswith("api/nn.html") for h in hits), hits[:10]


class _Links(html.parser.HTMLParser):
    """Every href and src of a page, with what it loads: ``(tag, attr, value, loads)``."""
    def __init__(self):
        super().__init__()
        self.targets = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key):
                loads = key == "src" or (tag == "link" and attrs.get("rel") != "canonical")
                self.targets.append((tag, key, attrs[key], loads))


def _targets(page):
    parser = _Links()
    parser.feed(page.read_text())
    return parser.targets


def test_internal_links_resolve(site):
    broken, checked = [], 0
    for page in site.rglob("*.html"):
        for _, _, target, _ in _targets(page):
            url = urlsplit(target)
            if url.scheme or url.netloc or not url.path:     # outside links, data:, #anchors
                continue
            checked += 1            # "/x": from the site's root (404.html, served anywhere)
            base = site if url.path.startswith("/") else page.parent
            if not (base / unquote(url.path).lstrip("/")).exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert checked > 500 and not broken, broken[:20]


def test_nothing_is_loaded_from_outside(site):
    """A reader may follow a link out; no script, style, font or image comes from outside."""
    for page in site.rglob("*.html"):
        outside = [t for t in _targets(page)
                   if t[3] and (urlsplit(t[2]).scheme in ("http", "https") or t[2].startswith("//"))]
        assert not outside, (page, outside)


# --- a failing tutorial --------------------------------------------------------------
BROKEN = '''# %% [markdown]
# # A broken tutorial

# %%
x = 1

# %%
raise ValueError("a planted error")
'''


def test_a_failing_tutorial_fails_the_build_naming_it(tmp_path):
    """A tutorial that raises stops the build with its file, cell and line: no page is made."""
    _need("mkdocs", "the site's builder")
    _need("mkdocs_jupyter", "the tutorials' pages")
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n")
    (tmp_path / "tutorials").mkdir()
    (tmp_path / "tutorials" / "99_broken.py").write_text(BROKEN)
    config.update(docs_dir="docs", hooks=[str(ROOT / "docs" / "hooks" / "tutorials.py")],
                  nav=[{"Home": "index.md"}, {"Tutorials": []}],
                  plugins=[p for p in config["plugins"] if "mkdocstrings" not in p])
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    r = _mkdocs(tmp_path / "mkdocs.yml", tmp_path / "site", _env(tmp_path))
    assert r.returncode != 0
    assert ("tutorials/99_broken.py: cell 3 (line 7) raised ValueError: a planted error"
            in r.stderr), r.stderr[-3000:]
    assert not (tmp_path / "site" / "tutorials" / "99_broken.html").exists()


# --- in a browser --------------------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    """The site on a local port: Material's search runs in a worker, which file:// forbids."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def open_page(browser, url):
    """The page at ``url``, loaded, with every request, failure and error it made."""
    page, seen = watched_page(browser)
    response = page.goto(url, wait_until="load")
    assert response.ok, url
    page.wait_for_load_state("networkidle")
    return page, seen


@pytest.mark.parametrize("path", ["index.html", f"tutorials/{EXECUTED}.html", "api/nn.html"])
def test_page_loads_without_errors(browser, served, path):
    page, seen = open_page(browser, served + path)
    assert seen["errors"] == []
    outside = [url for url in seen["requests"] if not url.startswith((served, "data:"))]
    assert outside == []
    assert page.locator("h1").count() >= 1
    page.close()


def test_tutorial_page_shows_its_figures(browser, served):
    page, _ = open_page(browser, served + f"tutorials/{EXECUTED}.html")
    sizes = page.evaluate("""[...document.querySelectorAll('.jp-OutputArea-output img')]
                             .map(i => [i.complete, i.naturalWidth, i.naturalHeight])""")
    assert len(sizes) >= 2 and all(ok and w > 100 and h > 100 for ok, w, h in sizes), sizes
    assert page.locator("details.solutions").count() == 1
    assert not page.locator("details.solutions .jp-Cell").first.is_visible()   # folded
    page.close()


def test_search_box_finds_adam(browser, served):
    page, seen = open_page(browser, served + "index.html")
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("Adam", delay=20)        # key by key, as a reader types
    result = page.locator(".md-search-result__item").first
    result.wait_for(timeout=20_000)
    assert "Adam" in result.inner_text()
    assert seen["errors"] == []
    page.close()
