"""Every tutorial runs top to bottom in fast mode, as a script and (one) as a notebook."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT, by_tutorial, find_mnist_dir

TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
FIGURES = {
    "01_layers_by_hand": [],
    "02_train_autoencoder": ["02_loss.png", "02_reconstructions.png", "seed_model_fast.npz"],
    "03_encode_latent_map": ["03_latent_map.png", "03_pca_map.png"],
    "04_decode": ["04_points_on_map.png", "04_points_decoded.png", "04_decoded_grid.png",
                  "04_holes.png", "04_holes_on_map.png", "04_quantile_grid.png"],
    "05_interpolate": ["05_lerp.png", "05_pixel_blend.png", "05_slerp.png", "05_paths_on_map.png"],
    "06_generate": ["06_samples_on_map.png", "06_samples.png", "06_per_digit.png"],
    "07_fast_kernels": [],
    "08_drawbacks_denoising": ["08_distortions.png", "08_robustness_plain.png",
                               "08_robustness_wide.png", "08_copying.png",
                               "08_robustness_denoising.png"],
    "09_sparse_stacked": ["09_weights_sparse.png", "09_weights_plain.png"],
    "10_vae": ["10_collapse.png", "10_latent_map.png", "10_vae_samples.png", "10_plain_samples.png",
               "10_quantile_grid.png", "10_beta.png"],
    "11_autograd": ["11_graph_small.png", "11_graph_seed.png"],
    "12_learning_rate_schedules": ["12_schedules.png", "12_noisy_quadratic.png",
                                   "12_with_and_without.png"],
    "13_convolution_by_hand": ["13_edges.png", "13_transposed.png"],
    "14_convolutional_autoencoder": ["14_latent_maps.png", "14_reconstructions.png",
                                     "14_vae_latent_map.png", "14_vae_samples.png"],
    "15_what_autoencoders_are_for": ["15_roc.png", "15_extremes.png", "15_cvae_digits.png",
                                     "15_cvae_styles.png", "15_cvae_latent.png",
                                     "15_label_path.png", "15_thickness_plain.png",
                                     "15_thickness_vae.png", "15_thickness_cvae.png"],
    "16_rbm_and_the_2006_autoencoder": ["16_rbm_filters.png", "16_rbm_samples.png"],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    out = tmp_path_factory.mktemp("tutorials")
    env = {**os.environ, "TINYAE_FAST": "1", "TINYAE_TUTORIAL_OUT": str(out), "MPLBACKEND": "Agg"}
    mnist = find_mnist_dir()
    if mnist is not None:
        env["TINYAE_DATA_DIR"] = str(mnist)
    else:                                   # built-in digits; never the network
        env["TINYAE_DATA_DIR"] = str(out / "no-data")
    return env, out


def test_every_tutorial_is_listed():
    assert [t.stem for t in TUTORIALS] == list(FIGURES)
    readme = (ROOT / "tutorials" / "README.md").read_text()
    assert all(t.name in readme for t in TUTORIALS)


@pytest.mark.parametrize("path", by_tutorial(TUTORIALS))
def test_tutorial_runs_as_a_script(path, env):
    env, out = env
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env,
                       cwd=out, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in FIGURES[path.stem]:
        assert (out / name).stat().st_size > 1000, name


def _execute(name, env, cwd):
    """Run tutorial ``name`` as a notebook with nbclient (as Jupyter would), in folder ``cwd``."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    nb = jupytext.read(ROOT / "tutorials" / name)
    old = dict(os.environ)
    os.environ.update(env)
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def test_tutorial_runs_as_a_notebook(env):
    env, _ = env
    nb = _execute("01_layers_by_hand.py", env, ROOT / "tutorials")
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 5
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "FAILED: b" in outputs and "PASSED" in outputs


def test_notebook_from_the_repo_root_shows_its_figures_inline(env):
    """Opened from the repository root (not tutorials/), a notebook still finds its helpers,
    and each figure is a PNG below its cell, not the text '<Figure size ...>'."""
    env, _ = env
    nb = _execute("03_encode_latent_map.py", env, ROOT)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == len(FIGURES["03_encode_latent_map"])
    assert all(len(o["data"]["image/png"]) > 1000 for o in images)
    assert not any("<Figure size" in str(o.get("data", {}).get("text/plain", "")) for o in outputs)


WIDGET = "application/vnd.jupyter.widget-view+json"


def _fit_in_a_kernel(live):
    """Run one cell that calls ``fit`` with a progress bar in a fresh kernel; its outputs.

    nbclient runs cells as every headless runner does (nobody can answer ``input()``);
    ``live`` makes its requests look like a person's front end (JupyterLab, VS Code).
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipywidgets")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import numpy as np, tinyae as ta\n"
        "from tinyae.train.loop import fit, interactive\n"
        "m = ta.dense_autoencoder((784, 4), rng=np.random.default_rng(0))\n"
        "fit(m, np.random.default_rng(0).random((64, 784)), epochs=3, batch_size=16,\n"
        "    backend='numpy', threads=1)\n"
        "print('interactive:', interactive())")])
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    if live:
        client.on_notebook_start = lambda notebook: setattr(client.kc, "allow_stdin", True)
    client.execute()
    return nb.cells[0].outputs


def test_an_executed_notebook_keeps_no_empty_progress_bars():
    """A notebook run headless (nbclient, jupytext --execute) saves no widget per epoch
    (they would show as empty boxes), only the epoch lines; a live one gets its bar."""
    headless = _fit_in_a_kernel(live=False)
    text = "".join(o.get("text", "") for o in headless)
    assert not [o for o in headless if WIDGET in o.get("data", {})]
    assert "interactive: False" in text and text.count("epoch ") >= 3
    live = _fit_in_a_kernel(live=True)
    assert "interactive: True" in "".join(o.get("text", "") for o in live)
    assert len([o for o in live if WIDGET in o.get("data", {})]) == 3     # one bar per epoch


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_exercise_first_solutions_last_and_tagged(path):
    """The convention: an '## Exercise:' cell, its check in ``with exercise(...)``, then at
    the very end a '## Solutions' cell after which every cell is tagged "solution" (and
    none before it), so that deleting those cells leaves a tutorial that still runs."""
    jupytext = pytest.importorskip("jupytext")
    cells = jupytext.read(path).cells
    tagged = ["solution" in c.metadata.get("tags", []) for c in cells]
    assert any(c.cell_type == "markdown" and "## Exercise: " in c.source for c in cells)
    assert any(c.cell_type == "code" and "with exercise(" in c.source
               for c, t in zip(cells, tagged) if not t), "no check for the student"
    assert True in tagged, "no solutions tagged 'solution'"
    first = tagged.index(True)
    assert cells[first].cell_type == "markdown" and "## Solutions" in cells[first].source
    assert all(tagged[first:]), "an untagged cell after '## Solutions'"
    assert not any("## Solution" in c.source for c in cells[:first])
