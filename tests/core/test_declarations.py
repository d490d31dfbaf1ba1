"""Param declarations, parsing by type, bounds and choices."""

import pytest

from dlbench import Experiment, Param
from dlbench.errors import UsageError
from dlbench.declarations import parse_assignments


def noop(ctx):
    pass


EXP = Experiment(
    name="demo",
    summary="demo",
    run=noop,
    params=(
        Param("lr", float, 1e-3, "step", low=0.0),
        Param("epochs", int, 10, "epochs", low=1, high=1000),
        Param("mode", str, "a", "mode", choices=("a", "b")),
        Param("flag", bool, False, "flag"),
    ),
    quick={"epochs": 1},
)


def test_defaults_then_quick_then_user():
    assert EXP.resolve_params({}) == {"lr": 1e-3, "epochs": 10, "mode": "a", "flag": False}
    assert EXP.resolve_params({}, quick=True)["epochs"] == 1
    assert EXP.resolve_params({"epochs": "7"}, quick=True)["epochs"] == 7


@pytest.mark.parametrize(
    "key, text, value",
    [("lr", "1e-4", 1e-4), ("epochs", "5", 5), ("epochs", "5.0", 5), ("epochs", "1e2", 100),
     ("mode", "b", "b"), ("flag", "true", True), ("flag", "0", False), ("flag", "Yes", True)],
)
def test_parse_by_declared_type(key, text, value):
    parsed = EXP.resolve_params({key: text})[key]
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    "key, text, message",
    [("lr", "fast", "expected float"), ("epochs", "2.5", "expected int"),
     ("epochs", "0", "below the minimum 1"), ("epochs", "5000", "above the maximum 1000"),
     ("mode", "c", "not one of a, b"), ("flag", "maybe", "expected bool"),
     ("lr", "nan", "finite"), ("nope", "1", "unknown param 'nope'")],
)
def test_bad_values_are_usage_errors(key, text, message):
    with pytest.raises(UsageError, match=message):
        EXP.resolve_params({key: text})


def test_assignments():
    assert parse_assignments(["a=1", "b=x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_assignments(["novalue"])


@pytest.mark.parametrize(
    "param, problem",
    [(Param("Bad", int, 1, "h"), "lower_snake_case"),
     (Param("x", list, [], "h"), "type must be one of"),
     (Param("x", int, 1, ""), "help text is missing"),
     (Param("x", int, "1", "h"), "default is invalid"),
     (Param("x", int, 5, "h", low=10), "below the minimum"),
     (Param("x", str, "a", "h", low=1), "bounds only apply"),
     (Param("x", str, "a", "h", choices=("b",)), "not one of"),
     (Param("seed", int, 1, "h"), "reserved")],
)
def test_bad_declarations(param, problem):
    assert any(problem in p for p in param.problems())


def test_experiment_problems():
    bad = Experiment(name="x", summary="two\nlines", run=None,
                     params=(Param("a", int, 1, "h"), Param("a", int, 1, "h")), quick={"b": 1})
    found = " | ".join(bad.problems())
    for problem in ["summary must be one line", "run is not callable",
                    "declared twice", "quick sets unknown param 'b'"]:
        assert problem in found
    assert EXP.problems() == []


def test_ints_are_parsed_exactly_never_through_a_float():
    wide = Param("count", int, 1, "a count", low=0)
    assert wide.parse("9007199254740993") == 9007199254740993  # a float would give ...992
    assert wide.parse(" 12 ") == 12
    for text in ("1e100000000", "inf", "nan", "1.5", "0x10"):
        with pytest.raises(UsageError, match="expected int"):
            wide.parse(text)
