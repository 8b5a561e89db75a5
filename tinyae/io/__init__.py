"""Files: checkpoints (``.npz`` plus JSON, never pickle), the checks a checkpoint passes before
anything is built, atomic writes and path safety.

    io/checkpoint.py   save, load, read_checkpoint, atomic_write, load_codes
    io/check.py        what a checkpoint's config may describe, checked before loading
    io/safety.py       outputs never land on inputs; files are what their name says
"""
from .check import CheckpointError
from .checkpoint import (Checkpoint, atomic_write, load, load_codes, load_weights, read_checkpoint,
                         read_model, save)

__all__ = ["CheckpointError", "Checkpoint", "atomic_write", "save", "load", "read_checkpoint",
           "read_model", "load_weights", "load_codes"]
