"""Properties of the ``-p KEY=VALUE`` parser (Hypothesis): what holds for every input."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dlbench.errors import UsageError
from dlbench.axes import parse_space
from dlbench.declarations import FALSE_WORDS, TRUE_WORDS, Experiment, Param, parse_assignments
from dlbench.search import expand_grid, split_values

keys = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
texts = st.text(max_size=30)


@given(st.lists(st.tuples(keys, texts), max_size=8))
def test_assignments_round_trip_and_last_one_wins(pairs):
    parsed = parse_assignments([f"{k}={v}" for k, v in pairs])
    assert parsed == dict(pairs)  # dict(): a later repeat of a key wins, as documented


@given(keys, texts)
def test_only_the_first_equals_sign_splits(key, value):
    assert parse_assignments([f"{key}={value}={value}"]) == {key: f"{value}={value}"}


@given(st.text(alphabet=st.characters(blacklist_characters="="), max_size=20))
def test_text_without_equals_is_a_usage_error(text):
    with pytest.raises(UsageError, match="-p expects KEY=VALUE"):
        parse_assignments([text])


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_int_round_trips(number):
    assert Param("n", int, 0, "n").parse(str(number)) == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trips_exactly(number):
    assert Param("x", float, 0.0, "x").parse(repr(number)) == number


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_bounds_accept_exactly_the_interval(number):
    param = Param("x", float, 0.0, "x", low=-1.0, high=1.0)
    if -1.0 <= number <= 1.0:
        assert param.parse(repr(number)) == number
    else:
        with pytest.raises(UsageError, match="(below the minimum|above the maximum)"):
            param.parse(repr(number))


@given(texts)
def test_parse_returns_the_type_or_raises_usage_error(text):
    for kind, default in ((int, 0), (float, 0.0), (bool, False), (str, "")):
        param = Param("v", kind, default, "v")
        try:
            value = param.parse(text)
        except UsageError as exc:
            assert "param 'v'" in str(exc) and "\n" not in str(exc)
            continue
        assert type(value) is kind
        if kind is float:
            assert math.isfinite(value)
        if kind is str:
            assert value == text


@given(st.sampled_from(sorted(TRUE_WORDS | FALSE_WORDS)), st.sampled_from([str.upper, str.title,
                                                                          lambda s: f" {s} "]))
def test_bool_words_ignore_case_and_spaces(word, spelling):
    assert Param("b", bool, False, "b").parse(spelling(word)) is (word in TRUE_WORDS)


@given(st.lists(st.sampled_from(["plain", "fancy", "wild", "Plain", ""]), min_size=1, max_size=5))
def test_choices_accept_only_declared_values(words):
    param = Param("mode", str, "plain", "m", choices=("plain", "fancy"))
    for word in words:
        if word in ("plain", "fancy"):
            assert param.parse(word) == word
        else:
            with pytest.raises(UsageError, match="not one of plain, fancy"):
                param.parse(word)


@given(st.lists(st.integers(min_value=-999, max_value=999), min_size=1, max_size=6))
def test_sweep_values_split_on_commas_once_each_in_order(numbers):
    # A value given twice is one trial, not two; the first mention fixes the order.
    expected = list(dict.fromkeys(str(n) for n in numbers))
    assert split_values("n", ",".join(map(str, numbers))) == expected


@settings(max_examples=50)
@given(st.dictionaries(keys, st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True),
                       max_size=4))
def test_grid_is_the_cartesian_product(axes):
    grid = expand_grid({k: [str(v) for v in vs] for k, vs in axes.items()})
    assert len(grid) == math.prod(len(vs) for vs in axes.values())
    assert len({tuple(sorted(point.items())) for point in grid}) == len(grid)  # no duplicates
    for point in grid:
        assume(point)
        assert set(point) == set(axes)
        assert all(int(point[k]) in axes[k] for k in point)


# -- a sweep's axes: uniform(a,b), loguniform(a,b), int(a,b[,log]), choice(...) -------------------

BOUNDED = Experiment(name="x", summary="x", run=print, params=(
    Param("x", float, 0.0, "x", low=-1.0, high=1.0), Param("n", int, 1, "n", low=1, high=1000),
    Param("mode", str, "plain", "m", choices=("plain", "fancy"))))
unit_floats = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@given(unit_floats, unit_floats)
def test_a_float_range_inside_the_bounds_round_trips_exactly(a, b):
    assume(a < b)
    axis = parse_space([f"x=uniform({a!r},{b!r})"], BOUNDED)["x"]
    assert (axis.kind, axis.low, axis.high, axis.log) == ("uniform", a, b, False)


@given(st.integers(1, 1000), st.integers(1, 1000), st.booleans())
def test_an_int_range_is_inclusive_and_ordered(a, b, log):
    text = f"n=int({a},{b}{',log' if log else ''})"
    if a <= b:
        axis = parse_space([text], BOUNDED)["n"]
        assert (axis.low, axis.high, axis.log) == (a, b, log)
    else:
        with pytest.raises(UsageError, match="the low bound must be below the high one"):
            parse_space([text], BOUNDED)


@given(st.sampled_from(["x", "n", "mode"]), st.sampled_from(["uniform", "loguniform", "int",
                                                            "choice"]),
       st.lists(st.one_of(st.floats(allow_nan=True), st.integers(-5, 2000),
                          st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=8)),
                max_size=4))
def test_any_axis_either_parses_within_the_declared_bounds_or_is_one_usage_error(name, kind, items):
    text = f"{name}={kind}({','.join(map(str, items))})"
    param = BOUNDED.param(name)
    try:
        axis = parse_space([text], BOUNDED)[name]
    except UsageError as exc:
        assert str(exc).startswith(f"axis {text}: ") and "\n" not in str(exc)
        return
    if axis.discrete:
        assert all(param.parse(v) is not None for v in axis.values)
    else:
        assert param.type is (int if axis.kind == "int" else float)
        param.check(axis.low), param.check(axis.high)
        assert axis.low < axis.high or (axis.kind == "int" and axis.low == axis.high)
        assert not axis.log or axis.low > 0
