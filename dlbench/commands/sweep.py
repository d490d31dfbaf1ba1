"""``dlbench sweep NAME -p lr=1e-3,1e-4 -p epochs=5,10``: a search of runs under one sweep run.

Parsing and printing only; the search lives in :mod:`dlbench.search` (axes, study, workers
and records in the modules it names).
Exit codes follow ``dlbench run``: 0 when every trial finished, 2 for usage errors (nothing
written), 1 when a trial failed, 130 when interrupted.
"""

from __future__ import annotations

import sys

import click

from dlbench.options import run_options
from dlbench.repeats import SeedList
from dlbench.study import PRUNERS, SEARCHES


@click.command("sweep")
@click.argument("name")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=AXIS",
              help="One axis (repeatable): values V1,V2,..., choice(V1,V2,...),"
                   " uniform(A,B), loguniform(A,B) or int(A,B[,log]).")
@click.option("--search", type=click.Choice(SEARCHES),
              help="grid: every combination; random or tpe (Bayesian): --trials samples"
                   " [default: grid when every axis is a list, else tpe].")
@click.option("--trials", type=click.IntRange(min=1),
              help="How many trials (required for random/tpe; caps a grid, drawn at random).")
@click.option("--prune", type=click.Choice(PRUNERS), default="none",
              show_default=True, help="Stop trials early whose per-epoch metric lags the others'.")
@click.option("--prune-metric", metavar="NAME",
              help="Per-epoch metric the pruner watches [default: --metric].")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Trials at once; the CPU cores are divided among them.")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: warm worker processes here; ray: Ray tasks (RAY_ADDRESS picks a cluster).")
@click.option("--metric", help="Metric that ranks the trials [default: the experiment's first log].")
@click.option("--mode", type=click.Choice(["min", "max"]),
              help="Whether smaller or larger --metric is better [default: as the experiment"
                   " declares it].")
@click.option("--storage", metavar="URL",
              help="Optuna storage every worker reaches: sqlite:///..., postgresql://... or"
                   " grpc://HOST:PORT [default: a journal file beside the tracking store].")
@click.option("--resume", "resume", metavar="SWEEP_RUN_ID",
              help="Continue this killed or interrupted sweep: only its remaining trials run.")
@click.option("--seeds", type=SeedList(), metavar="SEEDS",
              help="Repeat every trial over these seeds (0-4 or 0,3,7): each trial is a"
                   " `run --seeds` parent, ranked by the mean of --metric.")
@run_options
@click.option("--run-name", help="Name of the sweep's parent run.")
def command(name, params, search, trials, prune, prune_metric, workers, backend, metric, mode,
            storage, resume, seeds, data_path, quick, seed, experiment_name, run_name,
            tracking_uri, as_json):
    """Search experiment NAME's params, each trial a child run; best first."""
    from dlbench.console import emit_json, registry, stdout_to_stderr
    from dlbench.errors import EXIT_INTERRUPTED
    from dlbench.search import SweepRequest, run_sweep, trial_rows
    from dlbench.tables import format_table

    request = SweepRequest(
        experiment=name, space=tuple(params), search=search, trials=trials, prune=prune,
        prune_metric=prune_metric, storage=storage, workers=workers, backend=backend,
        quick=quick, seed=seed, data_path=data_path, metric=metric, mode=mode,
        experiment_name=experiment_name, run_name=run_name, tracking_uri=tracking_uri,
        resume=resume, seeds=seeds,
    )
    plugins = registry()
    with stdout_to_stderr():
        result = run_sweep(request, plugins, log=lambda line: click.echo(line, err=True))
    if as_json:
        emit_json(result.to_json())
    else:
        rows, columns = trial_rows(result.trials, result.metric)
        click.echo(f"sweep {result.run_id} {result.status} in {result.duration_s:.1f} s"
                   f" ({result.metric or 'no metric'}, {'largest' if result.mode == 'max' else 'smallest'}"
                   " first)")
        click.echo(format_table(rows, columns))
    if result.status == "KILLED":
        sys.exit(EXIT_INTERRUPTED)
    if result.status != "FINISHED":
        click.echo(f"error: sweep {result.run_id} {result.status}: {result.error}", err=True)
        sys.exit(1)
