"""``dlbench rerun RUN_ID [--tolerance X]``: run a recorded run again and say whether it
reproduced.

The new run gets the original's experiment, params, seed, quick flag and data path, goes
into the same MLflow experiment, and is linked to it by tag ``dlbench.rerun_of``. What could
make the numbers differ is named first (a warning per difference): the code commit, a
dataset's digest, the dlbench/plugin/TensorFlow/Keras/Python versions. Then, per final
metric, the original value, the new one, and whether they agree within ``--tolerance``
(absolute; 0: exactly). Wall-clock metrics (a name with ``seconds`` in it) and system
metrics are shown apart and never counted. Exit 0 when every metric reproduced, 1 otherwise
(or when the rerun failed), 130 when interrupted.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import click

from dlbench.console import emit_json, registry, stdout_to_stderr
from dlbench.errors import EXIT_INTERRUPTED, TrackingError, UsageError
from dlbench.options import json_option, tracking_uri_option
from dlbench.tables import format_table

RERUN_TAG = "dlbench.rerun_of"
TIMING = re.compile(r"(^|_)seconds(_|$)")
"""Metrics that measure wall-clock time: they differ on every run, so they are not compared."""
PROVENANCE = {
    "mlflow.source.git.commit": "code commit",
    "dlbench.version": "dlbench version",
    "dlbench.plugin_version": "plugin version",
    "dlbench.tensorflow_version": "TensorFlow version",
    "dlbench.keras_version": "Keras version",
    "dlbench.python": "Python version",
}
"""Tags whose difference can explain a metric that does not reproduce."""


@click.command("rerun")
@click.argument("run_id")
@click.option("--tolerance", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Largest |new - original| of a metric still counted as reproduced.")
@tracking_uri_option
@json_option
def command(run_id, tolerance, tracking_uri, as_json):
    """Run RUN_ID again with its params, seed, quick flag and data; compare the metrics."""
    from dlbench.runner import DATA_PATH_TAG, RunRequest, execute
    from dlbench.store import open_store, resolve_store

    store = resolve_store(tracking_uri)
    client = open_store(store, create=False)
    original = _get_run(client, run_id)
    tags = original.data.tags
    from dlbench.repeats import REPEATS_TAG

    if REPEATS_TAG in tags:
        raise UsageError(f"run {run_id} is the parent of seeds {tags[REPEATS_TAG]}, not one run"
                         f" (fix: rerun one of its seed runs, or: dlbench run"
                         f" {tags.get('dlbench.experiment', 'NAME')} --seeds {tags[REPEATS_TAG]})")
    experiment = registry().experiment(_experiment_name(original)).value
    declared = {p.name for p in experiment.params}
    params = original.data.params
    request = RunRequest(
        experiment=experiment.name,
        params={k: v for k, v in params.items() if k in declared},
        data_path=Path(tags[DATA_PATH_TAG]) if DATA_PATH_TAG in tags else None,
        quick=params.get("quick") == "true",
        seed=int(params.get("seed", 0)),
        experiment_name=client.get_experiment(original.info.experiment_id).name,
        tracking_uri=store.uri,
        tags={RERUN_TAG: run_id},
    )
    with stdout_to_stderr():
        result = execute(request, registry(), store=store)
    rerun = client.get_run(result.run_id)
    warnings = differences(original.data.tags, rerun.data.tags)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    rows = compare(original.data.metrics, rerun.data.metrics, tolerance)
    reproduced = result.status == "FINISHED" and all(r["reproduced"] for r in rows if r["compared"])
    if as_json:
        emit_json({"run_id": result.run_id, "rerun_of": run_id, "status": result.status,
                   "tolerance": tolerance, "reproduced": reproduced, "warnings": warnings,
                   "metrics": rows, "error": result.error})
    else:
        click.echo(f"rerun {result.run_id} of {run_id}: {result.status}"
                   f" in {result.duration_s:.1f} s, tolerance {tolerance:g}")
        shown = [{**r, "reproduced": _verdict(r)} for r in rows]
        click.echo(format_table(shown, ["metric", "original", "rerun", "difference", "reproduced"]))
        click.echo("reproduced" if reproduced else "NOT reproduced")
    if result.status == "KILLED":
        sys.exit(EXIT_INTERRUPTED)
    if not reproduced:
        if result.status != "FINISHED":
            click.echo(f"error: rerun {result.run_id} {result.status}: {result.error}", err=True)
        sys.exit(1)


def _get_run(client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(f"run {run_id!r} not found in {client.tracking_uri}; fix: take the"
                            " run_id from `dlbench compare` or the MLflow UI, or pass"
                            " --tracking-uri") from exc


def _experiment_name(run) -> str:
    tags = run.data.tags
    if "dlbench.experiment" not in tags:
        raise UsageError(f"run {run.info.run_id} was not made by `dlbench run`"
                         " (no dlbench.experiment tag): nothing to rerun")
    if tags.get("dlbench.sweep") == "true":
        raise UsageError(f"run {run.info.run_id} is a sweep; rerun one of its trials instead")
    if "mlflow.parentRunId" in tags and "dlbench.sweep.trial" not in tags \
            and "dlbench.repeat_of" not in tags:  # a sweep's trial, a --seeds seed: whole runs
        raise UsageError(f"run {run.info.run_id} is a child run; rerun its parent"
                         f" {tags['mlflow.parentRunId']} instead")
    return tags["dlbench.experiment"]


def differences(original: dict, rerun: dict) -> list[str]:
    """What differs between two runs' provenance tags, as sentences."""
    found = []
    digests = sorted(k for k in {*original, *rerun}
                     if k.startswith("dlbench.dataset.") and k.endswith(".digest"))
    for key in [*PROVENANCE, *digests]:
        before, after = original.get(key), rerun.get(key)
        if before != after:
            what = PROVENANCE.get(key) or f"dataset digest ({key[len('dlbench.dataset.'):-len('.digest')]})"
            found.append(f"{what} differs: {before or 'not recorded'} -> {after or 'not recorded'}")
    return found


def compare(original: dict, rerun: dict, tolerance: float) -> list[dict]:
    """One row per final metric of either run: both values, the difference, and whether it
    reproduced within ``tolerance`` (timing and system metrics: shown, not compared)."""
    from dlbench.system_metrics import is_system_metric

    rows = []
    for key in sorted(k for k in {*original, *rerun} if not is_system_metric(k)):
        before, after = original.get(key), rerun.get(key)
        compared = not TIMING.search(key)
        difference = None if before is None or after is None else after - before
        ok = difference is not None and (
            abs(difference) <= tolerance or (math.isnan(before) and math.isnan(after)))
        rows.append({"metric": key, "original": before, "rerun": after, "difference": difference,
                     "compared": compared, "reproduced": ok if compared else None})
    return rows


def _verdict(row: dict) -> str:
    if not row["compared"]:
        return "(timing)"
    return "yes" if row["reproduced"] else "NO"
