"""Plugin discovery through real entry points, validation, and isolation of broken plugins."""

import pytest

from dlbench.errors import PluginError, UsageError
from dlbench.registry import load_registry
from dlbench.testing import fake_distribution
from toy_plugin import TOY_PLUGIN

BAD_DECLARATION = '''
from dlbench import Experiment, Param, hookimpl

@hookimpl
def dlbench_experiments():
    return [Experiment(name="bad_params", summary="s", run=print,
                       params=(Param("epochs", int, "ten", "h"),)),
            Experiment(name="fine_one", summary="ok", run=print)]
'''
RAISES = '''
from dlbench import hookimpl

@hookimpl
def dlbench_experiments():
    raise ValueError("registration blew up")
'''
DUPLICATE = '''
from dlbench import Experiment, hookimpl

@hookimpl
def dlbench_experiments():
    return [Experiment(name="toy_fit", summary="me too", run=print)]
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    root = tmp_path / "site"
    monkeypatch.syspath_prepend(str(root))
    root.mkdir()
    return root


def test_discovers_installed_distribution(plugin_path):
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN, distribution="toy-dist", version="2.5")
    registry = load_registry()
    entry = registry.experiment("toy_fit")
    assert entry.plugin.distribution == "toy-dist" and entry.plugin.version == "2.5"
    assert set(entry.plugin.experiments) == {"toy_fit", "toy_explode", "toy_wait"}


def test_broken_plugins_are_reported_and_skipped(plugin_path):
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN)
    fake_distribution(plugin_path, "broken_import", "import does_not_exist_anywhere\n")
    fake_distribution(plugin_path, "raising_hook", RAISES)
    fake_distribution(plugin_path, "bad_decl", BAD_DECLARATION)
    registry = load_registry()
    assert "toy_fit" in registry.experiments and "fine_one" in registry.experiments
    assert "bad_params" not in registry.experiments
    problems = "\n".join(registry.problems)
    assert "plugin broken_import: failed to load: ModuleNotFoundError" in problems
    assert "plugin raising_hook: dlbench_experiments raised ValueError: registration blew up" in problems
    assert "plugin bad_decl: bad_params: default is invalid" in problems


def test_duplicate_names_name_both_distributions(plugin_path):
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN, distribution="toy-dist")
    fake_distribution(plugin_path, "copycat", DUPLICATE, distribution="copycat-dist")
    registry = load_registry()
    with pytest.raises(PluginError, match="toy-dist 1.0.*copycat-dist 1.0|copycat-dist 1.0.*toy-dist 1.0"):
        registry.experiment("toy_fit")
    assert "toy_explode" in registry.experiments


def test_unknown_experiment_suggests(plugin_path):
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN)
    with pytest.raises(UsageError, match="did you mean 'toy_fit'"):
        load_registry().experiment("toy_fti")


def test_disable_and_allow_lists(plugin_path, monkeypatch):
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN)
    monkeypatch.setenv("DLBENCH_DISABLE_PLUGINS", "toy_plugin_dist")
    assert "toy_fit" not in load_registry().experiments
    monkeypatch.delenv("DLBENCH_DISABLE_PLUGINS")
    monkeypatch.setenv("DLBENCH_LOAD_PLUGINS", "toy_plugin_dist")
    registry = load_registry()
    assert set(registry.plugins) == {"toy_plugin_dist"}


def test_a_switch_naming_no_installed_plugin_is_reported(plugin_path, monkeypatch):
    """A typo in DLBENCH_LOAD_PLUGINS would otherwise load nothing and say nothing."""
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN)
    monkeypatch.setenv("DLBENCH_LOAD_PLUGINS", "toy_plugin_dist,toy_plugn_dist")
    monkeypatch.setenv("DLBENCH_DISABLE_PLUGINS", "nosuch")
    registry = load_registry()
    assert "toy_fit" in registry.experiments
    problems = registry.problems
    assert len(problems) == 2
    assert problems[0].startswith("plugin toy_plugn_dist: DLBENCH_LOAD_PLUGINS names it, but no"
                                  " installed plugin has that name (installed: ")
    assert "toy_plugin_dist" in problems[0]
    assert problems[1].startswith("plugin nosuch: DLBENCH_DISABLE_PLUGINS names it")


def test_trace_logs_hook_calls(plugin_path, monkeypatch, capsys):
    fake_distribution(plugin_path, "toy_plugin_dist", TOY_PLUGIN)
    monkeypatch.setenv("DLBENCH_TRACE", "1")
    load_registry()
    err = capsys.readouterr().err
    assert "dlbench_experiments [toy_plugin_dist] -> ['toy_fit', 'toy_explode', 'toy_wait']" in err
