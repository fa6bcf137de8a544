"""MPyC matching: equality with the plaintext reference, party-count rules, input checks, traces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.mpyc_matching import (
    InsecureThresholdError,
    InvalidMatchingInput,
    MatchingEncoding,
    check_party_count,
    encode_keys,
    encode_query,
    encode_threshold,
    party_names,
    reference_match,
    run_mpyc_matching,
    threshold_for,
)
from protocols.mpyc_matching.encoding import encoded_scores
from testbed.network import LinkSpec, Network
from testbed.replay import replay


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def max_score_similarity(query, keys, encoding: MatchingEncoding) -> float:
    """The largest encoded score as a similarity: exactly representable, so a sharp threshold."""
    scores = encoded_scores(encode_query(query, encoding), encode_keys(keys, encoding))
    return int(max(scores)) / 2**encoding.score_frac_bits


def database_with_ties(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys where the best match appears twice (at a middle and a later index)."""
    rng = np.random.default_rng(seed)
    keys = unit_rows(rng, n, d)
    query = unit_rows(rng, 1, d)[0]
    if n >= 3:
        best = n // 3
        keys[best] = query
        keys[n - 1] = query
    return query, keys


# Cases: (parties, n, d, threshold kind). Threshold kinds: None, "below" (just at the max, so
# it matches), "above" (one unit of the last fractional bit above the max, so no match).
CASES = [
    (3, 1, 8, None),
    (3, 7, 8, None),
    (3, 13, 16, "below"),
    (3, 13, 16, "above"),
    (5, 11, 8, None),
    (5, 6, 12, "below"),
    (5, 6, 12, "above"),
]


@pytest.mark.parametrize("parties, n, d, threshold_kind", CASES)
def test_mpyc_matching_equals_reference(parties, n, d, threshold_kind):
    query, keys = database_with_ties(seed=n * 100 + d + parties, n=n, d=d)
    encoding = MatchingEncoding(dim=d)
    threshold = None
    if threshold_kind is not None:
        top = max_score_similarity(query, keys, encoding)
        threshold = top if threshold_kind == "below" else top + 2.0**-encoding.score_frac_bits

    result = run_mpyc_matching(query, keys, threshold, parties=parties, timeout_s=90)
    expected = reference_match(query, keys, threshold, encoding)

    assert result.index == expected
    if threshold_kind == "above":
        assert result.index is None
    else:
        assert result.index is not None
    if n >= 3:
        assert expected in (None, n // 3)
    assert result.parties == parties
    assert result.threshold_t == (parties - 1) // 2
    assert not result.insecure
    assert result.run.results["mri"]["output"] is None
    assert all(result.run.results[h]["output"] is None for h in party_names(parties)[2:])


def test_mpyc_matching_all_equal_keys_gives_zero():
    rng = np.random.default_rng(5)
    key = unit_rows(rng, 1, 8)[0]
    keys = np.tile(key, (6, 1))
    query = unit_rows(rng, 1, 8)[0]
    result = run_mpyc_matching(query, keys, parties=3, timeout_s=90)
    assert result.index == 0


def test_mpyc_matching_record_replays():
    query, keys = database_with_ties(seed=9, n=9, d=8)
    result = run_mpyc_matching(query, keys, 0.0, parties=3, timeout_s=90)
    run = result.run
    names = party_names(3)

    # Every party sent traffic through the relay, and each forwarded segment is one trace message.
    for src in names:
        sent_by_relay = sum(v for k, v in run.bytes.items() if k.startswith(f"{src}->"))
        assert sent_by_relay > 0
    assert run.rounds >= 10
    assert run.trace.message_count() == len(run.records)
    assert run.cpu_trace is not None
    cpu_total = sum(t.compute_total_s() for t in run.cpu_trace.parties.values())
    assert 0 < cpu_total <= sum(run.cpu_seconds().values()) * 1.5 + 0.05

    fast = replay(run.trace, Network.full_mesh(names, LinkSpec(), overhead_bytes=0))
    assert fast.messages == len(run.records)
    assert fast.sim_seconds > 0
    slow = replay(run.trace, Network.full_mesh(names, LinkSpec(latency_s=0.01), overhead_bytes=0))
    assert slow.sim_seconds > fast.sim_seconds + 0.01 * run.rounds * 0.5


def test_two_parties_rejected_with_explanation():
    query, keys = database_with_ties(seed=1, n=4, d=8)
    with pytest.raises(InsecureThresholdError, match=r"t < m/2.*t = 0"):
        run_mpyc_matching(query, keys, parties=2)


def test_two_parties_as_negative_control_is_labelled_insecure():
    query, keys = database_with_ties(seed=2, n=5, d=8)
    result = run_mpyc_matching(query, keys, parties=2, allow_insecure_two_party=True, timeout_s=90)
    assert result.insecure
    assert result.threshold_t == 0
    assert "INSECURE" in result.security
    assert result.index == reference_match(query, keys, None, MatchingEncoding(8))


def test_party_count_rules():
    assert threshold_for(3) == 1
    assert threshold_for(4) == 1
    assert threshold_for(5) == 2
    assert "honest majority" in check_party_count(3)
    with pytest.raises(ValueError, match="3 or more"):
        check_party_count(1)
    assert party_names(4) == ["sp", "mri", "helper1", "helper2"]


@pytest.mark.parametrize(
    "query, keys, message",
    [
        (np.ones(4) / 2, np.ones((2, 3)) / np.sqrt(3), "shape"),
        (np.ones(4), np.ones((2, 4)) / 2, "unit norm"),
        (np.array([np.nan, 0, 0, 1.0]), np.ones((2, 4)) / 2, "NaN"),
        (np.ones(4) / 2, np.ones(4) / 2, "matrix"),
        (np.ones(4) / 2, np.zeros((0, 4)), "matrix"),
    ],
)
def test_invalid_inputs_rejected_before_any_process(query, keys, message):
    with pytest.raises(InvalidMatchingInput, match=message):
        run_mpyc_matching(query, keys, parties=3)


def test_invalid_threshold_rejected():
    query, keys = database_with_ties(seed=3, n=3, d=4)
    with pytest.raises(InvalidMatchingInput, match="threshold"):
        run_mpyc_matching(query, keys, float("nan"), parties=3)


def test_bit_length_covers_differences():
    encoding = MatchingEncoding(dim=768)
    bound = encoding.max_abs_score
    assert 2 ** (encoding.bit_length - 1) > 2 * (bound + 1)
    assert 2 ** (encoding.bit_length - 3) <= bound + 1


unit_vectors = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=2**31))
)


