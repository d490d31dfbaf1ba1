"""Bad input, as a table: every row is one mistake a user can make.

Each must give a non-zero exit, exactly one ``error:`` line naming the problem, no traceback,
and a consistent store: no run left RUNNING (usage errors write no run at all).

Data rows go through the real datasets layer (the ``speech`` and ``cifar10`` datasets of the
built-in ``datasets`` plugin) from a probe experiment that needs no TensorFlow, so the table
runs in a couple of minutes; the last rows run the real ``denoise_dense`` and ``cifar_aug``
once each (slow: they import TensorFlow).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from dlbench.testing import fake_distribution, run_cli
from toy_plugin import TOY_PLUGIN

PROBE_PLUGIN = '''
from dlbench import Experiment, hookimpl


def probe(name):
    def run(ctx):
        ctx.data(name)
        ctx.log_metric("loaded", 1.0)
    return run


@hookimpl
def dlbench_experiments():
    return [Experiment(name="probe_speech", summary="Loads the speech dataset.",
                       run=probe("speech"), datasets=("speech",), tensorflow=False),
            Experiment(name="probe_cifar", summary="Loads the cifar10 dataset.",
                       run=probe("cifar10"), datasets=("cifar10",), tensorflow=False)]
'''

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

RATE = 16000


def wav(path: Path, seconds: float = 2.0, rate: int = RATE, seed: int = 0) -> Path:
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * rate))
    soundfile.write(path, samples.astype(np.float32), rate, subtype="PCM_16")
    return path


def course(folder: Path, clean=None, dirty=None) -> Path:
    """A course-layout folder; ``clean``/``dirty`` replace the default 2 s recordings."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, make in (("train_clean_male.wav", clean), ("train_dirty_male.wav", dirty)):
        if make is None:
            wav(folder / name)
        elif make != "absent":
            make(folder / name)
    return folder


