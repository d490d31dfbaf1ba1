"""A sweep's search space: what ``-p KEY=...`` may say, checked against the declared param.

An axis is one of

- a list ``lr=1e-3,3e-4`` (the grid's values, in the order given; a repeat counts once);
- ``choice(x,y,...)``: the same values, but searched rather than enumerated by default;
- ``uniform(a,b)`` / ``loguniform(a,b)``: a float param between ``a`` and ``b``;
- ``int(a,b)`` / ``int(a,b,log)``: an int param from ``a`` to ``b`` inclusive.

Every value and bound is parsed by the param's declared type and checked against its bounds
and choices here, before any run starts: a typo costs an ``error:`` line (exit 2) naming the
axis and the fix, never a trial. Plain data only; Optuna distributions are made from axes in
:mod:`dlbench.study`.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from dlbench.errors import UsageError

RANGES = ("uniform", "loguniform", "int")
FUNCTION_RE = re.compile(r"^\s*(uniform|loguniform|int|choice)\s*\((.*)\)\s*$", re.DOTALL)
GRID_LIMIT = 1000
"""A grid larger than this is refused unless ``--trials`` caps it: 1,000 trials is hours."""


def split_values(name: str, text: str) -> list[str]:
    """``"1e-3,1e-4"`` -> ``["1e-3", "1e-4"]``: the values one param takes in the grid."""
    values = [value.strip() for value in text.split(",")]
    if any(value == "" for value in values):
        raise UsageError(
            f"param {name!r}: empty value in {text!r} (fix: -p {name}=a,b with no empty item)"
        )
    return list(dict.fromkeys(values))  # a value given twice is one trial, not two


@dataclass(frozen=True)
class Axis:
    """One ``-p`` axis of a sweep. ``values`` (list and choice) are command-line text, as
    ``dlbench run -p`` takes it; ``low``/``high`` (ranges) are typed numbers."""

    name: str
    kind: str  # "list", "choice", "uniform", "loguniform" or "int"
    values: tuple[str, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False

    @property
    def discrete(self) -> bool:
        """Whether a grid can enumerate it (a list or a choice)."""
        return self.kind in ("list", "choice")

    @property
    def text(self) -> str:
        """The axis as typed (normalized): what the sweep's parent run records as its param."""
        if self.kind == "list":
            return ",".join(self.values)
        if self.kind == "choice":
            return f"choice({','.join(self.values)})"
        return range_text(self.kind, self.low, self.high, self.log)


def range_text(kind: str, low, high, log: bool) -> str:
    """``uniform(a,b)``, ``loguniform(a,b)``, ``int(a,b)`` or ``int(a,b,log)``."""
    return f"{kind}({low},{high}{',log' if kind == 'int' and log else ''})"


def parse_axis(name: str, text: str) -> Axis:
    """``-p NAME=TEXT`` of a sweep -> an :class:`Axis` (its syntax only; see :func:`check_axis`)."""
    match = FUNCTION_RE.match(text)
    if match is None:
        return Axis(name, "list", tuple(split_values(name, text)))
    kind, inner = match.groups()
    items = [item.strip() for item in inner.split(",")]
    where = f"axis {name}={text.strip()}"
    if kind == "choice":
        if any(item == "" for item in items):
            raise UsageError(f"{where}: empty choice (fix: -p {name}=choice(a,b))")
        return Axis(name, "choice", tuple(dict.fromkeys(items)))
    log = False
    if kind == "int" and len(items) == 3 and items[2].lower() == "log":
        items, log = items[:2], True
    if len(items) != 2 or "" in items:
        usage = f"{kind}(low,high{'[,log]' if kind == 'int' else ''})"
        raise UsageError(f"{where}: expected {usage} (fix: -p {name}={_example(kind)})")
    return Axis(name, kind, low=items[0], high=items[1], log=log or kind == "loguniform")


def _example(kind: str) -> str:
    return {"uniform": "uniform(0.1,0.5)", "loguniform": "loguniform(1e-4,1e-2)",
            "int": "int(16,256,log)"}[kind]


def check_axis(axis: Axis, param, typed: str | None = None) -> Axis:
    """``axis`` with its bounds typed, or a UsageError naming the axis and the fix.

    ``param`` is the experiment's declared :class:`dlbench.declarations.Param`: list and
    choice values are parsed by its type and checked against its bounds and choices; a
    range needs a numeric param of the matching type, ``low < high`` (``<=`` for ``int``),
    both inside the param's bounds, and a positive ``low`` on a log scale. Errors quote the
    axis as ``typed``.
    """
    where = f"axis {axis.name}={(typed or axis.text).strip()}"
    if axis.discrete:
        for value in axis.values:
            _parse(param, value, where)
        return axis
    wanted = int if axis.kind == "int" else float
    if param.type is not wanted:
        other = ("int(a,b)" if param.type is int else "uniform(a,b) or loguniform(a,b)"
                 if param.type is float else "a list of values or choice(...)")
        raise UsageError(f"{where}: param {axis.name!r} is {param.type_name}, so it cannot take"
                         f" {axis.kind}(...) (fix: -p {axis.name}={other})")
    low, high = (_parse(param, bound, where) for bound in (axis.low, axis.high))
    if low > high or (low == high and axis.kind != "int"):
        raise UsageError(f"{where}: the low bound must be below the high one (fix: -p"
                         f" {axis.name}={range_text(axis.kind, high, low, axis.log)})")
    if axis.log and low <= 0:
        floor = 1 if axis.kind == "int" else 1e-6
        raise UsageError(f"{where}: a log scale needs a positive low bound (fix: -p"
                         f" {axis.name}={range_text(axis.kind, floor, high, axis.log)})")
    return Axis(axis.name, axis.kind, low=low, high=high, log=axis.log)


def _parse(param, text, where: str):
    try:
        return param.parse(str(text))
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None


def parse_space(pairs: Iterable[str], experiment) -> dict[str, Axis]:
    """``-p`` options of a sweep -> its checked axes, in the order given."""
    from dlbench.declarations import parse_assignments

    axes = {}
    for name, text in parse_assignments(list(pairs)).items():
        param = experiment.param(name)  # an unknown param is a UsageError listing the known
        axes[name] = check_axis(parse_axis(name, text), param, typed=text)
    return axes


def expand_grid(axes: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """Every combination of the axes' values: the sweep's trials, first axis slowest."""
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


def grid_size(axes: Mapping[str, Axis]) -> int:
    return math.prod(len(axis.values) for axis in axes.values())


def grid_points(axes: Mapping[str, Axis], limit: int | None = None,
                seed: int = 0) -> list[dict[str, str]]:
    """The grid's points, first axis slowest; with ``limit`` smaller than the grid, that many
    of them drawn at random (by ``seed``) without building the whole product."""
    values = [axis.values for axis in axes.values()]
    size = grid_size(axes)
    if limit is None or limit >= size:
        picked: Iterable[int] = range(size)
    else:
        picked = sorted(random.Random(seed).sample(range(size), limit))
    return [dict(zip(axes, _point(index, values))) for index in picked]


def _point(index: int, values: list[tuple[str, ...]]) -> list[str]:
    """Grid point number ``index`` in the order of :func:`itertools.product`."""
    point = []
    for choices in reversed(values):
        index, digit = divmod(index, len(choices))
        point.append(choices[digit])
    return point[::-1]
