"""Draw the README's figures of what autoencoders are for, from two `tinyae train` runs.

    python docs/make_uses_gallery.py                 # trains both (minutes), then draws
    python docs/make_uses_gallery.py --runs runs     # reuses runs/holdout-2 and runs/cvae

anomaly_roc.png and anomaly_extremes.png: the seed model trained with --hold-out 2, its
squared error as the score of the test images, the 2s anomalous, against PCA-2 (what
`tinyae anomaly runs/holdout-2/last.npz --digit 2` prints and draws). cvae_digits.png and
cvae_styles.png: a `tinyae train --model cvae` run's samples of each digit, and test
images' codes decoded as every digit. The images are derived from MNIST (Y. LeCun,
C. Cortes, C. Burges; CC BY-SA 3.0).
"""
import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from make_gallery import HERE, save, use_shared_mnist   # a sibling: the script runs from docs/
HELD = 2
RUNS = {"holdout-2": ["--hold-out", str(HELD)], "cvae": ["--model", "cvae"]}


def train(runs):
    """The two runs, each trained unless its folder already holds a finished one."""
    for name, flags in RUNS.items():
        if not (runs / name / "metrics.json").exists():
            subprocess.run([sys.executable, "-m", "tinyae", "train", "--data", "mnist",
                            "--epochs", "20", "--out", str(runs / name), "--force", *flags],
                           check=True)


def draw(runs, out):
    import tinyae as ta
    from tinyae.data import load_dataset
    from tinyae.evaluate import anomaly
    from tinyae.evaluate.cvae_eval import digit_samples_figure, style_figure
    from tinyae.viz.anomaly import extremes, roc_curves

    X, y, _ = load_dataset("mnist", "train", progress=False)
    Xt, yt, _ = load_dataset("mnist", "test", progress=False)
    ae, cvae = ta.load(runs / "holdout-2" / "last.npz"), ta.load(runs / "cvae" / "last.npz")
    train, test = anomaly.holdout(X, y, HELD), anomaly.holdout(Xt, yt, HELD)
    scores = {"autoencoder, squared error": anomaly.reconstruction_scores(ae, test.test),
              "PCA-2, squared error": anomaly.pca_scores(train.train, test.test, 2)}
    figures = {
        "anomaly_roc.png": roc_curves(scores, test.anomalous,
                                      title=f"trained without {HELD}s: are the test {HELD}s "
                                            "flagged?"),
        "anomaly_extremes.png": extremes(test.test, scores["autoencoder, squared error"],
                                         anomalous=test.anomalous,
                                         title=f"highest (top) and lowest (bottom) squared "
                                               f"error; red: a {HELD}"),
        "cvae_digits.png": digit_samples_figure(cvae, rng=np.random.default_rng(0)),
        "cvae_styles.png": style_figure(cvae, Xt, yt, rows=6),
    }
    save(figures, out)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="runs", help="where the two run folders are (or go)")
    p.add_argument("--out", default=str(HERE / "gallery"))
    args = p.parse_args()
    use_shared_mnist()
    runs = Path(args.runs)
    train(runs)
    draw(runs, Path(args.out))


if __name__ == "__main__":
    main()
