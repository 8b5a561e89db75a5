"""Draw the README's variational-autoencoder figures from a `tinyae train --model vae` run.

    tinyae train --model vae --data mnist --epochs 20 --out runs/vae-seed
    python docs/make_vae_gallery.py --run runs/vae-seed

Writes vae_latent.png (mu of the test set by digit), vae_quantile_grid.png
(decoded Gaussian quantiles) and vae_samples.png (prior samples) to
docs/gallery/. The images are derived from MNIST (Y. LeCun, C. Cortes,
C. Burges; CC BY-SA 3.0).
"""
import argparse
from pathlib import Path

import numpy as np

from make_gallery import HERE, save, use_shared_mnist   # a sibling: the script runs from docs/


def draw(run, out):
    import tinyae as ta
    from tinyae.data import load_dataset
    from tinyae.evaluate.metrics import batched
    from tinyae.evaluate.vae_eval import quantile_grid_figure
    from tinyae.viz import plot

    model = ta.load(run / "last.npz")
    if model.latent_width != 2:
        raise SystemExit(f"{run} holds a VAE with a {model.latent_width}-D code; the gallery "
                         "shows the seed architecture's 2-D code")
    X, y, _ = load_dataset("mnist", "test", progress=False)
    figures = {
        "vae_latent.png": plot.latent_scatter(batched(model.encode, X), y,
                                              title="VAE: mu of the MNIST test set"),
        "vae_quantile_grid.png": quantile_grid_figure(model, n=20),
        "vae_samples.png": plot.image_grid(model.sample(64, np.random.default_rng(0)), 8,
                                           title="VAE: z ~ N(0, I), decoded"),
    }
    save(figures, out)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="a `tinyae train --model vae` folder")
    args = p.parse_args()
    use_shared_mnist()
    draw(args.run, HERE / "gallery")


if __name__ == "__main__":
    main()
