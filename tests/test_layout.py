"""The folder listing is the architecture, and the imports keep it true.

- ``tinyae/nn/`` (the core students read) imports only NumPy, the standard
  library and itself;
- nothing imports ``tinyae/cli/`` (the product sits on top);
- the modules' top-level imports have no cycle.
"""
import ast
import sys

import pytest
from conftest import ROOT

PACKAGE = ROOT / "tinyae"


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name, top_level_only):
    """The absolute names module ``name`` imports (a from-import's names, when modules)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            submodules = {f"{module}.{a.name}" for a in node.names} & set(MODULES)
            found.update(submodules)
            if len(submodules) < len(node.names):       # names defined in the module itself
                found.add(module)
    return found


def test_every_module_is_seen():
    assert {"tinyae.nn.layers", "tinyae.models.autoencoder", "tinyae.train.loop",
            "tinyae.cli.commands", "tinyae.fast.engine"} <= set(MODULES)


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith("tinyae.nn")])
def test_nn_imports_only_numpy_and_itself(name):
    stdlib = set(sys.stdlib_module_names)
    for target in imports(name, top_level_only=False):
        root = target.split(".")[0]
        assert target.startswith("tinyae.nn") or root in stdlib or root == "numpy", \
            f"{name} imports {target}: the core imports only numpy, the standard library and nn"


def test_nothing_imports_the_cli():
    for name in MODULES:
        if name.startswith("tinyae.cli") or name == "tinyae.__main__":
            continue
        bad = [t for t in imports(name, top_level_only=False) if t.startswith("tinyae.cli")]
        assert not bad, f"{name} imports {bad}: the command sits on top; nothing imports it"


def test_no_import_cycles():
    graph = {name: {t for t in imports(name, top_level_only=True) if t in MODULES and t != name}
             for name in MODULES}
    # A package's __init__ re-exports its modules: importing one of them runs the __init__
    # first, which is not an arrow back from the module.
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


# --- each class owns its facts: the checkpoint checker asks, it keeps no list ----------
def test_the_checkpoint_checker_names_no_layer_or_model_kind():
    from tinyae.models.variants import MODELS
    from tinyae.nn.layers import LAYERS
    source = (PACKAGE / "io" / "check.py").read_text()
    named = [name for name in [*LAYERS, *MODELS] if f'"{name}"' in source or f"'{name}'" in source]
    assert not named, f"io/check.py names {named}: ask the class instead"


def _model_with(layer_cls):
    import numpy as np

    import tinyae as ta
    rng = np.random.default_rng(0)
    # Layers with required settings: rows of 4 as (1, 2, 2) images through them, back to rows.
    images = {ta.Conv2D: lambda: [ta.Conv2D(1, 1, 3, padding=1, rng=rng)],
              ta.ConvTranspose2D: lambda: [ta.ConvTranspose2D(1, 1, 3, padding=1, rng=rng)],
              ta.MaxPool2D: lambda: [ta.MaxPool2D(1)], ta.Reshape: lambda: []}
    extra = ([] if layer_cls is ta.Dense else
             [ta.Reshape((1, 2, 2)), *images[layer_cls](), ta.Flatten()] if layer_cls in images
             else [layer_cls()])
    return ta.Autoencoder(ta.Sequential(ta.Dense(6, 4, rng=rng), *extra, ta.Dense(4, 2, rng=rng)),
                          ta.Sequential(ta.Dense(2, 6, rng=rng)))


def _kinds():
    import numpy as np

    import tinyae as ta
    rng = np.random.default_rng(0)
    return {"Autoencoder": ta.dense_autoencoder((6, 4, 2), rng=rng),
            "DenoisingAutoencoder": ta.denoising_autoencoder((6, 4, 2), "masking:0.3", rng=rng),
            "SparseAutoencoder": ta.sparse_autoencoder((6, 4), rng=rng),
            "VariationalAutoencoder": ta.variational_autoencoder((6, 4, 2), beta=0.5, rng=rng),
            "ContractiveAutoencoder": ta.contractive_autoencoder((6, 4), lam=1e-3, rng=rng),
            # rows of 6: 4 pixels and a 2-class one-hot label
            "ConditionalVAE": ta.conditional_vae((4, 4, 2), n_classes=2, rng=rng)}


def test_every_registered_layer_and_kind_round_trips(tmp_path):
    import numpy as np

    import tinyae as ta
    from tinyae.models.variants import MODELS
    from tinyae.nn.layers import LAYERS
    kinds = _kinds()
    assert set(kinds) == set(MODELS)                  # a new kind must be added here too
    models = {**{f"layer {name}": _model_with(cls) for name, cls in LAYERS.items()}, **kinds}
    x = np.random.default_rng(1).uniform(0, 1, (3, 6)).astype(np.float32)
    for name, model in models.items():
        ta.save(model, tmp_path / "m.npz", optimizer=ta.Adam(model.parameters()))
        back = ta.load(tmp_path / "m.npz")
        assert type(back) is type(model), name
        assert back.config() == model.config(), name
        for (n, p, _), (_, q, _) in zip(model.parameters(), back.parameters()):
            np.testing.assert_array_equal(p, q, err_msg=f"{name}: {n}")
        np.testing.assert_array_equal(back.encode(x), model.encode(x), err_msg=name)
