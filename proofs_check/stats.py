"""Two-sample distinguishers with calibrated p-values, Holm's correction and advantage intervals.

Every test compares two samples ``X`` and ``Y`` of views and returns a p-value that is valid
(uniform or conservative) when both samples come from the same distribution:

* :func:`shape_test`: chi-square test of homogeneity on the message flow ``(src, phase,
  length)``; exact 1.0 when both samples show one and the same flow;
* :func:`byte_histogram_test`: chi-square test of homogeneity on byte-value counts;
* :func:`bit_position_test`: Fisher's exact test per bit position of the aligned bytes,
  Bonferroni over the positions that vary;
* :func:`collision_test`: Fisher's exact test on how many samples repeat a message of another
  sample at the same index (a fixed seed or a small key space repeats messages);
* :func:`ks_test`: two-sample Kolmogorov–Smirnov on group elements mapped to ``[0, 1)``;
* :func:`classifier_test`: a logistic-regression two-sample test (Lopez-Paz and Oquab,
  "Revisiting Classifier Two-Sample Tests", ICLR 2017): train on half, count correct
  predictions on the held-out half, one-sided binomial test against chance.

:func:`holm` adjusts a family of p-values for multiple testing (Holm, "A Simple Sequentially
Rejective Multiple Test Procedure", 1979), and :func:`advantage_interval` turns held-out
accuracy into a distinguishing advantage ``2·acc − 1`` with a Wilson score interval.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TestResult:
    """One distinguisher's outcome: its p-value and what it measured."""

    name: str
    p_value: float
    statistic: float
    detail: str = ""


def shape_test(name: str, x: Sequence[tuple], y: Sequence[tuple]) -> TestResult:
    """Compare the categorical distributions of message flows with a chi-square test."""
    cx, cy = Counter(x), Counter(y)
    categories = sorted(set(cx) | set(cy), key=repr)
    if len(categories) <= 1:
        return TestResult(name, 1.0, 0.0, f"{len(categories)} flow(s), identical")
    table = np.array([[cx[c] for c in categories], [cy[c] for c in categories]], dtype=float)
    if table.shape[1] == 2 and table.sum() < 1000:
        _, p = stats.fisher_exact(table)
        return TestResult(name, float(p), 0.0, f"{len(categories)} flows (Fisher)")
    chi2, p, _, _ = stats.chi2_contingency(table)
    return TestResult(name, float(p), float(chi2), f"{len(categories)} flows")


def byte_histogram_test(name: str, x: np.ndarray, y: np.ndarray) -> TestResult:
    """Compare byte-value histograms (uint8 arrays of all bytes) with a chi-square test."""
    hx = np.bincount(x, minlength=256).astype(float)
    hy = np.bincount(y, minlength=256).astype(float)
    keep = (hx + hy) > 0
    if hx.sum() == 0 or hy.sum() == 0:
        both_empty = hx.sum() == 0 and hy.sum() == 0
        return TestResult(name, 1.0 if both_empty else 0.0, 0.0, "one sample has no bytes")
    if keep.sum() == 1:
        return TestResult(name, 1.0, 0.0, "a single byte value in both samples")
    chi2, p, dof, _ = stats.chi2_contingency(np.vstack([hx[keep], hy[keep]]))
    return TestResult(name, float(p), float(chi2), f"{int(hx.sum())}+{int(hy.sum())} bytes, dof {dof}")


def bit_position_test(name: str, x: np.ndarray, y: np.ndarray) -> TestResult:
    """Run Fisher's exact test at every bit position of two 0/1 matrices; Bonferroni over varying positions."""
    nx, ny = len(x), len(y)
    if nx == 0 or ny == 0 or x.shape[1] == 0:
        return TestResult(name, 1.0, 0.0, "no positions")
    ones_x = x.sum(axis=0).astype(np.int64)
    ones_y = y.sum(axis=0).astype(np.int64)
    total_ones = ones_x + ones_y
    varying = (total_ones > 0) & (total_ones < nx + ny)
    if not varying.any():
        return TestResult(name, 1.0, 0.0, f"{x.shape[1]} positions, all constant and equal")
    k = ones_x[varying]
    successes = total_ones[varying]
    population = nx + ny
    low = stats.hypergeom.cdf(k, population, successes, nx)
    high = stats.hypergeom.sf(k - 1, population, successes, nx)
    per_position = np.minimum(1.0, 2.0 * np.minimum(low, high))
    count = int(varying.sum())
    worst = int(np.argmin(per_position))
    position = int(np.flatnonzero(varying)[worst])
    p = min(1.0, float(per_position[worst]) * count)
    return TestResult(name, p, float(per_position[worst]), f"{count} varying positions, smallest at bit {position}")


