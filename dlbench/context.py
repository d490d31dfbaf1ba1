"""``ctx``: what an experiment's ``run(ctx)`` receives.

It carries the resolved params, the seed, smoke mode and the user's data path, gives data by
name (``ctx.data("speech")``), and logs into the run (``ctx.log_metric``, ``ctx.log_figure``,
... from :class:`dlbench.tracker.Tracker`). ``ctx.child("baseline")`` opens a nested run for
experiments that compare variants; the parent carries the comparison.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Iterator, Mapping

from dlbench.declarations import Experiment
from dlbench.lifecycle import ending, start_run
from dlbench.tracker import Tracker


class RunContext(Tracker):
    def __init__(
        self,
        *,
        client,
        run_id: str,
        experiment_id: str,
        experiment: Experiment,
        params: Mapping[str, Any],
        seed: int,
        quick: bool,
        data_path: Path | None,
        scratch: Path,
        registry,
        loaded: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(client, run_id, scratch)
        self.experiment_id = experiment_id
        self.experiment = experiment
        self.params = dict(params)
        self.seed = seed
        self.quick = quick
        self.data_path = data_path
        self._registry = registry
        # Shared with child runs: a dataset is loaded once per `dlbench run`.
        self._loaded = {} if loaded is None else loaded
        # Set by the runner for `--resume RUN_ID` (see dlbench.checkpoints).
        self.initial_epoch = 0
        self.resume_checkpoint: Path | None = None
        # Set by the runner for `--strategy mirrored` (see dlbench.distribute).
        self.strategy = None
        self.strategy_used = False  # whether the experiment built a model in strategy_scope()
        self.label = experiment.name  # how its progress lines start; a child adds its name

    def strategy_scope(self):
        """Build and compile the model inside this: the strategy's scope, or a no-op."""
        self.strategy_used = True
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def checkpoint_callback(self, every: int = 1):
        """A Keras callback saving the model into this run every ``every`` epochs (``--resume``)."""
        from dlbench.checkpoints import checkpoint_callback

        return checkpoint_callback(self, every=every)

    def restore_model(self):
        """The model of the checkpoint ``--resume`` continues from (optimizer state included),
        or None on a fresh run: ``model = ctx.restore_model() or build_model()``."""
        from dlbench.checkpoints import restore_model

        return restore_model(self.resume_checkpoint)

    def log(self, message: str) -> None:
        """A progress line for the user; stderr, since stdout carries the --json summary."""
        print(f"[{self.label}] {message}", file=sys.stderr, flush=True)

    def data(self, name: str) -> Any:
        """The dataset registered as ``name``, loaded once and recorded as this run's input."""
        if name not in self._loaded:
            dataset = self._registry.dataset(name).value
            self.log(f"loading dataset {name!r}")
            self._loaded[name] = dataset.load(self.data_path, quick=self.quick, seed=self.seed)
        loaded = self._loaded[name]
        self._record_input(name, loaded)
        return loaded

    def _record_input(self, name: str, loaded: Any) -> None:
        """The loaded data as the run's training input: its digest and source, and its schema
        (``loaded.input_schema()``: features/targets) and profile (``loaded.describe()``)
        where the dataset offers them."""
        schema = loaded.input_schema() if hasattr(loaded, "input_schema") else {}
        profile = loaded.describe() if hasattr(loaded, "describe") else None
        self.log_dataset(name, digest=str(getattr(loaded, "digest", "unknown")),
                         source=str(getattr(loaded, "source", "unknown")), profile=profile,
                         **schema)

    @contextlib.contextmanager
    def child(self, name: str) -> Iterator["RunContext"]:
        """A nested run named ``name``; it ends like any run (FINISHED, FAILED or KILLED) and
        passes an exception on, so the parent ends the same way."""
        run_id = start_run(self.client, self.experiment_id, name=name, parent_run_id=self.run_id,
                           tags={"dlbench.experiment": self.experiment.name})
        child = RunContext(
            client=self.client,
            run_id=run_id,
            experiment_id=self.experiment_id,
            experiment=self.experiment,
            params=self.params,
            seed=self.seed,
            quick=self.quick,
            data_path=self.data_path,
            scratch=self.scratch,
            registry=self._registry,
            loaded=self._loaded,
        )
        child.strategy = self.strategy
        child.plugin, child.logged_models = self.plugin, self.logged_models
        child.label = f"{self.label}/{name}"
        try:
            with ending(child, reraise=True):
                child.log_params({**self.params, "seed": self.seed, "quick": self.quick})
                yield child
        finally:
            self.strategy_used |= child.strategy_used
