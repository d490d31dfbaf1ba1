"""A sweep: search a space of params with trials run as child runs of one sweep run.

``dlbench sweep`` validates the whole space first (:mod:`dlbench.axes`), opens the parent
run and an Optuna study (:mod:`dlbench.study`), then asks the study for a trial's params
whenever a worker is free (:mod:`dlbench.workers`), tells it how each trial ended, and
ranks the trials as the experiment declares its metric (:mod:`dlbench.sweep_records`).

- ``--search grid`` queues every point of the grid (first axis slowest; ``--trials K`` runs
  K of them drawn at random), ``random`` and ``tpe`` sample ``--trials`` points, seeded.
- ``--prune median|asha``: each trial reports a metric at every step it logs, and the
  pruner may stop it; a pruned trial counts as done.
- ``--resume SWEEP_RUN_ID`` continues a sweep that was killed or interrupted: what ended is
  kept, what was running is asked again, and only the rest of the budget runs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from dlbench.axes import (GRID_LIMIT, Axis, expand_grid, grid_points, grid_size, parse_space,
                          split_values)
from dlbench.errors import UsageError, first_line
from dlbench.sweep_records import (SUPERSEDED_TAG, best_trial, close_dead_trial, failed_trial,
                                   rank, record_from_run, score, summarize, trial_rows,
                                   trial_runs)
from dlbench.workers import thread_budget

__all__ = ["SweepRequest", "SweepResult", "run_sweep", "expand_grid", "split_values", "rank",
           "best_trial", "trial_rows", "ranking_mode", "thread_budget"]

BACKENDS = ("local", "ray")
STORAGE_TAG = "dlbench.sweep.storage"
STUDY_TAG = "dlbench.sweep.study"


def ranking_mode(experiment, metric: str | None, mode: str | None) -> str:
    """``mode`` as given, else the goal ``experiment`` declares for ``metric``; a metric with no
    declared direction needs ``--mode`` (no guessing from its name)."""
    if mode is not None:
        return mode
    if metric is None:
        return "min"
    goal = experiment.goal(metric)
    if goal is None:
        raise UsageError(
            f"experiment {experiment.name!r} declares no direction for metric {metric!r}"
            " (fix: --mode max or --mode min; plugin authors: logs=(Metric(name, goal), ...))"
        )
    return goal


@dataclass
class SweepRequest:
    """What ``dlbench sweep`` was asked, as typed."""

    experiment: str
    space: tuple[str, ...] = ()  # the -p options, KEY=AXIS
    search: str | None = None  # grid when every axis is a list, else tpe
    trials: int | None = None
    prune: str = "none"
    prune_metric: str | None = None
    storage: str | None = None
    workers: int = 1
    backend: str = "local"
    quick: bool = False
    seed: int = 0
    data_path: Path | None = None
    metric: str | None = None
    mode: str | None = None
    experiment_name: str | None = None
    run_name: str | None = None
    tracking_uri: str | None = None
    resume: str | None = None  # the parent run id of a sweep to continue
    seeds: list[int] | None = None  # repeat each trial over these seeds (run --seeds)


@dataclass
class SweepPlan:
    """A checked request: everything that decides the sweep's trials. Kept in the study, so
    that ``--resume`` continues exactly this sweep."""

    experiment: str
    axes: dict[str, str]  # name -> the axis as typed (normalized)
    search: str
    trials: int
    prune: str
    prune_metric: str | None
    prune_sign: float  # -1 when the pruning metric's goal is opposite to the ranked one's
    metric: str | None
    mode: str
    seed: int
    quick: bool
    data_path: str | None
    experiment_name: str
    seeds: list[int] | None = None  # each trial a `run --seeds` parent over these


@dataclass
class SweepResult:
    run_id: str
    experiment_id: str
    status: str
    metric: str | None
    mode: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0

    @property
    def best(self) -> dict[str, Any] | None:
        return best_trial(self.trials, self.metric)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "best": self.best}


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (choose: {', '.join(BACKENDS)})")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError(
                "--backend ray needs Ray, which is not installed (fix: pip install 'dlbench[ray]')"
            ) from None


def check_storage(url: str) -> None:
    """A ``--storage`` that cannot be opened is a usage error, before anything is written."""
    from dlbench.study import open_storage

    try:
        open_storage(url)
    except Exception as exc:
        raise UsageError(f"--storage {url}: cannot open it ({first_line(exc)}); fix: a path for"
                         " a journal file, sqlite:///..., postgresql://... or grpc://HOST:PORT")


def make_plan(request: SweepRequest, experiment) -> tuple[SweepPlan, dict[str, Axis]]:
    """Check everything about the request before anything is written (UsageError otherwise)."""
    from dlbench.runner import check_data_path

    if not request.space:
        raise UsageError("a sweep needs at least one -p KEY=V1,V2 (fix: -p lr=0.1,0.01)")
    axes = parse_space(request.space, experiment)
    search = request.search or ("grid" if all(a.kind == "list" for a in axes.values()) else "tpe")
    if search == "grid":
        for axis in axes.values():
            if not axis.discrete:
                raise UsageError(
                    f"--search grid cannot enumerate axis {axis.name}={axis.text} (fix: list"
                    f" its values, -p {axis.name}=a,b,c, or --search tpe --trials N)")
        size = grid_size(axes)
        if request.trials is None and size > GRID_LIMIT:
            raise UsageError(f"the grid has {size:,} points, more than {GRID_LIMIT:,} (fix:"
                             " --trials N runs N of them drawn at random, or give fewer values)")
        trials = min(size, request.trials or size)
    elif request.trials is None:
        raise UsageError(f"--search {search} needs a budget (fix: --trials 20)")
    else:
        trials = request.trials
    check_data_path(request.data_path)
    metric = request.metric or (experiment.metric_names[0] if experiment.logs else None)
    mode = ranking_mode(experiment, metric, request.mode)
    if request.seeds is not None:
        if request.prune != "none":
            raise UsageError("--prune watches one run's curve; with --seeds a trial is several"
                             " runs (fix: drop --prune, or --seeds)")
        if metric is not None:
            metric = f"{metric}_mean"  # what a --seeds parent logs: trials rank by the mean
    prune_metric, sign = None, 1.0
    if request.prune != "none":
        prune_metric = request.prune_metric or metric
        if prune_metric is None:
            raise UsageError(f"--prune {request.prune} needs a metric to watch (fix: --metric NAME"
                             " or --prune-metric NAME)")
        if experiment.logs and prune_metric not in experiment.metric_names:
            raise UsageError(f"--prune-metric {prune_metric}: experiment {experiment.name!r} logs"
                             f" no such metric (known: {', '.join(experiment.metric_names)})")
        sign = 1.0 if (experiment.goal(prune_metric) or mode) == mode else -1.0
    plan = SweepPlan(
        experiment=experiment.name, axes={n: a.text for n, a in axes.items()}, search=search,
        trials=trials, prune=request.prune, prune_metric=prune_metric, prune_sign=sign,
        metric=metric, mode=mode, seed=request.seed, quick=request.quick,
        data_path=str(request.data_path) if request.data_path else None,
        experiment_name=request.experiment_name or experiment.name,
        seeds=list(request.seeds) if request.seeds is not None else None)
    return plan, axes


@dataclass
class Sitting:
    """One process's part of a sweep: the whole of it, or what a ``--resume`` continues."""

    plan: SweepPlan
    axes: dict[str, Axis]
    study: Any
    storage: str
    client: Any
    store: Any
    parent_id: str
    experiment_id: str
    workers: int
    backend: str
    log: Callable[[str], None]
    records: list[dict[str, Any]] = field(default_factory=list)  # every trial that ended
    asked: dict[int, Any] = field(default_factory=dict)  # running trials, by number

    @property
    def done(self) -> list[dict[str, Any]]:
        """The trials that count against the budget (an interrupted one is asked again)."""
        return [t for t in self.records if t["state"] != "interrupted"]

    @property
    def left(self) -> int:
        return self.plan.trials - len(self.done) - len(self.asked)


