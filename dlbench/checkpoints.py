"""Epoch checkpoints as run artifacts, and ``dlbench run NAME --resume RUN_ID``.

An experiment opts in at its edges, like a Keras example with a ModelCheckpoint::

    model = ctx.restore_model() or build_model(...)
    model.fit(..., initial_epoch=ctx.initial_epoch,
              callbacks=[ctx.keras_callback(), ctx.checkpoint_callback(every=5)])

Every ``every`` epochs the model (weights and optimizer state, one ``.keras`` file) and the
epoch number go to the run's ``checkpoints/`` artifacts, after the metrics logged so far are
flushed. ``--resume`` reopens the same run, restores the last checkpoint and continues from
its epoch, so the metric history continues under the same run id.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dlbench.errors import UsageError

FOLDER = "checkpoints"
MODEL_FILE = "last.keras"
EPOCH_FILE = "epoch.json"


def checkpoint_callback(tracker, every: int = 1):
    """A Keras callback saving the model into the run every ``every`` epochs."""
    import keras

    if every < 1:
        raise ValueError(f"checkpoint every {every} epochs: must be 1 or more")

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % every == 0:
                # This epoch's metrics too, whether the metrics callback ran before us or not.
                tracker.record_epoch(self.model, epoch, logs)
                save_checkpoint(tracker, self.model, epoch + 1)

    return Checkpoint()


def save_checkpoint(tracker, model, epoch: int) -> None:
    # Metrics first: a resumed run must find the history complete up to its checkpoint.
    tracker.flush_metrics()
    folder = tracker.scratch / FOLDER / tracker.run_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    (folder / EPOCH_FILE).write_text(json.dumps({"epoch": epoch, "saved_at": time.time()}))
    tracker.client.log_artifacts(tracker.run_id, str(folder), FOLDER)


@dataclass
class Resume:
    """What ``--resume`` found in the run: its params as given, and its last checkpoint."""

    run_id: str
    experiment_id: str
    params: dict[str, str]
    seed: int
    quick: bool
    checkpoint: Path
    epoch: int


def load_resume(client, run_id: str, experiment_name: str, scratch: Path) -> Resume:
    """Check ``run_id`` can be resumed by this experiment and fetch its last checkpoint."""
    from dlbench.lifecycle import resumable_run

    run = resumable_run(client, run_id, experiment_name)
    target = scratch / "resume"
    target.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(client.download_artifacts(run_id, FOLDER, str(target)))
        epoch = int(json.loads((local / EPOCH_FILE).read_text())["epoch"])
    except Exception:
        raise UsageError(
            f"--resume {run_id}: the run has no checkpoint (the experiment saves them with"
            " ctx.checkpoint_callback(every=N); this run ended before the first one)"
        ) from None
    params = dict(run.data.params)
    seed = int(params.pop("seed", "0"))
    quick = params.pop("quick", "false") == "true"
    return Resume(run_id, run.info.experiment_id, params, seed, quick, local / MODEL_FILE, epoch)


def reopen(client, resume: Resume, tags: Mapping[str, str]) -> None:
    """Mark the run RUNNING again, owned by this process; the old failure note goes."""
    from dlbench.lifecycle import reopen_run

    reopen_run(client, resume.run_id, {**tags, "dlbench.resumed_from_epoch": resume.epoch})


def restore_model(path: Path | None) -> Any:
    if path is None:
        return None
    import keras

    return keras.models.load_model(os.fspath(path))

