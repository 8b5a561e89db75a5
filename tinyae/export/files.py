"""What every export shares: outputs never replace a file unless asked, optional packages
imported when used (with the install line when missing)."""
import importlib
import os

INSTALL = "pip install 'tinyae[export]'"


def refuse_existing(path, force):
    """Raise ``FileExistsError`` when ``path`` exists and ``force`` is false."""
    if os.path.lexists(path) and not force:
        raise FileExistsError(f"{os.fspath(path)!r} exists already; choose another path, or "
                              "pass force=True (--force) to replace it")


def need(package, why, install=INSTALL):
    """Import ``package``, or raise ``ModuleNotFoundError`` saying what needs it and how to
    install it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise ModuleNotFoundError(f"{why} needs the {package.split('.')[0]} package, which is "
                                  f"not installed: {install}", name=package) from None
