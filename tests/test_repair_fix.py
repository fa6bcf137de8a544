"""TIME/UCE fix maths: closed forms, low-rank encoding, byte codec and token alignment."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.repair.errors import (
    AlignmentError,
    FixDecodeError,
    NonFiniteError,
    RepairError,
    SingularSystemError,
    TruncatedFix,
)
from protocols.repair.fix import Fix, align_tokens, compute_fix, encoded_size


def direct_time(weight, source, destination, preserve, lam):
    """W (lam I + C* C^T + P P^T)(lam I + C C^T + P P^T)^-1 computed straight from W."""
    dim = source.shape[1]
    left = lam * np.eye(dim) + destination.T @ source + preserve.T @ preserve
    right = lam * np.eye(dim) + source.T @ source + preserve.T @ preserve
    return weight @ left @ np.linalg.inv(right)


def direct_least_squares(weight, source, destination, preserve, lam):
    """Minimise the TIME/UCE objective by stacking it as one least-squares problem in W'^T."""
    dim = source.shape[1]
    rows = [source, preserve, np.sqrt(lam) * np.eye(dim)]
    targets = [destination @ weight.T, preserve @ weight.T, np.sqrt(lam) * weight.T]
    solution, *_ = np.linalg.lstsq(np.vstack(rows), np.vstack(targets), rcond=None)
    return solution.T


def relative_error(found, expected):
    return np.abs(found - expected).max() / np.abs(expected).max()


def random_problem(rng, dim, tokens, preserved, scale=1.0):
    source = rng.normal(size=(tokens, dim)) * scale
    destination = source + rng.normal(size=(tokens, dim)) * scale
    preserve = rng.normal(size=(preserved, dim)) * scale
    weight = rng.normal(size=(dim + 3, dim))
    return weight, source, destination, preserve


def test_time_fix_matches_closed_form_float64():
    rng = np.random.default_rng(1)
    weight, source, destination, _ = random_problem(rng, 48, 6, 0)
    fix = compute_fix(source, destination, None, lam=0.1)

    expected = direct_time(weight, source, destination, np.zeros((0, 48)), 0.1)
    assert relative_error(weight @ fix.dense(np.float64), expected) <= 1e-10
    assert fix.edited_tokens == 6
    assert fix.preserved_tokens == 0


def test_uce_fix_matches_closed_form_and_least_squares():
    rng = np.random.default_rng(2)
    weight, source, destination, preserve = random_problem(rng, 32, 5, 20)
    fix = compute_fix(source, destination, preserve, lam=0.5)

    repaired = weight @ fix.dense(np.float64)
    assert relative_error(repaired, direct_time(weight, source, destination, preserve, 0.5)) <= 1e-10
    assert relative_error(repaired, direct_least_squares(weight, source, destination, preserve, 0.5)) <= 1e-10


def test_float32_encodings_within_tolerance():
    rng = np.random.default_rng(3)
    weight, source, destination, preserve = random_problem(rng, 64, 8, 10)
    fix = compute_fix(source, destination, preserve, lam=1.0)
    expected = direct_time(weight, source, destination, preserve, 1.0)

    dense32 = weight.astype(np.float32) @ fix.dense(np.float32)
    u, v = fix.low_rank(np.float32)
    w32 = weight.astype(np.float32)
    low_rank32 = w32 + (w32 @ u) @ v.T
    assert relative_error(dense32.astype(np.float64), expected) <= 1e-5
    assert relative_error(low_rank32.astype(np.float64), expected) <= 1e-5


