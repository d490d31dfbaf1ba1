"""The example plugin's own tests, written the way a plugin author would, with dlbench.testing."""

import dlbench_example
from dlbench.testing import check_experiment, check_plugin


def test_declarations_are_valid():
    check_plugin(dlbench_example)


def test_quick_run_learns_and_logs(tmp_path):
    checked = check_experiment("example_logistic", tmp_path)
    assert checked.params["epochs"] == "20"  # --quick applied
    assert checked.metrics["accuracy"] > 0.75  # two blobs 2 sigma apart are ~84% separable
    losses = checked.metric_history("loss")
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert {"plots/boundary.png", "model/weights.json"} <= set(checked.artifacts())

