"""The ``dlbench`` command: parses, calls the registry or the runner, prints.

Contract (scripts rely on it): exit 0 on success, 2 on usage errors, 1 when a run fails;
``--json`` puts exactly one JSON object on stdout, last; logs and progress go to stderr.
Commands beyond the core live in ``dlbench/commands/`` and are imported only when invoked,
so ``dlbench list`` and ``--help`` stay fast (no TensorFlow, no MLflow).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import traceback
from pathlib import Path

import click

from dlbench import __version__
from dlbench.errors import DlbenchError
from dlbench.tables import format_table

# Subcommands defined in their own modules: name -> "module:attribute".
COMMANDS = {
    "datasets": "dlbench.commands.datasets:command",
    "compare": "dlbench.commands.compare:command",
    "denoise": "dlbench.commands.denoise:command",
    "runs": "dlbench.commands.runs:command",
    "sweep": "dlbench.commands.sweep:command",
}

EXIT_INTERRUPTED = 130


class DlbenchGroup(click.Group):
    """Lazy subcommands, and one-line errors with the contract's exit codes."""

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx, name):
        if name in COMMANDS:
            module, _, attribute = COMMANDS[name].partition(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DlbenchError as exc:
            _report(ctx, f"error: {exc}")
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:
            # One line, like every other error (click's default adds a usage block).
            where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
            _report(ctx, f"error: {exc.format_message()}{where}")
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            _report(ctx, f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
            ctx.exit(1)


def _report(ctx, line: str) -> None:
    if ctx.obj and ctx.obj.get("debug"):
        traceback.print_exc()
    click.echo(line, err=True)


@click.group(cls=DlbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dlbench")
@click.option("--debug", is_flag=True, envvar="DLBENCH_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def main(ctx, debug):
    """Run deep-learning experiments from plugins and track them in MLflow."""
    ctx.obj = {"debug": debug}
    # TensorFlow's C++ start-up chatter is noise for a CLI user.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _registry():
    from dlbench.registry import load_registry

    registry = load_registry()
    for problem in registry.problems:
        click.echo(f"warning: {problem}", err=True)
    return registry


def _emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_experiments(as_json):
    """List the experiments the installed plugins provide."""
    registry = _registry()
    rows = [
        {"name": name, "plugin": entry.plugin.name, "summary": entry.value.summary}
        for name, entry in sorted(registry.experiments.items())
    ]
    if as_json:
        _emit_json(rows)
    elif rows:
        click.echo(format_table(rows, ["name", "plugin", "summary"]))
    else:
        click.echo("no experiments installed (see: dlbench plugins)", err=True)


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def describe(name, as_json):
    """Show an experiment's params, datasets and what it logs."""
    entry = _registry().experiment(name)
    info = {**entry.value.describe(), "plugin": entry.plugin.name}
    if as_json:
        _emit_json(info)
        return
    click.echo(f"{info['name']} ({info['plugin']}): {info['summary']}\n")
    rows = [
        {**p, "default": p["default"], "range": _range_text(p)} for p in info["params"]
    ]
    click.echo(format_table(rows, ["name", "type", "default", "range", "help"]))
    click.echo(f"\ndatasets: {', '.join(info['datasets']) or '-'}")
    click.echo(f"logs:     {', '.join(info['logs']) or '-'}")
    quick = ", ".join(f"{k}={v}" for k, v in info["quick"].items())
    click.echo(f"--quick:  {quick or '-'}")
    click.echo(f"\nrun it:   dlbench run {name} [-p KEY=VALUE]...")


def _range_text(param: dict) -> str:
    if param["choices"]:
        return "|".join(str(c) for c in param["choices"])
    if param["low"] is not None or param["high"] is not None:
        low = "" if param["low"] is None else param["low"]
        high = "" if param["high"] is None else param["high"]
        return f"[{low}, {high}]"
    return ""


TRACKING_URI_OPTION = click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
    help="MLflow store, also read from $MLFLOW_TRACKING_URI [default: sqlite:///mlruns/mlflow.db].")
"""Every command that opens the store takes it the same way."""

RUN_OPTIONS = (
    click.option("--data", "data_path", type=click.Path(path_type=Path),
                 help="Where the data is (the layout is detected; see: dlbench datasets)."),
    click.option("--quick", is_flag=True, help="Smoke mode: tiny data, one epoch, seconds."),
    click.option("--seed", type=int, default=0, show_default=True,
                 help="Seed for python, numpy, TF."),
    click.option("--experiment-name", help="MLflow experiment to log into [default: NAME]."),
    TRACKING_URI_OPTION,
    click.option("--json", "as_json", is_flag=True, help="Print one JSON summary on stdout."),
)


def run_options(command):
    """The options ``run`` and ``sweep`` share: data, smoke mode, seed, store, JSON output."""
    for option in reversed(RUN_OPTIONS):
        command = option(command)
    return command


@main.command()
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Set a param (repeatable); values are parsed by the declared type.")
@run_options
@click.option("--run-name", help="MLflow run name [default: MLflow's generated name].")
@click.option("--resume", "resume_run_id", metavar="RUN_ID",
              help="Continue this run from its last epoch checkpoint, with its own params.")
@click.option("--strategy", type=click.Choice(["mirrored"]),
              help="Train on all local GPUs (tf.distribute.MirroredStrategy).")
def run(name, params, data_path, quick, seed, experiment_name, run_name, tracking_uri,
        resume_run_id, strategy, as_json):
    """Run experiment NAME and log it to MLflow."""
    from dlbench.experiment import parse_assignments
    from dlbench.runner import RunRequest, execute

    request = RunRequest(
        experiment=name,
        params=parse_assignments(params),
        data_path=data_path,
        quick=quick,
        seed=seed,
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=tracking_uri,
        resume_run_id=resume_run_id,
        strategy=strategy,
    )
    registry = _registry()
    with _stdout_to_stderr():
        result = execute(request, registry)
    if as_json:
        _emit_json(result.to_json())
    else:
        _print_summary(result)
    if result.status == "KILLED":
        sys.exit(EXIT_INTERRUPTED)
    if result.status != "FINISHED":
        click.echo(f"error: run {result.run_id} {result.status}: {result.error}", err=True)
        sys.exit(1)


def _print_summary(result) -> None:
    click.echo(f"run {result.run_id} {result.status} in {result.duration_s:.1f} s")
    rows = [{"metric": k, "value": v} for k, v in sorted(result.metrics.items())]
    if rows:
        click.echo(format_table(rows, ["metric", "value"]))
    click.echo(f"artifacts: {result.artifact_uri}")


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to stdout during a run (Keras progress bars, C libraries
    writing to fd 1) to stderr, so that stdout carries only the summary."""
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


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def plugins(as_json):
    """Show each plugin: distribution, version, what it registered, load errors."""
    from dlbench.registry import load_registry

    registry = load_registry()
    infos = [info.to_json() for _, info in sorted(registry.plugins.items())]
    if as_json:
        _emit_json(infos)
        return
    rows = [
        {
            "plugin": i["name"],
            "distribution": f"{i['distribution']} {i['version']}" if i["distribution"] else None,
            "experiments": ", ".join(i["experiments"]) or None,
            "datasets": ", ".join(i["datasets"]) or None,
            "errors": len(i["errors"]) or None,
        }
        for i in infos
    ]
    click.echo(format_table(rows, ["plugin", "distribution", "experiments", "datasets", "errors"]))
    for problem in registry.problems:
        click.echo(f"error: {problem}", err=True)


@main.command()
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; loopback unless you mean to share it.")
@TRACKING_URI_OPTION
def ui(port, host, tracking_uri):
    """Open the MLflow UI on the project's store."""
    from dlbench.tracking import ui_command

    command = ui_command(tracking_uri, host=host, port=port)
    # MLflow 3's server also starts a job runner and its workers, which a UI does not need.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    click.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C to stop)", err=True)
    os.execvp(command[0], command)
