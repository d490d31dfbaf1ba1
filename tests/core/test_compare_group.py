"""``dlbench compare NAME --group``: runs pooled by their differing params, seed left out."""

import json
import statistics

import pytest

from dlbench.registry import load_registry
from dlbench.repeats import run_seeds
from dlbench.runner import RunRequest, execute
from support import client


@pytest.fixture(scope="module")
def grouped_store(tmp_path_factory):
    """toy_fit under --seeds 0-2 at lr 0.1 and at lr 0.3, and one lone run at lr 0.3 seed 7."""
    import types

    from toy_plugin import TOY_PLUGIN

    module = types.ModuleType("toy")
    exec(TOY_PLUGIN, module.__dict__)
    registry = load_registry(extra_plugins=[("toy", module)])
    uri = f"sqlite:///{tmp_path_factory.mktemp('group') / 'mlflow.db'}"
    parents = {}
    for lr in ("0.1", "0.3"):
        request = RunRequest(experiment="toy_fit", tracking_uri=uri, params={"lr": lr, "epochs": "6"})
        result = run_seeds(request, [0, 1, 2], registry)
        assert result.status == "FINISHED", result.parent.error
        parents[lr] = result
    lone = execute(RunRequest(experiment="toy_fit", tracking_uri=uri, seed=7,
                              params={"lr": "0.3", "epochs": "6"}), registry)
    assert lone.status == "FINISHED"
    return uri, parents, lone


def test_group_pools_seeds_and_reports_mean_ci_and_n(cli, grouped_store):
    uri, parents, lone = grouped_store
    out = cli(["compare", "toy_fit", "--group", "-m", "slope_error", "--json"],
              env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 0, out.stderr
    groups = json.loads(out.stdout)
    assert [g["params"] for g in groups] == [{"lr": "0.3"}, {"lr": "0.1"}]  # best (smallest) first
    by_lr = {g["params"]["lr"]: g for g in groups}
    # The seed runs of each parent, and the lone run in its lr's group; never the parents.
    assert sorted(by_lr["0.1"]["run_ids"]) == sorted(c.run_id for c in parents["0.1"].children)
    assert sorted(by_lr["0.3"]["run_ids"]) == sorted(
        [c.run_id for c in parents["0.3"].children] + [lone.run_id])
    assert sorted(by_lr["0.3"]["seeds"]) == ["0", "1", "2", "7"]
    values = [c.metrics["slope_error"] for c in parents["0.3"].children] + [lone.metrics["slope_error"]]
    summary = by_lr["0.3"]["metrics"]["slope_error"]
    assert summary["n"] == 4 and summary["mean"] == pytest.approx(statistics.mean(values))
    assert summary["std"] == pytest.approx(statistics.stdev(values))
    assert summary["ci95_low"] < summary["mean"] < summary["ci95_high"]
    # Same seeds, same summary as the --seeds parent logged.
    parent = client(uri).get_run(parents["0.1"].run_id).data.metrics
    assert by_lr["0.1"]["metrics"]["slope_error"]["mean"] == pytest.approx(parent["slope_error_mean"])
    assert by_lr["0.1"]["metrics"]["slope_error"]["ci95_high"] == pytest.approx(
        parent["slope_error_ci95_high"])

    text = cli(["compare", "toy_fit", "--group", "-m", "slope_error"], env={"MLFLOW_TRACKING_URI": uri})
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["lr", "n", "slope_error"]
    assert lines[1].split()[:2] == ["0.3", "4"] and "(n=4)" in lines[1] and "±" in lines[1]
    assert lines[2].split()[:2] == ["0.1", "3"] and "(n=3)" in lines[2]


def test_group_plot_draws_one_band_per_group(cli, grouped_store, tmp_path):
    uri, _, _ = grouped_store
    figure = tmp_path / "loss.png"
    out = cli(["compare", "toy_fit", "--group", "-m", "loss", "--plot", str(figure)],
              env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 0, out.stderr
    assert "plotted 2 group curve(s)" in out.stderr
    assert figure.stat().st_size > 5000 and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_groups_shades_the_interval_of_the_mean(grouped_store):
    import matplotlib.pyplot as plt

    from dlbench.comparison import draw_groups, find_repeats, group_rows, rows_for

    uri, _, _ = grouped_store
    mlflow = client(uri)
    groups = group_rows(rows_for(find_repeats(mlflow, "toy_fit"), ["loss"]), ["loss"])
    figure, curves = draw_groups(mlflow, groups, ["loss"])
    assert curves == 2
    (axis,) = figure.axes
    assert len(axis.lines) == 2 and len(axis.collections) == 2  # a mean and a band per group
    for line, group in zip(axis.lines, groups):
        steps, means = line.get_data()
        assert list(steps) == list(range(1, 7))
        histories = [[m.value for m in sorted(mlflow.get_metric_history(r.run_id, "loss"),
                                              key=lambda m: m.step)] for r in group.runs]
        assert means[-1] == pytest.approx(statistics.mean(h[-1] for h in histories))
    plt.close(figure)


def test_group_with_nothing_finished_is_a_usage_error(cli, tmp_path, toy_env):
    from dlbench.testing import run_cli

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_cli(["run", "toy_explode"], tracking_uri=uri, env=toy_env)
    out = cli(["compare", "toy_explode", "--group"], env={"MLFLOW_TRACKING_URI": uri})
    assert out.exit_code == 2 and "no FINISHED run to group" in out.stderr