def run_sweep(request: SweepRequest, registry, log: Callable[[str], None] = print) -> SweepResult:
    """Validate the whole space, open the sweep's parent run and study, run the trials, rank."""
    from dlbench.lifecycle import start_run
    from dlbench.orphans import repair_orphans_quietly
    from dlbench.runner import run_tags
    from dlbench.store import experiment_id, open_store, resolve_store
    from dlbench.study import create_study, default_storage, queue_points

    check_backend(request.backend)
    if request.resume:
        return resume_sweep(request, registry, log)
    entry = registry.experiment(request.experiment)
    plan, axes = make_plan(request, entry.value)
    if request.storage:
        check_storage(request.storage)
    store = resolve_store(request.tracking_uri)
    client = open_store(store)
    repair_orphans_quietly(client)
    exp_id = experiment_id(client, plan.experiment_name, store)
    parent_id = start_run(client, exp_id, name=request.run_name, tags={
        **run_tags(entry), "dlbench.sweep": "true", "dlbench.sweep.backend": request.backend,
        "mlflow.source.name": "dlbench sweep " + plan.experiment,
    })
    storage = request.storage or default_storage(store, parent_id)
    if "://" not in storage:  # a journal file: the same path for workers in other folders
        storage = str(Path(storage).resolve())
    sitting = Sitting(plan, axes, None, storage, client, store, parent_id, exp_id,
                      request.workers, request.backend, log)

    def begin(tracker) -> None:
        if plan.seeds is not None:
            tracker.log_params({"seeds": ",".join(map(str, plan.seeds))})
        tracker.log_params({**plan.axes, "trials": plan.trials, "workers": request.workers,
                            "backend": request.backend, "seed": plan.seed, "quick": plan.quick,
                            "metric": plan.metric or "", "mode": plan.mode,
                            "search": plan.search, "prune": plan.prune,
                            "prune_metric": plan.prune_metric or ""})
        tracker.set_tags({STORAGE_TAG: storage, STUDY_TAG: parent_id})
        sitting.study = create_study(storage, parent_id, mode=plan.mode, search=plan.search,
                                     seed=plan.seed, trials=plan.trials, prune=plan.prune,
                                     plan=asdict(plan))
        if plan.search == "grid":
            queue_points(sitting.study, grid_points(axes, plan.trials, plan.seed))

    return _sit(sitting, begin)


