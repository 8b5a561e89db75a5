"""Peak memory of tinyae's commands at their documented maximums.

Each command runs in its own process; its peak resident set (VmHWM, read by the
process itself at its end) is printed in MB and as a multiple of the weights it reads:

    training a model at the 100 M parameter cap (784-63000-2 mirrored: 99 M)
    tinyae info and tinyae encode on that model's checkpoint
    tinyae decode --max-images 0 with 10,000 codes, tinyae sample -n 10000 (100 x 100 grids)

    python benchmarks/bench_memory.py [--sizes 784,63000,2]

Uses the built-in digits (no download); the cap model's checkpoints take 2.4 GB of disk
in a temporary folder, removed at the end.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


# The child reports its own high-water mark: ru_maxrss (time -v, os.wait4) would include
# this process's peak, which a child inherits at fork.
CHILD = ("import sys\nfrom tinyae.cli import main\ncode = main(sys.argv[1:])\n"
         "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')]\n"
         "print(peak[0].split()[1], file=sys.stderr)\nsys.exit(code)")


def peak_mb(args, cwd):
    """Run ``tinyae ARGS`` in a fresh process: its peak resident memory in MB (VmHWM)."""
    r = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, text=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"tinyae {' '.join(args)} failed ({r.returncode}): {r.stderr[-400:]}")
    return int(r.stderr.split()[-1]) / 1024             # kB


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="784,63000,2")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "codes.npy",
                np.random.default_rng(0).normal(size=(10_000, 2)).astype(np.float32))
        runs = [("train at the cap", ["train", "--data", "builtin", "--limit", "10", "--epochs",
                                      "2", "--schedule", "none", "--sizes", a.sizes, "--out",
                                      "cap", "--quiet"]),
                ("info", ["info", "cap/last.npz"]),
                ("encode 100 images", ["encode", "cap/last.npz", "--data", "builtin", "--limit",
                                       "100", "-o", "codes-out.npy"]),
                ("decode 10,000 codes", ["decode", "cap/last.npz", "codes.npy",
                                         "--max-images", "0", "-o", "decoded.png"]),
                ("sample 10,000", ["sample", "cap/last.npz", "-n", "10000", "--data",
                                   "builtin", "-o", "samples.png"])]
        weights_mb = None
        print(f"{'command':<22}{'peak MB':>10}{'x weights':>11}")
        for name, args in runs:
            mb = peak_mb(args, tmp)
            if weights_mb is None:
                import tinyae as ta
                ckpt = ta.io.read_checkpoint(Path(tmp) / "cap" / "last.npz", optimizer=False)
                weights_mb = sum(v.nbytes for v in ckpt.params.values()) / 2**20
                print(f"(weights: {weights_mb:,.0f} MB, "
                      f"{sum(v.size for v in ckpt.params.values()):,} parameters)")
            print(f"{name:<22}{mb:>10,.0f}{mb / weights_mb:>11.2f}")


if __name__ == "__main__":
    main()
