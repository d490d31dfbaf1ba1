"""A sweep's axes: the grammar of `-p KEY=AXIS`, checked against the declared param before
anything runs (exit 2, the axis and the fix named, nothing written)."""

import pytest

from dlbench.axes import Axis, check_axis, grid_points, grid_size, parse_axis, parse_space
from dlbench.declarations import Experiment, Param
from dlbench.errors import UsageError

EXPERIMENT = Experiment(name="x", summary="x", run=print, params=(
    Param("lr", float, 0.1, "step", low=0.0, high=1.0),
    Param("units", int, 8, "width", low=1, high=512),
    Param("mode", str, "plain", "m", choices=("plain", "fancy")),
    Param("flag", bool, False, "f"),
))


def space(*pairs):
    return parse_space(pairs, EXPERIMENT)


def test_each_kind_of_axis_parses_to_typed_bounds():
    axes = space("lr=loguniform(1e-4, 0.5)", "units=int(16,256,log)", "mode=choice(plain,fancy)",
                 "flag=true,false")
    assert axes["lr"] == Axis("lr", "loguniform", low=1e-4, high=0.5, log=True)
    assert axes["units"] == Axis("units", "int", low=16, high=256, log=True)
    assert axes["mode"] == Axis("mode", "choice", ("plain", "fancy"))
    assert axes["flag"] == Axis("flag", "list", ("true", "false"))
    assert space("lr=uniform(0,1)")["lr"] == Axis("lr", "uniform", low=0.0, high=1.0)
    assert space("units=int(1,1)")["units"].low == 1  # inclusive: one value is a range too
    assert [a.text for a in axes.values()] == [
        "loguniform(0.0001,0.5)", "int(16,256,log)", "choice(plain,fancy)", "true,false"]


@pytest.mark.parametrize("pair, message", [
    ("lr=uniform(0,2)", "axis lr=uniform(0,2): param 'lr': 2.0 is above the maximum 1.0"),
    ("lr=uniform(0.5,0.1)", "the low bound must be below the high one (fix: -p lr=uniform(0.1,0.5))"),
    ("lr=loguniform(0,0.5)", "a log scale needs a positive low bound (fix: -p lr=loguniform(1e-06,0.5))"),
    ("lr=int(1,3)", "param 'lr' is float, so it cannot take int(...) (fix: -p lr=uniform(a,b)"),
    ("units=uniform(1,3)", "param 'units' is int, so it cannot take uniform(...) (fix: -p units=int(a,b))"),
    ("units=int(0,4,log)", "param 'units': 0 is below the minimum 1"),
    ("units=int(2.5,4)", "param 'units': expected int, got '2.5'"),
    ("units=int(8)", "expected int(low,high[,log]) (fix: -p units=int(16,256,log))"),
    ("lr=uniform(0.1,0.2,0.3)", "expected uniform(low,high) (fix: -p lr=uniform(0.1,0.5))"),
    ("mode=choice(plain,wild)", "axis mode=choice(plain,wild): param 'mode': 'wild' is not one of"),
    ("mode=choice(plain,)", "empty choice (fix: -p mode=choice(a,b))"),
    ("mode=uniform(0,1)", "param 'mode' is str, so it cannot take uniform(...) (fix: -p mode=a list"),
    ("lr=0.1,,0.2", "empty value"),
    ("nope=1,2", "unknown param 'nope'"),
])
def test_a_bad_axis_names_itself_and_the_fix(pair, message):
    with pytest.raises(UsageError) as caught:
        space(pair)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_capped_grid_draws_points_without_building_the_product():
    axes = {f"a{i}": Axis(f"a{i}", "list", tuple("0123456789")) for i in range(9)}
    assert grid_size(axes) == 10**9
    picked = grid_points(axes, limit=5, seed=3)
    assert len(picked) == 5 and picked == grid_points(axes, limit=5, seed=3)
    assert picked != grid_points(axes, limit=5, seed=4)
    small = {"x": Axis("x", "list", ("a", "b")), "y": Axis("y", "list", ("1", "2", "3"))}
    assert grid_points(small)[:4] == [{"x": "a", "y": "1"}, {"x": "a", "y": "2"},
                                      {"x": "a", "y": "3"}, {"x": "b", "y": "1"}]


def test_parse_axis_leaves_a_plain_list_alone():
    assert parse_axis("mode", "plain, fancy").values == ("plain", "fancy")
    assert parse_axis("lr", " uniform( 0.1 , 0.2 ) ").kind == "uniform"
    assert check_axis(parse_axis("lr", "0.5,0.25"), EXPERIMENT.param("lr")).kind == "list"


@pytest.mark.parametrize("args, message", [
    (["-p", "lr=uniform(0.01,0.5)", "--search", "grid"],
     "--search grid cannot enumerate axis lr=uniform(0.01,0.5)"),
    (["-p", "lr=uniform(0.01,0.5)"], "--search tpe needs a budget (fix: --trials 20)"),
    (["-p", "lr=0.1,0.2", "--search", "random"], "--search random needs a budget"),
    (["-p", "epochs=" + ",".join(map(str, range(1, 40))), "-p", "lr=" + ",".join(
        f"0.{i:02d}" for i in range(1, 30))], "the grid has 1,131 points, more than 1,000"),
    (["-p", "lr=loguniform(0,0.5)", "--trials", "3"], "axis lr=loguniform(0,0.5)"),
    (["-p", "lr=0.1", "--prune", "asha", "--prune-metric", "accuracy"],
     "--prune-metric accuracy: experiment 'toy_fit' logs no such metric"),
    (["--resume", "abc", "-p", "lr=0.1"], "--resume continues the sweep as it was planned"),
    (["-p", "lr=0.1", "--storage", "/nonexistent-dlbench/sweep.journal"],
     "--storage /nonexistent-dlbench/sweep.journal: cannot open it"),
])
def test_sweep_refuses_a_bad_space_before_writing_anything(cli, tmp_path, args, message):
    store = tmp_path / "mlflow.db"
    out = cli(["sweep", "toy_fit", *args, "--tracking-uri", f"sqlite:///{store}"])
    assert out.exit_code == 2, out.stderr
    assert message in out.stderr and out.stderr.count("error:") == 1
    assert not store.exists()


def test_trials_cap_a_large_grid_and_pick_the_default_search():
    from dlbench.search import SweepRequest, make_plan

    big = ("units=" + ",".join(map(str, range(1, 40))), "lr=" + ",".join(
        f"0.{i:02d}" for i in range(1, 30)))
    plan, axes = make_plan(SweepRequest("x", space=big, trials=7), EXPERIMENT)
    assert (plan.search, plan.trials, plan.metric) == ("grid", 7, None)
    assert make_plan(SweepRequest("x", space=big[:1]), EXPERIMENT)[0].trials == 39
    ranged = make_plan(SweepRequest("x", space=("mode=choice(plain,fancy)",), trials=3,
                                    mode="max"), EXPERIMENT)[0]
    assert (ranged.search, ranged.trials, ranged.axes) == ("tpe", 3, {"mode": "choice(plain,fancy)"})
