"""``dlbench run NAME --seeds 0-4``: one experiment repeated over seeds, with error bars.

A single seed's accuracy on a few hundred test images carries about two points of standard
error, so a difference of a few points between two single runs says little. Repeats make the
honest comparison the easy one:

- one **parent** run (tag ``dlbench.repeats`` = the seeds) with one **child** per seed (tag
  ``dlbench.repeat_of`` = the parent, ``dlbench.repeat_seed`` = its seed); each child is an
  ordinary run, made by :func:`dlbench.runner.execute` exactly as ``dlbench run --seed S``
  would (same params, records, statuses, failure handling);
- the parent logs, for every final metric of its finished children, ``<metric>_mean``,
  ``_std``, ``_n``, ``_ci95_low`` and ``_ci95_high`` (a t-interval: :mod:`dlbench.stats`),
  and the tables ``repeats/seeds.csv`` (one row per seed) and ``repeats/summary.csv`` (one
  row per metric, with the direction the experiment declares for it);
- a seed that fails ends FAILED on its own; the others still run and are kept, and the
  parent ends FAILED with ``seed S: <reason>`` (its aggregates cover the finished seeds);
- Ctrl-C stops after the seed in progress, which ends KILLED, and the parent ends KILLED.

Paired comparisons inside an experiment (augmented vs baseline on the same test images) are
logged by the experiment itself per seed (:mod:`dlbench.outcomes`); the parent's interval of
that difference metric is the across-seed interval of the difference.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import click

from dlbench.errors import UsageError

REPEATS_TAG = "dlbench.repeats"
REPEAT_OF_TAG = "dlbench.repeat_of"
REPEAT_SEED_TAG = "dlbench.repeat_seed"
SEEDS_FILE = "repeats/seeds.csv"
SUMMARY_FILE = "repeats/summary.csv"
MAX_SEEDS = 1000
"""More repeats than anyone means to run: ``--seeds 0-99999999`` is a typo, not a plan."""

_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(text: str, *, max_seed: int = 2**32 - 1) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"`` -> [0, 3, 7]; ``"0-2,9"`` -> [0, 1, 2, 9].

    A UsageError naming the problem and the fix for anything else: empty parts, negative or
    reversed ranges, repeats, seeds beyond numpy's range, more than :data:`MAX_SEEDS`.
    """
    seeds: list[int] = []
    for part in str(text).split(","):
        match = _PART.match(part)
        if not match:
            raise UsageError(f"--seeds {text!r}: {part.strip()!r} is not a seed or a range"
                             " (fix: --seeds 0-4 or --seeds 0,3,7)")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise UsageError(f"--seeds {text!r}: range {low}-{high} runs backwards"
                             f" (fix: --seeds {high}-{low})")
        if high > max_seed:
            raise UsageError(f"--seeds {text!r}: {high} is above the largest seed {max_seed}")
        if high - low + 1 + len(seeds) > MAX_SEEDS:
            raise UsageError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds"
                             " (fix: a shorter range, e.g. --seeds 0-9)")
        seeds.extend(range(low, high + 1))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise UsageError(f"--seeds {text!r}: seed {repeated[0]} is listed twice"
                         " (each seed runs once)")
    return seeds


class SeedList(click.ParamType):
    """``--seeds 0-4`` / ``--seeds 0,3,7`` as a list of ints, checked when parsed."""

    name = "SEEDS"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            return parse_seeds(value)
        except UsageError as exc:
            self.fail(str(exc).removeprefix(f"--seeds {value!r}: "), param, ctx)


@dataclass
class RepeatResult:
    """How a repeated run ended: the parent's record, its children's, the summaries."""

    parent: Any  # dlbench.runner.RunResult of the parent
    children: list = field(default_factory=list)  # RunResult per seed, in seed order
    seeds: list[int] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # metric -> dlbench.stats.Summary
    goals: dict[str, str | None] = field(default_factory=dict)  # metric -> declared direction

    @property
    def status(self) -> str:
        return self.parent.status

    @property
    def run_id(self) -> str:
        return self.parent.run_id

    @property
    def error(self) -> str | None:
        return self.parent.error

    @property
    def summary(self) -> dict[str, dict]:
        """``{metric: {mean, std, n, ci95_low, ci95_high, goal}}`` (no spread: None)."""
        return {name: {**stats.to_json(), "goal": self.goals.get(name)}
                for name, stats in self.stats.items()}

    def to_json(self) -> dict[str, Any]:
        """``dlbench run --json`` of a single run, for the parent, plus ``seeds``, ``runs``
        (each child's own ``--json`` object) and ``summary``."""
        return {**self.parent.to_json(), "seeds": list(self.seeds),
                "runs": [child.to_json() for child in self.children], "summary": self.summary}


