"""One ``dlbench run``: check the input, open the store, seed, run the experiment, read it back.

Usage errors are raised before anything is written, so a bad ``-p`` leaves no run behind.
Once the MLflow run exists, :func:`dlbench.lifecycle.ending` records how it ended.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from dlbench.errors import UsageError
from dlbench.lifecycle import context_tags, ending, start_run
from dlbench.models import check_registration
from dlbench.orphans import repair_orphans_quietly
from dlbench.registry import Registry
from dlbench.store import Store, artifact_folder, experiment_id, open_store, resolve_store

DEFAULT_SEED = 0
DATA_PATH_TAG = "dlbench.data_path"
RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
"""What a run id may hold (MLflow's are 32 hex digits): it becomes part of a folder name."""


@dataclass
class RunRequest:
    """What the user asked for, as typed on the command line."""

    experiment: str
    params: Mapping[str, str] = field(default_factory=dict)
    data_path: Path | None = None
    quick: bool = False
    seed: int = DEFAULT_SEED
    experiment_name: str | None = None
    run_name: str | None = None
    tracking_uri: str | None = None
    parent_run_id: str | None = None  # a sweep's trials nest under the sweep's run
    resume_run_id: str | None = None  # continue this run from its last checkpoint
    strategy: str | None = None  # "mirrored": tf.distribute over the local devices
    tags: Mapping[str, str] = field(default_factory=dict)
    register: str | None = None  # register the run's model under this name...
    alias: str | None = None  # ...and point this alias at the new version


@dataclass
class RunResult:
    """How a run ended, as ``dlbench run --json`` prints it."""

    run_id: str
    experiment_id: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    artifact_uri: str
    error: str | None = None
    duration_s: float = 0.0
    registered_model: str | None = None  # models:/NAME/VERSION with --register

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def execute(request: RunRequest, registry: Registry, store: Store | None = None,
            step_observer=None) -> RunResult:
    """Run ``request`` to its end and read it back. ``step_observer(key, value, step)`` sees
    every per-step metric as it is logged (a sweep's pruner; see ``Tracker.observe_steps``)."""
    if request.resume_run_id and request.params:
        raise UsageError("--resume continues with the run's own params (fix: drop the -p options)")
    if request.resume_run_id and not RUN_ID.fullmatch(request.resume_run_id):
        raise UsageError(f"--resume {request.resume_run_id!r} is not a run id (fix: the run_id"
                         " that `dlbench run --json` or `dlbench runs` prints)")
    entry, params, store, client, tags = prepare(request, registry, store)
    experiment = entry.value
    resume = None
    if request.resume_run_id:
        from dlbench.checkpoints import load_resume, reopen

        run_id = request.resume_run_id
        scratch = Path(tempfile.mkdtemp(prefix=f"dlbench-{run_id[:8]}-"))
        try:
            resume = load_resume(client, run_id, experiment.name, scratch)
            params = experiment.resolve_params(resume.params, quick=resume.quick)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        request = dataclasses.replace(request, seed=resume.seed, quick=resume.quick)
        exp_id = resume.experiment_id
        reopen(client, resume, {**context_tags(), **tags})  # this process owns it now
    else:
        exp_id = experiment_id(client, request.experiment_name or experiment.name, store)
        run_id = start_run(client, exp_id, name=request.run_name,
                           parent_run_id=request.parent_run_id, tags=tags)
        scratch = Path(tempfile.mkdtemp(prefix=f"dlbench-{run_id[:8]}-"))
    from dlbench.context import RunContext

    ctx = RunContext(
        client=client,
        run_id=run_id,
        experiment_id=exp_id,
        experiment=experiment,
        params=params,
        seed=request.seed,
        quick=request.quick,
        data_path=Path(request.data_path) if request.data_path else None,
        scratch=scratch,
        registry=registry,
    )
    ctx.plugin = entry.plugin
    if step_observer is not None:
        ctx.observe_steps(step_observer)
    if resume is not None:
        ctx.initial_epoch, ctx.resume_checkpoint = resume.epoch, resume.checkpoint
    registered = None
    started = time.monotonic()
    try:
        with ending(ctx) as outcome:
            ctx.log_params({**params, "seed": request.seed, "quick": request.quick})
            if experiment.tensorflow:
                ctx.set_tags(_framework_versions())
            if request.strategy:
                from dlbench.distribute import make_strategy

                ctx.strategy = make_strategy(request.strategy)
                ctx.set_tags({"dlbench.strategy": request.strategy,
                              "dlbench.strategy.replicas": ctx.strategy.num_replicas_in_sync})
            from dlbench.seeding import seed_everything

            seed_everything(request.seed, tensorflow=experiment.tensorflow)
            ctx.log(f"run {run_id} {'resumed from epoch %d' % ctx.initial_epoch if resume else 'started'}"
                    f" (store {store.uri})")
            experiment.run(ctx)
            if request.strategy and not ctx.strategy_used:
                ctx.log(f"warning: --strategy {request.strategy} had no effect: this experiment"
                        " builds its models outside ctx.strategy_scope()")
                ctx.set_tags({"dlbench.strategy.used": "false"})
            if request.register:
                registered = _register(ctx, request)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = read_back(client, run_id, exp_id, outcome.error, time.monotonic() - started)
    result.registered_model = registered if outcome.status == "FINISHED" else None
    return result


def prepare(request: RunRequest, registry: Registry, store: Store | None = None):
    """What every run checks and opens before it starts, a ``--seeds`` parent included:
    the experiment, its params, ``--data``, ``--register``, the store (orphans repaired) and
    the run's tags. Any mistake is a usage error here, before anything is written.

    Returns (registry entry, resolved params, store, client, tags).
    """
    # Figures are rendered to files, never to a window: no display on servers and CI.
    os.environ.setdefault("MPLBACKEND", "Agg")
    entry = registry.experiment(request.experiment)
    experiment = entry.value
    if request.strategy and not experiment.tensorflow:
        raise UsageError(f"--strategy {request.strategy}: experiment {experiment.name!r} does"
                         " not use TensorFlow")
    params = experiment.resolve_params(request.params, quick=request.quick)
    check_data_path(request.data_path)
    check_registration(request.register, request.alias)
    store = store or resolve_store(request.tracking_uri)
    if request.experiment_name and store.artifact_root is not None:
        artifact_folder(store.artifact_root, request.experiment_name)  # a usage error: say it now
    client = open_store(store)
    repair_orphans_quietly(client)
    tags = {**run_tags(entry), **request.tags}
    if request.data_path:  # what `dlbench rerun` runs on again
        tags[DATA_PATH_TAG] = str(Path(request.data_path).resolve())
    return entry, params, store, client, tags


def _register(ctx, request: RunRequest) -> str:
    """Register the run's model (``--register NAME [--alias A]``); its ``models:/`` URI."""
    from dlbench.models import pick_registered, register

    model = pick_registered(ctx.logged_models, ctx.experiment.name)
    version = register(ctx.client, model, request.register, request.alias)
    uri = f"models:/{request.register}/{version.version}"
    ctx.log(f"registered {model.uri} as {uri}"
            + (f" (models:/{request.register}@{request.alias})" if request.alias else ""))
    return uri


def check_data_path(path) -> None:
    """A usage error, before anything is written, when ``--data`` names nothing."""
    if path is not None and not Path(path).exists():
        raise UsageError(f"--data {path}: no such file or folder")


def read_back(client, run_id, exp_id, error, duration) -> RunResult:
    """The summary comes from the store itself: what is printed is what was recorded (the
    experiment's metrics: system metrics stay in the run's System metrics tab)."""
    from dlbench.system_metrics import is_system_metric

    run = client.get_run(run_id)
    return RunResult(
        run_id=run_id,
        experiment_id=exp_id,
        status=run.info.status,
        params=dict(run.data.params),
        metrics={k: v for k, v in run.data.metrics.items() if not is_system_metric(k)},
        artifact_uri=run.info.artifact_uri,
        error=error,
        duration_s=round(duration, 3),
    )


def run_tags(entry) -> dict[str, str]:
    """Where a run came from: the experiment, the plugin and its source commit."""
    plugin = entry.plugin
    tags = {
        "dlbench.experiment": entry.value.name,
        "dlbench.plugin": plugin.name,
        "dlbench.plugin_distribution": plugin.distribution or "",
        "dlbench.plugin_version": plugin.version or "",
        "mlflow.source.name": "dlbench run " + entry.value.name,
    }
    module = sys.modules.get(getattr(entry.value.run, "__module__", ""), None)
    source = getattr(module, "__file__", None)
    commit = _git_commit(Path(source).parent) if source else None
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _git_commit(folder: Path) -> str | None:
    """The commit of the plugin's source checkout, when it is one (editable installs)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _framework_versions() -> dict[str, str]:
    from dlbench.frameworks import import_tensorflow

    tf = import_tensorflow()  # first here, and quietly: see dlbench.frameworks
    import keras

    return {"dlbench.tensorflow_version": tf.__version__, "dlbench.keras_version": keras.__version__}
