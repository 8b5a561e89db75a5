"""The quality bar: `tinyae train --data mnist` with the defaults, seed by seed.

Trains the seed model (784-512-256-64-2, Adam 1e-3, batch 256, 20 epochs) and
prints its test metrics next to PCA-2 and the PyTorch 2.13 figures of the
same recipe (measured once, outside this project: test MSE 0.0349, 5-NN 0.818).

    python benchmarks/bench_quality.py [--seeds 0 1 2] [--epochs 20]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import machine  # noqa: E402

TORCH = {"test_mse_per_pixel": 0.0349, "knn5_accuracy_latent": 0.818}
BAR = "test MSE <= 0.0360, >= 25% below PCA-2, 5-NN >= 0.80"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=20)
    args = p.parse_args()
    print(f"machine: {machine()}\nbar: {BAR}\n")
    print(f"{'seed':>4} {'test MSE':>9} {'PCA-2 MSE':>10} {'below PCA':>10} {'5-NN':>6} "
          f"{'PCA-2 5-NN':>10} {'BCE/img':>8}  verdict")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "tinyae", "train", "--data", "mnist", "--seed",
                            str(seed), "--epochs", str(args.epochs), "--out", out, "--quiet"],
                           check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "metrics.json")) as f:
                m = json.load(f)
        mse, pca, knn = m["test_mse_per_pixel"], m["pca2_test_mse_per_pixel"], m["knn5_accuracy_latent"]
        ok = mse <= 0.0360 and mse <= 0.75 * pca and knn >= 0.80
        print(f"{seed:>4} {mse:>9.4f} {pca:>10.4f} {100 * (1 - mse / pca):>9.0f}% {knn:>6.3f} "
              f"{m['knn5_accuracy_pca2']:>10.3f} {m['test_bce_per_image']:>8.1f}  "
              f"{'meets the bar' if ok else 'MISSES the bar'}")
    print(f"\nPyTorch 2.13, same recipe, seed 0: test MSE {TORCH['test_mse_per_pixel']}, "
          f"5-NN {TORCH['knn5_accuracy_latent']}")


if __name__ == "__main__":
    main()