@settings(max_examples=200, deadline=None)
@given(unit_vectors, st.sampled_from([None, "below", "above", -2.0, 2.0]))
def test_reference_agrees_with_two_party_reference(shape, threshold_kind):
    """Both matchings define the same output: same encoding, tie rule and threshold rule."""
    two_party = pytest.importorskip("protocols.matching.fixed_point")
    n, d, seed = shape
    rng = np.random.default_rng(seed)
    keys = unit_rows(rng, n, d)
    if n > 1 and seed % 2:
        keys[-1] = keys[0]
    query = keys[seed % n] if seed % 3 == 0 else unit_rows(rng, 1, d)[0]
    encoding = MatchingEncoding(dim=d)
    threshold = threshold_kind
    if threshold_kind in ("below", "above"):
        top = max_score_similarity(query, keys, encoding)
        threshold = top if threshold_kind == "below" else top + 2.0**-encoding.score_frac_bits
    params = two_party.FixedPointParams(dim=d, query_frac_bits=encoding.query_frac_bits, key_frac_bits=encoding.key_frac_bits)

    assert reference_match(query, keys, threshold, encoding) == two_party.reference_match(query, keys, threshold, params)


def test_threshold_encoding_is_exact_at_the_boundary():
    encoding = MatchingEncoding(dim=4)
    assert encode_threshold(0.5, encoding) == 2 ** (encoding.score_frac_bits - 1)
    assert encode_threshold(0.5 + 2.0**-40, encoding) == 2 ** (encoding.score_frac_bits - 1) + 1
    assert encode_threshold(None, encoding) is None
    assert encode_threshold(10.0, encoding) == encoding.max_abs_score + 1
    assert encode_threshold(-10.0, encoding) == -encoding.max_abs_score


def test_failing_party_stops_every_process():
    from protocols.mpyc_matching.matching import PARTY_MODULE
    from protocols.mpyc_matching.process import run_mpyc_program
    from testbed.relay import ProcessFailure

    names = party_names(3)
    params = {"n": 2, "dim": 4, "bit_length": 40, "has_threshold": False}
    jobs = [{"params": params}, {"params": {"n": 2}}, {"params": params}]  # the MRI's job is broken
    inputs = [{"query": np.array([1, 0, 0, 0])}, {"keys": np.eye(2, 4, dtype=np.int64)}, None]
    with pytest.raises(ProcessFailure, match="mri exited") as info:
        run_mpyc_program(PARTY_MODULE, names, jobs, inputs, timeout_s=60)
    assert "KeyError" in info.value.outcomes["mri"].output_tail
    assert all(o.returncode != -999 for o in info.value.outcomes.values())


def test_slow_link_times_out_and_stops_processes():
    from testbed.relay import LinkShape, ProcessFailure

    query, keys = database_with_ties(seed=4, n=3, d=4)
    with pytest.raises(ProcessFailure, match="timed out") as info:
        run_mpyc_matching(query, keys, parties=3, default_shape=LinkShape(latency_s=30.0), timeout_s=3)
    assert all(o.returncode != 0 for o in info.value.outcomes.values())
