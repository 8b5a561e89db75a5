"""Regenerate the README gallery from a full `tinyae train --data mnist` run.

    python docs/make_gallery.py                 # trains (about a minute), then draws
    python docs/make_gallery.py --run runs/X    # draws from an existing run folder

Writes four small PNGs to docs/gallery/. The images are derived from MNIST
(Y. LeCun, C. Cortes, C. Burges; CC BY-SA 3.0).
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


def draw(run, out):
    import tinyae as ta
    from tinyae import plot
    from tinyae.data import load_dataset
    from tinyae.latent import latent_range, lerp
    from tinyae.metrics import batched

    model = ta.load(run / "last.npz")
    X, y, _ = load_dataset("mnist", "test", progress=False)
    Z = batched(model.encode, X)
    ranges = latent_range(Z)
    i, j = int(np.argmax(y == 4)), int(np.argmax(y == 0))
    figures = {
        "latent.png": plot.latent_scatter(Z, y, ranges=ranges, title="MNIST test set, 2-D codes"),
        "grid.png": plot.decoded_grid(model, ranges, n=20, title="decoded grid, same scale"),
        "reconstructions.png": plot.reconstructions(X[:10], model.decode(Z[:10])),
        "interpolation.png": plot.image_strip(model.decode(lerp(Z[i], Z[j], 10).astype(np.float32)),
                                              title="a 4 to a 0 through the latent space"),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=DPI)
        print(f"wrote {out / name} ({(out / name).stat().st_size // 1024} KiB)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="an existing `tinyae train` output folder")
    args = p.parse_args()
    if "TINYAE_DATA_DIR" not in os.environ and SHARED.is_dir():
        os.environ["TINYAE_DATA_DIR"] = str(SHARED)
    if args.run:
        return draw(args.run, HERE / "gallery")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "tinyae", "train", "--data", "mnist", "--out", tmp,
                        "--quiet"], check=True)
        draw(Path(tmp), HERE / "gallery")


if __name__ == "__main__":
    main()
