"""User-facing errors.

Anything a user can cause (a bad file, a bad flag, a missing model) raises a
subclass of :class:`VcconvError`.  The CLI prints ``str(err)`` as one line and
exits with code 2; library callers can catch it.
"""

from __future__ import annotations

from pathlib import Path


class VcconvError(Exception):
    """Base class of every error caused by user input (exit code 2 in the CLI)."""

    exit_code = 2


class AudioError(VcconvError):
    """An audio file that cannot be used: unreadable, empty, silent, NaN, too short..."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(VcconvError):
    """A configuration value or override that is not valid."""


class ModelError(VcconvError):
    """A model name or checkpoint that cannot be found or loaded."""


class DataError(VcconvError):
    """A corpus or manifest that cannot be used."""
