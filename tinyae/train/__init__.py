"""Training: ``fit`` (the loop, in ``train/loop.py``) and greedy layer-wise pretraining
(``train/stacked.py``).

    import tinyae as ta
    history = ta.train.fit(model, X, epochs=20)
"""
from .loop import (BACKENDS, Checkpointer, EarlyStopping, EpochRecord, History, TrainingDiverged,
                   evaluate, fit, loss_terms, resolve_backend)

__all__ = ["fit", "evaluate", "loss_terms", "History", "EpochRecord", "EarlyStopping",
           "Checkpointer", "TrainingDiverged", "resolve_backend", "BACKENDS"]
