"""Arithmetic in GF(2^128) for the KOS correlation check.

Elements are 16-byte strings whose bit ``k``, little-endian as in
``np.packbits(..., bitorder="little")``, is the coefficient of ``x^k``; the field is
GF(2)[x] modulo ``x^128 + x^7 + x^2 + x + 1``. As Python integers, bit ``k`` of
``int.from_bytes(element, "little")`` is the same coefficient.

The check needs sums ``sum_i chi_i t_i`` over up to millions of rows ``i``. Both operands
arrive in *column form*, the layout OT extension produces before its transpose. That is a
uint8 ``(128, n / 8)`` bit matrix where bit ``i`` of row ``a`` is coefficient ``a`` of
element ``i``. With
``M[a][b] = XOR_i chi_i[a] t_i[b]``, a 128 x 128 matrix over GF(2), the unreduced sum is
``sum_{a,b} M[a][b] x^(a+b)``. :func:`inner_product` computes ``M`` as float32 matrix
products of 0/1 entries: chunks of at most 4095 rows keep every count below 2^12, so two
columns share one float32 (``low + 4096 high``, below 2^24 and therefore exact), which
halves the multiplications.
"""

from __future__ import annotations

import numpy as np

BITS = 128
BYTES = 16
_MODULUS_LOW = (1 << 7) | (1 << 2) | (1 << 1) | 1
_CHUNK_BYTES = 511  # 4088 rows per matrix product, so counts stay below 4096
_PACK = 4096.0


def to_int(element: bytes | np.ndarray) -> int:
    """Return the integer whose bit ``k`` is the coefficient of ``x^k``."""
    return int.from_bytes(bytes(element), "little")


def to_bytes(value: int) -> bytes:
    """Return the 16-byte encoding of a reduced element given as an integer."""
    return value.to_bytes(BYTES, "little")


def reduce(value: int) -> int:
    """Return ``value`` (a polynomial of degree below 255) modulo the field polynomial."""
    for degree in range(value.bit_length() - 1, BITS - 1, -1):
        if (value >> degree) & 1:
            value ^= (1 << degree) ^ (_MODULUS_LOW << (degree - BITS))
    return value


def multiply(left: int, right: int) -> int:
    """Return the field product of two reduced elements given as integers."""
    product = 0
    for bit in range(right.bit_length()):
        if (right >> bit) & 1:
            product ^= left << bit
    return reduce(product)


def _check_columns(columns: np.ndarray, name: str) -> None:
    if columns.ndim != 2 or columns.shape[0] != BITS or columns.dtype != np.uint8:
        raise ValueError(f"invalid {name}: shape {columns.shape} dtype {columns.dtype}, expected uint8 (128, n / 8)")


def inner_product(coefficient_columns: np.ndarray, element_columns: np.ndarray) -> int:
    """Return ``sum_i chi_i t_i`` for elements ``chi_i`` and ``t_i`` given in column form."""
    _check_columns(coefficient_columns, "coefficient columns")
    _check_columns(element_columns, "element columns")
    if coefficient_columns.shape != element_columns.shape:
        raise ValueError(f"shapes differ: {coefficient_columns.shape} and {element_columns.shape}")

    half = BITS // 2
    counts = np.zeros((BITS, BITS), dtype=np.int64)
    for start in range(0, coefficient_columns.shape[1], _CHUNK_BYTES):
        stop = start + _CHUNK_BYTES
        coefficients = np.unpackbits(coefficient_columns[:, start:stop], axis=1).astype(np.float32)
        elements = np.unpackbits(element_columns[:, start:stop], axis=1).astype(np.float32)
        packed = elements[:half]
        packed += _PACK * elements[half:]
        product = (coefficients @ packed.T).astype(np.int64)
        counts[:, :half] += product & 4095
        counts[:, half:] += product >> 12

    parity = np.packbits((counts & 1).astype(np.uint8), axis=1, bitorder="little")
    unreduced = 0
    for a in range(BITS):
        unreduced ^= int.from_bytes(parity[a].tobytes(), "little") << a
    return reduce(unreduced)


def select_sum(coefficient_columns: np.ndarray, selector: np.ndarray) -> int:
    """Return ``sum_i r_i chi_i`` for bits ``r_i`` packed little-endian in ``selector``.

    ``selector`` is uint8 ``(n / 8,)``, the bits of the rows in the order of the columns;
    ``n / 8`` must be a multiple of 8.
    """
    _check_columns(coefficient_columns, "coefficient columns")
    words = coefficient_columns.view("<u8") & selector.view("<u8")[None, :]
    folded = np.bitwise_xor.reduce(words, axis=1)
    total = 0
    for a in range(BITS):
        total |= (int(folded[a]).bit_count() & 1) << a
    return total
