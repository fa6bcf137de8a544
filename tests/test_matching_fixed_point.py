"""Fixed-point encoding of the matching inputs: ring width, error bound, threshold and reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.matching.fixed_point import (
    FixedPointParams,
    encode_keys,
    encode_query,
    encode_threshold,
    encoded_scores,
    float_match,
    reference_match,
)


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_default_params_for_width_768():
    params = FixedPointParams(dim=768)
    assert params.query_bits == 14
    assert params.score_frac_bits == 28
    assert params.ring_bits == 30
    expected = 1.001 * math.sqrt(768) * (2.0**-13 + 2.0**-17) + 768 * 2.0**-30
    assert params.error_bound == pytest.approx(expected)
    assert params.error_bound < 4e-3


def test_ring_too_wide_rejected():
    with pytest.raises(ValueError, match="ring"):
        FixedPointParams(dim=768, query_frac_bits=16, key_frac_bits=16)


@pytest.mark.parametrize("dim", [1, 3, 768, 4096])
def test_largest_scores_fit_in_ring(dim):
    params = FixedPointParams(dim=dim)
    assert params.max_abs_score < 2 ** (params.ring_bits - 1) - 1
    basis = np.zeros(dim)
    basis[0] = 1.0
    q_hat = encode_query(basis, params)
    k_hat = encode_keys(np.stack([basis, -basis]), params)
    scores = encoded_scores(q_hat, k_hat)
    assert scores[0] == 2**params.score_frac_bits
    assert scores[1] == -(2**params.score_frac_bits)


def test_query_coordinates_fit_query_bits():
    params = FixedPointParams(dim=4)
    q_hat = encode_query(np.array([-1.0, 0.0, 0.0, 0.0]), params)
    assert q_hat[0] == -(2**params.query_frac_bits)
    assert abs(int(q_hat[0])) < 2 ** (params.query_bits - 1)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dim=st.sampled_from([2, 7, 64, 768]), frac=st.integers(4, 14))
def test_score_error_within_bound(seed, dim, frac):
    params = FixedPointParams(dim=dim, query_frac_bits=frac, key_frac_bits=frac)
    rng = np.random.default_rng(seed)
    q = unit_rows(rng, 1, dim)[0]
    keys = unit_rows(rng, 20, dim)
    exact = keys @ q
    approx = encoded_scores(encode_query(q, params), encode_keys(keys, params)) / 2.0**params.score_frac_bits
    assert np.max(np.abs(approx - exact)) <= params.error_bound


@settings(max_examples=200, deadline=None)
@given(threshold=st.floats(-1.5, 1.5, allow_nan=False), score_offset=st.integers(-3, 3))
def test_threshold_encoding_is_exact(threshold, score_offset):
    params = FixedPointParams(dim=16)
    scale = 2.0**params.score_frac_bits
    threshold_hat = encode_threshold(threshold, params)
    score = threshold_hat + score_offset
    assert (score >= threshold_hat) == (score / scale >= threshold)


def test_threshold_none_and_extremes():
    params = FixedPointParams(dim=16)
    half = 2 ** (params.ring_bits - 1)
    assert encode_threshold(None, params) == -half
    assert encode_threshold(-10.0, params) == -half
    assert encode_threshold(10.0, params) == half - 1
    with pytest.raises(ValueError, match="threshold"):
        encode_threshold(float("nan"), params)


def test_reference_breaks_ties_by_lowest_index():
    rng = np.random.default_rng(3)
    keys = unit_rows(rng, 6, 16)
    q = keys[4].copy()
    keys[1] = keys[4]
    keys[5] = keys[4]
    assert reference_match(q, keys, None, FixedPointParams(dim=16)) == 1


def test_reference_all_equal_keys():
    rng = np.random.default_rng(4)
    key = unit_rows(rng, 1, 16)
    keys = np.repeat(key, 9, axis=0)
    q = unit_rows(rng, 1, 16)[0]
    assert reference_match(q, keys, None, FixedPointParams(dim=16)) == 0


def test_reference_threshold_at_maximum():
    rng = np.random.default_rng(5)
    params = FixedPointParams(dim=32)
    keys = unit_rows(rng, 10, 32)
    q = unit_rows(rng, 1, 32)[0]
    scores = encoded_scores(encode_query(q, params), encode_keys(keys, params))
    best = int(np.argmax(scores))
    at_max = int(scores[best]) / 2.0**params.score_frac_bits
    just_above = (int(scores[best]) + 1) / 2.0**params.score_frac_bits
    assert reference_match(q, keys, at_max, params) == best
    assert reference_match(q, keys, just_above, params) is None


def test_encoded_argmax_differs_only_on_near_ties():
    rng = np.random.default_rng(6)
    params = FixedPointParams(dim=768, query_frac_bits=6, key_frac_bits=6)
    differing = 0
    for _ in range(200):
        keys = unit_rows(rng, 50, 768)
        q = unit_rows(rng, 1, 768)[0]
        encoded = reference_match(q, keys, None, params)
        plain = float_match(q, keys, None)
        if encoded != plain:
            differing += 1
            exact = keys @ q
            assert exact[plain] - exact[encoded] <= 2 * params.error_bound
    # Six fractional bits make the rounding coarse enough that some argmaxes must move.
    assert differing > 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones(16), "unit norm"),
        (np.full(16, np.nan), "NaN"),
        (np.ones(15) / np.sqrt(15), "width"),
    ],
)
def test_invalid_query_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        encode_query(bad, FixedPointParams(dim=16))


def test_invalid_keys_rejected():
    params = FixedPointParams(dim=8)
    with pytest.raises(ValueError, match="unit norm"):
        encode_keys(np.ones((3, 8)), params)
    with pytest.raises(ValueError, match="non-empty"):
        encode_keys(np.ones((0, 8)), params)
