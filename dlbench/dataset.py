"""What a dataset plugin declares. Experiments ask for data by name: ``ctx.data("speech")``.

``load(path, quick=..., seed=...)`` returns the loaded data: any object with a ``digest``
(content hash, str) and a ``source`` (where it came from, str) attribute, which the runner
records in the run (``mlflow.log_input``). ``path`` is the user's ``--data`` or None.
``status()`` tells ``dlbench datasets`` where the data comes from and whether it is ready.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dlbench.experiment import NAME_RE


@dataclass(frozen=True)
class Dataset:
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
