"""tinyae explore: the page's data in Python, then the page itself in headless Chromium.

The browser tests need Debian's ``chromium`` and the ``playwright`` package (never
``playwright install``: the browser comes from apt). They skip on a machine
without them and fail when CI=true, where .ci/run installs chromium.
"""
import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import watched_page

import tinyae as ta
from tinyae.cli import commands as cli
from tinyae.data import load_dataset
from tinyae.viz.explore import decoder_spec, explorer_html, map_plane, write_explorer


def small_model(sizes, seed=0):
    """An untrained model with non-trivial biases: decoding is what is tested, not quality."""
    model = ta.dense_autoencoder(sizes, rng=np.random.default_rng(seed))
    for _, p, _ in model.parameters():
        if p.ndim == 1:
            p[...] = np.random.default_rng(seed + 1).normal(0, 0.3, p.shape)
    return model


@pytest.fixture(scope="module")
def digits():
    X, y, _ = load_dataset("builtin", "test", 400, progress=False)
    return X, y


def floats(b64):
    return np.frombuffer(base64.b64decode(b64), "<f4")


# --- the page's data -----------------------------------------------------------------
def test_decoder_spec_holds_the_weights_exactly():
    model = ta.dense_autoencoder((784, 16, 3), activation="leaky_relu",
                                 rng=np.random.default_rng(0))
    spec = decoder_spec(model)
    dense = [s for s in spec if "W" in s]
    acts = [s["act"] for s in spec if "act" in s]
    assert acts == ["LeakyReLU", "Sigmoid"] and spec[1]["alpha"] == 0.01
    layers = [layer for layer in model.decoder if isinstance(layer, ta.Dense)]
    for s, layer in zip(dense, layers, strict=True):
        W = floats(s["W"]).reshape(s["in"], s["out"])
        assert np.array_equal(W, layer.params["W"]) and np.array_equal(floats(s["b"]), layer.params["b"])


def test_a_layer_the_page_cannot_run_is_a_clear_error():
    class Odd(ta.Layer):
        def forward(self, x):
            return x
    model = ta.dense_autoencoder((784, 8, 2), rng=np.random.default_rng(0))
    model.decoder.layers.insert(1, Odd())
    with pytest.raises(ValueError, match="has a Odd, which the page cannot run"):
        decoder_spec(model)


def test_map_plane_is_the_codes_or_their_principal_plane():
    rng = np.random.default_rng(0)
    Z2 = rng.normal(size=(50, 2))
    P, origin, V, note = map_plane(Z2)
    assert np.array_equal(P, Z2) and np.array_equal(origin + P @ V.T, Z2) and "2-D codes" in note
    # 5-D codes lying on a plane: the map and its way back reproduce them exactly.
    Z5 = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 5)) + rng.normal(size=5)
    P, origin, V, note = map_plane(Z5)
    assert P.shape == (200, 2) and "principal components" in note
    np.testing.assert_allclose(origin + P @ V.T, Z5, atol=1e-10)


def test_page_is_self_contained(digits):
    X, y = digits
    model = small_model((784, 16, 2))
    page = explorer_html(model, model.encode(X), y)
    assert page.startswith("<!DOCTYPE html>") and page.count("<script") == 2
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)       # no CDN, no fetch
    assert "fetch(" not in page and "XMLHttpRequest" not in page
    assert "default-src 'none'" in page                  # and the browser is told to refuse any


def test_wrong_shapes_are_a_clear_error(digits):
    X, y = digits
    model = small_model((784, 16, 2))
    with pytest.raises(ValueError, match=r"codes \(N, 2\) and N labels"):
        explorer_html(model, model.encode(X), y[:-1])


def test_non_square_images_and_odd_labels_are_clear_errors(digits):
    X, y = digits
    model = ta.dense_autoencoder((50, 8, 2), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="input width 50 is not a square"):
        explorer_html(model, np.zeros((3, 2), np.float32), np.zeros(3))
    model = small_model((784, 8, 2))
    with pytest.raises(ValueError, match="class numbers in 0..255"):
        explorer_html(model, model.encode(X[:3]), np.array([1, 2, 300]))


