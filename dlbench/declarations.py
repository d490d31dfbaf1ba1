"""What plugins declare: experiments, their typed params and metrics, and datasets.

Declarations are plain frozen dataclasses so that ``dlbench list`` and ``describe`` can read
them without importing any framework. pluggy checks only hook argument names; the checks
here (``problems()``) catch the rest before anything runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from dlbench.errors import UsageError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PARAM_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}
# Logged as params of every run by the runner itself.
RESERVED_PARAMS = {"seed", "quick"}
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One typed, documented knob of an experiment; ``-p name=value`` sets it."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None

    @property
    def type_name(self) -> str:
        return PARAM_TYPES.get(self.type, repr(self.type))

    def problems(self) -> list[str]:
        """What is wrong with this declaration, as readable sentences (empty when valid)."""
        where = f"param {self.name!r}"
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            return [f"{where}: name must be lower_snake_case"]
        if self.name in RESERVED_PARAMS:
            return [f"{where}: name is reserved (dlbench sets it: --seed, --quick)"]
        if self.type not in PARAM_TYPES:
            return [f"{where}: type must be one of int, float, str, bool, not {self.type!r}"]
        found = []
        if not isinstance(self.help, str) or not self.help.strip():
            found.append(f"{where}: help text is missing")
        if self.choices is not None and not self.choices:
            found.append(f"{where}: choices is empty")
        if (self.low is not None or self.high is not None) and self.type not in (int, float):
            found.append(f"{where}: bounds only apply to int and float params")
        if self.low is not None and self.high is not None and self.low > self.high:
            found.append(f"{where}: low bound {self.low} is above high bound {self.high}")
        if not found:
            try:
                self.check(self.default)
            except UsageError as exc:
                found.append(f"default is invalid: {exc}")
            for choice in self.choices or ():
                try:
                    self.check(choice)
                except UsageError as exc:
                    found.append(f"choice is invalid: {exc}")
        return found

    def parse(self, text: str) -> Any:
        """Turn command-line text into a checked value of the declared type."""
        value: Any
        try:
            if self.type is bool:
                word = text.strip().lower()
                if word not in TRUE_WORDS | FALSE_WORDS:
                    raise ValueError
                value = word in TRUE_WORDS
            elif self.type is int:
                value = _exact_int(text)
            elif self.type is float:
                value = float(text)
            else:
                value = text
        except (ValueError, OverflowError, ArithmeticError):
            raise UsageError(
                f"param {self.name!r}: expected {self.type_name}, got {text!r}"
                f" (fix: -p {self.name}={self._example()})"
            ) from None
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        """Raise UsageError unless ``value`` has the declared type and lies within bounds."""
        if not _has_type(value, self.type):
            raise UsageError(
                f"param {self.name!r}: expected {self.type_name}, got {value!r}"
            )
        if self.type is float and not math.isfinite(value):
            raise UsageError(f"param {self.name!r}: must be a finite number, got {value!r}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise UsageError(f"param {self.name!r}: {value!r} is not one of {allowed}")
        if self.low is not None and value < self.low:
            raise UsageError(f"param {self.name!r}: {value!r} is below the minimum {self.low}")
        if self.high is not None and value > self.high:
            raise UsageError(f"param {self.name!r}: {value!r} is above the maximum {self.high}")

    def _example(self) -> str:
        return str(self.default).lower() if self.type is bool else str(self.default)

    def describe(self) -> dict:
        """A JSON-ready description, as ``dlbench describe --json`` prints it."""
        return {
            "name": self.name,
            "type": self.type_name,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) if self.choices is not None else None,
            "low": self.low,
            "high": self.high,
        }


def _exact_int(text: str) -> int:
    """``"5"``, ``"5.0"`` and ``"1e3"`` as ints, exactly: never through a float, which would
    turn 9007199254740993 into ...992. ``"2.5"`` is a ValueError."""
    import decimal

    number = decimal.Decimal(text.strip())
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(text)
    if abs(number.adjusted()) > 100:  # "1e100000000" would build a huge int
        raise OverflowError(text)
    return int(number)


def _has_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


GOALS = ("max", "min")
METRIC_NAME_RE = re.compile(r"^[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class Metric:
    """A metric an experiment logs, and which way it is better: ``goal`` is ``"max"`` or
    ``"min"``. ``sweep`` ranks and ``compare`` sorts by it, so no one guesses from names."""

    name: str
    goal: str
    help: str = ""

    def problems(self) -> list[str]:
        if not isinstance(self.name, str) or not METRIC_NAME_RE.match(self.name):
            return [f"metric {self.name!r}: name may hold letters, digits and _ . / - only"]
        if self.goal not in GOALS:
            return [f"metric {self.name!r}: goal must be 'max' or 'min', not {self.goal!r}"]
        return []

    def describe(self) -> dict:
        return {"name": self.name, "goal": self.goal, "help": self.help}


@dataclass(frozen=True)
class Experiment:
    """An experiment as a plugin declares it.

    ``run(ctx)`` holds the science; ``ctx`` (a :class:`dlbench.context.RunContext`) gives the
    resolved params, the seed, the data and the logging calls. ``quick`` maps param names to the
    values ``--quick`` uses (smoke mode), unless the user sets them explicitly. ``logs`` names
    the metrics the experiment reports, for ``describe`` and for tests: each a
    :class:`Metric` (which says whether larger or smaller is better) or a bare name (no
    direction: ``sweep`` then needs ``--mode``).
    """

    name: str
    summary: str
    run: Callable[[Any], Any]
    params: tuple[Param, ...] = ()
    datasets: tuple[str, ...] = ()
    logs: tuple[Metric | str, ...] = ()
    quick: Mapping[str, Any] = field(default_factory=dict)
    tensorflow: bool = True

    def problems(self) -> list[str]:
        """What is wrong with this declaration, as readable sentences (empty when valid)."""
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            return [f"experiment name {self.name!r} must be lower_snake_case"]
        found = []
        if not isinstance(self.summary, str) or not self.summary.strip():
            found.append("summary is missing")
        elif "\n" in self.summary.strip():
            found.append("summary must be one line")
        if not callable(self.run):
            found.append("run is not callable")
        if not isinstance(self.params, (tuple, list)) or not all(
            isinstance(p, Param) for p in self.params
        ):
            return found + ["params must be a sequence of dlbench.Param"]
        names = [p.name for p in self.params]
        for name in sorted({n for n in names if names.count(n) > 1}):
            found.append(f"param {name!r} is declared twice")
        for param in self.params:
            found.extend(param.problems())
        for key, value in dict(self.quick).items():
            if key not in names:
                found.append(f"quick sets unknown param {key!r}")
            else:
                try:
                    self.param(key).check(value)
                except UsageError as exc:
                    found.append(f"quick value is invalid: {exc}")
        if isinstance(self.datasets, str) or not all(isinstance(d, str) for d in self.datasets):
            found.append("datasets must be a sequence of dataset names")
        if isinstance(self.logs, str) or not all(isinstance(m, (str, Metric)) for m in self.logs):
            found.append("logs must be a sequence of dlbench.Metric or metric names")
        else:
            for metric in self.logs:
                if isinstance(metric, Metric):
                    found.extend(metric.problems())
                elif not METRIC_NAME_RE.match(metric):
                    found.append(f"metric {metric!r}: name may hold letters, digits and _ . / - only")
            names = self.metric_names
            for name in sorted({n for n in names if names.count(n) > 1}):
                found.append(f"metric {name!r} is declared twice")
        return [f"{self.name}: {p}" for p in found]

    @property
    def metrics(self) -> list[Metric]:
        """``logs`` as Metric declarations; a bare name has goal None (no direction)."""
        return [m if isinstance(m, Metric) else Metric(m, None) for m in self.logs]

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    def goal(self, metric: str) -> str | None:
        """``"max"`` or ``"min"`` as declared for ``metric``; None when it declares none."""
        return next((m.goal for m in self.metrics if m.name == metric), None)

    def param(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        known = ", ".join(p.name for p in self.params) or "none"
        raise UsageError(
            f"unknown param {name!r} for experiment {self.name!r} (known: {known};"
            f" see: dlbench describe {self.name})"
        )

    def resolve_params(self, given: Mapping[str, str], quick: bool = False) -> dict[str, Any]:
        """Defaults, then ``quick`` overrides, then the user's ``-p`` text parsed by type."""
        values = {p.name: p.default for p in self.params}
        if quick:
            values.update(self.quick)
        for name, text in given.items():
            values[name] = self.param(name).parse(text)
        return values

    def describe(self) -> dict:
        """A JSON-ready description, as ``dlbench describe --json`` prints it."""
        return {
            "name": self.name,
            "summary": self.summary,
            "params": [p.describe() for p in self.params],
            "datasets": list(self.datasets),
            "logs": self.metric_names,
            "metrics": [m.describe() for m in self.metrics],
            "quick": dict(self.quick),
        }


