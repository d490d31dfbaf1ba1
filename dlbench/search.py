"""A sweep's search: a grid of params run as child runs of one sweep run, on a process pool or Ray.

``-p lr=1e-3,1e-4 -p epochs=5,10`` is the cartesian grid of 4 trials. Every value is parsed
by the param's declared type before anything is written, so a typo in the fourth value costs
no run. Each trial is an ordinary ``dlbench run`` (the runner's whole life: seed, status,
failure records) in its own process, nested under the sweep's run with ``mlflow.parentRunId``.

Backends:
- ``local``: a process pool, one fresh process per trial (TensorFlow cannot be reset inside a
  process, and a crash stays in its trial). The machine's cores are divided among the workers:
  each trial gets ``cores // workers`` intra-op threads, set before TensorFlow starts.
- ``ray``: each trial a Ray task that opens its own MLflow run against the same tracking
  URI, so metrics and artifacts log from the workers. ``RAY_ADDRESS`` picks a cluster; for
  more than one machine the store must be a shared ``mlflow server`` (see the README).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from dlbench.errors import UsageError

BACKENDS = ("local", "ray")


def split_values(name: str, text: str) -> list[str]:
    """``"1e-3,1e-4"`` -> ``["1e-3", "1e-4"]``: the values one param takes in the grid."""
    values = [value.strip() for value in text.split(",")]
    if any(value == "" for value in values):
        raise UsageError(
            f"param {name!r}: empty value in {text!r} (fix: -p {name}=a,b with no empty item)"
        )
    return list(dict.fromkeys(values))  # a value given twice is one trial, not two


def parse_grid(pairs: Iterable[str]) -> dict[str, list[str]]:
    """``-p`` options of a sweep -> the values of each axis, in the order given."""
    from dlbench.declarations import parse_assignments

    return {name: split_values(name, text) for name, text in parse_assignments(list(pairs)).items()}


def expand_grid(axes: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the axes' values: the sweep's trials, first axis slowest."""
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


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


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def thread_budget(workers: int, cores: int | None = None) -> tuple[int, int]:
    """(intra-op, inter-op) TensorFlow threads for each of ``workers`` concurrent trials.

    Unlimited, every trial's TensorFlow sizes its pools to the whole machine and N trials
    fight over the cores; dividing them keeps each trial's speed predictable.
    """
    cores = cores or cpu_cores()
    intra = max(1, cores // max(1, workers))
    inter = 2 if intra >= 4 else 1
    return intra, inter


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker process needs to run one trial; plain data, so it pickles."""

    index: int
    experiment: str
    params: Mapping[str, str]
    store: Any  # dlbench.store.Store
    parent_run_id: str
    experiment_name: str
    quick: bool
    seed: int
    data_path: str | None
    threads: tuple[int, int]
    run_name: str


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """One trial, in a worker process: limit threads, then an ordinary run under the parent."""
    intra, inter = spec.threads
    for variable, value in (("TF_NUM_INTRAOP_THREADS", intra), ("TF_NUM_INTEROP_THREADS", inter),
                            ("OMP_NUM_THREADS", intra)):
        os.environ[variable] = str(value)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from dlbench.registry import load_registry
    from dlbench.runner import RunRequest, execute

    registry = load_registry()
    if registry.experiment(spec.experiment).value.tensorflow:
        import tensorflow as tf

        # Must happen before TensorFlow's first op; the worker is fresh, so it does.
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    request = RunRequest(
        experiment=spec.experiment,
        params=dict(spec.params),
        data_path=Path(spec.data_path) if spec.data_path else None,
        quick=spec.quick,
        seed=spec.seed,
        experiment_name=spec.experiment_name,
        run_name=spec.run_name,
        parent_run_id=spec.parent_run_id,
        tags={"dlbench.sweep.trial": str(spec.index), "dlbench.threads.intra_op": str(intra),
              "dlbench.threads.inter_op": str(inter)},
    )
    result = execute(request, registry, store=spec.store)
    return {"index": spec.index, "sweep_params": dict(spec.params), **result.to_json()}


def failed_trial(spec: TrialSpec, exc: BaseException) -> dict[str, Any]:
    """A trial whose process died before its run could record anything."""
    return {"index": spec.index, "sweep_params": dict(spec.params), "run_id": None,
            "status": "FAILED", "metrics": {}, "params": {},
            "error": f"worker died: {type(exc).__name__}: {exc}", "duration_s": 0.0}


Report = Callable[[dict[str, Any]], None]


def run_local(specs: list[TrialSpec], workers: int, report: Report) -> None:
    """Trials on a pool of ``workers`` processes, a fresh one per trial; reported as they end.

    Interrupted, it still reports the trials that recorded their end (KILLED) before raising.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # "spawn": a forked TensorFlow or MLflow (threads, locks) is not safe to use.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1)
    futures: dict = {}
    reported: set = set()

    def collect(future) -> None:
        reported.add(future)
        try:
            report(future.result())
        except Exception as exc:  # the worker process itself crashed
            report(failed_trial(futures[future], exc))

    try:
        futures = {pool.submit(run_trial, spec): spec for spec in specs}
        for future in as_completed(futures):
            collect(future)
    except BaseException as exc:
        # Ctrl-C already reached the workers (same process group): a second signal could cut
        # their clean-up short. SIGTERM reached only us: pass it on, once.
        if not isinstance(exc, KeyboardInterrupt):
            for process in list(getattr(pool, "_processes", {}).values()):
                if process.is_alive():
                    process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future not in reported and future.done() and not future.cancelled():
                collect(future)
        raise
    pool.shutdown(wait=True)


def run_ray(specs: list[TrialSpec], workers: int, report: Report) -> None:
    """Trials as Ray tasks, at most ``workers`` at once; ``RAY_ADDRESS`` selects a cluster."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        variables = {k: v for k, v in os.environ.items()
                     if k.startswith(("DLBENCH_", "MLFLOW_")) or k == "PYTHONPATH"}
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=True, runtime_env={"env_vars": variables},
                 **({} if os.environ.get("RAY_ADDRESS") else {"num_cpus": cpu_cores()}))
    running: dict = {}

    def collect(ref, timeout=None) -> None:
        spec = running.pop(ref)
        try:
            report(ray.get(ref, timeout=timeout))
        except Exception as exc:
            report(failed_trial(spec, exc))

    try:
        cpus = max(1, specs[0].threads[0]) if specs else 1
        # max_calls=1: a fresh worker process per trial, as on the local pool (TF threads are
        # fixed when TF starts, and one trial's TF state must not leak into the next).
        remote = ray.remote(num_cpus=cpus, max_retries=0, max_calls=1)(run_trial)
        waiting = list(specs)
        while waiting or running:
            while waiting and len(running) < workers:
                spec = waiting.pop(0)
                running[remote.remote(spec)] = spec
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                collect(ref)
    except BaseException:
        # A KeyboardInterrupt in each task: its run records KILLED, then the task returns.
        for ref in list(running):
            ray.cancel(ref, force=False)
        for ref in list(running):
            collect(ref, timeout=60)
        raise
    finally:
        if started_here:
            ray.shutdown()


BACKEND_RUNNERS: dict[str, Callable[[list[TrialSpec], int, Report], None]] = {
    "local": run_local,
    "ray": run_ray,
}


@dataclass
class SweepRequest:
    """What ``dlbench sweep`` was asked, as typed."""

    experiment: str
    grid: Mapping[str, list[str]]
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


def _score(trial: dict[str, Any], metric: str | None) -> float | None:
    if trial.get("status") != "FINISHED" or metric is None:
        return None
    value = trial.get("metrics", {}).get(metric)
    return None if value is None else float(value)


def best_trial(ranked: list[dict[str, Any]], metric: str | None) -> dict[str, Any] | None:
    """The first of the ranked trials, when it finished with a value of ``metric``."""
    return ranked[0] if ranked and _score(ranked[0], metric) is not None else None


def rank(trials: list[dict[str, Any]], metric: str | None, mode: str) -> list[dict[str, Any]]:
    """Best first: finished trials by the metric, then trials without it, then failures."""
    def key(trial):
        score = _score(trial, metric)
        if score is None:
            return (1 if trial.get("status") == "FINISHED" else 2, 0.0, trial["index"])
        return (0, -score if mode == "max" else score, trial["index"])

    return sorted(trials, key=key)


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


def run_sweep(request: SweepRequest, registry, log: Callable[[str], None] = print) -> SweepResult:
    """Validate the whole grid, open the sweep's parent run, run the trials, rank them."""
    from dlbench.lifecycle import ending, start_run
    from dlbench.orphans import repair_orphans_quietly
    from dlbench.runner import check_data_path, run_tags
    from dlbench.store import experiment_id, open_store, resolve_store
    from dlbench.tracker import Tracker

    entry = registry.experiment(request.experiment)
    experiment = entry.value
    check_backend(request.backend)
    if not request.grid:
        raise UsageError("a sweep needs at least one -p KEY=V1,V2 (fix: -p lr=0.1,0.01)")
    points = expand_grid(request.grid)
    for point in points:
        experiment.resolve_params(point, quick=request.quick)  # every value, before any run
    check_data_path(request.data_path)
    metric = request.metric or (experiment.metric_names[0] if experiment.logs else None)
    mode = ranking_mode(experiment, metric, request.mode)

    store = resolve_store(request.tracking_uri)
    client = open_store(store)
    repair_orphans_quietly(client)
    name = request.experiment_name or experiment.name
    exp_id = experiment_id(client, name, store)
    threads = thread_budget(request.workers)
    parent_id = start_run(client, exp_id, name=request.run_name, tags={
        **run_tags(entry), "dlbench.sweep": "true", "dlbench.sweep.backend": request.backend,
        "mlflow.source.name": "dlbench sweep " + experiment.name,
    })
    scratch = Path(tempfile.mkdtemp(prefix=f"dlbench-sweep-{parent_id[:8]}-"))
    tracker = Tracker(client, parent_id, scratch)
    specs = [
        TrialSpec(index=i, experiment=experiment.name, params=point, store=store,
                  parent_run_id=parent_id, experiment_name=name, quick=request.quick,
                  seed=request.seed, data_path=str(request.data_path) if request.data_path else None,
                  threads=threads, run_name=f"trial-{i}")
        for i, point in enumerate(points)
    ]
    started = time.monotonic()
    trials: list[dict[str, Any]] = []

    def report(trial: dict[str, Any]) -> None:
        trials.append(trial)
        shown = _score(trial, metric)
        log(f"trial {trial['index']} {trial['status']} ({len(trials)}/{len(specs)})"
            + (f" {metric}={shown:.4g}" if shown is not None else "")
            + (f": {trial['error']}" if trial.get("error") else ""))

    def summarize(outcome) -> None:
        _summarize_parent(tracker, rank(trials, metric, mode), metric)

    try:
        with ending(tracker, before_end=summarize) as outcome:
            tracker.log_params({**{k: ",".join(v) for k, v in request.grid.items()},
                                "trials": len(specs), "workers": request.workers,
                                "backend": request.backend, "seed": request.seed,
                                "quick": request.quick, "metric": metric or "", "mode": mode})
            log(f"sweep {parent_id}: {len(specs)} trials on {request.backend} with"
                f" {request.workers} worker(s), {threads[0]} intra-op thread(s) each")
            BACKEND_RUNNERS[request.backend](specs, request.workers, report)
            failed = [t for t in trials if t["status"] != "FINISHED"]
            if failed:
                outcome.fail(f"{len(failed)} of {len(specs)} trials did not finish")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return SweepResult(run_id=parent_id, experiment_id=exp_id, status=outcome.status,
                       metric=metric, mode=mode, trials=rank(trials, metric, mode),
                       error=outcome.error, duration_s=round(time.monotonic() - started, 3))


def _summarize_parent(tracker, ranked, metric) -> None:
    """The parent carries the comparison: the ranked table and the best trial."""
    tracker.log_table(trial_rows(ranked, metric)[0], "sweep/trials.csv")
    tags = {"dlbench.sweep.trials": len(ranked),
            "dlbench.sweep.finished": sum(t["status"] == "FINISHED" for t in ranked)}
    best = best_trial(ranked, metric)
    if best is not None:
        tags["dlbench.sweep.best_run_id"] = best["run_id"]
        tracker.log_metric(f"best_{metric}", _score(best, metric))
    tracker.set_tags(tags)


def trial_rows(ranked: list[dict[str, Any]], metric: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per trial, best first, and the columns: what ``dlbench sweep`` prints and the
    sweep run keeps as ``sweep/trials.csv``."""
    axes = list(dict.fromkeys(k for t in ranked for k in t["sweep_params"]))
    score = metric or "metric"
    rows = [{"rank": i + 1, "run_id": t["run_id"], "status": t["status"], **t["sweep_params"],
             score: _score(t, metric), "seconds": t.get("duration_s")}
            for i, t in enumerate(ranked)]
    return rows, ["rank", "run_id", "status", *axes, score, "seconds"]
