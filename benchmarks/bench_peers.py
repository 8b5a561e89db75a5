"""One MNIST epoch of the seed model in tinyae and in the frameworks people would use instead.

The contenders train the same network (784-512-256-64-2 mirrored, ReLU, a
linear code, sigmoid output, MSE, Adam lr 1e-3, eps 1e-8) from the same
initial weights on the same 60,000 images:

    tinyae     ``tinyae.train.fit`` on the fast path, as bench_epoch.py runs it, with
               NumPy's matmuls (OpenBLAS): what the default install runs
    tinyae-mkl the same with the optional extra's MKL matmuls (``pip install -e '.[mkl]'``,
               x86-64; skipped when it is not installed)
    torch      PyTorch eager, ``Adam(fused=True)``
    compile    the same model through ``torch.compile`` (static shapes)
    keras-jax  Keras 3, JAX backend: ``model.fit(X, X, epochs=1, shuffle=True)``
    keras-tf   Keras 3, TensorFlow backend, the same call
    jax        JAX + optax: one ``jax.jit`` step (loss, grad, Adam), buffers donated

Each run is a fresh process that prints one JSON line: it loads the data and
the initial weights the parent wrote to a temporary folder, takes one
training step (the time from the parent's launch to the end of that step is
"first step": imports, compilation and all), warms up on every batch shape
the timed epoch will see, restores the initial weights and a fresh
optimiser, and times one epoch (or ``--steps`` steps, scaled). Contenders
alternate A B C ..., then ... C B A, so a drifting VM hits all alike. "x
fastest" is the median of the round-by-round ratios to the peer (not tinyae)
with the lowest median; "x torch" the same against PyTorch eager; "best x"
the contender's fastest run over the fastest run of any peer (on a noisy VM,
where a slow spell only ever adds time, the fastest runs are the steadier figure).

Threads: two for everyone. Each worker first pins itself to two CPUs (a
no-op on a 2-core host; elsewhere it is what caps XLA, whose CPU pool is
sized from the CPUs a process may use: ``intra_op_parallelism_threads=N``
in ``XLA_FLAGS`` is accepted by jaxlib 0.10 but changes no thread count);
then tinyae ``fit(threads=2)``, ``torch.set_num_threads(2)``, and
``TF_NUM_INTRAOP_THREADS=2`` / ``TF_NUM_INTEROP_THREADS=1`` for TensorFlow.

The GEMM floor is this host's time for the epoch's matmuls alone (forward
x W, backward x^T dz and dz W^T, no dx for the first layer: 5.785 MFLOP a
sample) with NumPy's OpenBLAS on 2 threads and, where PyTorch is installed,
with MKL through ``torch.matmul`` on 2 threads (PyTorch's x86 builds use MKL).

The peers are never tinyae dependencies, and never go into the Python that
runs the tests (TensorFlow and JAX pin their own NumPy). Install them in a
venv of their own, which this script finds by itself:

    python -m venv benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/pip install "keras>=3" jax optax tensorflow-cpu

tinyae and PyTorch run in this interpreter (``pip install torch==2.13.0``,
the CPU build); Keras and JAX in ``--peers-python`` (default: that venv).

    python benchmarks/bench_peers.py                            # batch 64, 256, 1024; 3 rounds
    python benchmarks/bench_peers.py --batches 256 --only tinyae torch keras-jax
    python benchmarks/bench_peers.py --batches 256 --rounds 1 --steps 20   # a smoke test
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import layer_shapes, machine, median_time, peak_rss_mb, step_flops  # noqa: E402

N_TRAIN = 60_000
THREADS = 2
LR, EPS = 1e-3, 1e-8
VENV_PYTHON = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".venv-peers", "bin", "python")
TF_ENV = {"TF_NUM_INTRAOP_THREADS": str(THREADS), "TF_NUM_INTEROP_THREADS": "1",
          "TF_CPP_MIN_LOG_LEVEL": "2"}

# name: (label, runs in the peers' Python?, modules it needs, environment)
CONTENDERS = {
    "tinyae": ("tinyae (fast path)", False, ["tinyae"], {"TINYAE_MATMUL": "numpy"}),
    "tinyae-mkl": ("tinyae + tinyae[mkl]", False, ["tinyae"], {"TINYAE_MATMUL": "mkl"}),
    "torch": ("PyTorch eager, fused Adam", False, ["torch"], {}),
    "compile": ("torch.compile", False, ["torch"], {}),
    "keras-jax": ("Keras 3 + JAX", True, ["keras", "jax"],
                  {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}),
    "keras-tf": ("Keras 3 + TensorFlow", True, ["keras", "tensorflow"],
                 {"KERAS_BACKEND": "tensorflow", **TF_ENV}),
    "jax": ("JAX + optax (jit)", True, ["jax", "optax"], {"JAX_PLATFORMS": "cpu"}),
}


# ----------------------------------------------------------------------------- shared inputs

def write_inputs(folder):
    """The data and tinyae's initial weights, for every worker: X.npy and net.npz.

    net.npz holds W0..W7 as (in, out), b0..b7, and each layer's activation.
    """
    import tinyae as ta
    X, _ = ta.data.load_mnist("train", progress=False)
    np.save(os.path.join(folder, "X.npy"), np.ascontiguousarray(X, dtype=np.float32))
    model = ta.dense_autoencoder(rng=np.random.default_rng(0))
    layers = list(model.encoder) + list(model.decoder)
    arrays, acts = {}, []
    for i, layer in enumerate(layers):
        if type(layer).__name__ != "Dense":
            continue
        after = type(layers[i + 1]).__name__ if i + 1 < len(layers) else "Identity"
        acts.append({"ReLU": "relu", "Sigmoid": "sigmoid"}.get(after, "linear"))
        arrays[f"W{len(acts) - 1}"] = layer.params["W"]
        arrays[f"b{len(acts) - 1}"] = layer.params["b"]
    np.savez(os.path.join(folder, "net.npz"), act=np.array(acts), **arrays)


def read_inputs(folder):
    """(X, net) with net a list of (W (in, out), b, activation name)."""
    X = np.load(os.path.join(folder, "X.npy"), allow_pickle=False)
    with np.load(os.path.join(folder, "net.npz"), allow_pickle=False) as f:
        net = [(f[f"W{i}"], f[f"b{i}"], str(a)) for i, a in enumerate(f["act"])]
    return X, net


def epoch_order(n=N_TRAIN):
    """fit's shuffle for epoch 1 with seed 0, used by the loops written here."""
    return np.random.default_rng([0, 1]).permutation(n)


