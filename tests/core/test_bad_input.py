"""Bad input to the core, as a table: every row is one mistake a user can make.

Each must give a non-zero exit, exactly one ``error:`` line naming the problem, no traceback,
and a consistent store: usage errors write nothing, and no run is left RUNNING. Data files
have their own tables beside the plugins that read them (tests/speech, tests/cifar).
"""

from __future__ import annotations

import pytest

from dlbench.testing import fake_distribution
from support import Case, check_bad_input
from toy_plugin import TOY_PLUGIN

BROKEN_IMPORT = "import no_such_module_anywhere\n"

BAD_DECLARATION = '''
from dlbench import Experiment, Param, hookimpl


@hookimpl
def dlbench_experiments():
    return [Experiment(name="bad_decl", summary="Param default out of bounds.", run=print,
                       params=(Param("rate", float, 5.0, "a rate", high=1.0),), tensorflow=False)]
'''

DUPLICATE = '''
from dlbench import Experiment, hookimpl


@hookimpl
def dlbench_experiments():
    return [Experiment(name="toy_fit", summary="A second toy_fit.", run=print, tensorflow=False)]
'''


def deleted_experiment(tmp):
    from support import client

    mlflow = client(f"sqlite:///{tmp / 'mlflow.db'}")
    mlflow.delete_experiment(mlflow.create_experiment("gone"))
    return {}


