"""Figures that say what they show: clipped scatters, integer epochs, originals beside a path,
and no giant PNG from decoding a whole test set."""
import numpy as np

import tinyae as ta
from tinyae.cli import commands as cli
from tinyae.train import EpochRecord, History
from tinyae.viz import plot


def test_latent_scatter_says_when_codes_fall_off_the_axes(rng):
    Z = rng.standard_normal((1000, 2))
    Z[:3] = 100.0                                              # far outliers
    title = plot.latent_scatter(Z, rng.integers(0, 10, 1000)).axes[0].get_title()
    assert "lie outside the axes\n(they span the 1st-99th percentiles" in title
    n = int(title.split(" of 1,000")[0].split("\n")[-1].replace(",", ""))
    assert 3 <= n <= 40                                        # the outliers and a percentile tail
    wide = ((-200, 200), (-200, 200))
    assert "outside" not in plot.latent_scatter(Z, np.zeros(1000), ranges=wide).axes[0].get_title()


def test_latent_scatter_title_fits_in_the_figure(rng):
    """The note on clipped codes is long; no part of the title may fall off the image."""
    Z = rng.standard_normal((10_000, 2))
    Z[:500] *= 50                                              # a four-digit count of outliers
    fig = plot.latent_scatter(Z, rng.integers(0, 10, 10_000), title="MNIST test set, 2-D codes")
    fig.canvas.draw()
    box = fig.axes[0].title.get_window_extent()
    assert "," in fig.axes[0].get_title().split(" of ")[0]            # e.g. "1,234 of 10,000"
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_loss_figure_leaves_out_validation_values_that_miss_the_penalty():
    """An older record of a model with a penalty holds the reconstruction alone as val_loss:
    drawn beside today's sums it would make the curve jump, so it is a gap."""
    old = EpochRecord(1, 0.5, 0.1, 1.0, 1e-3, penalty=0.2)
    new = [EpochRecord(e, 0.4, 0.35, 1.0, 1e-3, penalty=0.2, val_penalty=0.2) for e in (2, 3)]
    fig = plot.loss_curves(History([old, *new]))
    val = next(line for line in fig.axes[0].lines if line.get_label() == "validation")
    np.testing.assert_array_equal(val.get_ydata(), [np.nan, 0.35, 0.35])
    fig = plot.loss_curves(History([old]))
    assert [line.get_label() for line in fig.axes[0].lines] == ["train"]


def test_epoch_axis_has_integer_ticks():
    history = History([EpochRecord(e, 1.0 / e, None, 1.0, 1e-3) for e in range(1, 4)])
    fig = plot.loss_curves(history)
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks))


def test_training_interpolation_shows_the_originals(monkeypatch, rng, tmp_path):
    model = ta.dense_autoencoder((784, 8, 2), rng=rng)
    Xt = rng.random((20, 784), dtype=np.float32)
    yt = np.array([4] * 3 + [1] * 17)
    strips = []
    monkeypatch.setattr(plot, "image_strip", lambda images, **kw: strips.append((images, kw)))
    monkeypatch.setattr(plot, "loss_curves", lambda *a, **k: None)
    cli._figures(model, Xt, yt, History(), tmp_path)
    (images, kw), = strips
    assert len(images) == 12 and np.array_equal(images[0], Xt[0]) and np.array_equal(images[-1], Xt[3])
    assert kw["labels"][0] == "image 0" and kw["labels"][-1] == "image 3"
    assert "(a 4)" in kw["title"] and "(a 1)" in kw["title"] and "originals" in kw["title"]


def test_decoding_many_codes_is_capped_with_a_word(tmp_path, capsys, rng):
    ckpt = ta.save(ta.dense_autoencoder((784, 8, 2), rng=rng), tmp_path / "m.npz")
    codes = tmp_path / "codes.npy"
    np.save(codes, rng.standard_normal((500, 2)).astype(np.float32))
    png = tmp_path / "all.png"
    assert cli.main(["decode", ckpt, str(codes), "-o", str(png)]) == 0
    out = capsys.readouterr()
    assert "decoding the first 400 of 500 codes" in out.err and "decoded 400 codes" in out.out
    import matplotlib.image
    h, w = matplotlib.image.imread(png).shape[:2]
    assert h * w < 1500 * 1500
    assert cli.main(["decode", ckpt, str(codes), "-o", str(tmp_path / "few.png"),
                     "--max-images", "0", "--columns", "25"]) == 0
    assert "decoded 500 codes" in capsys.readouterr().out
