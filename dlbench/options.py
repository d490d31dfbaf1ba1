"""The click options several commands share, defined once so they read and behave the same."""

from __future__ import annotations

from pathlib import Path

import click

tracking_uri_option = click.option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
    help="MLflow store, also read from $MLFLOW_TRACKING_URI [default: sqlite:///mlruns/mlflow.db].")
"""Every command that opens the store takes it the same way."""

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON document on stdout (logs go to stderr).")

MAX_SEED = 2**32 - 1
"""The largest seed numpy accepts: a usage error beyond it, not a FAILED run."""


def _no_system_metrics(ctx, param, value):
    if value:  # read by every run this process (or its workers) starts: dlbench.system_metrics
        import os

        os.environ["DLBENCH_NO_SYSTEM_METRICS"] = "1"


no_system_metrics_option = click.option(
    "--no-system-metrics", is_flag=True, expose_value=False, callback=_no_system_metrics,
    help="Do not sample CPU, memory, disk and network into the run (DLBENCH_NO_SYSTEM_METRICS=1).")

MAX_NAME_LENGTH = 500
"""MLflow's limit on an experiment's name (and a run's): longer is refused before anything runs."""


def _name_within_limit(ctx, param, value):
    if value is not None and not 0 < len(value) <= MAX_NAME_LENGTH:
        raise click.BadParameter(f"must be 1 to {MAX_NAME_LENGTH} characters long, MLflow's limit"
                                 f" (got {len(value)}; fix: a shorter name)")
    return value


RUN_OPTIONS = (
    click.option("--data", "data_path", type=click.Path(path_type=Path),
                 help="Where the data is (the layout is detected; see: dlbench datasets)."),
    click.option("--quick", is_flag=True, help="Smoke mode: tiny data, one epoch, seconds."),
    click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                 help="Seed for python, numpy, TF."),
    click.option("--experiment-name", callback=_name_within_limit,
                 help="MLflow experiment to log into [default: NAME]."),
    tracking_uri_option,
    no_system_metrics_option,
    json_option,
)


def run_options(command):
    """The options ``run`` and ``sweep`` share: data, smoke mode, seed, store, JSON output."""
    for option in reversed(RUN_OPTIONS):
        command = option(command)
    return command
