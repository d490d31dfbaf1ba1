"""``dlbench runs``: the runs still marked RUNNING, and ``--repair`` for the orphans among them.

Any command that opens the store already repairs this host's orphans on the way (see
:mod:`dlbench.orphans`); this command does it on demand, reports what it found, and fails
loudly when the store cannot be searched, where the automatic check stays silent.
"""

from __future__ import annotations

import json

import click

from dlbench.options import tracking_uri_option


@click.command("runs")
@click.option("--repair", is_flag=True,
              help="Mark this host's RUNNING runs whose process is gone FAILED, with the reason.")
@tracking_uri_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(repair, tracking_uri, as_json):
    """List runs marked RUNNING; with --repair, close the orphaned ones as FAILED."""
    import socket

    from dlbench.errors import TrackingError, first_line
    from dlbench.orphans import HOST_TAG, PID_TAG, find_orphans, repair_orphans, running_runs
    from dlbench.store import open_store, resolve_store
    from dlbench.tables import format_table

    store = resolve_store(tracking_uri)
    client = open_store(store, create=False)
    try:
        orphans = repair_orphans(client) if repair else find_orphans(client)
        running = running_runs(client)
    except Exception as exc:
        raise TrackingError(f"cannot search runs in {store.uri}: {first_line(exc)}") from exc
    orphan_ids = {o.run_id for o in orphans}
    rows = [
        {"run_id": r.info.run_id, "name": r.info.run_name,
         "experiment": r.data.tags.get("dlbench.experiment"),
         "host": r.data.tags.get(HOST_TAG), "pid": r.data.tags.get(PID_TAG),
         "state": "orphaned" if r.info.run_id in orphan_ids else "running"}
        for r in running
    ]
    if as_json:
        click.echo(json.dumps({"host": socket.gethostname(), "running": rows,
                               "orphans": [o.to_json() for o in orphans],
                               "repaired": repair}, indent=2))
        return
    if rows:
        click.echo(format_table(rows, ["run_id", "name", "experiment", "host", "pid", "state"]))
    else:
        click.echo("no runs are marked RUNNING", err=True)
    if repair:
        for orphan in orphans:
            click.echo(f"repaired: run {orphan.run_id} marked FAILED ({orphan.reason})", err=True)
        click.echo(f"{len(orphans)} orphaned run(s) repaired", err=True)
    elif orphans:
        click.echo(f"{len(orphans)} orphaned run(s) on this host; fix: dlbench runs --repair",
                   err=True)
