"""Exit codes, the error hierarchy and domain warnings.

Every user mistake becomes a ``ChurnkitError`` carrying the exit code of docs/contract.md;
the CLI boundary turns it into one line on stderr. Doubtful-but-valid results are
warnings (lifelines' habit), never crashes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    GATE_FAILED = 1
    USAGE = 2
    DATA = 3
    CONFIG = 4
    MODEL = 5
    INTERNAL = 70
    INTERRUPTED = 130


class ChurnkitError(Exception):
    """A mistake the user can fix: a one-line message and, ideally, what to do."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ChurnkitError):
    """A flag combination that only the core can judge."""

    exit_code = ExitCode.USAGE


class DataError(ChurnkitError):
    """Unreadable input, missing required column, no usable rows, too little history."""

    exit_code = ExitCode.DATA


class MissingColumnError(DataError):
    pass


class InsufficientHistoryError(DataError):
    pass


class ConfigError(ChurnkitError):
    """Invalid YAML, unknown key or bad value; the message names the key."""

    exit_code = ExitCode.CONFIG


class ModelError(ChurnkitError):
    """Missing or incompatible model."""

    exit_code = ExitCode.MODEL


class ChurnkitWarning(UserWarning):
    """A result that is valid but doubtful; shown on stderr, never fatal."""


class SingleChurnKindWarning(ChurnkitWarning):
    pass


class FewPositivesWarning(ChurnkitWarning):
    pass


class LeakageWarning(ChurnkitWarning):
    pass


class DriftWarning(ChurnkitWarning):
    pass


class BaselineWarning(ChurnkitWarning):
    """The model does not beat a simple baseline on its validation snapshot."""


class WeakModelWarning(ChurnkitWarning):
    """A model saved with ``--force`` although the data could not support it."""


class ThinDataWarning(ChurnkitWarning):
    """Training adapted to short or thin data (one snapshot, a shorter history)."""