@settings(max_examples=60, deadline=None)
@given(
    dim=st.integers(2, 40),
    tokens=st.integers(1, 12),
    preserved=st.integers(0, 12),
    lam=st.floats(0.05, 10.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_fix_closed_form_property(dim, tokens, preserved, lam, seed):
    rng = np.random.default_rng(seed)
    weight, source, destination, preserve = random_problem(rng, dim, tokens, preserved)
    fix = compute_fix(source, destination, preserve if preserved else None, lam)

    expected = direct_time(weight, source, destination, preserve, lam)
    dense = weight @ fix.dense(np.float64)
    u, v = fix.low_rank(np.float64)
    low_rank = weight + (weight @ u) @ v.T
    assert relative_error(dense, expected) <= 1e-10
    assert relative_error(low_rank, dense) <= 1e-12
    assert u.shape == (dim, tokens)
    assert np.linalg.matrix_rank(u @ v.T, tol=1e-10 * max(1.0, np.abs(u @ v.T).max())) <= tokens


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(2, 24),
    tokens=st.integers(1, 6),
    extra=st.integers(0, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_low_rank_padding_and_refactoring_are_exact(dim, tokens, extra, seed):
    rng = np.random.default_rng(seed)
    _, source, destination, _ = random_problem(rng, dim, tokens, 0)
    fix = compute_fix(source, destination, None, lam=1.0)

    u, v = fix.low_rank(np.float64, rank=tokens + extra)
    assert u.shape == (dim, tokens + extra)
    assert np.allclose(np.eye(dim) + u @ v.T, fix.dense(np.float64), rtol=0, atol=1e-12)
    dense_only = Fix(dim=dim, matrix=fix.dense(np.float64))
    u2, v2 = dense_only.low_rank(np.float64, rank=min(dim, tokens) + extra)
    assert np.allclose(np.eye(dim) + u2 @ v2.T, fix.dense(np.float64), rtol=0, atol=1e-9)


def test_lambda_zero_full_rank_is_exact_edit():
    rng = np.random.default_rng(4)
    dim = 6
    source = rng.normal(size=(dim, dim))
    destination = rng.normal(size=(dim, dim))
    fix = compute_fix(source, destination, None, lam=0.0)

    mapped = (fix.dense(np.float64) @ source.T).T
    assert np.allclose(mapped, destination, atol=1e-9)


def test_singular_system_rejected():
    rng = np.random.default_rng(5)
    source = rng.normal(size=(3, 10))
    with pytest.raises(SingularSystemError, match="singular"):
        compute_fix(source, source + 1.0, None, lam=0.0)


def test_non_finite_embeddings_rejected():
    source = np.ones((2, 4))
    destination = np.ones((2, 4))
    destination[1, 2] = np.nan
    with pytest.raises(NonFiniteError, match="destination tokens"):
        compute_fix(source, destination, None, lam=0.1)
    with pytest.raises(RepairError, match="lambda"):
        compute_fix(source, source, None, lam=float("nan"))
    with pytest.raises(RepairError, match="lambda"):
        compute_fix(source, source, None, lam=-1.0)


def test_mismatched_token_counts_rejected():
    with pytest.raises(RepairError, match="3 source tokens but 2 destination tokens"):
        compute_fix(np.ones((3, 4)), np.ones((2, 4)), None, lam=0.1)
    with pytest.raises(RepairError, match="width 5"):
        compute_fix(np.ones((3, 4)), np.ones((3, 5)), None, lam=0.1)


@settings(max_examples=40, deadline=None)
@given(
    dim=st.integers(1, 20),
    tokens=st.integers(1, 5),
    encoding=st.sampled_from(["dense", "low-rank"]),
    dtype=st.sampled_from(["float16", "float32", "float64"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_fix_bytes_round_trip(dim, tokens, encoding, dtype, seed):
    rng = np.random.default_rng(seed)
    fix = Fix(dim=dim, u=rng.normal(size=(dim, tokens)) * 0.1, v=rng.normal(size=(dim, tokens)) * 0.1)

    payload = fix.to_bytes(encoding, dtype)
    decoded = Fix.from_bytes(payload, dim=dim, encoding=encoding, dtype=dtype)
    rank = 0 if encoding == "dense" else tokens
    assert len(payload) == encoded_size(encoding, dtype, dim, rank)
    tolerance = {"float16": 2e-3, "float32": 1e-6, "float64": 1e-14}[dtype]
    assert np.abs(decoded.dense(np.float64) - fix.dense(np.float64)).max() <= tolerance


def test_fix_bytes_hostile_input_rejected():
    rng = np.random.default_rng(6)
    fix = Fix(dim=8, u=rng.normal(size=(8, 2)), v=rng.normal(size=(8, 2)))
    payload = fix.to_bytes("low-rank", "float32")

    with pytest.raises(TruncatedFix):
        Fix.from_bytes(payload[:10])
    with pytest.raises(TruncatedFix):
        Fix.from_bytes(payload[:-1])
    with pytest.raises(FixDecodeError, match="more than"):
        Fix.from_bytes(payload + b"\x00")
    with pytest.raises(FixDecodeError, match="magic"):
        Fix.from_bytes(b"X" + payload[1:])
    with pytest.raises(FixDecodeError, match="width"):
        Fix.from_bytes(payload, dim=9)
    with pytest.raises(FixDecodeError, match="encoding"):
        Fix.from_bytes(payload, encoding="dense")
    with pytest.raises(FixDecodeError, match="dtype"):
        Fix.from_bytes(payload, dtype="float16")
    with pytest.raises(FixDecodeError, match="NaN"):
        Fix.from_bytes(payload[:-4] + np.array([np.nan], dtype="<f4").tobytes())
    with pytest.raises(FixDecodeError, match="unknown"):
        Fix.from_bytes(payload[:8] + b"\x07" + payload[9:])


def test_time_alignment_pairs_subject_onwards():
    source = ["[CLS]", "a", "square", "[SEP]"]
    destination = ["[CLS]", "a", "blue", "square", "[SEP]"]

    source_index, destination_index = align_tokens(source, destination, padded_length=8)
    assert source_index == [2, 3, 4, 5, 6]
    assert destination_index == [3, 4, 5, 6, 7]


def test_all_alignment_pairs_prefix_words():
    source = ["[CLS]", "a", "square", "[SEP]"]
    destination = ["[CLS]", "a", "blue", "square", "[SEP]"]

    source_index, destination_index = align_tokens(source, destination, padded_length=6, mode="all")
    assert source_index == [0, 1, 2, 3, 4, 5]
    assert destination_index == [0, 1, 3, 4, 5, 2]


def test_unalignable_prompts_rejected():
    with pytest.raises(AlignmentError, match="'square'.*'circle'"):
        align_tokens(["[CLS]", "a", "square", "[SEP]"], ["[CLS]", "a", "blue", "circle", "[SEP]"], 8)
    with pytest.raises(AlignmentError, match="no word tokens"):
        align_tokens(["[CLS]", "[SEP]"], ["[CLS]", "a", "[SEP]"], 8)
    with pytest.raises(AlignmentError, match="padded length"):
        align_tokens(["[CLS]"] + ["x"] * 9 + ["[SEP]"], ["[CLS]", "x", "[SEP]"], 8)
    with pytest.raises(AlignmentError, match="'the'"):
        align_tokens(["[CLS]", "the", "square", "[SEP]"], ["[CLS]", "a", "blue", "square", "[SEP]"], 8, mode="all")


def test_insert_alignment_maps_inserted_word_to_padding():
    source = ["[CLS]", "a", "square", "[SEP]"]
    destination = ["[CLS]", "a", "big", "blue", "square", "[SEP]"]

    source_index, destination_index = align_tokens(source, destination, padded_length=8, mode="insert")
    assert source_index == [2, 3, 4, 5, 6, 7]
    assert destination_index == [4, 5, 6, 7, 2, 3]
    assert len(set(destination_index)) == len(destination_index)


def test_insert_alignment_fills_whole_padding():
    source = ["[CLS]", "a", "square", "[SEP]"]
    destination = ["[CLS]", "a", "big", "blue", "square", "[SEP]"]

    source_index, destination_index = align_tokens(source, destination, padded_length=6, mode="insert")
    assert source_index == [2, 3, 4, 5]
    assert destination_index == [4, 5, 2, 3]
    with pytest.raises(RepairError, match="unknown alignment mode"):
        align_tokens(source, destination, padded_length=8, mode="causal")