# ----------------------------------------------------------------------------- contenders
# Each: __init__(X, net, batch) builds the model; train(n) runs one pass over
# the first n images of an epoch; reset() restores the initial weights and a
# fresh optimiser; loss(X) is the mean squared error per pixel.

class Tinyae:
    def __init__(self, X, net, batch):
        import tinyae as ta
        from tinyae.train import fit
        self.ta, self.fit, self.X, self.net, self.batch = ta, fit, X, net, batch
        self.reset()

    def reset(self):
        # A fresh model, as bench_epoch.py times one: the fast path's buffers are new too.
        self.model = self.ta.dense_autoencoder(rng=np.random.default_rng(0))
        dense = [l for l in list(self.model.encoder) + list(self.model.decoder) if "W" in l.params]
        for layer, (W, b, _) in zip(dense, self.net):
            layer.params["W"][...], layer.params["b"][...] = W, b
        self.opt = self.ta.Adam(self.model.parameters(), lr=LR, eps=EPS)

    def train(self, n):
        self.fit(self.model, self.X[:n], epochs=1, batch_size=self.batch, optimizer=self.opt,
                 seed=0, progress=False, threads=THREADS)

    def loss(self, X):
        return self.ta.MSE().forward(self.model.forward(X), X)


class Torch:
    compiled = False

    def __init__(self, X, net, batch):
        import torch
        torch.set_num_threads(THREADS)
        self.torch, self.net, self.batch = torch, net, batch
        self.X, self.order = torch.from_numpy(X), torch.from_numpy(epoch_order())
        act = {"relu": [torch.nn.ReLU()], "sigmoid": [torch.nn.Sigmoid()], "linear": []}
        self.linears = [torch.nn.Linear(*W.shape) for W, _, _ in net]
        self.model = torch.nn.Sequential(*[m for lin, (_, _, a) in zip(self.linears, net)
                                           for m in [lin] + act[a]])
        # dynamic=False: the last, shorter batch gets a static graph of its own.
        self.forward = torch.compile(self.model, dynamic=False) if self.compiled else self.model
        self.mse = torch.nn.MSELoss()
        self.reset()

    def reset(self):
        with self.torch.no_grad():
            for lin, (W, b, _) in zip(self.linears, self.net):
                lin.weight.copy_(self.torch.from_numpy(W.T.copy()))     # Linear.weight is W^T
                lin.bias.copy_(self.torch.from_numpy(b))
        self.opt = self.torch.optim.Adam(self.model.parameters(), lr=LR, eps=EPS, fused=True)

    def train(self, n):
        for k in range(0, n, self.batch):
            xb = self.X[self.order[k:min(k + self.batch, n)]]
            self.opt.zero_grad(set_to_none=False)
            self.mse(self.forward(xb), xb).backward()
            self.opt.step()

    def loss(self, X):
        with self.torch.no_grad():
            X = self.torch.from_numpy(X)
            return float(self.mse(self.model(X), X))


