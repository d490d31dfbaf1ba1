"""Runs of one experiment side by side: what differed between them and how they ended.

MLflow's run table shows one value per metric (the last) and no cross-run curves
(mlflow#7790, #2768); this module reads the runs back from any tracking store and gives
the rows ``dlbench compare`` prints, and the per-epoch overlay it plots.

Which runs: every run tagged ``dlbench.experiment = NAME``, in whatever MLflow experiment it
was logged (``--experiment-name`` may have put it elsewhere). Only top-level runs by default:
child runs (tag ``mlflow.parentRunId``, from ``ctx.child``) are variants inside one run, and
mixing them with whole runs would compare unlike things; ``children=True`` includes them.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from dlbench.errors import UsageError
from dlbench.declarations import NAME_RE
from dlbench.repeats import REPEAT_OF_TAG, REPEATS_TAG
from dlbench.store import search_all_runs
from dlbench.system_metrics import is_system_metric

PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_TAG = "dlbench.experiment"


@dataclass
class RunRow:
    """One run as the comparison shows it."""

    run_id: str
    run_name: str
    experiment_id: str
    start_time: str
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    parent_run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def find_runs(client, name: str, *, last: int | None = None, children: bool = False) -> list:
    """The MLflow runs of dlbench experiment ``name``, newest first."""
    if not NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not an experiment name (lower_snake_case; see: dlbench list)"
        )
    found = search_all_runs(client, f"tags.`{EXPERIMENT_TAG}` = '{name}'",
                            order_by=["attributes.start_time DESC"])
    runs = [r for r in found if children or PARENT_TAG not in r.data.tags]
    return runs[:last] if last else runs


def rows_for(runs: Sequence, metrics: Sequence[str] = (), descending: bool = False) -> list[RunRow]:
    """Rows for ``runs``, sorted by the first of ``metrics`` (runs without it last).

    With no ``metrics`` every metric is kept (but the system metrics, which ``-m`` can ask
    for) and the order stays newest first.
    """
    if metrics:
        known = sorted({k for r in runs for k in r.data.metrics})
        for metric in metrics:
            if metric not in known:
                close = difflib.get_close_matches(metric, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise UsageError(
                    f"no run has metric {metric!r} ({hint}known: {', '.join(known) or 'none'})"
                )
    rows = [
        RunRow(
            run_id=r.info.run_id,
            run_name=r.info.run_name,
            experiment_id=r.info.experiment_id,
            start_time=_iso(r.info.start_time),
            status=r.info.status,
            params=dict(r.data.params),
            metrics={k: v for k, v in r.data.metrics.items()
                     if (k in metrics if metrics else not is_system_metric(k))},
            parent_run_id=r.data.tags.get(PARENT_TAG),
        )
        for r in runs
    ]
    if metrics:
        first = metrics[0]
        present = [row for row in rows if first in row.metrics]
        present.sort(key=lambda row: row.metrics[first], reverse=descending)
        rows = present + [row for row in rows if first not in row.metrics]
    return rows


def _iso(millis: int | None) -> str:
    if millis is None:
        return ""
    stamp = dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def differing_params(rows: Sequence[RunRow]) -> list[str]:
    """Param names whose value is not the same in every row (missing counts as a value)."""
    names = sorted({k for row in rows for k in row.params})
    return [n for n in names if len({row.params.get(n) for row in rows}) > 1]


def table(rows: Sequence[RunRow], metrics: Sequence[str] = ()) -> tuple[list[dict], list[str]]:
    """Flat rows and column names for the terminal: name, start, status, params that differ,
    then the metrics (those asked for, in that order, or all of them by name)."""
    varying = differing_params(rows)
    metric_names = list(metrics) or sorted({k for row in rows for k in row.metrics})
    columns = ["run_name", "start_time", "status", *varying, *metric_names]
    flat = [
        {"run_name": row.run_name, "start_time": row.start_time, "status": row.status,
         **{p: row.params.get(p) for p in varying}, **row.metrics}
        for row in rows
    ]
    return flat, columns


def plot_histories(client, rows: Sequence[RunRow], metrics: Sequence[str], path: Path) -> int:
    """Overlay each metric's per-step history across runs, one panel per metric, into a PNG.

    Returns the number of curves drawn; a run without a history for a metric is left out.
    """
    def draw(axis, metric) -> int:
        curves = 0
        for row in rows:
            history = _history(client, row.run_id, metric)
            if history:
                axis.plot([m.step for m in history], [m.value for m in history],
                          marker="o" if len(history) < 30 else None, markersize=3,
                          label=f"{row.run_name} ({row.run_id[:8]})")
                curves += 1
        return curves

    fig, curves = _panels(metrics, draw, ylabel=str)
    _save(fig, path)
    return curves


def _history(client, run_id: str, metric: str) -> list:
    """A metric's logged values in step order (a step logged twice: the later value last)."""
    return sorted(client.get_metric_history(run_id, metric), key=lambda m: (m.step, m.timestamp))


