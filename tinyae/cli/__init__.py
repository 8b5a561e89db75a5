"""The ``tinyae`` command (``cli/commands.py``), its run folders and flags (``cli/runs.py``), and
the course commands ``check`` and ``exercises`` (``cli/course.py``)."""
from .commands import main

__all__ = ["main"]
