"""Greedy stacked training, and the robustness / copying measurements."""
import numpy as np
import pytest

import tinyae as ta
from tinyae.data.digits import load_builtin_digits
from tinyae.evaluate import robustness
from tinyae.train import fit
from tinyae.train.stacked import pretrain, split_levels, stack, stacked_autoencoder


@pytest.fixture(scope="module")
def digits():
    return load_builtin_digits("train", n=600)[0]


def test_split_levels_share_the_models_layers():
    model = ta.dense_autoencoder((784, 64, 16, 2), rng=np.random.default_rng(0))
    levels = split_levels(model)
    assert [(l.input_width, l.latent_width) for l in levels] == [(784, 64), (64, 16), (16, 2)]
    assert [type(x).__name__ for x in levels[0].decoder] == ["Dense", "Sigmoid"]
    assert [type(x).__name__ for x in levels[1].decoder] == ["Dense", "ReLU"]
    assert [type(x).__name__ for x in levels[2].encoder] == ["Dense"]        # linear code
    assert levels[0].encoder[0] is model.encoder[0] and levels[0].decoder[0] is model.decoder[-2]
    X = np.random.default_rng(1).random((3, 784), dtype=np.float32)
    np.testing.assert_array_equal(stack(levels).forward(X), model.forward(X))


def test_stacked_sizes_that_do_not_chain_are_a_clear_error():
    rng = np.random.default_rng(0)
    a = ta.dense_autoencoder((784, 128), rng=rng)
    b = ta.dense_autoencoder((64, 16), rng=rng)
    with pytest.raises(ValueError, match=r"level 1 makes codes of width 128 but level 2 takes "
                                         r"inputs of width 64.*must chain"):
        stack([a, b])
    with pytest.raises(ValueError, match="at least two positive widths"):
        stacked_autoencoder((784,), np.zeros((2, 784)), 1)
    with pytest.raises(ValueError, match="at least one"):
        stack([])


def test_greedy_pretraining_trains_each_level_on_the_codes_below(digits):
    model = ta.dense_autoencoder((784, 64, 8), rng=np.random.default_rng(0))
    before = [p.copy() for _, p, _ in model.parameters()]
    histories = pretrain(model, digits, epochs=2, batch_size=50, progress=False)
    assert len(histories) == 2 and all(len(h.records) == 2 for h in histories)
    assert all(h.loss[1] < h.loss[0] for h in histories)
    assert all(not np.array_equal(p, q) for (_, p, _), q in zip(model.parameters(), before))
    # Level 2 was trained to reconstruct the level-1 codes of the images.
    level1, level2 = split_levels(model)
    codes = level1.encode(digits)
    # (its error on those codes is below its first epoch's mean; on the images it has no meaning)
    assert np.mean((level2.reconstruct(codes) - codes) ** 2) < histories[1].loss[0]
    # Stacked and fine-tuned, it beats its own starting point.
    start = np.mean((model.reconstruct(digits) - digits) ** 2)
    fit(model, digits, epochs=2, batch_size=50, progress=False)
    assert np.mean((model.reconstruct(digits) - digits) ** 2) < start


def test_stacked_autoencoder_starts_from_the_end_to_end_weights(digits):
    model, hist = stacked_autoencoder((784, 32, 4), digits[:100], 1, batch_size=50,
                                      rng=np.random.default_rng(5), progress=False)
    same = ta.dense_autoencoder((784, 32, 4), rng=np.random.default_rng(5))
    assert model.config() == same.config() and len(hist) == 2


# --- robustness ---------------------------------------------------------------------------
def test_robustness_table_scores_against_the_clean_images():
    X = load_builtin_digits("test", n=50)[0]

    class Identity:                    # a perfect copier: returns exactly what it is given
        dtype, input_width = np.float32, 784

        def reconstruct(self, X):
            return X

    table = robustness.robustness_table(Identity(), X, seed=0)
    assert list(table) == ["clean", "gaussian 0.5", "rotated 30 deg", "flipped"]
    assert table["clean"]["sq_error_per_image"] == 0
    for row in table.values():         # the copier's error is exactly the distortion's own
        assert row["sq_error_per_image"] == pytest.approx(row["input_sq_error_per_image"])
        assert row["mse_per_pixel"] == pytest.approx(row["sq_error_per_image"] / 784)
    assert table["gaussian 0.5"]["sq_error_per_image"] > 20
    copy = robustness.copy_errors(Identity(), n=20)
    assert copy == {"random strokes": 0, "pure noise": 0}
    text = robustness.format_table(table, copy=copy)
    assert "rotated 30 deg" in text and "pure noise" in text and "random strokes" in text


def test_random_strokes_are_pen_strokes_not_digits():
    rng = np.random.default_rng(0)
    S = robustness.random_strokes(50, 784, rng)
    again = robustness.random_strokes(50, 784, np.random.default_rng(0))
    np.testing.assert_array_equal(S, again)                      # seeded
    assert S.shape == (50, 784) and S.dtype == np.float32
    assert S.min() == 0 and S.max() == 1                         # black paper, full-strength ink
    ink = (S > 0).mean(axis=1)
    assert np.all((0.03 < ink) & (ink < 0.4))                    # a few strokes, not a blot
    border = S.reshape(50, 28, 28)[:, [0, 1, 26, 27], :]
    assert border.max() == 0                                     # inside the frame, like MNIST
    with pytest.raises(ValueError, match="width 101 is not a square number"):
        robustness.random_strokes(2, 101, rng)


def test_a_copier_copies_strokes_and_a_2d_code_cannot():
    """The copying drawback in numbers: the identity scores 0; a 2-D model, which can only
    draw digit-like shapes, is far from the strokes."""
    model = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))
    X = load_builtin_digits("train", n=500)[0]
    fit(model, X, epochs=2, batch_size=50, progress=False, threads=1)
    errors = robustness.copy_errors(model, n=100)
    assert errors["random strokes"] > 10 and errors["pure noise"] > 50


def test_robustness_figure(tmp_path):
    X = load_builtin_digits("test", n=6)[0]
    model = ta.dense_autoencoder((784, 16, 2), rng=np.random.default_rng(0))
    robustness.figure(model, X, n=6, path=tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
