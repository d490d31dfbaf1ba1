"""The whole extension surface of dlbench: three hooks, each returning a list.

A plugin is any module (or object) with functions marked ``@dlbench.hookimpl`` whose names
match the specs below, published in the ``dlbench`` entry-point group::

    [options.entry_points]
    dlbench =
        my_experiments = my_package.experiments

The built-in speech and CIFAR experiments are plugins of exactly this kind.
"""

import pluggy

PROJECT = "dlbench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def dlbench_experiments():
    """Return the :class:`dlbench.Experiment` objects this plugin provides (a list)."""


@hookspec
def dlbench_datasets():
    """Return the :class:`dlbench.Dataset` objects this plugin provides (a list)."""


@hookspec
def dlbench_commands():
    """Return the :class:`click.Command` objects this plugin adds to ``dlbench`` (a list);
    import what a command needs inside its function, so ``dlbench --help`` stays fast."""