def check_combination(request, seeds) -> None:
    """Options that make no sense with ``--seeds``: refused before anything is written."""
    if request.resume_run_id:
        raise UsageError("--seeds starts new runs; --resume continues one (fix: drop one of them)")
    if request.register:
        raise UsageError("--seeds makes one model per seed; --register needs one (fix: register"
                         " a seed's run: dlbench run NAME --seed S --register NAME)")


def run_seeds(request, seeds: list[int], registry, *, store=None) -> RepeatResult:
    """Run ``request`` once per seed under one parent run; aggregate onto the parent."""
    import shutil
    import tempfile
    from pathlib import Path

    from dlbench.lifecycle import ending, start_run
    from dlbench.runner import RunResult, execute, prepare, read_back
    from dlbench.store import experiment_id
    from dlbench.tracker import Tracker

    check_combination(request, seeds)
    entry, params, store, client, tags = prepare(request, registry, store)
    experiment = entry.value
    seeds_text = ",".join(str(s) for s in seeds)
    tags[REPEATS_TAG] = seeds_text
    exp_id = experiment_id(client, request.experiment_name or experiment.name, store)
    parent_id = start_run(client, exp_id, name=request.run_name,
                          parent_run_id=request.parent_run_id, tags=tags)
    scratch = Path(tempfile.mkdtemp(prefix=f"dlbench-{parent_id[:8]}-"))
    parent = Tracker(client, parent_id, scratch)
    parent.experiment = experiment
    children: list[RunResult] = []
    stats: dict = {}
    started = time.monotonic()

    def aggregate(outcome) -> None:
        """What the parent logs about its children, whatever the ending (see ending())."""
        stats.update(log_aggregates(parent, experiment, children, seeds))

    try:
        with ending(parent, before_end=aggregate) as outcome:
            parent.log_params({**params, "seeds": seeds_text, "quick": request.quick})
            for seed in seeds:
                _say(f"seed {seed} ({seeds.index(seed) + 1} of {len(seeds)})")
                child_request = replace(
                    request, seed=seed, parent_run_id=parent_id,
                    run_name=f"{request.run_name}-seed-{seed}" if request.run_name else f"seed-{seed}",
                    tags={**request.tags, REPEAT_OF_TAG: parent_id, REPEAT_SEED_TAG: str(seed)})
                result = execute(child_request, registry, store=store)
                children.append(result)
                if result.status == "KILLED":
                    outcome.status, outcome.error = "KILLED", f"seed {seed}: {result.error}"
                    break
            failed = [(s, r) for s, r in zip(seeds, children) if r.status == "FAILED"]
            if failed and outcome.status == "RUNNING":
                seed, result = failed[0]
                reason = (result.error or "no reason recorded").strip().splitlines()[0]
                more = f" (and {len(failed) - 1} more seed(s))" if len(failed) > 1 else ""
                outcome.fail(f"seed {seed}: {reason}{more}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    error = outcome.error
    result = read_back(client, parent_id, exp_id, error, time.monotonic() - started)
    return RepeatResult(parent=result, children=children, seeds=list(seeds), stats=stats,
                        goals={name: experiment.goal(name) for name in stats})


def _say(message: str) -> None:
    import sys

    print(f"[repeats] {message}", file=sys.stderr, flush=True)


def log_aggregates(parent, experiment, children, seeds) -> dict:
    """Summaries of every final metric over the FINISHED children, logged onto ``parent``
    as ``<metric>_<mean|std|n|ci95_low|ci95_high>`` with the two tables; returned as
    ``{metric: dlbench.stats.Summary}``."""
    from dlbench.stats import summarize

    finished = [c for c in children if c.status == "FINISHED"]
    names = sorted({k for c in finished for k in c.metrics})
    stats = {name: summarize([c.metrics[name] for c in finished if name in c.metrics])
             for name in names}
    logged = {k: v for name, summary in stats.items() for k, v in summary.metrics(name).items()}
    if logged:
        parent.log_metrics(logged)
    rows = [{"seed": seed, "run_id": child.run_id, "status": child.status,
             **{name: child.metrics.get(name) for name in names},
             "error": (child.error or "").strip().splitlines()[0] if child.error else ""}
            for seed, child in zip(seeds, children)]
    if rows:
        parent.log_table(rows, SEEDS_FILE)
    if stats:
        parent.log_table([{"metric": name, **summary.to_json(), "goal": experiment.goal(name)}
                          for name, summary in stats.items()], SUMMARY_FILE)
    return stats


def summary_rows(result: RepeatResult) -> list[dict]:
    """Rows for the terminal: metric, mean ± half-width of the interval, the interval, n."""
    rows = []
    for name, stats in sorted(result.stats.items()):
        rows.append({"metric": name, "mean ± 95% CI": stats.text(4),
                     "ci95": "-" if stats.n < 2
                     else f"[{stats.ci95_low:.4g}, {stats.ci95_high:.4g}]",
                     "n": stats.n, "better": {"max": "larger", "min": "smaller"}.get(
                         result.goals.get(name), "-")})
    return rows