CASES = [
    # --- CLI params ---
    Case("unknown-experiment", ["run", "toy_fti"], 2, "did you mean 'toy_fit'"),
    Case("int-not-a-number", ["run", "toy_fit", "-p", "epochs=many"], 2, "expected int, got 'many'"),
    Case("int-not-whole", ["run", "toy_fit", "-p", "epochs=2.5"], 2, "expected int, got '2.5'"),
    Case("above-maximum", ["run", "toy_fit", "-p", "lr=5"], 2, "above the maximum 1.0"),
    Case("below-minimum", ["run", "toy_fit", "-p", "lr=-0.1"], 2, "below the minimum 0.0"),
    Case("not-finite", ["run", "toy_fit", "-p", "slope=nan"], 2, "must be a finite number"),
    Case("not-a-choice", ["run", "toy_fit", "-p", "mode=wild"], 2, "not one of plain, fancy"),
    Case("not-a-bool", ["run", "toy_fit", "-p", "verbose=maybe"], 2, "expected bool, got 'maybe'"),
    Case("unknown-param", ["run", "toy_fit", "-p", "colour=red"], 2, "unknown param 'colour'"),
    Case("no-equals", ["run", "toy_fit", "-p", "lr"], 2, "-p expects KEY=VALUE"),
    Case("empty-key", ["run", "toy_fit", "-p", "=3"], 2, "-p expects KEY=VALUE"),
    Case("seed-not-int", ["run", "toy_fit", "--seed", "x"], 2, "'x' is not a valid integer"),
    Case("seed-negative", ["run", "toy_fit", "--seed", "-1"], 2,
         "'--seed': -1 is not in the range 0<=x<=4294967295"),
    Case("seed-too-large", ["run", "toy_fit", "--seed", str(2**32)], 2, "is not in the range"),
    Case("sweep-seed-negative", ["sweep", "toy_fit", "-p", "lr=0.1,0.2", "--seed", "-1"], 2,
         "'--seed': -1 is not in the range"),
    Case("int-beyond-any-bound", ["run", "denoise_dense", "-p", "epochs=" + "9" * 26], 2,
         "above the maximum 100000", lambda tmp: {"DLBENCH_LOAD_PLUGINS": "speech"}),
    Case("missing-name", ["run"], 2, "Missing argument 'NAME'"),
    Case("no-such-data", ["run", "toy_fit", "--data", "/no/such/folder"], 2, "no such file or folder"),
    Case("sweep-empty-value", ["sweep", "toy_fit", "-p", "lr=0.1,,0.2"], 2, "empty value"),
    Case("sweep-bad-value", ["sweep", "toy_fit", "-p", "epochs=3,x"], 2, "expected int, got 'x'"),
    Case("sweep-no-direction", ["sweep", "toy_fit", "-p", "lr=0.1,0.2", "--metric", "loaded"], 2,
         "declares no direction for metric 'loaded'"),
    Case("no-such-command", ["swep", "toy_fit"], 2, "No such command 'swep'"),
    Case("ui-port-out-of-range", ["ui", "--port", "70000"], 2, "70000 is not in the range"),
    Case("compare-plot-not-an-image", ["compare", "toy_fit", "-m", "loss", "--plot", "curves.txt"],
         2, "the figure is saved as .png, .pdf, .svg"),
    Case("data-root-is-a-file", ["datasets"], 1, "is not a folder (fix: point it at a folder",
         lambda tmp: ((tmp / "afile").write_text("x"), {"DLBENCH_DATA": str(tmp / "afile"),
                                                        "DLBENCH_LOAD_PLUGINS": "speech"})[1]),
    # --- plugins ---
    Case("plugin-fails-to-import", ["run", "broken_thing"], 2, "unknown experiment 'broken_thing'",
         lambda tmp: {"DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,broken_plugin"}),
    Case("plugin-bad-declaration", ["run", "bad_decl"], 2, "unknown experiment 'bad_decl'",
         lambda tmp: {"DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,bad_decl_plugin"}),
    Case("plugin-duplicate-name", ["run", "toy_fit"], 1, "'toy_fit' is registered twice",
         lambda tmp: {"DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,dup_plugin"}),
    # --- tracking URIs ---
    Case("uri-plain-folder", ["run", "toy_fit", "--tracking-uri", "some/folder"], 1,
         "is not a URI"),
    Case("uri-under-a-file", ["run", "toy_fit"], 1, "not writable",
         lambda tmp: ((tmp / "f").write_text("x"),
                      {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'f' / 'sub' / 'mlflow.db'}"})[1]),
    Case("uri-sqlite-in-memory", ["run", "toy_fit", "--tracking-uri", "sqlite:///:memory:"], 1,
         "names no database file"),
    Case("uri-sqlite-no-path", ["run", "toy_fit", "--tracking-uri", "sqlite:///"], 1,
         "names no database file"),
    Case("uri-sqlite-folder", ["run", "toy_fit"], 1, "names a folder, not a database file",
         lambda tmp: {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}"}),
    Case("uri-sqlite-not-a-database", ["run", "toy_fit"], 1, "is not an SQLite database",
         lambda tmp: ((tmp / "notes.txt").write_text("my notes"),
                      {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'notes.txt'}"})[1]),
    Case("uri-server-down", ["run", "toy_fit", "--tracking-uri", "http://127.0.0.1:9"], 1,
         "cannot reach tracking server"),
    Case("uri-unknown-scheme", ["run", "toy_fit", "--tracking-uri", "bogus://x"], 1,
         "cannot use tracking store bogus://x"),
    Case("experiment-name-escapes-up", ["run", "toy_fit", "--experiment-name", "../../elsewhere"],
         2, "would keep its artifacts outside the store"),
    Case("experiment-name-absolute", ["run", "toy_fit", "--experiment-name", "/tmp/elsewhere"],
         2, "would keep its artifacts outside the store"),
    Case("resume-not-a-run-id", ["run", "toy_fit", "--resume", "../../x"], 2, "is not a run id"),
    Case("experiment-deleted", ["run", "toy_fit", "--experiment-name", "gone"], 1,
         "'gone' is deleted", deleted_experiment),
    Case("experiment-name-too-long", ["run", "toy_fit", "--experiment-name", "x" * 600], 2,
         "must be 1 to 500 characters long"),
    Case("top-level-unknown-option", ["--nosuch", "list"], 2, "No such option '--nosuch'"),
    Case("debug-switch-not-boolean", ["list"], 2, "'maybe' is not a valid boolean",
         lambda tmp: {"DLBENCH_DEBUG": "maybe"}),
    Case("runs-no-store", ["runs"], 1, "no tracking store",
         lambda tmp: {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'nothing' / 'mlflow.db'}"}),
]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    fake_distribution(root, "toy_plugin_dist", TOY_PLUGIN)
    fake_distribution(root, "broken_plugin", BROKEN_IMPORT)
    fake_distribution(root, "bad_decl_plugin", BAD_DECLARATION)
    fake_distribution(root, "dup_plugin", DUPLICATE)
    return root


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, plugin_site, tmp_path, monkeypatch):
    check_bad_input(case, plugin_site, tmp_path, "toy_plugin_dist", monkeypatch)


def test_every_size_a_built_in_experiment_takes_has_a_ceiling():
    """An int param is a count of epochs, images, frames or layers: without an upper bound one
    typo (``-p epochs=99999999999999999999999999``) runs for ever or exhausts memory."""
    import sys

    from dlbench.registry import load_registry
    from support import REPO

    sys.path.insert(0, str(REPO / "examples" / "dlbench-example-plugin"))
    try:
        import dlbench_example
    finally:
        sys.path.pop(0)
    experiments = [*load_registry().experiments.values()]
    declared = [e.value for e in experiments] + dlbench_example.dlbench_experiments()
    assert {"denoise_dense", "cifar_aug", "example_logistic"} <= {e.name for e in declared}
    unbounded = [f"{e.name}.{p.name}" for e in declared for p in e.params
                 if p.type is int and p.high is None]
    assert unbounded == []
