"""Errors that reach the user as one line, each with the exit code the CLI contract gives it.

Exit codes: 0 success, 1 a failed run or a problem the user can fix, 2 a usage error
(nothing written), 130 interrupted (Ctrl-C or SIGTERM; the run is recorded KILLED).

Anything else that escapes an experiment is a bug or a failed run: the runner records it as
FAILED with its traceback as an artifact, and the CLI still prints only one line.
"""


EXIT_INTERRUPTED = 130


class DlbenchError(Exception):
    """A problem the user can fix; its message names the problem and the fix."""

    exit_code = 1


class UsageError(DlbenchError):
    """Bad command-line input: unknown experiment or param, bad type, value out of bounds."""

    exit_code = 2


class PluginError(DlbenchError):
    """A plugin registered something invalid (duplicate name, missing field, bad param)."""


class DataError(DlbenchError):
    """A dataset is missing, unreadable or fails validation; the message names the file."""


class TrackingError(DlbenchError):
    """The tracking store cannot be used (unwritable, full, unreachable, unknown run)."""


class Pruned(Exception):
    """Raised inside a sweep's trial when the sweep's pruner stops it at ``step``: the run
    ends KILLED with tag ``dlbench.pruned``, its metrics so far kept; not a failure."""

    def __init__(self, step: int) -> None:
        super().__init__(f"pruned at step {step}")
        self.step = step


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty): MLflow and
    SQLAlchemy errors run to many lines, and the CLI prints one."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