def test_cli_explore_writes_the_page(tmp_path, capsys, monkeypatch):
    ckpt = ta.save(small_model((784, 16, 2)), tmp_path / "m.npz")
    out = tmp_path / "explore.html"
    code = cli.main(["explore", ckpt, "--data", "builtin", "--limit", "200", "-o", str(out)])
    assert code == 0 and "open it in a browser" in capsys.readouterr().out
    assert out.read_text().count('"n": 200') == 1


# --- the page in a real browser --------------------------------------------------------
def open_page(browser, path):
    """The explorer page at a file path, loaded, with every request and error it made."""
    page, seen = watched_page(browser)
    page.goto(path.as_uri())
    page.wait_for_function("window.tinyae && window.tinyae.ready", timeout=20_000)
    return page, seen


def test_hover_decodes_like_python(browser, digits, tmp_path):
    X, y = digits
    model = small_model((784, 32, 2))
    Z = model.encode(X)
    path = tmp_path / "explore.html"
    write_explorer(model, X, y, path)
    page, seen = open_page(browser, path)

    target = Z[7].astype(np.float64)                   # a known latent point: test image 7's code
    page.mouse.move(*page.evaluate("([a, b]) => window.tinyae.clientXY(a, b)", target.tolist()))
    state = page.evaluate("({p: window.tinyae.lastPoint, z: window.tinyae.lastCode, "
                          "x: window.tinyae.lastDecoded})")
    ranges = np.ptp(Z, axis=0)
    assert np.all(np.abs(np.array(state["p"]) - target) < 0.01 * ranges)   # within a few pixels
    decoded = np.array(state["x"])
    expected = model.decode(np.array(state["z"], model.dtype)[None])[0]
    assert decoded.shape == (784,) and np.max(np.abs(decoded - expected)) < 1e-4
    # decodeAt at the exact code gives the exact image.
    exact = np.array(page.evaluate("([a, b]) => window.tinyae.decodeAt(a, b)", target.tolist()))
    assert np.max(np.abs(exact - model.decode(Z[7]))) < 1e-4

    png = page.screenshot(full_page=True)
    import matplotlib.image
    img = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    assert img.shape[0] > 400 and img.std() > 0.05                       # not blank
    assert len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20
    assert seen["requests"] == [path.as_uri()] and seen["errors"] == []
    page.close()


def test_wider_codes_decode_from_the_principal_plane(browser, digits, tmp_path):
    X, y = digits
    model = small_model((784, 24, 5), seed=3)
    Z = model.encode(X)
    path = tmp_path / "explore5.html"
    write_explorer(model, X, y, path)
    page, seen = open_page(browser, path)
    assert "first two principal components" in page.inner_text("body")
    P, origin, V, _ = map_plane(Z)
    p = P[11]
    got = np.array(page.evaluate("([a, b]) => window.tinyae.decodeAt(a, b)", p.tolist()))
    code = np.array(page.evaluate("window.tinyae.lastCode"))
    np.testing.assert_allclose(code, origin + V @ p, atol=1e-9)
    assert np.max(np.abs(got - model.decode((origin + V @ p).astype(np.float32)))) < 1e-4
    assert seen["errors"] == [] and len(seen["requests"]) == 1
    page.close()