def resume_sweep(request: SweepRequest, registry, log: Callable[[str], None]) -> SweepResult:
    """Continue sweep ``request.resume``: keep what ended, ask again what was running."""
    from dlbench.lifecycle import context_tags, reopen_run, resumable_run
    from dlbench.orphans import repair_orphans_quietly
    from dlbench.store import open_store, resolve_store
    from dlbench.study import PLAN_ATTR, load_study

    parent_id = request.resume
    given = [name for name, value in (("-p", request.space), ("--search", request.search),
                                      ("--seeds", request.seeds),
                                      ("--trials", request.trials), ("--metric", request.metric),
                                      ("--mode", request.mode), ("--storage", request.storage),
                                      ("--prune-metric", request.prune_metric),
                                      ("--prune", request.prune != "none")) if value]
    if given:
        raise UsageError(f"--resume continues the sweep as it was planned (fix: drop"
                         f" {', '.join(given)})")
    store = resolve_store(request.tracking_uri)
    client = open_store(store, create=False)
    repair_orphans_quietly(client)  # the killed sweep and its running trials are orphans now
    parent = resumable_run(client, parent_id, request.experiment, what="sweep")
    tags = parent.data.tags
    if tags.get("dlbench.sweep") != "true" or STORAGE_TAG not in tags:
        raise UsageError(f"--resume {parent_id}: not a sweep run that can be resumed (fix: pass"
                         " the parent run id that dlbench sweep printed)")
    storage = tags[STORAGE_TAG]
    try:
        study = load_study(storage, tags[STUDY_TAG])
        plan = SweepPlan(**study.user_attrs[PLAN_ATTR])
    except Exception as exc:
        raise UsageError(f"--resume {parent_id}: its study in {storage} cannot be read"
                         f" ({first_line(exc)}); fix: start the sweep again") from None
    experiment = registry.experiment(plan.experiment).value
    axes = parse_space([f"{k}={v}" for k, v in plan.axes.items()], experiment)
    # A fresh sampler with the sweep's seed would draw the first points again.
    study = load_study(storage, tags[STUDY_TAG], search=plan.search, prune=plan.prune,
                       seed=plan.seed + len(study.trials), trials=plan.trials)
    sitting = Sitting(plan, axes, study, storage, client, store, parent_id,
                      parent.info.experiment_id, request.workers, request.backend, log)
    _settle_interrupted(sitting)
    reopen_run(client, parent_id, {**context_tags(), "dlbench.sweep.resumed_at":
                                   f"{len(sitting.done)} of {plan.trials} trials"})
    return _sit(sitting, lambda tracker: None)