class TorchCompile(Torch):
    compiled = True


class Keras:
    def __init__(self, X, net, batch):
        import keras
        self.X, self.net, self.batch = X, net, batch
        self.model = keras.Sequential([keras.Input((X.shape[1],))] + [
            keras.layers.Dense(W.shape[1], activation=a) for W, _, a in net])
        self.model.compile(optimizer=keras.optimizers.Adam(learning_rate=LR, epsilon=EPS), loss="mse")
        self.opt = self.model.optimizer
        self.opt.build(self.model.trainable_variables)
        self.fresh = [np.array(v) for v in self.opt.variables]          # moments 0, step 0
        self.reset()

    def reset(self):
        self.model.set_weights([a for W, b, _ in self.net for a in (W, b)])   # kernel is W as is
        for v, value in zip(self.opt.variables, self.fresh):
            v.assign(value)

    def train(self, n):
        self.model.fit(self.X[:n], self.X[:n], batch_size=self.batch, epochs=1, shuffle=True,
                       verbose=0)

    def loss(self, X):
        return float(np.mean((self.model.predict(X, batch_size=1000, verbose=0) - X) ** 2))


class Jax:
    def __init__(self, X, net, batch):
        import jax
        import jax.numpy as jnp
        import optax
        self.jax, self.jnp, self.net, self.batch = jax, jnp, net, batch
        self.tx = optax.adam(LR, eps=EPS)
        acts = [{"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "linear": lambda z: z}[a]
                for _, _, a in net]

        def mse(params, x):
            y = x
            for (W, b), act in zip(params, acts):
                y = act(y @ W + b)
            return jnp.mean((y - x) ** 2)

        def step(params, state, X, idx):
            grads = jax.grad(mse)(params, X[idx])          # the gather runs inside the jit
            updates, state = self.tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        self.step = jax.jit(step, donate_argnums=(0, 1))
        self.mse = jax.jit(mse)
        self.X, self.order = jax.device_put(X), epoch_order().astype(np.int32)
        self.reset()

    def reset(self):
        # jnp.array copies: donated buffers must not be the arrays read from net.npz.
        self.params = [(self.jnp.array(W), self.jnp.array(b)) for W, b, _ in self.net]
        self.state = self.tx.init(self.params)

    def train(self, n):
        for k in range(0, n, self.batch):
            idx = self.order[k:min(k + self.batch, n)]
            self.params, self.state = self.step(self.params, self.state, self.X, idx)
        self.jax.block_until_ready(self.params)

    def loss(self, X):
        return float(self.mse(self.params, self.jnp.array(X)))


TRAINERS = {"tinyae": Tinyae, "tinyae-mkl": Tinyae, "torch": Torch, "compile": TorchCompile,
            "keras-jax": Keras, "keras-tf": Keras, "jax": Jax}


# ----------------------------------------------------------------------------- workers

def pin_cpus():
    """Two CPUs for this process: caps every library's pool, XLA's included."""
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cpus[:THREADS])


def train_worker(name, batch, n, warmup, folder, t0):
    """First step, warm-up, then ``n`` images timed; the JSON line the parent reads."""
    X, net = read_inputs(folder)
    trainer = TRAINERS[name](X, net, batch)
    trainer.train(batch)
    first_step = time.time() - t0              # t0: the parent's clock just before launch
    if warmup * batch + n % batch:
        trainer.train(warmup * batch + n % batch)  # every shape the timed pass sees
    trainer.reset()
    start = time.perf_counter()
    trainer.train(n)
    seconds = (time.perf_counter() - start) * N_TRAIN / n      # n < N_TRAIN only under --steps
    return {"seconds": seconds, "first_step": first_step, "peak_mb": peak_rss_mb(),
            "loss": trainer.loss(X[:2000]), "version": versions(name)}


