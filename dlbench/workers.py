"""Where a sweep's trials run: warm local worker processes, or Ray tasks.

A trial is an ordinary ``dlbench run`` (:func:`dlbench.runner.execute`: seed, status, failure
records) nested under the sweep's run. What differs is the process around it:

- ``local``: ``--workers N`` processes that start once (Python, the MLflow client, the
  plugins, TensorFlow when the experiment uses it; its threads set before it starts: each
  worker gets ``cores // N`` intra-op threads) and then run trial after trial. A trial
  still starts clean: a fresh Keras session, its own seed, a fresh MLflow run, nothing
  carried over but imports. A trial that kills its process (a segfault, ``os._exit``, the
  OOM killer) fails alone: its run is closed FAILED and a fresh worker takes the place.
  Workers exit with the sweep, even when the sweep is SIGKILLed.
- ``ray``: each trial a Ray task in a fresh worker process, logging into the same tracking
  URI; ``RAY_ADDRESS`` picks a cluster (see the README).

Both answer the same three calls: ``submit(spec)``, ``next_result()`` (the next trial to end,
as a record) and ``stop(terminate)`` (what an interrupted sweep does).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from dlbench.sweep_records import failed_trial, trial_record

THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def cpu_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def thread_budget(workers: int, cores: int | None = None) -> tuple[int, int]:
    """(intra-op, inter-op) TensorFlow threads for each of ``workers`` concurrent trials.

    Unlimited, every trial's TensorFlow sizes its pools to the whole machine and N trials
    fight over the cores; dividing them keeps each trial's speed predictable.
    """
    cores = cores or cpu_cores()
    intra = max(1, cores // max(1, workers))
    inter = 2 if intra >= 4 else 1
    return intra, inter


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial; plain data, so it pickles."""

    index: int  # the study's trial number
    params: Mapping[str, str]  # the trial's point, as -p text
    seed: int
    experiment: str
    store: Any  # dlbench.store.Store
    parent_run_id: str
    experiment_name: str
    quick: bool
    data_path: str | None
    threads: tuple[int, int]
    study: Any = None  # dlbench.study.StudyRef when the trial reports to a pruner
    trial_id: int | None = None  # the trial's id in the study's storage
    seeds: tuple[int, ...] | None = None  # sweep --seeds: the trial is a run --seeds parent

    @property
    def run_name(self) -> str:
        return f"trial-{self.index}"


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker process prepares once: the plugins, and TensorFlow with its threads."""

    experiment: str
    threads: tuple[int, int]

    def start(self):
        """Load the registry (and TensorFlow, threads set first); returns the registry."""
        intra, inter = self.threads
        for variable, value in zip(THREAD_VARIABLES, (intra, inter, intra)):
            os.environ[variable] = str(value)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("MPLBACKEND", "Agg")
        from dlbench.registry import load_registry

        registry = load_registry()
        if registry.experiment(self.experiment).value.tensorflow:
            from dlbench.frameworks import import_tensorflow

            tf = import_tensorflow()  # without its C++ start-up chatter

            # Must happen before TensorFlow's first op; the worker is fresh, so it does.
            tf.config.threading.set_intra_op_parallelism_threads(intra)
            tf.config.threading.set_inter_op_parallelism_threads(inter)
        return registry


def run_trial(spec: TrialSpec, registry) -> dict:
    """One trial in a (possibly warm) worker: a clean start, then an ordinary run."""
    from dlbench.runner import RunRequest, execute

    experiment = registry.experiment(spec.experiment).value
    if experiment.tensorflow:
        import keras

        keras.backend.clear_session()  # no layers, names or graphs of the previous trial
    intra, inter = spec.threads
    request = RunRequest(
        experiment=spec.experiment, params=dict(spec.params),
        data_path=Path(spec.data_path) if spec.data_path else None,
        quick=spec.quick, seed=spec.seed, experiment_name=spec.experiment_name,
        run_name=spec.run_name, parent_run_id=spec.parent_run_id,
        tags={"dlbench.sweep.trial": str(spec.index), "dlbench.threads.intra_op": str(intra),
              "dlbench.threads.inter_op": str(inter)},
    )
    reporter = None
    try:
        if spec.study is not None:
            from dlbench.study import PruningReporter

            reporter = PruningReporter(spec.study, spec.trial_id)
        if spec.seeds is not None:
            from dlbench.repeats import run_seeds

            result = run_seeds(request, list(spec.seeds), registry, store=spec.store).parent
        else:
            result = execute(request, registry, store=spec.store, step_observer=reporter)
    except Exception as exc:  # the study, the store or the input failed before the run existed
        return failed_trial(spec, f"{type(exc).__name__}: {exc}")
    finally:
        _forget_figures()
    return trial_record(spec, result.to_json(), reporter.pruned_at if reporter else None)


def _forget_figures() -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


# -- local: warm worker processes -----------------------------------------------------------


def serve(conn, setup: WorkerSetup, parent_pid: int) -> None:
    """A worker process: prepare once, then run each trial the sweep sends until told to stop."""
    _exit_with(parent_pid)
    registry, broken = None, None
    try:
        registry = setup.start()
    except Exception as exc:  # every trial sent here fails with the reason, not a bare exit
        broken = f"worker could not start: {type(exc).__name__}: {exc}"
    try:
        while (spec := conn.recv()) is not None:
            conn.send(failed_trial(spec, broken) if broken else run_trial(spec, registry))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass  # the sweep is gone or stopping; an interrupted run recorded its end itself


def _exit_with(parent_pid: int) -> None:
    """Leave when the sweep process dies (SIGKILL cannot be caught, so it cannot stop us):
    a trial left behind is closed as an orphan, and ``--resume`` runs it again."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="dlbench-exit-with-sweep").start()


