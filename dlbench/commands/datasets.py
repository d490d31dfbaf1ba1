"""``dlbench datasets [--json]``: every registered dataset, where it comes from, ready or not.

Imports no TensorFlow or MLflow: it asks each dataset's ``status()`` (file-system checks).
"""

from __future__ import annotations

import json

import click


def dataset_rows() -> list[dict]:
    """One row per registered dataset; a failing ``status()`` is reported, not raised."""
    from dlbench.cache import data_root
    from dlbench.console import registry

    rows = []
    for name, entry in sorted(registry().datasets.items()):
        dataset = entry.value
        row = {"name": name, "kind": dataset.kind, "plugin": entry.plugin.name,
               "summary": dataset.summary, "source": None, "cache": None, "ready": None,
               "detail": None}
        if dataset.status is not None:
            try:
                row.update(dataset.status())
            except Exception as exc:
                row.update(ready=False, detail=f"status failed: {type(exc).__name__}: {exc}")
        row["data_root"] = str(data_root())
        rows.append(row)
    return rows


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def command(as_json):
    """List datasets: name, kind, where the data comes from, cache location, ready or not."""
    from dlbench.cache import data_root
    from dlbench.tables import format_table

    rows = dataset_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("no datasets registered (see: dlbench plugins)", err=True)
        return
    shown = [{**r, "ready": {True: "yes", False: "no", None: "?"}[r["ready"]]} for r in rows]
    click.echo(format_table(shown, ["name", "kind", "ready", "source", "cache", "detail"]))
    click.echo(f"\ndata root: {data_root()} (set DLBENCH_DATA to move it)")