def versions(name):
    said = " ".join(f"{m} {sys.modules[m].__version__}" for m in CONTENDERS[name][2])
    if name.startswith("tinyae"):
        from tinyae.fast import blas
        said += f", matmuls: {blas.library()}"
    return said


def gemm_plan(batch):
    """(a shape, b shape, transpose a?, transpose b?) of every matmul in one training step."""
    plan = []
    for i, (d, h) in enumerate(layer_shapes()):
        plan.append(((batch, d), (d, h), False, False))         # y = x W
        plan.append(((batch, d), (batch, h), True, False))      # dW = x^T dz
        if i > 0:
            plan.append(((batch, h), (d, h), False, True))      # dx = dz W^T
    return plan


def floor_worker(lib, batch, steps=10):
    """Seconds per epoch of the step's matmuls alone, outputs preallocated."""
    rng = np.random.default_rng(0)
    arrays = []
    for sa, sb, ta, tb in gemm_plan(batch):
        a = rng.random(sa, dtype=np.float32)
        b = rng.random(sb, dtype=np.float32)
        a, b = (a.T if ta else a), (b.T if tb else b)
        arrays.append((a, b, np.empty((a.shape[0], b.shape[1]), np.float32)))
    if lib == "mkl":
        import torch
        torch.set_num_threads(THREADS)
        arrays = [tuple(torch.from_numpy(m) for m in abc) for abc in arrays]
        matmul = torch.matmul
        name = "MKL" if torch.backends.mkl.is_available() else "torch.matmul"
    else:
        from threadpoolctl import threadpool_info, threadpool_limits
        threadpool_limits(THREADS, user_api="blas")
        matmul = np.matmul
        name = next((i["internal_api"] for i in threadpool_info() if i["user_api"] == "blas"), "BLAS")

    def epoch_part():
        for _ in range(steps):
            for a, b, c in arrays:
                matmul(a, b, out=c)

    per_step = median_time(epoch_part, repeat=5) / steps
    return {"seconds": per_step * N_TRAIN / batch, "name": name}


# ----------------------------------------------------------------------------- the parent

