"""What an experiment declares: its name, its typed params, the data it uses and its ``run``.

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
                number = float(text)
                if not number.is_integer():
                    raise ValueError
                value = int(number)
            elif self.type is float:
                value = float(text)
            else:
                value = text
        except (ValueError, OverflowError):
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


def _has_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Experiment:
    """An experiment as a plugin declares it.

    ``run(ctx)`` holds the science; ``ctx`` (a :class:`dlbench.context.RunContext`) gives the
    resolved params, the seed, the data and the logging calls. ``quick`` maps param names to the
    values ``--quick`` uses (smoke mode), unless the user sets them explicitly. ``logs`` names
    the metrics the experiment reports, for ``describe`` and for tests.
    """

    name: str
    summary: str
    run: Callable[[Any], Any]
    params: tuple[Param, ...] = ()
    datasets: tuple[str, ...] = ()
    logs: tuple[str, ...] = ()
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
        return [f"{self.name}: {p}" for p in found]

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
            "logs": list(self.logs),
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
