"""Finds plugins through the ``dlbench`` entry-point group and checks what they register.

One PluginManager, built here and nowhere else. Built-in experiments, datasets and commands
arrive exactly like a third party's: through entry points. A plugin that fails to import or
registers something invalid is reported and skipped; the others keep working. A name
registered twice (two experiments, two datasets, two commands, or a command that would
shadow one of dlbench's own) is refused for both, with one message naming both plugins.

Environment switches (like pytest's ``-p no:NAME`` and datasette's ``DATASETTE_LOAD_PLUGINS``):
- ``DLBENCH_DISABLE_PLUGINS=a,b``: do not load these entry-point names.
- ``DLBENCH_LOAD_PLUGINS=a,b``: load only these entry-point names (an allow-list).
- ``DLBENCH_TRACE=1``: write every hook call and its result to stderr.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable

import pluggy

from dlbench import hookspecs
from dlbench.declarations import Dataset, Experiment
from dlbench.errors import PluginError, UsageError

GROUP = hookspecs.PROJECT
COMMAND_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, as ``dlbench plugins`` shows it."""

    name: str
    distribution: str | None = None
    version: str | None = None
    experiments: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Entry:
    """A registered object together with the plugin it came from."""

    value: Any
    plugin: PluginInfo


class Registry:
    """Every experiment, dataset and command the installed plugins provide, validated.

    ``reserved`` are names no plugin command may take (dlbench's own commands).
    """

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self.plugins: dict[str, PluginInfo] = {}
        self.experiments: dict[str, Entry] = {}
        self.datasets: dict[str, Entry] = {}
        self.commands: dict[str, Entry] = {}
        self.conflicts: dict[tuple[str, str], str] = {}  # (kind, name) -> message
        self.reserved = set(reserved)

    @property
    def problems(self) -> list[str]:
        return [f"plugin {p.name}: {e}" for p in self.plugins.values() for e in p.errors]

    def experiment(self, name: str) -> Entry:
        return self._lookup(self.experiments, name, "experiment", "dlbench list")

    def dataset(self, name: str) -> Entry:
        return self._lookup(self.datasets, name, "dataset", "dlbench datasets")

    def _lookup(self, table: dict[str, Entry], name: str, kind: str, how: str) -> Entry:
        if self.conflict(kind, name):
            raise PluginError(self.conflict(kind, name))
        if name in table:
            return table[name]
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(f"unknown {kind} {name!r} ({hint}see: {how})")

    def add(self, plugin: PluginInfo, kind: str, items: Any) -> None:
        """Validate what one plugin's hook returned and keep the valid items."""
        if items is None:
            return
        if not isinstance(items, (list, tuple)):
            plugin.errors.append(f"{kind} hook must return a list, got {type(items).__name__}")
            return
        for item in items:
            problems = _problems(kind, item)
            if problems:
                plugin.errors.extend(problems)
                continue
            self._keep(kind, item, plugin)

    def _keep(self, kind: str, item: Any, plugin: PluginInfo) -> None:
        table = getattr(self, f"{kind}s")
        name = item.name
        if (kind, name) in self.conflicts:
            return
        if kind == "command" and name in self.reserved:
            plugin.errors.append(f"command {name!r} of {_origin(plugin)} would replace dlbench's"
                                 " own command of that name; it is not added (fix: rename it)")
            return
        if name in table:
            first = table.pop(name).plugin
            message = (
                f"{kind} {name!r} is registered twice: by {_origin(first)} and by"
                f" {_origin(plugin)} (fix: uninstall one, or set DLBENCH_DISABLE_PLUGINS)"
            )
            self.conflicts[kind, name] = message
            first.errors.append(message)
            plugin.errors.append(message)
            return
        table[name] = Entry(item, plugin)
        getattr(plugin, f"{kind}s").append(name)

    def conflict(self, kind: str, name: str) -> str | None:
        """The message for a ``kind`` called ``name`` that two plugins registered, if any."""
        return self.conflicts.get((kind, name))


