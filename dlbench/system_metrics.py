"""System metrics sampled while a run runs: CPU, memory, disk, network (GPU where present).

MLflow's own monitor samples them (psutil) into the run's System metrics tab, as metrics
``system/...``. :func:`dlbench.lifecycle.ending` starts one per run, by explicit run id, and
stops it before the run's end is recorded, so child runs and the many runs of one worker
process each get their own, cleanly stopped. MLflow samples every 10 s
(``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``); what was sampled since the last write is
written when the run ends, so a run shorter than that still shows a point.

Off with ``DLBENCH_NO_SYSTEM_METRICS=1`` (``dlbench run --no-system-metrics`` sets it).
"""

from __future__ import annotations

import os
import sys

SWITCH = "DLBENCH_NO_SYSTEM_METRICS"
PREFIX = "system/"
"""What MLflow's monitor names its metrics with; they are not the experiment's results."""


def enabled() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() in ("", "0", "false", "no", "off")


def is_system_metric(key: str) -> bool:
    return key.startswith(PREFIX)


def start(client, run_id: str):
    """A running monitor for ``run_id``, or None when switched off or unavailable."""
    if not enabled():
        return None
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        # resume_logging: a resumed run's samples continue after its last step.
        monitor = SystemMetricsMonitor(run_id, tracking_uri=client.tracking_uri,
                                       resume_logging=True)
    except Exception as exc:  # psutil missing, or a store that cannot be asked
        print(f"warning: no system metrics for run {run_id}: {exc}", file=sys.stderr)
        return None
    monitor.start()
    return monitor


def stop(monitor) -> None:
    """Stop sampling and write what was sampled since the monitor last wrote."""
    if monitor is None:
        return
    monitor.finish()
    pending = monitor.aggregate_metrics()
    if pending:
        monitor.publish_metrics(pending)
        monitor.mlflow_logger.flush()
