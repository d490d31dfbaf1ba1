"""The sweep's Optuna study: storage, sampler, pruner, and what a trial reports to it.

One study per sweep, named by the sweep's parent run id, in a storage that the sweep process
and every worker reach: the sweep asks the sampler for each trial's params and tells it how
the trial ended; each worker reports the trial's per-epoch values and asks the pruner
whether to stop. The storage outlives the sweep, which is what ``--resume`` continues from.

Storages (``--storage``; recorded on the parent run as ``dlbench.sweep.storage``):

- default: a journal file beside the tracking store (``<store folder>/sweeps/<run id>.journal``
  for a SQLite store, else under the data root), enough for local workers and a local Ray;
- ``sqlite:///...``, ``postgresql://...``, ``mysql://...``: an RDB (Ray on many machines);
- ``grpc://host:port``: Optuna's gRPC storage proxy (``optuna.storages.run_grpc_proxy_server``)
  in front of an RDB, so hundreds of workers do not each hold a database connection.

The MLflow records stay dlbench's own (:mod:`dlbench.sweep_records`): Optuna holds only what
search and pruning need. Optuna is imported inside functions (``dlbench list`` stays instant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dlbench.axes import Axis
from dlbench.errors import Pruned

SEARCHES = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "asha")
PLAN_ATTR = "dlbench.plan"
SUPERSEDED_ATTR = "dlbench.superseded"  # an interrupted trial whose params were asked again


def default_storage(store, study_name: str) -> str:
    """A journal file beside the tracking store (or under the data root for a server store)."""
    from dlbench.cache import data_root

    db = store.sqlite_path
    folder = db.resolve().parent / "sweeps" if db is not None else data_root() / "sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{study_name}.journal")


def open_storage(url: str):
    """The Optuna storage that ``url`` names (see the module doc)."""
    import optuna

    if url.startswith("grpc://"):
        host, _, port = url[len("grpc://"):].rstrip("/").rpartition(":")
        return optuna.storages.GrpcStorageProxy(host=host or "localhost", port=int(port))
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(url, lock_obj=ProcessLock(url)))


class ProcessLock:
    """The journal's lock, held through ``flock`` (``filelock``): the kernel drops it when
    its holder dies, so a SIGKILLed sweep never leaves ``--resume`` waiting on a stale lock
    (Optuna's default symlink lock waits 30 s for one, then breaks it)."""

    def __init__(self, journal: str) -> None:
        from filelock import FileLock

        self._lock = FileLock(journal + ".flock")

    def acquire(self) -> bool:
        self._lock.acquire()
        return True

    def release(self) -> None:
        self._lock.release()


def make_pruner(name: str):
    """``none``; ``median`` (stop a trial worse than the median of the others at the same
    step, once 3 trials have reported it); ``asha`` (asynchronous successive halving: at
    steps 1, 3, 9, 27, ... keep the best third of the trials that reached the step; with
    few trials that means "the best so far at every rung", see docs/RESULTS.md)."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def make_sampler(search: str, seed: int, trials: int):
    """The sampler of ``--search``, seeded: the same ``--seed`` asks the same params.

    A grid's points are queued in the study (:func:`queue_points`), so its sampler only ever
    draws what the queue fixes. TPE starts from ``min(10, trials // 3)`` random trials (at
    least 2), not Optuna's fixed 10, so that a short CPU sweep still gets to model.
    """
    import optuna

    if search == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    return optuna.samplers.RandomSampler(seed=seed)


def distributions(axes: Mapping[str, Axis]) -> dict[str, Any]:
    """Optuna's distribution for each axis; lists and choices are categorical over their text."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    made = {}
    for name, axis in axes.items():
        if axis.discrete:
            made[name] = CategoricalDistribution(list(axis.values))
        elif axis.kind == "int":
            made[name] = IntDistribution(int(axis.low), int(axis.high), log=axis.log)
        else:
            made[name] = FloatDistribution(float(axis.low), float(axis.high), log=axis.log)
    return made


def as_text(params: Mapping[str, Any]) -> dict[str, str]:
    """A trial's params as ``-p`` text (``repr`` keeps every digit of a float)."""
    return {k: repr(v) if isinstance(v, float) else str(v) for k, v in params.items()}


def create_study(storage_url: str, name: str, *, mode: str, search: str, seed: int, trials: int,
                 prune: str, plan: Mapping[str, Any]):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(storage_url), study_name=name,
                                direction="maximize" if mode == "max" else "minimize",
                                sampler=make_sampler(search, seed, trials),
                                pruner=make_pruner(prune))
    study.set_user_attr(PLAN_ATTR, dict(plan))
    return study


def load_study(storage_url: str, name: str, *, search: str | None = None, seed: int = 0,
               trials: int = 0, prune: str = "none"):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=open_storage(storage_url),
                             sampler=make_sampler(search or "random", seed, trials),
                             pruner=make_pruner(prune))


def queue_points(study, points: list[dict[str, str]]) -> None:
    """Queue params to be asked next, in order: a grid's points, or an interrupted trial's."""
    for point in points:
        study.enqueue_trial(dict(point), skip_if_exists=False)


def planned_params(trial) -> dict[str, Any]:
    """The params a trial was queued with (a grid point), else those it was given so far:
    a sweep killed while asking leaves a trial with only some of its params."""
    return dict(trial.system_attrs.get("fixed_params") or trial.params)


@dataclass(frozen=True)
class StudyRef:
    """Where a worker finds the study, and what it reports to it; plain data, so it pickles."""

    storage: str
    name: str
    prune: str
    metric: str  # the metric reported at every step
    sign: float  # +1, or -1 when that metric's goal is opposite to the study's direction


class PruningReporter:
    """A trial's step observer (``Tracker.observe_steps``): reports the pruning metric at each
    step and raises :class:`Pruned` when the pruner says stop."""

    def __init__(self, ref: StudyRef, trial_id: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=ref.name, storage=open_storage(ref.storage),
                                  pruner=make_pruner(ref.prune))
        self.trial = optuna.trial.Trial(study, trial_id)
        self.ref = ref
        self.reported: set[int] = set()
        self.pruned_at: int | None = None

    def __call__(self, key: str, value: float, step: int) -> None:
        if key != self.ref.metric or step in self.reported:
            return
        self.reported.add(step)
        self.trial.report(self.ref.sign * value, step)
        if self.ref.prune != "none" and self.trial.should_prune():
            self.pruned_at = step
            raise Pruned(step)


def figures(study, pruned: bool) -> dict[str, Any]:
    """Optuna's matplotlib pictures of the study, by artifact name; a picture that this study
    cannot draw (too few trials, one param) is left out."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as plots

    wanted = {"sweep/optimization_history.png": plots.plot_optimization_history,
              "sweep/param_importances.png": plots.plot_param_importances,
              "sweep/parallel_coordinate.png": plots.plot_parallel_coordinate}
    if pruned:
        wanted["sweep/intermediate_values.png"] = plots.plot_intermediate_values
    drawn = {}
    for name, plot in wanted.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental" notices, empty-plot warnings
            try:
                drawn[name] = plot(study).figure
            except Exception:  # noqa: BLE001 - a picture is a nicety, never the sweep's failure
                continue
    return drawn