class _Worker:
    def __init__(self, context, setup: WorkerSetup) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, setup, os.getpid()),
                                       name="dlbench-sweep-worker")
        self.process.start()
        child.close()
        self.spec: TrialSpec | None = None


class LocalWorkers:
    """``size`` warm worker processes; a dead one is replaced."""

    def __init__(self, size: int, setup: WorkerSetup) -> None:
        import multiprocessing

        # "spawn": a forked TensorFlow or MLflow (threads, locks) is not safe to use.
        self._context = multiprocessing.get_context("spawn")
        self._setup = setup
        self._workers = [_Worker(self._context, setup) for _ in range(size)]

    @property
    def capacity(self) -> int:
        return sum(w.spec is None for w in self._workers)

    @property
    def busy(self) -> bool:
        return any(w.spec is not None for w in self._workers)

    def submit(self, spec: TrialSpec) -> None:
        worker = next(w for w in self._workers if w.spec is None)
        if not worker.process.is_alive():  # died between trials
            worker = self._restart(worker)
        worker.spec = spec
        with contextlib.suppress(OSError):  # a worker dying now is seen by next_result
            worker.conn.send(spec)

    def next_result(self, timeout: float | None = None) -> dict | None:
        """The next trial to end (a dead worker's trial as failed), or None after ``timeout``."""
        from multiprocessing.connection import wait

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            busy = [w for w in self._workers if w.spec is not None]
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], left)
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    record = self._receive(worker)
                    if record is not None:
                        return record
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def _receive(self, worker: _Worker) -> dict | None:
        """The worker's trial record if it sent one; a failed record if it died; else None."""
        try:
            if worker.conn.poll():
                message = worker.conn.recv()
                worker.spec = None
                return message
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return None
        self._restart(worker)  # joins the dead process first
        spec, code = worker.spec, worker.process.exitcode
        why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return failed_trial(spec, f"worker process died ({why}); a fresh worker took its place")

    def _restart(self, worker: _Worker) -> _Worker:
        worker.process.join(timeout=5)
        worker.conn.close()
        fresh = _Worker(self._context, self._setup)
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    def stop(self, terminate: bool, grace: float = 60.0) -> Iterator[dict]:
        """Stop the running trials and yield their records (KILLED, recorded by themselves).

        Ctrl-C already reached the workers (same process group): a second signal could cut
        their clean-up short. SIGTERM reached only us: pass it on, once.
        """
        if terminate:
            for worker in self._workers:
                if worker.spec is not None and worker.process.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.busy and time.monotonic() < deadline:
            record = self.next_result(timeout=max(0.1, deadline - time.monotonic()))
            if record is not None:
                yield record

    def close(self) -> None:
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=10)
            worker.conn.close()


# -- Ray --------------------------------------------------------------------------------------


def ray_trial(spec: TrialSpec, setup: WorkerSetup) -> dict:
    """One trial as a Ray task (a fresh worker process each: ``max_calls=1``)."""
    return run_trial(spec, setup.start())


class RayWorkers:
    """Trials as Ray tasks, at most ``size`` at once; ``RAY_ADDRESS`` selects a cluster."""

    def __init__(self, size: int, setup: WorkerSetup) -> None:
        import ray

        self._started_here = not ray.is_initialized()
        if self._started_here:
            variables = {k: v for k, v in os.environ.items()
                         if k.startswith(("DLBENCH_", "MLFLOW_")) or k == "PYTHONPATH"}
            ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                     log_to_driver=True, runtime_env={"env_vars": variables},
                     **({} if os.environ.get("RAY_ADDRESS") else {"num_cpus": cpu_cores()}))
        self._size, self._setup = size, setup
        # max_calls=1: a fresh worker process per trial (TF threads are fixed when TF starts).
        self._remote = ray.remote(num_cpus=max(1, setup.threads[0]), max_retries=0,
                                  max_calls=1)(ray_trial)
        self._running: dict = {}

    @property
    def capacity(self) -> int:
        return self._size - len(self._running)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def submit(self, spec: TrialSpec) -> None:
        self._running[self._remote.remote(spec, self._setup)] = spec

    def next_result(self, timeout: float | None = None) -> dict | None:
        import ray

        done, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        return self._collect(done[0]) if done else None

    def _collect(self, ref, timeout=None) -> dict:
        import ray

        spec = self._running.pop(ref)
        try:
            return ray.get(ref, timeout=timeout)
        except Exception as exc:  # the task's process died, or Ray lost it
            return failed_trial(spec, f"worker died: {type(exc).__name__}: {exc}")

    def stop(self, terminate: bool) -> Iterator[dict]:
        """A KeyboardInterrupt in each task: its run records KILLED, then the task returns."""
        import ray

        for ref in list(self._running):
            ray.cancel(ref, force=False)
        for ref in list(self._running):
            yield self._collect(ref, timeout=60)

    def close(self) -> None:
        import ray

        if self._started_here:
            ray.shutdown()


@contextlib.contextmanager
def open_workers(backend: str, size: int, setup: WorkerSetup):
    """The backend's workers, closed on the way out."""
    workers = (RayWorkers if backend == "ray" else LocalWorkers)(size, setup)
    try:
        yield workers
    finally:
        workers.close()
