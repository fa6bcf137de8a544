"""Bit-matrix transpose for OT extension, vectorised with numpy.

Bits are stored little-endian within bytes, as ``np.packbits(..., bitorder="little")``
stores them: bit ``k`` of a row is bit ``k % 8`` of byte ``k // 8``. On a little-endian
machine bit ``k`` of a row is then bit ``k % 64`` of its 64-bit word ``k // 64``.

The transpose splits the matrix into 64 x 64 bit blocks, one 64-bit word per block row.
It transposes every block at once with the six rounds of masked swaps of the recursive
block method: swap the off-diagonal 32 x 32 quarters, then the 16 x 16 ones, down to bits.
"""

from __future__ import annotations

import sys

import numpy as np

# Round k swaps entry (r, c) with (r + k, c - k) for every r with bit k clear and c with bit
# k set. Its mask selects the low k bits of every 2k-bit group of a word.
_ROUNDS = tuple(
    (np.uint64(k), np.uint64(mask))
    for k, mask in (
        (32, 0x00000000FFFFFFFF),
        (16, 0x0000FFFF0000FFFF),
        (8, 0x00FF00FF00FF00FF),
        (4, 0x0F0F0F0F0F0F0F0F),
        (2, 0x3333333333333333),
        (1, 0x5555555555555555),
    )
)

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("protocols.ot.bitmatrix assumes a little-endian machine")


def transpose(matrix: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Return the transpose of a bit matrix.

    ``matrix`` is uint8 ``(rows, row_bytes)`` with ``rows`` rows of ``8 row_bytes`` bits.
    ``rows`` must be a multiple of 64 and ``row_bytes`` a multiple of 8. The result is uint8
    ``(8 row_bytes, rows // 8)``. With ``overwrite`` a C-contiguous ``matrix`` is used as
    scratch space and left scrambled, which saves a copy.
    """
    rows, row_bytes = matrix.shape
    if rows % 64 or row_bytes % 8:
        raise ValueError(
            f"invalid bit matrix shape {matrix.shape}: rows must be a multiple of 64 and "
            "bytes per row a multiple of 8"
        )
    row_groups = rows // 64
    word_columns = row_bytes // 8

    # words[g, r, w] contains bits 64 w .. 64 w + 63 of row 64 g + r.
    in_place = overwrite and matrix.flags.c_contiguous and matrix.dtype == np.uint8
    words = (matrix if in_place else np.array(matrix, dtype=np.uint8, order="C", copy=True)).view("<u8")
    words = words.reshape(row_groups, 64, word_columns)

    for shift, mask in _ROUNDS:
        k = int(shift)
        pairs = words.reshape(row_groups, 64 // (2 * k), 2, k, word_columns)
        low_rows = pairs[:, :, 0]
        high_rows = pairs[:, :, 1]
        swap = low_rows >> shift
        swap ^= high_rows
        swap &= mask
        high_rows ^= swap
        swap <<= shift
        low_rows ^= swap

    # After the rounds words[g, r, w] contains bits 64 g .. 64 g + 63 of output row 64 w + r.
    out = np.ascontiguousarray(words.transpose(2, 1, 0))
    return out.view(np.uint8).reshape(8 * row_bytes, rows // 8)