def collision_test(name: str, x: Sequence[Sequence[bytes]], y: Sequence[Sequence[bytes]]) -> TestResult:
    """Compare how often a message repeats another sample's message at the same index.

    ``x`` and ``y`` hold, per sample, the payloads of its messages. For each message index the
    samples whose payload occurs more than once count as colliding; Fisher's exact test
    compares the two samples, Bonferroni over the indices with any collision.
    """
    count = max((len(v) for v in list(x) + list(y)), default=0)
    p_values = []
    details = []
    for i in range(count):
        cx = Counter(v[i] for v in x if len(v) > i)
        cy = Counter(v[i] for v in y if len(v) > i)
        nx = sum(cx.values())
        ny = sum(cy.values())
        dx = sum(c for c in cx.values() if c > 1)
        dy = sum(c for c in cy.values() if c > 1)
        if dx == 0 and dy == 0:
            continue
        _, p = stats.fisher_exact([[dx, nx - dx], [dy, ny - dy]])
        p_values.append(float(p))
        details.append(f"message {i}: {dx}/{nx} vs {dy}/{ny}")
    if not p_values:
        return TestResult(name, 1.0, 0.0, "no repeated message")
    p = min(1.0, min(p_values) * len(p_values))
    return TestResult(name, p, float(min(p_values)), "; ".join(details[:4]))


def ks_test(name: str, x: np.ndarray, y: np.ndarray) -> TestResult:
    """Compare two samples of reals with the two-sample Kolmogorov–Smirnov test."""
    if len(x) == 0 or len(y) == 0:
        return TestResult(name, 1.0, 0.0, "no elements")
    result = stats.ks_2samp(x, y)
    return TestResult(name, float(result.pvalue), float(result.statistic), f"{len(x)}+{len(y)} elements")


@dataclass(frozen=True)
class ClassifierResult:
    """The classifier two-sample test's p-value and its held-out accuracy."""

    test: TestResult
    correct: int
    held_out: int


def classifier_test(name: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> ClassifierResult:
    """Train logistic regression to tell rows of ``x`` from rows of ``y``; test on a held-out half.

    The p-value is the one-sided binomial probability of at least the observed number of
    correct held-out predictions at accuracy 1/2. Constant columns are dropped first.
    """
    from sklearn.linear_model import LogisticRegression

    features = np.vstack([x, y]).astype(np.float32)
    labels = np.concatenate([np.zeros(len(x), dtype=int), np.ones(len(y), dtype=int)])
    varying = features.max(axis=0) != features.min(axis=0)
    features = features[:, varying]
    if features.shape[1] == 0:
        return ClassifierResult(TestResult(name, 1.0, 0.5, "no varying feature"), 0, 0)

    train, test = _stratified_halves(labels, rng)
    model = LogisticRegression(C=1.0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(features[train], labels[train])
    correct = int((model.predict(features[test]) == labels[test]).sum())
    held_out = len(test)
    p = float(stats.binomtest(correct, held_out, 0.5, alternative="greater").pvalue)
    accuracy = correct / held_out
    detail = f"{features.shape[1]} features, held-out accuracy {correct}/{held_out}"
    return ClassifierResult(TestResult(name, p, accuracy, detail), correct, held_out)


def _stratified_halves(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train, test = [], []
    for label in (0, 1):
        indices = rng.permutation(np.flatnonzero(labels == label))
        half = len(indices) // 2
        train.append(indices[:half])
        test.append(indices[half:])
    return np.concatenate(train), np.concatenate(test)


def holm(p_values: Sequence[float]) -> list[float]:
    """Return Holm-adjusted p-values, in the input order."""
    m = len(p_values)
    order = np.argsort(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion."""
    if trials == 0:
        return 0.0, 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def advantage_interval(correct: int, held_out: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """Return the advantage ``2·acc − 1`` of a held-out accuracy and its interval, clipped to ``[-1, 1]``."""
    if held_out == 0:
        return 0.0, -1.0, 1.0
    low, high = wilson_interval(correct, held_out, confidence)
    return 2 * correct / held_out - 1, 2 * low - 1, 2 * high - 1


def clopper_pearson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the exact (Clopper–Pearson) interval of a binomial proportion."""
    if trials == 0:
        return 0.0, 1.0
    interval = stats.binomtest(successes, trials).proportion_ci(confidence, method="exact")
    return float(interval.low), float(interval.high)
