"""The description a finished run carries (MLflow's ``mlflow.note.content``, Markdown): what
ran, on what data, its headline metrics, and where its figures, audio and models are.

Written from what the store holds, so it says what was recorded; an experiment that wrote
its own note keeps it. (A failed or killed run's note is its reason: :mod:`dlbench.lifecycle`.)
"""

from __future__ import annotations

from typing import Iterable

NOTE_TAG = "mlflow.note.content"
HEADLINE = 6
"""How many metrics the note shows: the experiment's declared ones first."""

KINDS = {
    "figures": (".png", ".jpg", ".jpeg", ".svg", ".gif", ".html"),
    "audio": (".wav", ".flac", ".mp3", ".ogg"),
}
DATASET_TAG = "dlbench.dataset."
MOST_FILES = 500
"""Artifacts looked at, at most: the note is a summary, not a listing."""


def write_note(client, run_id: str, *, declared: Iterable[str] = (), models: Iterable = ()) -> None:
    """Describe finished run ``run_id`` (:func:`run_note`), unless it has a note already."""
    run = client.get_run(run_id)
    if NOTE_TAG not in run.data.tags:
        client.set_tag(run_id, NOTE_TAG, run_note(client, run, declared=declared, models=models))


def run_note(client, run, *, declared: Iterable[str] = (), models: Iterable = ()) -> str:
    """The Markdown description of ``run`` (an MLflow Run); ``declared`` names the metrics
    the experiment declares (shown first), ``models`` the logged models to point at."""
    from dlbench.system_metrics import is_system_metric

    run_id = run.info.run_id
    tags, params = run.data.tags, run.data.params
    metrics = {k: v for k, v in run.data.metrics.items() if not is_system_metric(k)}
    name = tags.get("dlbench.experiment") or run.info.run_name
    lines = [f"**{name}**" + (f", run `{run.info.run_name}`" if run.info.run_name else "")
             + (f": seed {params['seed']}" if "seed" in params else "")
             + (", quick (smoke mode)" if params.get("quick") == "true" else "")]

    data = [f"{_dataset(key)} from {value}" for key, value in sorted(tags.items())
            if key.startswith(DATASET_TAG) and key.endswith(".source")]
    if data:
        lines.append("Data: " + "; ".join(data) + ".")

    shown = [k for k in declared if k in metrics] or sorted(metrics)
    if shown:
        lines += ["", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {metrics[k]:.4g} |" for k in shown[:HEADLINE]]
        if len(metrics) > HEADLINE:
            lines.append(f"\n{len(metrics)} metrics in all: see the Model metrics tab.")

    where = _artifacts_by_kind(client, run_id)
    links = [f"runs:/{m.run_id}/{m.name}" for m in models if m.run_id == run_id]
    if where or links:
        lines.append("")
    for kind, files in where.items():
        lines.append(f"- {kind}: " + _summary(files))
    if links:
        lines.append("- model: " + ", ".join(f"`{link}`" for link in links)
                     + " (`mlflow.pyfunc.load_model`)")
    return "\n".join(lines)


def _dataset(source_tag: str) -> str:
    """``dlbench.dataset.speech.evaluation.source`` -> ```speech` (evaluation)``."""
    name, _, context = source_tag[len(DATASET_TAG):-len(".source")].partition(".")
    return f"`{name}`" + (f" ({context})" if context else "")


def _summary(files: list[str]) -> str:
    if len(files) <= 4:
        return ", ".join(f"`{f}`" for f in files)
    folders = sorted({f.rsplit("/", 1)[0] + "/" if "/" in f else f for f in files})
    return f"{len(files)} files in " + ", ".join(f"`{f}`" for f in folders[:4]) + (
        ", ..." if len(folders) > 4 else "")


def _artifacts_by_kind(client, run_id: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in _files(client, run_id):
        for kind, suffixes in KINDS.items():
            if path.lower().endswith(suffixes):
                found.setdefault(kind, []).append(path)
    return found


def _files(client, run_id: str) -> list[str]:
    """The run's artifact files, breadth first, bounded; a folder that cannot be listed is
    left out (a summary is no reason to fail)."""
    from dlbench.models import using_store

    files, folders = [], [None]
    with using_store(client.tracking_uri):  # a folder named like a logged model is looked up
        while folders and len(files) < MOST_FILES:
            try:
                listed = client.list_artifacts(run_id, folders.pop(0))
            except Exception:
                continue
            for item in listed:
                (folders if item.is_dir else files).append(item.path)
    return files[:MOST_FILES]
