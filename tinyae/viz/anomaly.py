"""Figures of anomaly scores: ROC curves side by side, the most and least anomalous images.

Like ``plot``: each function returns a Figure and, given ``path``, saves a PNG atomically.
"""
import numpy as np

from ..evaluate.anomaly import auc, roc_curve
from .plot import _figure, _save


def roc_curves(scores, anomalous, path=None, title="ROC: anomalous images flagged"):
    """One ROC curve per scorer, its AUC in the legend, and chance (AUC 0.5) as a diagonal.

    Args:
        scores: {name: (N,) scores}, higher = more anomalous.
        anomalous: (N,) bool, the same images for every scorer.
    """
    fig = _figure(4.8, 4.4)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color="0.6", lw=1, label="chance (AUC 0.500)")
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(s, anomalous)
        ax.plot(fpr, tpr, "-", lw=1.5, label=f"{name} (AUC {auc(s, anomalous):.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false-alarm rate (normal images flagged)")
    ax.set_ylabel("recall (anomalous images flagged)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def extremes(X, scores, n=8, path=None, title="most (top) and least (bottom) anomalous images",
             anomalous=None):
    """Two rows: the ``n`` highest-scoring images, then the ``n`` lowest, each with its score
    (and, given ``anomalous``, a red frame on the truly anomalous ones)."""
    s = np.asarray(scores, np.float64)
    n = min(n, len(s))
    order = np.argsort(-s, kind="stable")
    fig = _figure(n * 0.85, 2.3)
    axes = fig.subplots(2, n, squeeze=False)
    for row, picks in enumerate((order[:n], order[::-1][:n])):
        for ax, i in zip(axes[row], picks):
            ax.imshow(np.reshape(X[i], (28, 28)), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{s[i]:.3g}", fontsize=7)
            if anomalous is not None and anomalous[i]:
                for side in ax.spines.values():
                    side.set(color="red", linewidth=2)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
