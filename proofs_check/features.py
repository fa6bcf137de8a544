"""Feature extraction from views: shapes, aligned bytes, derived relations and collisions.

A view is a list of ``ViewEntry(src, phase, payload)``. The distinguishers in
``proofs_check.stats`` compare samples of views through these features:

* :func:`shape`: the sequence of ``(src, phase, length)``, which fixes the message flow seen by
  the party;
* :func:`aligned_bytes`: for each message index the first and last ``EDGE_BYTES`` bytes,
  padded so that byte ``k`` of every sample means the same position of the same message;
* :func:`default_relations`: XORs of neighbouring 16-byte blocks inside each message and of
  consecutive messages of equal length, which expose a pad or key used twice;
* :func:`payload_bytes`: every byte of the view, for the byte-value histogram.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from testbed.transcript import ViewEntry

# Bytes kept from each end of every message for the position-wise tests.
EDGE_BYTES = 128
# Messages of a view taken into the position-wise tests; later messages count in the histogram only.
MAX_MESSAGES = 32
# Blocks per message whose neighbouring XORs enter the default relations.
RELATION_BLOCKS = 32
BLOCK = 16
# Bytes per view taken into the byte-value histogram.
HISTOGRAM_BYTES = 1 << 16


def shape(view: Sequence[ViewEntry]) -> tuple:
    """Return the message flow a party sees: ``(src, phase, length)`` per message, in order."""
    return tuple((entry.src, entry.phase, len(entry.payload)) for entry in view)


def edges(payload: bytes) -> bytes:
    """Return the first and last ``EDGE_BYTES`` bytes of ``payload`` (all of it when short)."""
    if len(payload) <= 2 * EDGE_BYTES:
        return payload
    return payload[:EDGE_BYTES] + payload[-EDGE_BYTES:]


def aligned_bytes(views: Sequence[Sequence[ViewEntry]], reference: Sequence[Sequence[ViewEntry]] = ()) -> np.ndarray:
    """Return uint8 ``(len(views), P)``: the edges of every message, aligned by message index.

    ``reference`` holds views of another sample whose layout must match (both samples get the
    same column widths); pass the same pair to get comparable matrices.
    """
    every = list(views) + list(reference)
    message_count = min(MAX_MESSAGES, max((len(v) for v in every), default=0))
    widths = []
    for i in range(message_count):
        widths.append(max((len(edges(v[i].payload)) for v in every if len(v) > i), default=0))
    total = sum(widths)
    matrix = np.zeros((len(views), total), dtype=np.uint8)
    for row, view in enumerate(views):
        start = 0
        for i, width in enumerate(widths):
            if len(view) > i:
                part = edges(view[i].payload)
                matrix[row, start : start + len(part)] = np.frombuffer(part, dtype=np.uint8)
            start += width
    return matrix


def default_relations(view: Sequence[ViewEntry]) -> bytes:
    """Return XORs that vanish or repeat when a key or pad is reused.

    For each message, the XOR of neighbouring 16-byte blocks of its first ``RELATION_BLOCKS``
    blocks; for each pair of consecutive messages of equal length, the XOR of their edges.
    """
    parts = []
    for entry in view[:MAX_MESSAGES]:
        payload = entry.payload[: BLOCK * RELATION_BLOCKS]
        blocks = len(payload) // BLOCK
        if blocks >= 2:
            array = np.frombuffer(payload[: blocks * BLOCK], dtype=np.uint8).reshape(blocks, BLOCK)
            parts.append((array[1:] ^ array[:-1]).tobytes())
    for first, second in zip(view[:MAX_MESSAGES], view[1:MAX_MESSAGES]):
        if len(first.payload) == len(second.payload) and first.payload:
            a = np.frombuffer(edges(first.payload), dtype=np.uint8)
            b = np.frombuffer(edges(second.payload), dtype=np.uint8)
            parts.append((a ^ b).tobytes())
    return b"".join(parts)


def relation_matrix(rows: Sequence[bytes]) -> np.ndarray:
    """Return uint8 ``(len(rows), P)`` with every row zero-padded to the longest."""
    width = max((len(r) for r in rows), default=0)
    matrix = np.zeros((len(rows), width), dtype=np.uint8)
    for i, row in enumerate(rows):
        matrix[i, : len(row)] = np.frombuffer(row, dtype=np.uint8)
    return matrix


def payload_bytes(view: Sequence[ViewEntry]) -> np.ndarray:
    """Return the first ``HISTOGRAM_BYTES`` bytes of the concatenated payloads as uint8."""
    joined = b"".join(entry.payload for entry in view)[:HISTOGRAM_BYTES]
    return np.frombuffer(joined, dtype=np.uint8)


def to_bits(matrix: np.ndarray) -> np.ndarray:
    """Return the bits of a uint8 matrix, eight columns per byte, least significant first."""
    return np.unpackbits(matrix, axis=1, bitorder="little")