def run_worker(python, args, env):
    """Run this script's worker in a fresh process; its last stdout line is JSON."""
    out = subprocess.run([python, os.path.abspath(__file__), "--worker", *map(str, args)],
                         capture_output=True, text=True, env={**os.environ, **env}, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip()[-2000:] or f"exit status {out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def importable(python, mods):
    probe = f"import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in {mods}))"
    return subprocess.run([python, "-c", probe], check=False).returncode == 0


def _has_mkl():
    from tinyae.fast import blas
    return blas.find_mkl() is not None


def available(names, peers_python):
    """The contenders whose modules import here; prints why the others are left out."""
    keep = []
    for name in names:
        _, peer, mods, _ = CONTENDERS[name]
        python = peers_python if peer else sys.executable
        if name == "tinyae-mkl" and not _has_mkl():
            print("skipped tinyae-mkl: MKL is not installed; pip install -e '.[mkl]' (x86-64)")
        elif importable(python, mods):
            keep.append(name)
        else:
            where = "the peers' venv (see this script's docstring)" if peer else "this Python"
            print(f"skipped {name}: {', '.join(mods)} not importable by {python}; install in {where}")
    return keep


def measure(names, args, folder):
    """{(batch, name): {round: result}}, {(batch, lib): [floor result]}, {name: error}."""
    results, floors, failed = {}, {}, {}
    has_torch = importable(sys.executable, ["torch"])
    for batch in args.batches:
        n = min(N_TRAIN, args.steps * batch) if args.steps else N_TRAIN
        for r in range(args.rounds):
            for lib in ["openblas"] + (["mkl"] if has_torch else []):
                floors.setdefault((batch, lib), []).append(
                    run_worker(sys.executable, ["floor", lib, batch], {}))
            for name in (names if r % 2 == 0 else names[::-1]):            # A B C, C B A, ...
                if name in failed:
                    continue
                _, peer, _, env = CONTENDERS[name]
                python = args.peers_python if peer else sys.executable
                try:
                    got = run_worker(python, [name, batch, n, args.warmup, folder, time.time()], env)
                    results.setdefault((batch, name), {})[r] = got
                    print(f"batch {batch}, round {r + 1}: {name} {got['seconds']:.2f} s",
                          file=sys.stderr, flush=True)
                except RuntimeError as err:
                    failed[name] = str(err)
                    print(f"{name} failed (left out from here on):\n{err}\n", file=sys.stderr)
    return results, floors, failed


def paired(runs, base):
    """Median of the round-by-round ratios runs[r] / base[r]."""
    common = sorted(set(runs) & set(base or {}))
    if not common:
        return float("nan")
    return statistics.median(runs[r]["seconds"] / base[r]["seconds"] for r in common)


def report(names, args, results, floors, failed):
    star = "*" if args.steps else ""
    print(f"\n{'batch':>5}  {'contender':<26} {'epoch s' + star:>8} {'runs':>20} {'x fastest':>9} "
          f"{'best x':>6} {'x torch':>8} {'first step s':>12} {'peak MB':>8} {'loss':>7}")
    for batch in args.batches:
        got = {name: results[(batch, name)] for name in names if results.get((batch, name))}
        med = {name: statistics.median(r["seconds"] for r in runs.values()) for name, runs in got.items()}
        peers = [name for name in got if not name.startswith("tinyae")]
        fastest = min(peers, key=med.get) if peers else None
        best = {name: min(r["seconds"] for r in runs.values()) for name, runs in got.items()}
        best_peer = min((best[name] for name in peers), default=float("nan"))
        for name, runs in got.items():
            each = " ".join(f"{r['seconds']:.2f}" for r in runs.values())
            first = statistics.median(r["first_step"] for r in runs.values())
            print(f"{batch:>5}  {CONTENDERS[name][0]:<26} {med[name]:>8.2f} {each:>20} "
                  f"{paired(runs, got.get(fastest)):>9.2f} {best[name] / best_peer:>6.2f} "
                  f"{paired(runs, got.get('torch')):>8.2f} "
                  f"{first:>12.2f} {max(r['peak_mb'] for r in runs.values()):>8.0f} "
                  f"{next(iter(runs.values()))['loss']:>7.4f}")
        for lib in ("openblas", "mkl"):
            if (batch, lib) in floors:
                runs = floors[(batch, lib)]
                sec = statistics.median(r["seconds"] for r in runs)
                each = " ".join(f"{r['seconds']:.2f}" for r in runs)
                print(f"{batch:>5}  {'GEMM floor, ' + runs[0]['name']:<26} {sec:>8.2f} {each:>20}")
        if fastest:
            print(f"{'':>7}fastest peer: {CONTENDERS[fastest][0]}")
    print(f"\nepoch matmul work: {step_flops(1) / 1e6:.3f} MFLOP per sample, "
          f"{step_flops(1) * N_TRAIN / 1e9:.0f} GFLOP per epoch; loss: MSE per pixel on the "
          "first 2,000 images after the timed pass; first step: launch to the end of step one")
    if args.steps:
        print(f"* scaled, not measured: {args.steps} steps timed, multiplied by "
              f"60,000 / ({args.steps} x batch); the GEMM floor is per full epoch")
    seen = {CONTENDERS[name][0]: r["version"] for (_, name), runs in results.items() for r in runs.values()}
    print("versions: " + "; ".join(f"{k}: {v}" for k, v in seen.items()))
    for name, err in failed.items():
        print(f"FAILED {name}: {err.splitlines()[-1] if err else ''}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=0,
                   help="time this many steps and scale to an epoch (a smoke test, not a result)")
    p.add_argument("--warmup", type=int, default=20, help="warm-up steps before the timed pass")
    p.add_argument("--only", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    p.add_argument("--peers-python", default=VENV_PYTHON if os.path.exists(VENV_PYTHON) else sys.executable,
                   help="the Python that runs Keras and JAX (default: benchmarks/.venv-peers)")
    p.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        pin_cpus()
        kind, *rest = args.worker
        if kind == "floor":
            result = floor_worker(rest[0], int(rest[1]))
        else:
            batch, n, warmup, folder, t0 = rest
            result = train_worker(kind, int(batch), int(n), int(warmup), folder, float(t0))
        print(json.dumps(result))
        return
    if args.steps < 0 or args.warmup < 0 or args.rounds < 1 or min(args.batches) < 1:
        p.error("--steps and --warmup must be >= 0, --rounds and --batches >= 1")

    print(f"machine: {machine()}")
    print(f"peers' Python: {args.peers_python}")
    names = available(args.only, args.peers_python)
    with tempfile.TemporaryDirectory(prefix="tinyae-peers-") as folder:
        write_inputs(folder)
        results, floors, failed = measure(names, args, folder)
    report(names, args, results, floors, failed)


if __name__ == "__main__":
    main()