def _settle_interrupted(s: Sitting) -> None:
    """Read back the trials that ended, and ask again those that did not: what was running
    when the sweep died is recorded FAILED (its run is an orphan) and superseded."""
    from optuna.trial import Trial, TrialState

    from dlbench.study import SUPERSEDED_ATTR, as_text, planned_params, queue_points

    runs = trial_runs(s.client, s.experiment_id, s.parent_id)
    again, kept = [], []
    for trial in s.study.get_trials(deepcopy=False):
        run = runs.get(trial.number)
        record = record_from_run(run, as_text(trial.params)) if run is not None else None
        if trial.state == TrialState.RUNNING:
            if record is not None and record["state"] in ("finished", "pruned"):
                _tell(s, trial.number, record)  # it ended; the sweep died before hearing it
            else:
                Trial(s.study, trial._trial_id).set_user_attr(SUPERSEDED_ATTR, True)
                s.study.tell(trial.number, state=TrialState.FAIL)
                again.append(planned_params(trial))
                if run is not None:
                    s.client.set_tag(run.info.run_id, SUPERSEDED_TAG, "true")
                continue
        elif trial.user_attrs.get(SUPERSEDED_ATTR):
            continue
        kept.append(planned_params(trial))
        if trial.state == TrialState.WAITING:
            continue
        s.records.append(record or failed_trial(_spec(s, trial.number, as_text(trial.params)),
                                                trial.user_attrs.get("dlbench.error", "failed")))
    if s.plan.search == "grid":  # whatever of the grid is neither done nor queued
        again = _missing(grid_points(s.axes, s.plan.trials, s.plan.seed), kept)
    queue_points(s.study, [p for p in again if set(p) == set(s.axes)])
    s.log(f"sweep {s.parent_id}: resuming with {len(s.records)} of {s.plan.trials} trials done"
          f", {len(again)} asked again")


def _missing(points: list[dict], present: list[dict]) -> list[dict]:
    """``points`` less one of each in ``present`` (a grid point may appear more than once)."""
    left = [dict(p) for p in present]
    missing = []
    for point in points:
        if point in left:
            left.remove(point)
        else:
            missing.append(point)
    return missing


def _sit(s: Sitting, begin: Callable) -> SweepResult:
    """Run what is left of the sweep under its parent run, which ends like any run."""
    from dlbench.lifecycle import ending
    from dlbench.tracker import Tracker

    scratch = Path(tempfile.mkdtemp(prefix=f"dlbench-sweep-{s.parent_id[:8]}-"))
    tracker = Tracker(s.client, s.parent_id, scratch)
    started = time.monotonic()
    searched = s.plan.search != "grid" or s.plan.prune != "none"

    def summarize_parent(outcome) -> None:
        summarize(tracker, rank(s.records, s.plan.metric, s.plan.mode), s.plan.metric,
                  complete=len(s.done) == s.plan.trials, study=s.study if searched else None)

    try:
        with ending(tracker, before_end=summarize_parent) as outcome:
            begin(tracker)
            _drive(s)
            failed = [t for t in s.records if t["state"] == "failed"]
            if failed:
                outcome.fail(f"{len(failed)} of {len(s.records)} trials did not finish")
            _note_unpruned(s)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return SweepResult(run_id=s.parent_id, experiment_id=s.experiment_id, status=outcome.status,
                       metric=s.plan.metric, mode=s.plan.mode,
                       trials=rank(s.records, s.plan.metric, s.plan.mode), error=outcome.error,
                       duration_s=round(time.monotonic() - started, 3))


