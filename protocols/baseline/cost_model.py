"""Cost model of the generic-MPC baseline in the matrix dimensions and the database size.

The baseline's work splits into terms whose counts follow from its three steps, for ``n`` keys
and fixes of width ``d`` and ``R`` stacked layer rows (``R = Σ r_l``, 24,960 for SD v1.4):

=============  ================================================================================
feature        what it counts
=============  ================================================================================
``1``          start-up: connections, PRSS keys, shutdown
``n``          the ``n − 1`` secure comparisons of the argmax
``n·d``        sharing the keys and the ``n`` secure dot products of the matching
``n·d²``       sharing the MRI's fixes and the oblivious selection ``Σ u_i F_i``
``R·d``        sharing the layers, the truncation and the opening of every output entry
``R·d²``       the local products of ``W · W_fix``
=============  ================================================================================

``fit_cost_model`` fits non-negative coefficients by least squares on relative residuals (each
point weighted by ``1 / measured``), so small and large points count alike, and reports the
relative fit error and the leave-one-out error. Extrapolating far beyond the measured sizes
rests on the model's form, not on the fit: the leave-one-out error is the better guide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

FEATURES = ("1", "n", "n*d", "n*d^2", "R*d", "R*d^2")


@dataclass(frozen=True)
class CostPoint:
    """One measured run: database size, width, stacked layer rows and the measured value."""

    n: int
    dim: int
    rows: int
    value: float


def feature_row(n: int, dim: int, rows: int) -> np.ndarray:
    """Return the model's features for one size, in the order of ``FEATURES``."""
    n, d, r = float(n), float(dim), float(rows)
    return np.array([1.0, n, n * d, n * d * d, r * d, r * d * d])


@dataclass(frozen=True)
class CostModel:
    """Fitted non-negative coefficients with their fit errors (relative, on the measured points)."""

    coefficients: tuple[float, ...]
    rel_rms_error: float
    rel_max_error: float
    loo_rel_max_error: float
    points: int

    def predict(self, n: int, dim: int, rows: int) -> float:
        """Return the modelled value at a size."""
        return float(feature_row(n, dim, rows) @ np.asarray(self.coefficients))

    def terms(self, n: int, dim: int, rows: int) -> dict[str, float]:
        """Return each feature's share of the prediction at a size."""
        parts = feature_row(n, dim, rows) * np.asarray(self.coefficients)
        return dict(zip(FEATURES, map(float, parts)))

    def formula(self, unit: str = "s") -> str:
        """Return the model as a readable sum of its non-zero terms."""
        parts = [f"{c:.3g}·{name}" if name != "1" else f"{c:.3g}" for c, name in zip(self.coefficients, FEATURES) if c > 0]
        return f"({' + '.join(parts) or '0'}) {unit}"


def _solve(points: Sequence[CostPoint]) -> np.ndarray:
    design = np.array([feature_row(p.n, p.dim, p.rows) for p in points])
    values = np.array([p.value for p in points])
    weights = 1.0 / values
    # Scale columns to unit norm so NNLS is well conditioned across features of very different size.
    scaled = design * weights[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    norms[norms == 0] = 1.0
    solution, _ = nnls(scaled / norms, np.ones(len(points)))
    return solution / norms


def _relative_errors(coefficients: np.ndarray, points: Sequence[CostPoint]) -> np.ndarray:
    predicted = np.array([feature_row(p.n, p.dim, p.rows) @ coefficients for p in points])
    measured = np.array([p.value for p in points])
    return (predicted - measured) / measured


def fit_cost_model(points: Sequence[CostPoint]) -> CostModel:
    """Fit the model to measured points; raises ``ValueError`` for fewer points than features.

    Every value must be positive.
    """
    if len(points) < len(FEATURES):
        raise ValueError(f"got {len(points)} points: fitting {len(FEATURES)} coefficients needs at least as many")
    if any(not p.value > 0 for p in points):
        raise ValueError("every measured value must be positive")
    coefficients = _solve(points)
    errors = _relative_errors(coefficients, points)
    loo = []
    if len(points) > len(FEATURES):
        for i in range(len(points)):
            rest = [p for j, p in enumerate(points) if j != i]
            loo.append(abs(_relative_errors(_solve(rest), [points[i]])[0]))
    return CostModel(
        tuple(float(c) for c in coefficients),
        float(np.sqrt(np.mean(errors**2))),
        float(np.max(np.abs(errors))),
        float(max(loo)) if loo else float("nan"),
        len(points),
    )
