"""Figures the CIFAR experiments share: test accuracy with its error bars."""

from __future__ import annotations


def wilson(correct: int, n: int, z: float = 1.959964):
    """The 95 % Wilson score interval of ``correct`` out of ``n`` (sound at 0 and n too)."""
    import math

    if n == 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def plot_test_accuracy(outcomes: dict, title: str):
    """One bar per model (``outcomes``: name -> 0/1 per test image) with its 95 % interval:
    what a single seed's test accuracy can and cannot tell apart."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(outcomes)
    means = [float(np.mean(outcomes[n])) for n in names]
    bounds = [wilson(int(np.sum(outcomes[n])), len(outcomes[n])) for n in names]
    errors = np.array([[m - lo for m, (lo, _) in zip(means, bounds)],
                       [hi - m for m, (_, hi) in zip(means, bounds)]])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.bar(names, means, yerr=errors, capsize=6, color="#8fb3d9")
    for i, m in enumerate(means):
        ax.text(i, m / 2, f"{100 * m:.1f} %", ha="center")
    n = len(next(iter(outcomes.values())))
    ax.set(ylabel="test accuracy (95 % Wilson interval)", ylim=(0, 1),
           title=f"{title}, {n} test images")
    ax.grid(alpha=0.3, axis="y")
    return fig
