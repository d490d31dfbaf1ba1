"""``--strategy mirrored``: one run on all local GPUs with ``tf.distribute.MirroredStrategy``.

The experiment builds and compiles its model inside ``with ctx.strategy_scope():`` (a no-op
without ``--strategy``), so the same code runs on one device or many. Keras splits each batch
across the replicas; the batch size a plugin passes is the global one.

Without GPUs, ``DLBENCH_CPU_DEVICES=N`` splits the CPU into N logical devices, the way the
tests exercise the strategy on a laptop. Multi-worker training
(``MultiWorkerMirroredStrategy``) is not offered: it is broken with Keras 3 (keras #20585).
"""

from __future__ import annotations

import os

from dlbench.errors import UsageError

STRATEGIES = ("mirrored",)


def make_strategy(name: str):
    """Create the strategy before anything else touches TensorFlow's devices."""
    if name not in STRATEGIES:
        raise UsageError(f"unknown strategy {name!r} (choose: {', '.join(STRATEGIES)})")
    import tensorflow as tf

    cpus = int(os.environ.get("DLBENCH_CPU_DEVICES", "0") or 0)
    if cpus > 1:
        physical = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            physical[0], [tf.config.LogicalDeviceConfiguration() for _ in range(cpus)]
        )
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)
