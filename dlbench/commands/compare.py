"""``dlbench compare NAME``: the runs of one experiment side by side, from any tracking store.

One row per run: name, start time (UTC), status, the params that differ between the runs,
and final metrics (the last logged value of each). ``--plot`` overlays per-epoch curves,
which MLflow's own run table cannot show. The logic lives in :mod:`dlbench.compare`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from dlbench.cli import TRACKING_URI_OPTION


@click.command("compare")
@click.argument("name")
@click.option("--metric", "-m", "metrics", multiple=True, metavar="M",
              help="Show this metric (repeatable); rows are sorted by the first one.")
@click.option("--descending", is_flag=True, help="Sort by the first metric, largest first.")
@click.option("--last", type=click.IntRange(min=1), metavar="N",
              help="Only the N most recent runs.")
@click.option("--children", is_flag=True,
              help="Include nested child runs (ctx.child); by default only top-level runs.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Overlay each --metric's per-epoch history across the runs into a PNG.")
@TRACKING_URI_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs.")
def command(name, metrics, descending, last, children, plot, tracking_uri, as_json):
    """Compare the runs of experiment NAME: differing params and final metrics."""
    from dlbench.compare import find_runs, plot_histories, rows_for, table
    from dlbench.errors import UsageError
    from dlbench.tables import format_table
    from dlbench.tracking import open_store, resolve_store

    if plot is not None and not metrics:
        raise UsageError("--plot needs at least one --metric to draw (fix: --metric loss)")
    store = resolve_store(tracking_uri)
    client = open_store(store, create=False)
    runs = find_runs(client, name, last=last, children=children)
    if not runs:
        raise UsageError(
            f"no runs of experiment {name!r} in {store.uri}"
            f" (fix: dlbench run {name}, or pass --tracking-uri)"
        )
    rows = rows_for(runs, metrics, descending=descending)
    if plot is not None:
        curves = plot_histories(client, rows, metrics, plot)
        click.echo(f"plotted {curves} curve(s) to {plot}", err=True)
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
    else:
        flat, columns = table(rows, metrics)
        click.echo(format_table(flat, columns))
