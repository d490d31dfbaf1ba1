"""The ``dlbench`` command: parses, calls the registry or the runner, prints.

Contract (scripts rely on it): exit 0 on success, 2 on usage errors, 1 when a run fails, 130
when interrupted; ``--json`` puts exactly one JSON object on stdout, last; logs and progress
go to stderr. dlbench's own commands beyond the ones here live in ``dlbench/commands/`` and
are imported only when invoked; plugins add theirs through the ``dlbench_commands`` hook.
Nothing here imports TensorFlow or MLflow, so ``dlbench list`` and ``--help`` stay fast.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from dlbench import __version__
from dlbench.console import emit_json, registry, stdout_to_stderr
from dlbench.errors import EXIT_INTERRUPTED, DlbenchError, PluginError, first_line
from dlbench.options import json_option, run_options, tracking_uri_option
from dlbench.repeats import SeedList
from dlbench.tables import format_table

# dlbench's own commands defined in their own modules: name -> "module:attribute".
COMMANDS = {
    "datasets": "dlbench.commands.datasets:command",
    "compare": "dlbench.commands.compare:command",
    "runs": "dlbench.commands.runs:command",
    "sweep": "dlbench.commands.sweep:command",
    "rerun": "dlbench.commands.rerun:command",
}


class DlbenchGroup(click.Group):
    """Lazy subcommands (ours, then the plugins'), and one-line errors with the contract's
    exit codes."""

    def _core(self) -> set[str]:
        return set(super().list_commands(None)) | set(COMMANDS)

    def _plugin_commands(self, ctx):
        ctx.find_root().ensure_object(dict).setdefault("core_commands", self._core())
        return registry(ctx)

    def list_commands(self, ctx):
        return sorted(self._core() | set(self._plugin_commands(ctx).commands))

    def get_command(self, ctx, name):
        if name in COMMANDS:
            module, _, attribute = COMMANDS[name].partition(":")
            return getattr(importlib.import_module(module), attribute)
        found = super().get_command(ctx, name)
        if found is not None:
            return found
        plugins = self._plugin_commands(ctx)
        if plugins.conflict("command", name):
            raise PluginError(plugins.conflict("command", name))
        entry = plugins.commands.get(name)
        return entry.value if entry is not None else None

    def make_context(self, info_name, args, parent=None, **extra):
        """Mistakes in ``dlbench``'s own options (``--nosuch``, ``DLBENCH_DEBUG=maybe``) are
        one line too; those of subcommands are caught in :meth:`invoke`."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            where = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
            click.echo(f"error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)

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
            _report(ctx, f"error: {type(exc).__name__}: {first_line(exc)}"
                         " (run with --debug for the traceback)")
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
    state = ctx.ensure_object(dict)
    state["debug"] = debug
    state.setdefault("core_commands", ctx.command._core())
    if not debug:
        quiet_frameworks()


def quiet_frameworks() -> None:
    """TensorFlow's C++ chatter (oneDNN, CUDA probing, graph warnings) and MLflow's download
    bars are noise for a CLI user (TF's errors reach Python as exceptions); ``--debug`` keeps
    them. TensorFlow reads its level once, when it starts (see dlbench.frameworks)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # tqdm per download


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_experiments(as_json):
    """List the experiments the installed plugins provide."""
    rows = [
        {"name": name, "plugin": entry.plugin.name, "summary": entry.value.summary}
        for name, entry in sorted(registry().experiments.items())
    ]
    if as_json:
        emit_json(rows)
    elif rows:
        click.echo(format_table(rows, ["name", "plugin", "summary"]))
    else:
        click.echo("no experiments installed (see: dlbench plugins)", err=True)


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def describe(name, as_json):
    """Show an experiment's params, datasets and the metrics it logs."""
    entry = registry().experiment(name)
    info = {**entry.value.describe(), "plugin": entry.plugin.name}
    if as_json:
        emit_json(info)
        return
    click.echo(f"{info['name']} ({info['plugin']}): {info['summary']}\n")
    rows = [{**p, "range": _range_text(p)} for p in info["params"]]
    click.echo(format_table(rows, ["name", "type", "default", "range", "help"]))
    click.echo(f"\ndatasets: {', '.join(info['datasets']) or '-'}")
    if info["metrics"]:
        shown = [{**m, "better": {"max": "larger", "min": "smaller"}.get(m["goal"], "?")}
                 for m in info["metrics"]]
        click.echo("\nlogs:\n" + format_table(shown, ["name", "better", "help"]))
    else:
        click.echo("logs:     -")
    quick = ", ".join(f"{k}={v}" for k, v in info["quick"].items())
    click.echo(f"\n--quick:  {quick or '-'}")
    click.echo(f"\nrun it:   dlbench run {name} [-p KEY=VALUE]...")


def _range_text(param: dict) -> str:
    if param["choices"]:
        return "|".join(str(c) for c in param["choices"])
    if param["low"] is not None or param["high"] is not None:
        low = "" if param["low"] is None else param["low"]
        high = "" if param["high"] is None else param["high"]
        return f"[{low}, {high}]"
    return ""


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
@click.option("--register", "register", metavar="NAME",
              help="Register the run's model in the MLflow Model Registry as NAME (a new version).")
@click.option("--alias", metavar="ALIAS", help="With --register: point ALIAS (e.g. champion) at it.")
@click.option("--seeds", type=SeedList(), metavar="SEEDS",
              help="Repeat over these seeds (0-4 or 0,3,7): one parent run with a child per"
                   " seed; the parent logs each metric's mean, std, n and 95% CI.")
def run(name, params, data_path, quick, seed, experiment_name, run_name, tracking_uri,
        resume_run_id, strategy, register, alias, seeds, as_json):
    """Run experiment NAME and log it to MLflow."""
    from dlbench.declarations import parse_assignments
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
        register=register,
        alias=alias,
    )
    plugins = registry()
    if seeds is not None:
        from dlbench.errors import UsageError
        from dlbench.repeats import run_seeds

        if click.get_current_context().get_parameter_source("seed").name != "DEFAULT":
            raise UsageError("--seed runs one seed, --seeds several (fix: drop --seed)")
        start, show = (lambda: run_seeds(request, seeds, plugins)), _print_repeats
    else:
        start, show = (lambda: execute(request, plugins)), _print_summary
    with stdout_to_stderr():
        result = start()
    if as_json:
        emit_json(result.to_json())
    else:
        show(result)
    if result.status == "KILLED":
        sys.exit(EXIT_INTERRUPTED)
    if result.status != "FINISHED":
        reason = (result.error or "").strip().splitlines() or ["no reason recorded"]
        click.echo(f"error: run {result.run_id} {result.status}: {reason[0]}", err=True)
        sys.exit(1)


def _print_repeats(result) -> None:
    from dlbench.repeats import summary_rows

    parent = result.parent
    click.echo(f"run {parent.run_id} {parent.status} in {parent.duration_s:.1f} s:"
               f" {len(result.children)} of {len(result.seeds)} seed(s) run")
    rows = [{"seed": s, "run_id": c.run_id, "status": c.status}
            for s, c in zip(result.seeds, result.children)]
    click.echo(format_table(rows, ["seed", "run_id", "status"]))
    rows = summary_rows(result)
    if rows:
        click.echo("\n" + format_table(rows, ["metric", "mean ± 95% CI", "ci95", "n", "better"]))
    click.echo(f"artifacts: {parent.artifact_uri}")


def _print_summary(result) -> None:
    click.echo(f"run {result.run_id} {result.status} in {result.duration_s:.1f} s")
    rows = [{"metric": k, "value": v} for k, v in sorted(result.metrics.items())]
    if rows:
        click.echo(format_table(rows, ["metric", "value"]))
    click.echo(f"artifacts: {result.artifact_uri}")
    if result.registered_model:
        click.echo(f"registered: {result.registered_model}")


@main.command()
@json_option
def plugins(as_json):
    """Show each plugin: distribution, version, what it registered, load errors."""
    from dlbench.registry import load_registry

    found = load_registry(reserved=main._core())
    infos = [info.to_json() for _, info in sorted(found.plugins.items())]
    if as_json:
        emit_json(infos)
        return
    rows = [
        {
            "plugin": i["name"],
            "distribution": f"{i['distribution']} {i['version']}" if i["distribution"] else None,
            "experiments": ", ".join(i["experiments"]) or None,
            "datasets": ", ".join(i["datasets"]) or None,
            "commands": ", ".join(i["commands"]) or None,
            "errors": len(i["errors"]) or None,
        }
        for i in infos
    ]
    click.echo(format_table(rows, ["plugin", "distribution", "experiments", "datasets",
                                   "commands", "errors"]))
    for problem in found.problems:
        click.echo(f"error: {problem}", err=True)


@main.command()
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; loopback unless you mean to share it.")
@tracking_uri_option
def ui(port, host, tracking_uri):
    """Open the MLflow UI on the project's store."""
    from dlbench.store import ui_command

    command = ui_command(tracking_uri, host=host, port=port)
    # MLflow 3's server also starts a job runner and its workers, which a UI does not need.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    click.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C to stop)", err=True)
    os.execvp(command[0], command)
