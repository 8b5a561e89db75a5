"""The package version: one place, read by setup.cfg, the checkpoints and ``tinyae --version``."""
__version__ = "0.1.0"
