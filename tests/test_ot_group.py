"""Tests of the Ed25519 prime-order subgroup wrapper, the codec and GF(2^128) arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.errors import MalformedMessage, TruncatedMessage

from protocols.ot import gf128, group
from protocols.ot.codec import HEADER_BYTES, Kind, frame, parse
from protocols.ot.errors import InvalidPoint, OutOfSequence, WrongMessageKind

# A point of order 8 on Ed25519 (a generator of the torsion subgroup).
ORDER_8_POINT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
# The point of order 2, (0, -1).
ORDER_2_POINT = bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
# y = p, a non-canonical encoding of y = 0.
NON_CANONICAL = bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")


def test_decode_point_accepts_subgroup_points():
    point = group.random_point()
    assert group.decode_point(point) == point


@pytest.mark.parametrize(
    "encoded",
    [group.IDENTITY, ORDER_8_POINT, ORDER_2_POINT, NON_CANONICAL, bytes(32), b"\xff" * 32],
    ids=["identity", "order-8", "order-2", "non-canonical", "zero-bytes", "all-ones"],
)
def test_decode_point_rejects_invalid_encodings(encoded):
    with pytest.raises(InvalidPoint):
        group.decode_point(encoded)


def test_decode_point_rejects_torsion_component():
    torsioned = group.add(group.random_point(), ORDER_8_POINT)
    assert group.decode_point(group.sub(torsioned, ORDER_8_POINT))
    with pytest.raises(InvalidPoint):
        group.decode_point(torsioned)


@pytest.mark.parametrize("length", [0, 31, 33])
def test_decode_point_rejects_wrong_length(length):
    with pytest.raises(InvalidPoint):
        group.decode_point(bytes(length))


def test_hash_to_point_lands_in_subgroup():
    points = {group.hash_to_point(b"test", bytes([i])) for i in range(50)}
    assert len(points) == 50
    assert all(group.is_valid(p) for p in points)


def test_scalar_multiplication_commutes():
    a, b = group.random_scalar(), group.random_scalar()
    assert group.mult(a, group.base_mult(b)) == group.mult(b, group.base_mult(a))


def test_mult_rejects_identity():
    with pytest.raises(InvalidPoint):
        group.mult(group.random_scalar(), group.IDENTITY)


@given(kind=st.sampled_from(list(Kind)), seq=st.integers(0, 2**32 - 1), body=st.binary(max_size=64))
def test_codec_round_trip(kind, seq, body):
    message = frame(kind, body, seq)
    assert len(message) == HEADER_BYTES + len(body)
    assert bytes(parse(message, kind, seq, len(body))) == body


def test_codec_rejects_wrong_kind_sequence_and_length():
    message = frame(Kind.EXT_MATRIX, b"abcd", 3)
    with pytest.raises(WrongMessageKind):
        parse(message, Kind.KOS_RESPONSE, 3)
    with pytest.raises(OutOfSequence):
        parse(message, Kind.EXT_MATRIX, 2)
    with pytest.raises(TruncatedMessage):
        parse(message, Kind.EXT_MATRIX, 3, 5)
    with pytest.raises(MalformedMessage):
        parse(message, Kind.EXT_MATRIX, 3, 3)
    with pytest.raises(TruncatedMessage):
        parse(message[:4], Kind.EXT_MATRIX, 3)


elements = st.integers(0, 2**128 - 1)


@given(a=elements, b=elements, c=elements)
def test_gf128_multiply_distributes_and_commutes(a, b, c):
    assert gf128.multiply(a, b) == gf128.multiply(b, a)
    assert gf128.multiply(a, b ^ c) == gf128.multiply(a, b) ^ gf128.multiply(a, c)


def test_gf128_reduction_polynomial():
    assert gf128.multiply(1 << 127, 2) == 0x87
    assert gf128.multiply(1, 12345) == 12345


def _rows(columns: np.ndarray) -> np.ndarray:
    bits = np.unpackbits(columns, axis=1, bitorder="little")
    return np.packbits(bits.T, axis=1, bitorder="little")


@settings(max_examples=10, deadline=None)
@given(blocks=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_gf128_inner_product_matches_row_products(blocks, seed):
    rng = np.random.default_rng(seed)
    coefficients = rng.integers(0, 256, (128, 8 * blocks), dtype=np.uint8)
    elements = rng.integers(0, 256, (128, 8 * blocks), dtype=np.uint8)
    expected = 0
    for chi, t in zip(_rows(coefficients), _rows(elements)):
        expected ^= gf128.multiply(gf128.to_int(chi), gf128.to_int(t))
    assert gf128.inner_product(coefficients, elements) == expected

    selector_bits = rng.integers(0, 2, 64 * blocks).astype(np.uint8)
    selected = 0
    for chi in _rows(coefficients)[selector_bits == 1]:
        selected ^= gf128.to_int(chi)
    assert gf128.select_sum(coefficients, np.packbits(selector_bits, bitorder="little")) == selected


def test_gf128_inner_product_exact_over_many_chunks():
    rng = np.random.default_rng(7)
    ones = np.full((128, 4096), 0xFF, dtype=np.uint8)
    elements = rng.integers(0, 256, (128, 4096), dtype=np.uint8)
    # With every coefficient equal to the all-ones element the sum is (all ones) * sum_i t_i.
    folded = np.bitwise_xor.reduce(_rows(elements), axis=0)
    assert gf128.inner_product(ones, elements) == gf128.multiply(2**128 - 1, gf128.to_int(folded))