def parse_assignments(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Split ``-p KEY=VALUE`` options into a dict; a later repeat of a key wins."""
    given = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-p expects KEY=VALUE, got {pair!r} (fix: -p epochs=5)")
        given[key] = value
    return given


@dataclass(frozen=True)
class Dataset:
    """A dataset as a plugin declares it. Experiments ask for data by name: ``ctx.data("speech")``.

    ``load(path, quick=..., seed=...)`` returns the loaded data: any object with a ``digest``
    (content hash, str) and a ``source`` (where it came from, str) attribute, which the runner
    records in the run (``mlflow.log_input``). ``path`` is the user's ``--data`` or None.
    ``status()`` tells ``dlbench datasets`` where the data comes from and whether it is ready.
    """

    name: str
    kind: str
    summary: str
    load: Callable[..., Any]
    status: Callable[[], dict] | None = None

    def problems(self) -> list[str]:
        found = []
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            return [f"dataset name {self.name!r} must be lower_snake_case"]
        if not isinstance(self.kind, str) or not self.kind:
            found.append("kind is missing")
        if not isinstance(self.summary, str) or not self.summary.strip():
            found.append("summary is missing")
        if not callable(self.load):
            found.append("load is not callable")
        if self.status is not None and not callable(self.status):
            found.append("status is not callable")
        return [f"dataset {self.name}: {p}" for p in found]
