"""Gilboa multiplication: OT-based inner products into additive shares modulo 2^32."""

from __future__ import annotations

import secrets

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.matching import arithmetic
from protocols.ot.hashing import tcr_expand


def random_seeds(count: int) -> np.ndarray:
    return np.frombuffer(secrets.token_bytes(16 * count), dtype=np.uint8).reshape(count, 16)


def test_choice_bits_reconstruct_query():
    q_hat = np.array([0, 1, -1, 4096, -4096, 8191, -8192])
    bits = 14
    choices = arithmetic.query_choice_bits(q_hat, bits)
    weights = arithmetic.query_weights(bits).astype(np.int64)
    weights[-1] = -(1 << (bits - 1))
    assert np.array_equal(choices @ weights, q_hat)


def test_expand_seeds_is_deterministic_and_distinct():
    seeds = random_seeds(3)
    first = arithmetic.expand_seeds(seeds, 100, 0)
    assert first.shape == (3, 100)
    assert first.dtype == np.uint32
    assert np.array_equal(first, arithmetic.expand_seeds(seeds, 100, 0))
    assert not np.array_equal(first[0], first[1])
    # A longer expansion extends the same stream; another OT index gives another stream.
    assert np.array_equal(arithmetic.expand_seeds(seeds, 7, 0), first[:, :7])
    assert not np.array_equal(arithmetic.expand_seeds(seeds, 100, 1)[0], first[0])


@pytest.mark.parametrize("count", [1, 4, 5, 500, 3001])
def test_expand_seeds_equals_ot_stack_expansion(count):
    seeds = random_seeds(300)
    expected = tcr_expand(seeds, arithmetic.EXPANSION_INDEX_OFFSET + 42, 4 * count).view(np.uint32)
    assert np.array_equal(arithmetic.expand_seeds(seeds, count, 42), expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d=st.integers(1, 12), n=st.integers(1, 30), bits=st.integers(2, 14))
def test_shares_add_up_to_inner_products(seed, d, n, bits):
    rng = np.random.default_rng(seed)
    q_hat = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=d)
    k_hat = rng.integers(-(2**16), 2**16, size=(n, d))
    choices = arithmetic.query_choice_bits(q_hat, bits)

    # The random OT of this test is computed locally: the receiver's seed is m_c.
    seeds0 = random_seeds(d * bits)
    seeds1 = random_seeds(d * bits)
    chosen = np.where(choices.reshape(-1, 1) == 1, seeds1, seeds0)

    key_columns = k_hat.T.astype(np.uint32)
    corrections, sender_share = arithmetic.sender_products(seeds0, seeds1, key_columns, bits)
    receiver_share = arithmetic.receiver_products(chosen, choices, corrections)
    expected = (k_hat @ q_hat).astype(np.uint32)
    assert np.array_equal(sender_share + receiver_share, expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), ring=st.integers(8, 32), bits=st.integers(2, 8))
def test_truncated_corrections_keep_shares_mod_ring(seed, ring, bits):
    rng = np.random.default_rng(seed)
    d, n = 3, 5
    q_hat = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), size=d)
    k_hat = rng.integers(-(2**10), 2**10, size=(n, d))
    choices = arithmetic.query_choice_bits(q_hat, bits)
    seeds0 = random_seeds(d * bits)
    seeds1 = random_seeds(d * bits)
    chosen = np.where(choices.reshape(-1, 1) == 1, seeds1, seeds0)

    corrections, sender_share = arithmetic.sender_products(seeds0, seeds1, k_hat.T.astype(np.uint32), bits)
    widths = arithmetic.correction_widths(bits, ring)
    wire = arithmetic.pack_corrections(corrections, widths)
    assert len(wire) == arithmetic.packed_corrections_size(d, n, widths)
    unpacked = arithmetic.unpack_corrections(wire, d, n, widths)
    receiver_share = arithmetic.receiver_products(chosen, choices, unpacked)

    mask = np.uint32((1 << ring) - 1) if ring < 32 else np.uint32(0xFFFFFFFF)
    expected = (k_hat @ q_hat).astype(np.uint32) & mask
    assert np.array_equal((sender_share + receiver_share) & mask, expected)


def test_correction_widths_shrink_with_bit_weight():
    assert arithmetic.correction_widths(14, 30) == [4] * 6 + [3] * 8
    assert arithmetic.correction_widths(4, 8) == [1, 1, 1, 1]
