"""Per-example outcomes: how experiments whose point is a difference make it testable.

Two models scored on the same test examples (augmented vs baseline, transfer vs baseline,
denoised vs noisy) differ by chance on a few hundred examples; the honest question is
whether they disagree on more examples one way than the other. An experiment logs each
model's outcome per test example (:func:`log_outcomes`: 1/0 for right/wrong, or a score per
example) in that model's run, and the paired test in its own run (:func:`log_paired`): the
difference and the exact McNemar p-value (for per-example scores,
:func:`dlbench.stats.paired_bootstrap` gives an interval of the difference). Under ``--seeds`` the parent's interval of the difference metric is then the
across-seed interval (:mod:`dlbench.repeats`).

Generic on purpose: a list of numbers per example, in the test set's order. The core knows
nothing of images or audio; the plugin decides what an example and an outcome are.
"""

from __future__ import annotations

import json
from typing import Sequence

FOLDER = "outcomes"


def outcome_file(name: str) -> str:
    """Where :func:`log_outcomes` puts outcomes ``name`` in the run's artifacts."""
    return f"{FOLDER}/{name}.json"


def log_outcomes(tracker, name: str, values: Sequence[float], *, kind: str = "correct") -> None:
    """Log one value per test example (``kind`` "correct": 1 right, 0 wrong; "score": any
    number, larger better) as artifact ``outcomes/<name>.json``, in the examples' order."""
    values = [float(v) for v in values]
    tracker.log_dict({"name": name, "kind": kind, "n": len(values), "values": values},
                     outcome_file(name))


def read_outcomes(client, run_id: str, name: str) -> list[float]:
    """The values :func:`log_outcomes` logged as ``name`` in run ``run_id``."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run_id, outcome_file(name), folder)
        return json.loads(Path(path).read_text())["values"]


def log_paired(tracker, name: str, a: tuple[str, Sequence[bool]], b: tuple[str, Sequence[bool]]):
    """McNemar's exact test of ``b`` against ``a`` (each ``(label, correct per example)``,
    same examples, same order), logged into ``tracker``'s run as metrics ``<name>`` (accuracy
    of b - accuracy of a), ``<name>_mcnemar_p``, ``<name>_<a>_only`` and ``<name>_<b>_only``
    (examples only that model got right) and artifact ``outcomes/<name>_paired.json``.
    Returns the :class:`dlbench.stats.PairedTest`."""
    from dlbench.stats import mcnemar

    (a_label, a_correct), (b_label, b_correct) = a, b
    test = mcnemar([bool(v) for v in a_correct], [bool(v) for v in b_correct])
    tracker.log_metrics({name: test.difference, f"{name}_mcnemar_p": test.p_value,
                         f"{name}_{a_label}_only": float(test.a_only),
                         f"{name}_{b_label}_only": float(test.b_only)})
    tracker.log_dict({"test": "McNemar exact (binomial, two-sided)", "a": a_label, "b": b_label,
                      "examples": test.n, "a_only": test.a_only, "b_only": test.b_only,
                      "difference": test.difference, "p_value": test.p_value},
                     f"{FOLDER}/{name}_paired.json")
    return test
