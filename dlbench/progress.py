"""Training progress a person can follow: one line per epoch on stderr.

``[denoise_dense] epoch 12/200  loss 0.0123  val_loss 0.0145  31.2 s, ~8:10 left``

The remaining time is the mean epoch so far times the epochs still to go: an upper bound
when early stopping ends the training sooner. Lines go to stderr, so ``--json`` keeps stdout
to its one JSON document. Printed by ``ctx.keras_callback()``; no Keras needed here.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Mapping, TextIO


def duration(seconds: float) -> str:
    """``42.0`` -> ``"42 s"``, ``490`` -> ``"8:10"``, ``4000`` -> ``"1:06:40"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _value(value) -> str:
    value = float(value)
    return f"{value:.4g}" if math.isfinite(value) else str(value)


class EpochProgress:
    """Prints one line per finished epoch: its number, the loss, the validation metrics,
    the time so far and the time left."""

    def __init__(self, label: str, epochs: int | None, *, initial_epoch: int = 0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.label, self.epochs, self.initial_epoch = label, epochs, initial_epoch
        self.stream, self.clock = stream, clock
        self.started = clock()

    def line(self, epoch: int, logs: Mapping[str, float] | None) -> str:
        """The line for 0-based ``epoch`` (as Keras counts) with Keras' ``logs``."""
        done = epoch + 1
        logs = logs or {}
        shown = [k for k in ("loss",) if k in logs] + sorted(k for k in logs if k.startswith("val_"))
        elapsed = self.clock() - self.started
        text = f"epoch {done}" + (f"/{self.epochs}" if self.epochs else "")
        text += "".join(f"  {k} {_value(logs[k])}" for k in shown)
        text += f"  {duration(elapsed)}"
        finished = done - self.initial_epoch
        if self.epochs and finished > 0 and done < self.epochs:
            text += f", ~{duration(elapsed / finished * (self.epochs - done))} left"
        return f"[{self.label}] {text}" if self.label else text

    def epoch_end(self, epoch: int, logs: Mapping[str, float] | None) -> None:
        stream = self.stream or sys.stderr
        print(self.line(epoch, logs), file=stream, flush=True)