def cifar(folder: Path, batch: Callable[[Path], None] | None = None) -> Path:
    """A full cifar-10-batches-py folder of tiny valid batches; ``batch`` rewrites data_batch_1."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8),
                b"labels": list(range(10))}
        (folder / name).write_bytes(pickle.dumps(data))
    names = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(names))
    if batch is not None:
        batch(folder / "data_batch_1")
    return folder


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@dataclass
class Case:
    id: str
    args: list[str]
    exit: int
    message: str
    setup: Callable[[Path], dict] = field(default=lambda tmp: {})  # -> extra env or {"args"}
    writes_run: bool = False  # True when the mistake is only found once the run exists


def data_case(id, experiment, make, message):
    def setup(tmp):
        extra = {"args": ["--data", str(make(tmp / "data"))]}
        if not experiment.startswith("probe_"):
            extra["DLBENCH_LOAD_PLUGINS"] = "speech,cifar"
        return extra

    return Case(id, ["run", experiment, "--quick"], 1, message, setup, writes_run=True)


def deleted_experiment(tmp):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    client.delete_experiment(client.create_experiment("gone"))
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
    Case("missing-name", ["run"], 2, "Missing argument 'NAME'"),
    Case("no-such-data", ["run", "toy_fit", "--data", "/no/such/folder"], 2, "no such file or folder"),
    Case("sweep-empty-value", ["sweep", "toy_fit", "-p", "lr=0.1,,0.2"], 2, "empty value"),
    Case("sweep-bad-value", ["sweep", "toy_fit", "-p", "epochs=3,x"], 2, "expected int, got 'x'"),
    Case("no-such-command", ["swep", "toy_fit"], 2, "No such command 'swep'"),
    # --- data folders and audio files (the speech dataset) ---
    data_case("speech-empty-folder", "probe_speech", lambda d: (d.mkdir() or d),
              "no speech data layout recognised"),
    data_case("speech-data-is-a-file", "probe_speech",
              lambda d: (d.parent.mkdir(exist_ok=True), d.write_text("x"), d)[-1],
              "--data must be a folder"),
    data_case("audio-not-audio", "probe_speech",
              lambda d: course(d, clean=lambda p: p.write_text("hello")), "cannot be read as audio"),
    data_case("audio-empty", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, seconds=0)), "holds no samples"),
    data_case("audio-rate-too-low", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, rate=4000)), "below the supported minimum"),
    data_case("audio-not-parallel", "probe_speech",
              lambda d: course(d, dirty=lambda p: wav(p, seconds=3.0)), "not a parallel pair"),
    data_case("audio-pair-missing", "probe_speech", lambda d: course(d, dirty="absent"),
              "its parallel file"),
    # --- CIFAR files ---
    data_case("cifar-batches-missing", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.unlink()), "batch files missing: data_batch_1"),
    data_case("cifar-truncated", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(p.read_bytes()[:100])),
              "truncated or not a CIFAR-10 python batch"),
    data_case("cifar-wrong-keys", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(pickle.dumps({b"x": 1}))),
              "expected keys b'data', b'labels'"),
    data_case("cifar-bad-labels", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(pickle.dumps(
                  {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}))),
              "labels outside 0..9"),
    data_case("cifar-pickle-runs-code", "probe_cifar",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(pickle.dumps(Evil()))),
              "a dataset file may not run code"),
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
    Case("uri-server-down", ["run", "toy_fit", "--tracking-uri", "http://127.0.0.1:9"], 1,
         "cannot reach tracking server"),
    Case("uri-unknown-scheme", ["run", "toy_fit", "--tracking-uri", "bogus://x"], 1,
         "cannot use tracking store bogus://x"),
    Case("experiment-deleted", ["run", "toy_fit", "--experiment-name", "gone"], 1,
         "'gone' is deleted", deleted_experiment),
    Case("runs-no-store", ["runs"], 1, "no tracking store",
         lambda tmp: {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'nothing' / 'mlflow.db'}"}),
]

# The real experiments on the same bad files, once each (they import TensorFlow).
SLOW_CASES = [
    data_case("denoise-dense-bad-audio", "denoise_dense",
              lambda d: course(d, clean=lambda p: p.write_text("hello")), "cannot be read as audio"),
    data_case("cifar-aug-truncated", "cifar_aug",
              lambda d: cifar(d, batch=lambda p: p.write_bytes(p.read_bytes()[:100])),
              "truncated or not a CIFAR-10 python batch"),
]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    fake_distribution(root, "toy_plugin_dist", TOY_PLUGIN)
    fake_distribution(root, "probe_plugin", PROBE_PLUGIN)
    fake_distribution(root, "broken_plugin", BROKEN_IMPORT)
    fake_distribution(root, "bad_decl_plugin", BAD_DECLARATION)
    fake_distribution(root, "dup_plugin", DUPLICATE)
    return root


def check(case: Case, plugin_site: Path, tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    env = {"PYTHONPATH": os.pathsep.join([str(plugin_site), os.environ.get("PYTHONPATH", "")]),
           "DLBENCH_LOAD_PLUGINS": "toy_plugin_dist,probe_plugin,speech,cifar",
           "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    extra = case.setup(tmp_path) or {}
    args = case.args + extra.pop("args", [])
    env.update(extra)
    out = run_cli(args, cwd=tmp_path, env=env, timeout=300)

    assert out.returncode == case.exit, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out.stderr
    assert case.message in errors[0], errors[0]
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    if not store.exists():
        assert not case.writes_run, "the run should have been recorded FAILED"
        return
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids) if ids else []
    assert all(r.info.status != "RUNNING" for r in runs)
    if case.writes_run:
        (run,) = runs
        assert run.info.status == "FAILED" and case.message in run.data.tags["dlbench.error"]
    elif case.id != "experiment-deleted":
        assert runs == []


def test_the_table_is_broad():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, plugin_site, tmp_path):
    check(case, plugin_site, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: c.id)
def test_bad_input_real_experiments(case, plugin_site, tmp_path):
    check(case, plugin_site, tmp_path)
