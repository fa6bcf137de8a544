"""Message framing shared by the OT protocols.

Every message starts with a 5-byte header: one byte of message kind, then a 4-byte big-endian
sequence number. The kind names the protocol step, so a message replayed or delivered at the
wrong step is rejected by its tag. The sequence number orders the chunks of one step
(extension matrices, 1-out-of-n entries), so a reordered, dropped or duplicated chunk is
rejected by its number. Single messages carry sequence number 0.

Parsing checks kind, then sequence, then length, and raises a specific ``ProtocolAbort``:
``WrongMessageKind``, ``OutOfSequence``, ``TruncatedMessage`` or ``MalformedMessage``.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from testbed.errors import MalformedMessage, TruncatedMessage

from protocols.ot.errors import OutOfSequence, WrongMessageKind

HEADER = struct.Struct(">BI")
HEADER_BYTES = HEADER.size
MAX_SEQUENCE = 2**32 - 1


class Kind(IntEnum):
    """Message kinds; each protocol step has its own tag."""

    NP_SENDER_POINT = 0x11
    NP_RECEIVER_POINTS = 0x12
    MR_SENDER_POINT = 0x21
    MR_RECEIVER_POINTS = 0x22
    EXT_MATRIX = 0x31
    KOS_CHALLENGE = 0x32
    KOS_RESPONSE = 0x33
    EXT_CORRECTIONS = 0x34
    EXT_CIPHERTEXTS = 0x35
    ONE_OF_N_ENTRY = 0x41


def header(kind: Kind, seq: int = 0) -> bytes:
    """Return the 5-byte header of a message of ``kind`` with sequence number ``seq``."""
    return HEADER.pack(kind, seq)


def frame(kind: Kind, body: bytes | bytearray | memoryview, seq: int = 0) -> bytes:
    """Return ``body`` prefixed with the header for ``kind`` and ``seq``."""
    return header(kind, seq) + bytes(body)


def parse(message: bytes, kind: Kind, seq: int = 0, body_bytes: int | None = None) -> memoryview:
    """Check the header of ``message`` and return its body.

    ``body_bytes`` is the exact body length the step requires, or ``None`` when the caller
    checks the length itself.
    """
    if len(message) < HEADER_BYTES:
        raise TruncatedMessage(
            f"{kind.name} message of {len(message)} bytes is shorter than its {HEADER_BYTES}-byte header"
        )
    got_kind, got_seq = HEADER.unpack_from(message)
    if got_kind != kind:
        raise WrongMessageKind(f"expected a {kind.name} message (kind 0x{kind:02x}), got kind 0x{got_kind:02x}")
    if got_seq != seq:
        raise OutOfSequence(f"expected {kind.name} message number {seq}, got number {got_seq}")
    body = memoryview(message)[HEADER_BYTES:]
    if body_bytes is not None:
        check_length(body, body_bytes, kind)
    return body


def check_length(body: memoryview | bytes, expected: int, kind: Kind) -> None:
    """Raise ``TruncatedMessage`` or ``MalformedMessage`` unless ``body`` has ``expected`` bytes."""
    if len(body) < expected:
        raise TruncatedMessage(f"{kind.name} body has {len(body)} bytes, expected {expected}")
    if len(body) > expected:
        raise MalformedMessage(f"{kind.name} body has {len(body)} bytes, expected {expected}")
