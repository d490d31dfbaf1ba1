"""The Keras callback behind ``ctx.keras_callback()``: per-epoch metrics into the run, and a
progress line per epoch on stderr (:mod:`dlbench.progress`).

Imported only when a run asks for it, since it imports Keras. Metrics are buffered and
written in batches (one ``log_batch`` per few seconds, and at the end of training), so a
10,000-epoch run does not make 10,000 round trips to the tracking store.
"""

from __future__ import annotations

import math
import time

import keras


class MetricsCallback(keras.callbacks.Callback):
    """Logs ``logs`` of every epoch with ``step = epoch`` (1-based), names prefixed."""

    def __init__(self, tracker, prefix: str = "", flush_seconds: float = 5.0) -> None:
        super().__init__()
        self.tracker = tracker
        self.prefix = prefix
        self.flush_seconds = flush_seconds
        self._pending: list = []
        self._last_flush = time.monotonic()
        self._recorded_epoch = -1
        self.progress = None  # a line per epoch on stderr (dlbench.progress), set per fit

    def on_train_begin(self, logs=None):
        from dlbench.progress import EpochProgress

        self.progress = EpochProgress(getattr(self.tracker, "label", ""), self.params.get("epochs"),
                                      initial_epoch=getattr(self.tracker, "initial_epoch", 0))

    def on_epoch_end(self, epoch, logs=None):
        self.record(epoch, logs)
        if self.progress is not None:
            self.progress.epoch_end(epoch, logs)
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def record(self, epoch: int, logs) -> None:
        """Buffer epoch ``epoch``'s metrics (0-based, as Keras counts), once: a checkpoint
        taken earlier in the same epoch's callbacks records them first, so the order of the
        callbacks does not matter."""
        from mlflow.entities import Metric

        if epoch <= self._recorded_epoch:
            return
        self._recorded_epoch = epoch
        now = int(time.time() * 1000)
        finite = {self.prefix + key: float(value) for key, value in (logs or {}).items()
                  if math.isfinite(float(value))}
        self._pending += [Metric(key, value, now, epoch + 1) for key, value in finite.items()]
        self.tracker.step_logged(finite, epoch + 1)

    def on_train_end(self, logs=None):
        self.flush()

    def flush(self) -> None:
        # MLflow caps a batch at 1,000 metrics.
        while self._pending:
            batch, self._pending = self._pending[:1000], self._pending[1000:]
            self.tracker.client.log_batch(self.tracker.run_id, metrics=batch, synchronous=True)
        self._last_flush = time.monotonic()