def test_two_clicks_play_the_linear_path(browser, digits, tmp_path):
    X, y = digits
    model = small_model((784, 16, 2))
    Z = model.encode(X).astype(np.float64)
    path = tmp_path / "explore.html"
    write_explorer(model, X, y, path)
    page, _ = open_page(browser, path)
    xy = lambda z: page.evaluate("([a, b]) => window.tinyae.clientXY(a, b)", z.tolist())
    a, b = Z[0], Z[1]
    page.mouse.click(*xy(a))
    page.mouse.click(*xy(b))
    assert page.evaluate("window.tinyae.playing")
    page.wait_for_timeout(300)
    ends = np.array(page.evaluate("window.tinyae.ends"))
    p = np.array(page.evaluate("window.tinyae.lastPoint"))
    # The played point lies on the segment between the two clicks, away from its start.
    t = np.dot(p - ends[0], ends[1] - ends[0]) / np.dot(ends[1] - ends[0], ends[1] - ends[0])
    assert 0 < t <= 1
    np.testing.assert_allclose(p, ends[0] + t * (ends[1] - ends[0]), atol=1e-9)
    page.close()


@pytest.mark.parametrize("layer", [ta.Identity(), ta.ReLU(), ta.LeakyReLU(0.2), ta.Sigmoid(),
                                   ta.Tanh()], ids=lambda l: type(l).__name__)
def test_each_activations_javascript_is_its_numpy_forward(layer):
    """The explorer's decoder runs each class's ``js`` expression: Node evaluates it on the
    same points as the class's forward (overflow included: -800 and 800)."""
    import json
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI must have node (the machine image ships it) for this test")
        pytest.skip("node is not installed")
    v = [-800.0, -3.5, -1e-3, 0.0, 1e-3, 0.7, 3.5, 800.0]
    a = float(getattr(layer, "negative_slope", 0.0))
    script = f"const f = (v, a) => ({type(layer).js}); console.log(JSON.stringify(" \
             f"{json.dumps(v)}.map(v => f(v, {a}))));"
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    np.testing.assert_allclose(json.loads(out.stdout), layer.forward(np.array([v]))[0],
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("build", ["conv_autoencoder", "keras_conv_autoencoder"])
def test_a_convolutional_decoder_runs_in_the_page(build, browser, digits, tmp_path):
    """The page runs ConvTranspose2D, Conv2D, Reshape and Flatten as tinyae.nn.conv does:
    at a code the page decodes, the image equals model.decode (the keras model's 1,568-D
    codes are mapped by PCA, as any wide code)."""
    from tinyae.models import conv
    X, y = digits
    model = getattr(conv, build)(rng=np.random.default_rng(0))
    for _, p, _ in model.parameters():
        p += np.random.default_rng(1).normal(0, 0.05, p.shape).astype(p.dtype)  # biases too
    path = tmp_path / "explore.html"
    write_explorer(model, X[:200], y[:200], path)
    page, seen = open_page(browser, path)
    for point in ([0.3, -0.2], [-1.0, 0.5]):
        x = np.array(page.evaluate("([a, b]) => window.tinyae.decodeAt(a, b)", point))
        code = np.array(page.evaluate("window.tinyae.lastCode"), model.dtype)
        assert x.shape == (784,) and code.shape == (model.latent_width,)
        assert np.max(np.abs(x - model.decode(code[None])[0])) < 1e-4
    assert seen["errors"] == []


@pytest.mark.parametrize("build", ["dense", "conv"])
def test_a_vae_is_drawn_as_its_decode_draws_it(build, browser, digits, tmp_path):
    """A VAE's decoder ends in logits and its decode applies the sigmoid: the page does too
    (it drew the logits, clipped, before)."""
    from tinyae.models.conv import conv_variational_autoencoder
    X, y = digits
    rng = np.random.default_rng(0)
    model = (ta.variational_autoencoder((784, 32, 2), rng=rng) if build == "dense" else
             conv_variational_autoencoder(rng=rng))
    path = tmp_path / "explore.html"
    write_explorer(model, X[:200], y[:200], path)
    page, seen = open_page(browser, path)
    x = np.array(page.evaluate("([a, b]) => window.tinyae.decodeAt(a, b)", [0.5, -0.5]))
    code = np.array(page.evaluate("window.tinyae.lastCode"), model.dtype)
    assert np.max(np.abs(x - model.decode(code[None])[0])) < 1e-4
    assert 0 < x.min() and x.max() < 1 and seen["errors"] == []
