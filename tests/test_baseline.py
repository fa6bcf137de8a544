"""Generic-MPC baseline: a small secure repair against the plaintext one, and the cost model."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.baseline.baseline import (
    SD14_DIM,
    SD14_LAYER_ROWS,
    plaintext_repair,
    run_baseline,
    scaled_layer_rows,
    synthetic_instance,
)
from protocols.baseline.cost_model import FEATURES, CostPoint, feature_row, fit_cost_model
from protocols.mpyc_matching import InsecureThresholdError


def test_sd14_layer_table():
    assert len(SD14_LAYER_ROWS) == 32
    assert sum(SD14_LAYER_ROWS) == 24960
    assert set(SD14_LAYER_ROWS) == {320, 640, 1280}
    assert scaled_layer_rows(SD14_DIM) == list(SD14_LAYER_ROWS)
    assert scaled_layer_rows(8, layers=4) == [3, 3, 3, 3]


@pytest.mark.parametrize("parties, n", [(3, 5), (4, 1)])
def test_baseline_matches_plaintext_repair(parties, n):
    query, keys, fixes, layers = synthetic_instance(n, 6, [3, 5, 2], seed=n)
    result = run_baseline(query, keys, fixes, layers, parties=parties, timeout_s=90)
    index, expected = plaintext_repair(query, keys, fixes, layers)

    assert result.index == index
    assert [a.shape for a in result.layers] == [(3, 6), (5, 6), (2, 6)]
    # Inputs are rounded to 16 fractional bits and each output is one probabilistic truncation:
    # a few units of 2^-16 per entry for these magnitudes.
    assert result.max_abs_error < 5e-4
    assert result.max_abs_error == pytest.approx(
        max(float(np.max(np.abs(a - b))) for a, b in zip(result.layers, expected))
    )
    assert result.run.results["mri"]["output"] is None


def test_baseline_rejects_two_parties_and_bad_shapes():
    query, keys, fixes, layers = synthetic_instance(2, 4, [2], seed=0)
    with pytest.raises(InsecureThresholdError):
        run_baseline(query, keys, fixes, layers, parties=2)
    with pytest.raises(ValueError, match="fixes have shape"):
        run_baseline(query, keys, fixes[:, :3], layers)
    with pytest.raises(ValueError, match="layers"):
        run_baseline(query, keys, fixes, [np.ones((2, 5))])
    bad = fixes.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="fixes contains NaN"):
        run_baseline(query, keys, bad, layers)


def test_cost_model_recovers_exact_coefficients():
    truth = np.array([0.5, 1e-3, 2e-5, 3e-7, 4e-5, 5e-7])
    sizes = [(n, d, r) for n in (4, 32, 256) for d in (8, 16, 32) for r in (16, 512)]
    points = [CostPoint(n, d, r, float(feature_row(n, d, r) @ truth)) for n, d, r in sizes]
    model = fit_cost_model(points)

    assert model.coefficients == pytest.approx(tuple(truth), rel=1e-6)
    assert model.rel_max_error < 1e-9
    assert model.loo_rel_max_error < 1e-9
    assert model.predict(3000, 768, 24960) == pytest.approx(float(feature_row(3000, 768, 24960) @ truth))
    assert sum(model.terms(10, 10, 10).values()) == pytest.approx(model.predict(10, 10, 10))
    assert model.formula().startswith("(0.5 + ")


def test_cost_model_reports_noise_as_fit_error():
    rng = np.random.default_rng(0)
    truth = np.array([0.5, 0.0, 2e-5, 3e-7, 4e-5, 0.0])
    sizes = [(n, d, r) for n in (4, 64, 512) for d in (8, 24) for r in (16, 1024)]
    points = [CostPoint(n, d, r, float(feature_row(n, d, r) @ truth) * (1 + 0.05 * rng.uniform(-1, 1))) for n, d, r in sizes]
    model = fit_cost_model(points)

    assert all(c >= 0 for c in model.coefficients)
    assert 0 < model.rel_rms_error <= 0.05
    assert model.rel_max_error <= 0.1
    assert model.loo_rel_max_error >= model.rel_max_error


def test_cost_model_needs_enough_positive_points():
    with pytest.raises(ValueError, match="at least"):
        fit_cost_model([CostPoint(1, 1, 1, 1.0)] * (len(FEATURES) - 1))
    with pytest.raises(ValueError, match="positive"):
        fit_cost_model([CostPoint(i + 1, 2, 3, 0.0) for i in range(len(FEATURES))])
