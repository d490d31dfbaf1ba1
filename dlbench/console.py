"""What every command shares at the terminal: the plugin registry, JSON output, clean stdout.

Contract (scripts rely on it): ``--json`` puts exactly one JSON document on stdout, last;
logs, progress and warnings go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click


def registry(ctx: click.Context | None = None):
    """The installed plugins' registry, loaded once per command line; its problems are
    printed as warnings on stderr, once."""
    state = (ctx or click.get_current_context()).find_root().ensure_object(dict)
    if "registry" not in state:
        from dlbench.registry import load_registry

        state["registry"] = load_registry(reserved=state.get("core_commands", ()))
        for problem in state["registry"].problems:
            click.echo(f"warning: {problem}", err=True)
    return state["registry"]


def emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to stdout meanwhile (Keras progress bars, C libraries writing
    to fd 1) to stderr, so that stdout carries only the summary."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
