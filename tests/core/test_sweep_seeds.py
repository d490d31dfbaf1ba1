"""``dlbench sweep --seeds``: every trial repeated over the seeds, ranked by the mean."""

import json
import statistics

import pytest

from dlbench.testing import run_cli
from support import client


def test_sweep_seeds_makes_each_trial_a_repeats_parent_ranked_by_the_mean(tmp_path, toy_env, store_uri):
    out = run_cli(["sweep", "toy_fit", "-p", "lr=0.05,0.3", "-p", "epochs=6", "--seeds", "0-2",
                   "--metric", "slope_error", "--json", "--no-system-metrics"],
                  tracking_uri=store_uri, cwd=tmp_path, env=toy_env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["metric"] == "slope_error_mean" and result["mode"] == "min"
    trials = result["trials"]
    assert [t["status"] for t in trials] == ["FINISHED", "FINISHED"]
    mlflow = client(store_uri)
    sweep = mlflow.get_run(result["run_id"])
    assert sweep.data.params["seeds"] == "0,1,2"
    means = []
    for trial in trials:
        parent = mlflow.get_run(trial["run_id"])
        assert parent.data.tags["mlflow.parentRunId"] == result["run_id"]
        assert parent.data.tags["dlbench.repeats"] == "0,1,2"
        seeds = mlflow.search_runs([parent.info.experiment_id],
                                   f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        assert sorted(r.data.params["seed"] for r in seeds) == ["0", "1", "2"]
        assert {r.data.params["lr"] for r in seeds} == {trial["sweep_params"]["lr"]}
        mean = statistics.mean(r.data.metrics["slope_error"] for r in seeds)
        assert parent.data.metrics["slope_error_mean"] == pytest.approx(mean)
        assert trial["metrics"]["slope_error_mean"] == pytest.approx(mean)
        assert parent.data.metrics["slope_error_n"] == 3
        means.append(mean)
    assert means == sorted(means)  # best (smallest mean) first
    assert result["best"]["sweep_params"]["lr"] == "0.3"  # 6 steps at 0.05 stop short of the slope


def test_sweep_seeds_refuses_pruning(cli, tmp_path):
    store = tmp_path / "mlflow.db"
    out = cli(["sweep", "toy_fit", "-p", "lr=0.1,0.2", "--seeds", "0-1", "--prune", "median"],
              env={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert out.exit_code == 2 and "--prune watches one run's curve" in out.stderr
    assert not store.exists()
