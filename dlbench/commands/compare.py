"""``dlbench compare NAME``: the runs of one experiment side by side, from any tracking store.

One row per run: name, start time (UTC), status, the params that differ between the runs,
and final metrics (the last logged value of each). ``--plot`` overlays per-epoch curves,
one figure per metric across runs. ``--group`` pools the runs that differ only in their seed
(the seed runs of ``run --seeds`` included, their parents not, so nothing counts twice): one
row per group with n and each metric's mean ± 95 % t-interval; ``--plot`` then draws each
group's mean curve with its interval shaded. The logic lives in :mod:`dlbench.comparison`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from dlbench.options import tracking_uri_option


PLOT_FORMATS = (".png", ".pdf", ".svg")


@click.command("compare")
@click.argument("name")
@click.option("--metric", "-m", "metrics", multiple=True, metavar="M",
              help="Show this metric (repeatable); rows are sorted by the first one.")
@click.option("--descending", "order", flag_value="descending",
              help="Sort by the first metric, largest first [default: best first, as the"
                   " experiment declares; else smallest first].")
@click.option("--ascending", "order", flag_value="ascending",
              help="Sort by the first metric, smallest first.")
@click.option("--last", type=click.IntRange(min=1), metavar="N",
              help="Only the N most recent runs.")
@click.option("--children", is_flag=True,
              help="Include nested child runs (ctx.child); by default only top-level runs.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Overlay each --metric's per-epoch history across the runs into a PNG"
                   " (with --group: each group's mean, its 95% CI shaded).")
@click.option("--group", is_flag=True,
              help="Pool runs that differ only in their seed (run --seeds children included):"
                   " mean ± 95% CI and n per group.")
@tracking_uri_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of runs (of groups).")
def command(name, metrics, order, last, children, plot, group, tracking_uri, as_json):
    """Compare the runs of experiment NAME: differing params and final metrics."""
    from dlbench.comparison import (find_repeats, find_runs, group_rows, group_table,
                                    plot_groups, plot_histories, rows_for, table)
    from dlbench.errors import UsageError
    from dlbench.orphans import repair_orphans_quietly
    from dlbench.store import open_store, resolve_store
    from dlbench.tables import format_table

    if plot is not None and not metrics:
        raise UsageError("--plot needs at least one --metric to draw (fix: --metric loss)")
    if plot is not None and plot.suffix.lower() not in PLOT_FORMATS:
        raise UsageError(f"--plot {plot}: the figure is saved as {', '.join(PLOT_FORMATS)}"
                         f" (fix: --plot {plot.with_suffix('.png')})")
    store = resolve_store(tracking_uri)
    client = open_store(store, create=False)
    repair_orphans_quietly(client)
    runs = (find_repeats if group else find_runs)(client, name, last=last, children=children)
    if not runs:
        raise UsageError(
            f"no runs of experiment {name!r} in {store.uri}"
            f" (fix: dlbench run {name}, or pass --tracking-uri)"
        )
    descending = order == "descending" if order else _goal(name, metrics) == "max"
    rows = rows_for(runs, metrics, descending=descending)
    if group:
        shown, draw, tabulate, drawn = (group_rows(rows, metrics, descending=descending),
                                        plot_groups, group_table, "group curve(s)")
    else:
        shown, draw, tabulate, drawn = rows, plot_histories, table, "curve(s)"
    if plot is not None:
        curves = draw(client, shown, metrics, plot)
        click.echo(f"plotted {curves} {drawn} to {plot}", err=True)
    if as_json:
        click.echo(json.dumps([item.to_json() for item in shown], indent=2))
    else:
        flat, columns = tabulate(shown, metrics)
        click.echo(format_table(flat, columns))

def _goal(name: str, metrics) -> str | None:
    """The declared direction of the first metric, when experiment ``name`` is installed."""
    from dlbench.console import registry

    entry = registry().experiments.get(name)
    return entry.value.goal(metrics[0]) if entry is not None and metrics else None
