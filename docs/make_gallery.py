"""Regenerate the README gallery from a full `tinyae train --data mnist` run.

    python docs/make_gallery.py                 # trains (about a minute), then draws
    python docs/make_gallery.py --run runs/X    # draws from an existing run folder
    python docs/make_gallery.py --run runs/X --only explorer.png
    python docs/make_gallery.py --run runs/conv --prefix conv_ --title "convolutional, 1 epoch"

Writes four small PNGs to docs/gallery/, and explorer.png, a screenshot of
`tinyae explore` in headless Chromium (when Debian's chromium and the playwright
package are installed). The images are derived from MNIST (Y. LeCun, C. Cortes,
C. Burges; CC BY-SA 3.0).
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "mnist"
DPI = 72                      # small files: the README shows them at this size anyway


def use_shared_mnist():
    """Read MNIST from ../shared beside the repo unless TINYAE_DATA_DIR says otherwise."""
    if "TINYAE_DATA_DIR" not in os.environ and SHARED.is_dir():
        os.environ["TINYAE_DATA_DIR"] = str(SHARED)


def save(figures, out, prefix=""):
    """Write each {name: figure} into ``out`` as prefix + name, and say where and how big."""
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        path = out / (prefix + name)
        fig.savefig(path, dpi=DPI)
        print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def draw(run, out, only=None, prefix="", title=""):
    import tinyae as ta
    from tinyae.data import load_dataset
    from tinyae.evaluate.metrics import batched
    from tinyae.viz import plot
    from tinyae.viz.latent import latent_range, lerp

    model = ta.load(run / "last.npz")
    X, y, _ = load_dataset("mnist", "test", progress=False)
    if only == "explorer.png":
        return screenshot(model, X, y, out / "explorer.png")
    Z = batched(model.encode, X)
    ranges = latent_range(Z)
    i, j = int(np.argmax(y == 4)), int(np.argmax(y == 0))
    say = f"{title}: " if title else ""
    figures = {
        "latent.png": plot.latent_scatter(Z, y, ranges=ranges,
                                          title=f"{say}MNIST test set, 2-D codes"),
        "grid.png": plot.decoded_grid(model, ranges, n=20, title="decoded grid, same scale"),
        "reconstructions.png": plot.reconstructions(X[:10], model.decode(Z[:10])),
        "interpolation.png": plot.image_strip(
            np.vstack([X[i], model.decode(lerp(Z[i], Z[j], 10).astype(np.float32)), X[j]]),
            labels=["original", *[f"t={k / 9:.2g}" for k in range(10)], "original"],
            title="a 4 to a 0 through the latent space (the originals at both ends)"),
    }
    if prefix:                          # another model beside the seed model: map, reconstructions
        figures = {k: figures[k] for k in ("latent.png", "reconstructions.png")}
    save(figures, out, prefix)
    if not prefix:                      # the explorer's screenshot is the seed model's
        screenshot(model, X, y, out / "explorer.png")


def screenshot(model, X, y, png):
    """The explorer with the pointer on a 4's code and a 4-to-0 path played to its middle."""
    import shutil

    from tinyae.viz.explore import write_explorer
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return print("skipped explorer.png: pip install playwright (and apt-get install chromium)")
    exe = shutil.which("chromium")
    if exe is None:
        return print("skipped explorer.png: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_path = Path(tmp) / "explore.html"
        write_explorer(model, X, y, page_path, title="tinyae explore: the MNIST test set")
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 800})
        page.goto(page_path.as_uri())
        page.wait_for_function("window.tinyae && window.tinyae.ready")
        Z = model.encode(X)
        a, b = Z[int(np.argmax(y == 4))], Z[int(np.argmax(y == 0))]
        at = lambda z: page.evaluate("([u, v]) => window.tinyae.clientXY(u, v)", [float(z[0]), float(z[1])])
        page.mouse.click(*at(a))
        page.mouse.click(*at(b))
        page.wait_for_timeout(800)                      # part of the way along the path
        page.screenshot(path=str(png))
        browser.close()
    print(f"wrote {png} ({png.stat().st_size // 1024} KiB)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="an existing `tinyae train` output folder")
    p.add_argument("--only", choices=["explorer.png"], help="redraw only this image")
    p.add_argument("--prefix", default="", help="put this before each file name and draw only "
                   "the latent map and the reconstructions (another model's, beside the seed "
                   "model's); skips the explorer")
    p.add_argument("--title", default="", help="what the latent map's title starts with")
    args = p.parse_args()
    use_shared_mnist()
    if args.run:
        return draw(args.run, HERE / "gallery", args.only, args.prefix, args.title)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "tinyae", "train", "--data", "mnist", "--out", tmp,
                        "--quiet"], check=True)
        draw(Path(tmp), HERE / "gallery", args.only)


if __name__ == "__main__":
    main()
