"""What a sweep keeps of its trials: one record per trial, the ranked table, the parent's summary.

A trial record is ``dlbench run --json``'s summary of the trial's run plus the sweep's view
of it: ``index`` (the study's trial number), ``sweep_params`` (its point, as ``-p`` text),
``seed``, ``state`` (``finished``, ``pruned``, ``failed``, or ``interrupted``) and
``pruned_at_step``. Records come from the workers as trials end, or, for a resumed sweep,
are read back from the child runs in MLflow: the same shape either way.

The parent run carries the comparison: ``sweep/trials.csv`` (best first), ``best_<metric>``,
the best trial's params as ``best.<param>`` once the sweep is complete, counts as tags, and
for searches Optuna's pictures of the study.
"""

from __future__ import annotations

from typing import Any, Mapping

from dlbench.lifecycle import ERROR_TAG, NOTE_TAG, PARENT_TAG, PRUNED_STEP_TAG, PRUNED_TAG

TRIAL_TAG = "dlbench.sweep.trial"
SUPERSEDED_TAG = "dlbench.sweep.superseded"


def trial_state(status: str, pruned_at: int | None) -> str:
    """``finished``, ``pruned``, ``failed``, or ``interrupted`` (Ctrl-C, SIGTERM)."""
    if pruned_at is not None:
        return "pruned"
    return {"FINISHED": "finished", "KILLED": "interrupted"}.get(status, "failed")


def trial_record(spec, run: Mapping[str, Any], pruned_at: int | None = None) -> dict:
    """The record of trial ``spec`` (a :class:`dlbench.workers.TrialSpec`) whose run ended
    as ``run`` (``dlbench run --json``'s summary)."""
    return {"index": spec.index, "sweep_params": dict(spec.params), "seed": spec.seed,
            "state": trial_state(run["status"], pruned_at), "pruned_at_step": pruned_at, **run}


def failed_trial(spec, error: str, run_id: str | None = None) -> dict:
    """The record of a trial whose process died before its run could record its end."""
    return trial_record(spec, {"run_id": run_id, "status": "FAILED", "metrics": {},
                               "params": {}, "error": error, "duration_s": 0.0})


def record_from_run(run, sweep_params: Mapping[str, str]) -> dict:
    """A trial's record read back from its MLflow run (a resumed sweep's earlier trials)."""
    tags, info = run.data.tags, run.info
    pruned = int(tags[PRUNED_STEP_TAG]) if tags.get(PRUNED_TAG) == "true" else None
    seconds = (info.end_time - info.start_time) / 1000 if info.end_time else 0.0
    return {"index": int(tags[TRIAL_TAG]), "sweep_params": dict(sweep_params),
            "seed": int(run.data.params.get("seed", 0)),
            "state": trial_state(info.status, pruned), "pruned_at_step": pruned,
            "run_id": info.run_id, "experiment_id": info.experiment_id, "status": info.status,
            "params": dict(run.data.params), "metrics": dict(run.data.metrics),
            "artifact_uri": info.artifact_uri, "error": tags.get(ERROR_TAG),
            "duration_s": round(seconds, 3)}


def trial_runs(client, experiment_id: str, parent_run_id: str) -> dict[int, Any]:
    """The sweep's child runs by trial number."""
    runs = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=50000)
    return {int(r.data.tags[TRIAL_TAG]): r for r in runs if TRIAL_TAG in r.data.tags}


def close_dead_trial(client, experiment_id: str, parent_run_id: str, index: int,
                     reason: str) -> str | None:
    """Mark trial ``index``'s run FAILED with ``reason`` when its worker died under it (the
    run could not record its end); returns the run id, if the run was created at all."""
    from mlflow.entities import RunTag

    run = trial_runs(client, experiment_id, parent_run_id).get(index)
    if run is None:
        return None
    if run.info.status == "RUNNING":
        client.log_batch(run.info.run_id, tags=[RunTag(ERROR_TAG, reason),
                                                RunTag(NOTE_TAG, f"FAILED: {reason}")],
                         synchronous=True)
        client.set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id


def score(trial: Mapping[str, Any], metric: str | None) -> float | None:
    """The trial's value of ``metric`` if it finished with one (a pruned trial has none)."""
    if trial.get("status") != "FINISHED" or trial.get("state") == "pruned" or metric is None:
        return None
    value = trial.get("metrics", {}).get(metric)
    return None if value is None else float(value)


def best_trial(ranked: list[dict[str, Any]], metric: str | None) -> dict[str, Any] | None:
    """The first of the ranked trials, when it finished with a value of ``metric``."""
    return ranked[0] if ranked and score(ranked[0], metric) is not None else None


def rank(trials: list[dict[str, Any]], metric: str | None, mode: str) -> list[dict[str, Any]]:
    """Best first: finished trials by the metric, then finished without it, pruned, the rest."""
    def key(trial):
        value = score(trial, metric)
        if value is not None:
            return (0, -value if mode == "max" else value, trial["index"])
        group = (1 if trial.get("status") == "FINISHED" else 2 if trial.get("state") == "pruned"
                 else 3)
        return (group, 0.0, trial["index"])

    return sorted(trials, key=key)


def trial_rows(ranked: list[dict[str, Any]], metric: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per trial, best first, and the columns ``dlbench sweep`` prints; the rows
    (with ``state``, ``pruned_at_step`` and ``seed`` too) are the parent's ``sweep/trials.csv``."""
    axes = list(dict.fromkeys(k for t in ranked for k in t["sweep_params"]))
    name = metric or "metric"
    rows = [{"rank": i + 1, "run_id": t["run_id"], "status": t["status"], **t["sweep_params"],
             name: score(t, metric), "seconds": t.get("duration_s"), "state": t.get("state"),
             "pruned_at_step": t.get("pruned_at_step"), "seed": t.get("seed")}
            for i, t in enumerate(ranked)]
    pruned = ["pruned_at_step"] if any(t.get("pruned_at_step") is not None for t in ranked) else []
    return rows, ["rank", "run_id", "status", *axes, name, "seconds", *pruned]


def summarize(tracker, ranked: list[dict[str, Any]], metric: str | None, *, complete: bool,
              study=None) -> None:
    """Log the parent's summary: the table, the best trial, counts, and (given the ``study``)
    its pictures. ``complete``: the sweep spent its whole budget, so its best is final."""
    tracker.log_table(trial_rows(ranked, metric)[0], "sweep/trials.csv")
    states = [t.get("state") for t in ranked]
    tags = {"dlbench.sweep.trials": len(ranked),
            "dlbench.sweep.finished": sum(t["status"] == "FINISHED" for t in ranked),
            "dlbench.sweep.pruned": states.count("pruned")}
    best = best_trial(ranked, metric)
    if best is not None:
        tags["dlbench.sweep.best_run_id"] = best["run_id"]
        tracker.log_metric(f"best_{metric}", score(best, metric))
        if complete:  # params cannot change once logged: only the final best
            tracker.log_params({f"best.{k}": v for k, v in best["sweep_params"].items()})
    tracker.set_tags(tags)
    if study is not None and sum(score(t, metric) is not None for t in ranked) >= 2:
        from dlbench.study import figures

        for name, figure in figures(study, pruned="pruned" in states).items():
            tracker.log_figure(figure, name)