def _panels(metrics: Sequence[str], draw, ylabel):
    """A figure with one panel per metric; ``draw(axis, metric)`` draws a panel's curves and
    says how many. Returns (figure, curves); no curve at all is a usage error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 3.2 * len(metrics)), squeeze=False)
    try:
        curves = 0
        for axis, metric in zip(axes[:, 0], metrics):
            curves += draw(axis, metric)
            axis.set_xlabel("step (epoch)")
            axis.set_ylabel(ylabel(metric))
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize="small")
        if curves == 0:
            raise UsageError(f"no run has a history for {', '.join(metrics)}; nothing to plot")
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig, curves


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


# -- groups of repeated runs ---------------------------------------------------------------------

SEED_PARAMS = ("seed", "seeds")
"""What a group leaves out of its key: runs that differ only in these are repeats."""


@dataclass
class Group:
    """Runs that share every differing param but the seed, and their metrics' summaries."""

    params: dict[str, str]  # the params that set this group apart (differing ones only)
    runs: list[RunRow]
    metrics: dict[str, Any]  # metric -> dlbench.stats.Summary

    def to_json(self) -> dict[str, Any]:
        return {"params": self.params, "n": len(self.runs),
                "seeds": [row.params.get("seed") for row in self.runs],
                "run_ids": [row.run_id for row in self.runs],
                "metrics": {name: stats.to_json() for name, stats in self.metrics.items()}}


def find_repeats(client, name: str, *, last: int | None = None, children: bool = False) -> list:
    """The runs ``--group`` pools: every whole run of experiment ``name`` (top-level ones and
    the seed runs of ``run --seeds``), never a ``--seeds`` parent (its children are counted
    already); ``children`` adds the other nested runs (a sweep's trials, ``ctx.child``)."""
    runs = find_runs(client, name, children=True)
    pooled = [r for r in runs if REPEATS_TAG not in r.data.tags
              and (children or PARENT_TAG not in r.data.tags or REPEAT_OF_TAG in r.data.tags)]
    return pooled[:last] if last else pooled


def group_rows(rows: Sequence[RunRow], metrics: Sequence[str] = (),
               descending: bool = False) -> list[Group]:
    """FINISHED runs grouped by the params that differ between them (seed excluded), with
    mean, std, n and the 95 % t-interval of each metric per group; sorted by the first of
    ``metrics`` (its mean), else by the params."""
    from dlbench.stats import summarize

    finished = [row for row in rows if row.status == "FINISHED"]
    if not finished:
        raise UsageError("no FINISHED run to group (see: dlbench compare NAME without --group)")
    keys = [p for p in differing_params(finished) if p not in SEED_PARAMS]
    grouped: dict[tuple, list[RunRow]] = {}
    for row in finished:
        grouped.setdefault(tuple(row.params.get(k) for k in keys), []).append(row)
    names = list(metrics) or sorted({k for row in finished for k in row.metrics})
    groups = []
    for key, members in grouped.items():
        summaries = {}
        for name in names:
            values = [row.metrics[name] for row in members if name in row.metrics]
            if values:
                summaries[name] = summarize(values)
        groups.append(Group(dict(zip(keys, key)), members, summaries))
    if metrics:
        first = metrics[0]
        present = [g for g in groups if first in g.metrics]
        present.sort(key=lambda g: g.metrics[first].mean, reverse=descending)
        groups = present + [g for g in groups if first not in g.metrics]
    else:
        groups.sort(key=lambda g: tuple(str(v) for v in g.params.values()))
    return groups


def group_table(groups: Sequence[Group], metrics: Sequence[str] = ()) -> tuple[list[dict], list[str]]:
    """Flat rows for the terminal: the group's params, its run count, then each metric as
    ``mean ± half-width of the 95 % interval`` and the interval itself."""
    keys = list(groups[0].params) if groups else []
    names = list(metrics) or sorted({k for g in groups for k in g.metrics})
    columns = [*keys, "n"]
    flat = []
    for group in groups:
        row: dict[str, Any] = {**group.params, "n": len(group.runs)}
        for name in names:
            if name in group.metrics:
                row[name] = group.metrics[name].text(4)
        flat.append(row)
    return flat, columns + names


def plot_groups(client, groups: Sequence[Group], metrics: Sequence[str], path: Path) -> int:
    """:func:`draw_groups` saved to ``path``; returns the number of curves drawn."""
    fig, curves = draw_groups(client, groups, metrics)
    _save(fig, path)
    return curves


def draw_groups(client, groups: Sequence[Group], metrics: Sequence[str]):
    """Each metric's per-step history as one curve per group: the mean over the group's runs
    at each step, with the 95 % t-interval shaded (where two or more runs have that step).
    Returns (the matplotlib figure, the number of curves drawn)."""
    from dlbench.stats import summarize

    def draw(axis, metric) -> int:
        curves = 0
        for group in groups:
            by_step: dict[int, list[float]] = {}
            for row in group.runs:
                last = {m.step: m.value for m in _history(client, row.run_id, metric)}
                for step, value in last.items():
                    by_step.setdefault(step, []).append(value)
            if not by_step:
                continue
            steps = sorted(by_step)
            stats = [summarize(by_step[s]) for s in steps]
            label = ", ".join(f"{k}={v}" for k, v in group.params.items()) or "all runs"
            line, = axis.plot(steps, [s.mean for s in stats],
                              label=f"{label} (n={len(group.runs)})")
            banded = [(st, s) for st, s in zip(steps, stats) if s.n > 1]
            if banded:
                axis.fill_between([st for st, _ in banded], [s.ci95_low for _, s in banded],
                                  [s.ci95_high for _, s in banded], alpha=0.25,
                                  color=line.get_color(), linewidth=0)
            curves += 1
        return curves

    return _panels(metrics, draw, ylabel=lambda metric: f"{metric} (mean, 95% CI)")