def _problems(kind: str, item: Any) -> list[str]:
    """What is wrong with one registered item, as readable sentences."""
    if kind == "command":
        import click

        if not isinstance(item, click.Command):
            return [f"command hook returned {type(item).__name__}, expected a click.Command"]
        if not isinstance(item.name, str) or not COMMAND_NAME_RE.match(item.name):
            return [f"command name {item.name!r} must be lower-case words joined by '-'"]
        return []
    expected = {"experiment": Experiment, "dataset": Dataset}[kind]
    if not isinstance(item, expected):
        return [f"{kind} hook returned {type(item).__name__}, expected dlbench.{expected.__name__}"]
    return item.problems()


def _origin(plugin: PluginInfo) -> str:
    if plugin.distribution:
        return f"plugin {plugin.name!r} ({plugin.distribution} {plugin.version})"
    return f"plugin {plugin.name!r}"


def _names(items: Any) -> list[str]:
    return [getattr(item, "name", repr(item)) for item in items or ()]


def _names_from_env(variable: str) -> set[str] | None:
    raw = os.environ.get(variable)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _entry_point_names() -> list[str]:
    names = {ep.name for ep in metadata.entry_points(group=GROUP)}
    return sorted(names)


def plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    if os.environ.get("DLBENCH_TRACE"):
        manager.trace.root.setwriter(sys.stderr.write)
        manager.enable_tracing()
    return manager


def load_registry(extra_plugins: Iterable[tuple[str, Any]] = (),
                  reserved: Iterable[str] = ()) -> Registry:
    """Load every plugin of the ``dlbench`` entry-point group, plus ``extra_plugins``.

    ``extra_plugins`` are (name, module-or-object) pairs registered directly: the way tests
    and :mod:`dlbench.testing` add an experiment without installing a distribution.
    ``reserved`` are the command names plugins may not take (the CLI's own).
    """
    manager = plugin_manager()
    registry = Registry(reserved)
    disabled = _names_from_env("DLBENCH_DISABLE_PLUGINS") or set()
    allowed = _names_from_env("DLBENCH_LOAD_PLUGINS")
    installed = _entry_point_names()
    for switch, names in (("DLBENCH_LOAD_PLUGINS", allowed or set()),
                          ("DLBENCH_DISABLE_PLUGINS", disabled)):
        for name in sorted(set(names) - set(installed)):  # a typo would otherwise pass unseen
            registry.plugins[name] = PluginInfo(name=name, errors=[
                f"{switch} names it, but no installed plugin has that name"
                f" (installed: {', '.join(installed) or 'none'})"])
    for name in installed:
        if name in disabled or (allowed is not None and name not in allowed):
            manager.set_blocked(name)
            continue
        try:
            # One name at a time, so that one plugin failing to import cannot stop the rest.
            manager.load_setuptools_entrypoints(GROUP, name=name)
        except Exception as exc:  # a broken third-party plugin must not break dlbench
            registry.plugins[name] = PluginInfo(
                name=name, errors=[f"failed to load: {type(exc).__name__}: {exc}"]
            )
    for name, plugin in extra_plugins:
        manager.register(plugin, name=name)

    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        dist = distributions.get(id(plugin))
        registry.plugins[name] = PluginInfo(
            name=name,
            distribution=dist.project_name if dist else None,
            version=dist.version if dist else None,
        )

    trace = manager.trace.root.get("hook")
    plugins = [plugin for _, plugin in manager.list_name_plugin() if plugin is not None]
    for kind, hook in (("experiment", "dlbench_experiments"), ("dataset", "dlbench_datasets"),
                       ("command", "dlbench_commands")):
        for impl in getattr(manager.hook, hook).get_hookimpls():
            plugin = registry.plugins[impl.plugin_name]
            # Through the hook relay (hookwrappers and tracing apply), one plugin at a time,
            # which is how we know who registered what.
            others = [p for p in plugins if p is not impl.plugin]
            try:
                results = manager.subset_hook_caller(hook, remove_plugins=others)()
            except Exception as exc:
                plugin.errors.append(f"{hook} raised {type(exc).__name__}: {exc}")
                continue
            items = results[0] if results else None
            trace(f"{hook} [{impl.plugin_name}] -> {_names(items)}")
            registry.add(plugin, kind, items)
    return registry
