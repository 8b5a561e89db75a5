"""Run folders: one training run writes into a folder at a time.

A run claims its folder by creating ``.tinyae-run.lock`` exclusively (O_EXCL)
with its process id inside; a second run into the same folder is refused and
told that pid. A lock left by a run that was killed (its pid is gone) is taken
over. Default folders are ``runs/<timestamp>``, created with ``mkdir`` (which
fails when the folder exists), adding ``-2``, ``-3``... until one is new, so two
runs started in the same second never share one.
"""
import os
import time
from pathlib import Path

from .safety import UnsafePathError

LOCK = ".tinyae-run.lock"
RUN_FILES = ("last.npz", "best.npz", "history.json", "history.csv", "metrics.json")


def new_run_folder(parent="runs"):
    """Create and return a fresh folder ``parent/<YYYYmmdd-HHMMSS>[-k]``."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 10_000):
        folder = Path(parent) / (stamp if k == 1 else f"{stamp}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise UnsafePathError(f"could not create a new run folder in {parent!r}; pass --out")


def _alive(pid):
    if pid <= 0:                      # never signal a process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:           # exists, owned by someone else
        return True
    return True


class RunFolder:
    """Context manager: hold ``folder``'s lock while a run writes into it."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.lock = self.folder / LOCK
        self.held = False

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                pid = self._owner()
                if pid == -1 or (pid is not None and pid != os.getpid() and _alive(pid)):
                    raise UnsafePathError(
                        f"{str(self.folder)!r} is in use by another tinyae run "
                        f"({'pid ' + str(pid) if pid > 0 else 'starting now'}); "
                        "wait for it to finish or choose another --out.") from None
                self.lock.unlink(missing_ok=True)       # left by a run that died: take it over
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self.held = True
            return self
        raise UnsafePathError(f"could not lock {str(self.folder)!r}; another run keeps claiming it")

    def _owner(self):
        try:
            return int(self.lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            # Being written this instant by the other run, or garbage: treat a fresh one as busy.
            try:
                young = time.time() - self.lock.stat().st_mtime < 5
            except OSError:
                return None
            return -1 if young else None

    def __exit__(self, *exc):
        if self.held:
            self.lock.unlink(missing_ok=True)
            self.held = False

    def earlier_run_files(self):
        """Names of files of an earlier run already in the folder."""
        return [name for name in RUN_FILES if (self.folder / name).exists()]
