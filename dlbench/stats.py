"""The statistics behind results with error bars: across-seed intervals and paired tests.

Why these and not others:

- **Across seeds**, a t-interval on the mean (``summarize``): with 3-10 seeds the normal
  interval is too narrow; Student's t with n-1 degrees of freedom is the textbook answer
  and what a reader expects from "mean ± 95 % CI (n seeds)". One value has no spread: its
  std and interval are NaN, never a made-up zero.
- **Inside one seed**, two models scored on the same test examples are compared by the
  examples on which they disagree (``mcnemar``): the exact (binomial) McNemar test, valid
  for the few hundred test images of the shared data where the chi-square approximation is
  not. ``paired_bootstrap`` gives an interval of the difference of any per-example score
  (accuracy, per-clip SNR) by resampling examples.

scipy is imported inside the functions: the core stays instant to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

LEVEL = 0.95
"""The confidence level of every interval dlbench reports (``_ci95_low``/``_ci95_high``)."""

SUFFIXES = ("mean", "std", "n", "ci95_low", "ci95_high")
"""What a parent of repeated runs logs for each metric: ``<metric>_<suffix>``."""


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (n-1), count and the t-interval of the mean."""

    mean: float
    std: float
    n: int
    ci95_low: float
    ci95_high: float

    def metrics(self, name: str) -> dict[str, float]:
        """``{name_mean: .., name_std: .., name_n: .., name_ci95_low: .., name_ci95_high: ..}``;
        NaN fields (one value: no spread) are left out, since MLflow stores no NaN usefully."""
        values = {f"{name}_{suffix}": float(getattr(self, suffix)) for suffix in SUFFIXES}
        return {k: v for k, v in values.items() if not math.isnan(v)}

    def to_json(self) -> dict[str, float | int | None]:
        """The fields by name, NaN (no spread) as None: what ``--json`` prints."""
        return {suffix: (None if isinstance(v, float) and math.isnan(v) else v)
                for suffix in SUFFIXES for v in [getattr(self, suffix)]}

    def text(self, digits: int = 3) -> str:
        """``0.512 ± 0.021 (n=5)``: the mean and the half-width of its interval."""
        if math.isnan(self.ci95_low):
            return f"{self.mean:.{digits}f} (n={self.n})"
        half = (self.ci95_high - self.ci95_low) / 2
        return f"{self.mean:.{digits}f} ± {half:.{digits}f} (n={self.n})"


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """The mean of ``values`` with its two-sided t-interval at ``level`` (NaNs are dropped)."""
    data = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(data)
    if n == 0:
        raise ValueError("no values to summarize")
    mean = math.fsum(data) / n
    if n == 1:
        nan = float("nan")
        return Summary(mean, nan, 1, nan, nan)
    from scipy import stats

    std = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    half = stats.t.ppf(0.5 + level / 2, df=n - 1) * std / math.sqrt(n)
    return Summary(mean, std, n, mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    """Two models on the same examples: who was right where the other was wrong."""

    n: int  # examples
    a_only: int  # a right, b wrong
    b_only: int  # b right, a wrong
    p_value: float  # exact two-sided McNemar
    difference: float  # accuracy of b - accuracy of a


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> PairedTest:
    """Exact McNemar test of two classifiers scored on the same examples.

    Under the null hypothesis (equal accuracy), each discordant example is equally likely
    to favour either model, so ``b_only`` is Binomial(a_only + b_only, 1/2); the two-sided
    p-value is twice the smaller tail, capped at 1. No discordant example: p = 1.
    """
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes differ in length: {len(a_correct)} vs {len(b_correct)}")
    if not len(a_correct):
        raise ValueError("no paired outcomes")
    a_only = sum(1 for a, b in zip(a_correct, b_correct) if a and not b)
    b_only = sum(1 for a, b in zip(a_correct, b_correct) if b and not a)
    discordant = a_only + b_only
    if discordant == 0:
        p = 1.0
    else:
        from scipy import stats

        p = min(1.0, 2 * stats.binom.cdf(min(a_only, b_only), discordant, 0.5))
    n = len(a_correct)
    return PairedTest(n, a_only, b_only, float(p), (b_only - a_only) / n)


def paired_bootstrap(a_scores: Sequence[float], b_scores: Sequence[float], *,
                     resamples: int = 10_000, seed: int = 0, level: float = LEVEL):
    """The mean difference ``b - a`` over paired examples and its percentile-bootstrap
    interval at ``level`` (examples resampled with replacement, ``seed`` fixed so the
    interval is reproducible): ``(difference, low, high)``."""
    import numpy as np

    a = np.asarray(a_scores, dtype=float)
    b = np.asarray(b_scores, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired scores must be two equal-length lists, got {a.shape} and {b.shape}")
    diff = b - a
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)