def _spec(s: Sitting, index: int, params: Mapping[str, str], trial_id: int | None = None):
    from dlbench.study import StudyRef
    from dlbench.workers import TrialSpec

    ref = None
    if s.plan.prune != "none":
        ref = StudyRef(storage=s.storage, name=s.parent_id, prune=s.plan.prune,
                       metric=s.plan.prune_metric, sign=s.plan.prune_sign)
    return TrialSpec(index=index, params=dict(params), seed=s.plan.seed,
                     experiment=s.plan.experiment, store=s.store, parent_run_id=s.parent_id,
                     experiment_name=s.plan.experiment_name, quick=s.plan.quick,
                     data_path=s.plan.data_path, threads=thread_budget(s.workers),
                     study=ref, trial_id=trial_id,
                     seeds=tuple(s.plan.seeds) if s.plan.seeds is not None else None)


def _drive(s: Sitting) -> None:
    """Ask a trial whenever a worker is free, tell the study how each one ended."""
    from dlbench.study import as_text, distributions
    from dlbench.workers import WorkerSetup, open_workers

    if s.left <= 0:
        return
    space = distributions(s.axes)
    threads = thread_budget(s.workers)
    s.log(f"sweep {s.parent_id}: {s.left} trials ({s.plan.search} search, prune"
          f" {s.plan.prune}) on {s.backend} with {s.workers} worker(s), {threads[0]} intra-op"
          " thread(s) each")
    with open_workers(s.backend, s.workers, WorkerSetup(s.plan.experiment, threads)) as pool:
        try:
            while s.left > 0 or pool.busy:
                while s.left > 0 and pool.capacity:
                    trial = s.study.ask(space)
                    s.asked[trial.number] = trial
                    # Trial ids are how a worker's Trial(study, id) reports to this study.
                    pool.submit(_spec(s, trial.number, as_text(trial.params), trial._trial_id))
                _settle(s, pool.next_result())
        except BaseException as exc:
            for record in pool.stop(terminate=not isinstance(exc, KeyboardInterrupt)):
                _settle(s, record)
            raise


def _settle(s: Sitting, record: dict) -> None:
    """Tell the study how a trial ended, keep its record, and print its line."""
    if record["run_id"] is None and record["state"] == "failed":
        record["run_id"] = close_dead_trial(s.client, s.experiment_id, s.parent_id,
                                            record["index"], record["error"])
    if record["state"] == "interrupted":
        s.asked.pop(record["index"], None)  # left RUNNING in the study: --resume asks it again
    else:
        _tell(s, record["index"], record)
    s.records.append(record)
    ranked = [t for t in rank(s.records, s.plan.metric, s.plan.mode)
              if score(t, s.plan.metric) is not None]
    value = score(record, s.plan.metric)
    place = f" rank {ranked.index(record) + 1}/{len(ranked)}" if value is not None else ""
    shown = f" {s.plan.metric}={value:.4g}" if value is not None else ""
    how = (f"pruned at step {record['pruned_at_step']}" if record["state"] == "pruned"
           else record["state"])
    s.log(f"trial {record['index']} {how} ({len(s.records)}/{s.plan.trials}){shown}{place}"
          f" {record.get('duration_s') or 0:.1f} s"
          + (f": {record['error']}" if record["state"] == "failed" and record.get("error") else ""))


def _tell(s: Sitting, number: int, record: dict) -> None:
    from optuna.trial import TrialState

    trial = s.asked.pop(number, None)
    value = score(record, s.plan.metric)
    if record["state"] == "pruned":
        s.study.tell(number, state=TrialState.PRUNED)
    elif value is not None:
        s.study.tell(number, value)
    else:
        if trial is not None and record.get("error"):
            trial.set_user_attr("dlbench.error", record["error"])
        s.study.tell(number, state=TrialState.FAIL)


def _note_unpruned(s: Sitting) -> None:
    """Pruning needs a metric logged with a step; say so when none was."""
    if s.plan.prune == "none":
        return
    if not any(t.intermediate_values for t in s.study.get_trials(deepcopy=False)):
        s.log(f"note: --prune {s.plan.prune} had nothing to watch: no trial logged"
              f" {s.plan.prune_metric!r} with a step (fix: --prune-metric NAME of a per-epoch"
              " metric, e.g. val_loss)")
