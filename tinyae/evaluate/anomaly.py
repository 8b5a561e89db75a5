"""Anomaly detection: an autoencoder reconstructs what it was trained on, and little else.

Train on normal images only; an image unlike them reconstructs badly, so its error is a
score of how anomalous it is (for a VAE, its negative ELBO is one too):

    s(x) = sum_d (x_d - x'_d)^2                  squared error per image
    s(x) = -ELBO(x)                              a VAE's bound on -log p(x)

How well a score separates anomalous from normal images, over every threshold:

    ROC:  (FPR(t), TPR(t)),  FPR(t) = #{normal, s >= t} / n_0,  TPR(t) = #{anomalous, s >= t} / n_1
    AUC = P(s_anomalous > s_normal) + P(tie) / 2 = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)

with R_1 the sum of the anomalous images' ranks among all scores (ties share their
mean rank): the Mann-Whitney rank statistic, equal to the area under the ROC.
"""
from typing import NamedTuple

import numpy as np

from ..models.pca import PCA
from ..models.vae import VariationalAutoencoder
from ..train.threads import batched
from .vae_eval import elbo_terms


class Holdout(NamedTuple):
    train: np.ndarray           # (N0, D) the images that are not the held-out digit
    test: np.ndarray            # (M, D) every image
    anomalous: np.ndarray       # (M,) bool: the image is the held-out digit


def holdout(X, y, digit) -> Holdout:
    """Hold one digit out: train on the others, test on all, the held-out ones anomalous.

    Call it on the training split (use ``.train``) and on the test split (use ``.test``
    and ``.anomalous``).
    """
    if y is None:
        raise ValueError("holdout needs the images' labels to hold a digit out; these images "
                         "have none (use data with labels: mnist or builtin)")
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"holdout: {len(X):,} images but {len(y):,} labels; give one label "
                         "per image")
    if isinstance(digit, bool) or not isinstance(digit, (int, np.integer)) or not 0 <= digit <= 9:
        raise ValueError(f"the held-out digit must be a whole number 0-9, got {digit!r}")
    anomalous = y == digit
    if not anomalous.any():
        present = ", ".join(map(str, np.unique(y)))
        raise ValueError(f"digit {digit} is absent from these {len(y):,} images (their labels: "
                         f"{present}); hold out one that is present, or use more images")
    if anomalous.all():
        raise ValueError(f"all {len(y):,} images are the digit {digit}: none is left to train "
                         "on; use images of other digits too")
    return Holdout(np.asarray(X)[~anomalous], np.asarray(X), anomalous)


# --- scores: higher = more anomalous -------------------------------------------------------
def reconstruction_scores(model, X) -> np.ndarray:
    """Squared error per image, sum_d (x_d - decode(encode(x))_d)^2: (N,) float64.

    ``model`` is anything with ``encode`` and ``decode``: an autoencoder (a VAE decodes its
    mean code mu) or ``tinyae.models.pca.PCA``.
    """
    X_rec = batched(lambda xb: model.decode(model.encode(xb)), np.asarray(X))
    diff = np.asarray(X, np.float64) - X_rec                   # (N, D)
    return np.sum(diff * diff, axis=1)


def neg_elbo_scores(model, X, rng, samples=1) -> np.ndarray:
    """A VAE's negative ELBO per image in nats, averaged over ``samples`` draws of z: (N,)."""
    if not isinstance(model, VariationalAutoencoder):
        raise ValueError(f"the negative ELBO needs a VariationalAutoencoder; this model is a "
                         f"{type(model).__name__} (score it by reconstruction error)")
    if samples < 1:
        raise ValueError(f"neg_elbo_scores: samples (draws of z per image) must be >= 1, got "
                         f"{samples}")
    draws = [elbo_terms(model, X, rng)["neg_elbo"] for _ in range(samples)]
    return np.mean(draws, axis=0)


def pca_scores(X_train, X, k) -> np.ndarray:
    """The baseline: squared error per image of PCA-k fitted to ``X_train``: (N,)."""
    return reconstruction_scores(PCA(k).fit(X_train), X)


# --- how well a score separates --------------------------------------------------------------
def _checked(scores, anomalous):
    s = np.asarray(scores, np.float64)
    a = np.asarray(anomalous)
    if s.ndim != 1 or a.shape != s.shape:
        raise ValueError(f"scores {s.shape} and anomalous {a.shape} must be two 1-D arrays of "
                         "the same length, one entry per image")
    if a.dtype != bool:
        raise ValueError(f"anomalous must be a bool array (True: anomalous), got {a.dtype}")
    if not np.isfinite(s).all():
        raise ValueError(f"{int(np.sum(~np.isfinite(s))):,} scores are NaN or infinite; a model "
                         "whose weights overflow cannot rank images")
    if a.all() or not a.any():
        raise ValueError(f"an ROC needs both anomalous and normal images; all {len(a):,} are "
                         f"{'anomalous' if a.all() else 'normal'}")
    return s, a


def midranks(s) -> np.ndarray:
    """Ranks 1..N of the scores, tied scores sharing the mean of their ranks: (N,)."""
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts                  # ranks before each distinct value
    return (first + (counts + 1) / 2)[inverse]


def auc(scores, anomalous) -> float:
    """AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0): the chance that an anomalous image scores
    above a normal one, ties counting a half."""
    s, a = _checked(scores, anomalous)
    n1, n0 = int(a.sum()), int((~a).sum())
    R1 = midranks(s)[a].sum()
    return float((R1 - n1 * (n1 + 1) / 2) / (n1 * n0))


def _counts(s, a):
    """Flagged normal and anomalous images (FP, TP) at t = +inf and each distinct score t."""
    order = np.argsort(-s, kind="stable")
    s, a = s[order], a[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last image of each distinct score
    return np.r_[0, np.cumsum(~a)[last]], np.r_[0, np.cumsum(a)[last]], np.r_[np.inf, s[last]]


def roc_curve(scores, anomalous):
    """False and true positive rates flagging s >= t, t from +inf down each distinct score.

    Returns (fpr, tpr, thresholds), each (T + 1,) with T distinct scores; it starts at (0, 0)
    (t = +inf: nothing flagged) and ends at (1, 1). Tied scores move both rates at once, a
    diagonal step, so the trapezoids under the curve add up to ``auc``.
    """
    fp, tp, thresholds = _counts(*_checked(scores, anomalous))
    return fp / fp[-1], tp / tp[-1], thresholds


def at_false_alarm(scores, anomalous, rate=0.05) -> dict:
    """Precision and recall at the lowest threshold whose false-alarm rate is <= ``rate``.

    Flag s >= t: recall = TP / n_1 (the TPR), precision = TP / (TP + FP), false alarms
    FP / n_0. Precision is NaN when even the highest threshold allowed flags nothing.
    """
    if not 0 < rate < 1:
        raise ValueError(f"the false-alarm rate must be in (0, 1), e.g. 0.05; got {rate!r}")
    fp, tp, thresholds = _counts(*_checked(scores, anomalous))
    k = np.nonzero(fp <= rate * fp[-1])[0][-1]          # FP grows as t comes down
    precision = tp[k] / (tp[k] + fp[k]) if k > 0 else float("nan")
    return {"threshold": float(thresholds[k]), "false_alarm_rate": float(fp[k] / fp[-1]),
            "recall": float(tp[k] / tp[-1]), "precision": float(precision)}
