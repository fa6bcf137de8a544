"""1-out-of-n OT of large payloads from ``ceil(log2 n)`` base OTs (a Naor–Pinkas key tree).

Construction. Naor and Pinkas, "Oblivious Transfer and Polynomial Evaluation" (STOC 1999),
1-out-of-N OT from log N 1-out-of-2 OTs. After ``l = ceil(log2 n)`` random base OTs the sender
has key pairs ``(K_j^0, K_j^1)`` and the receiver, choosing ``index`` with bits ``b_j``, has
``K_j^{b_j}``. Entry ``i`` with bits ``i_j`` gets the AES-128 key

    k_i = XOR_j AES(K_j^{i_j}, encode(i))

(AES-128 used as a pseudo-random function), and travels as ``AES-128-CTR(k_i, payload_i)``
with a zero nonce; each ``k_i`` masks one payload only. For ``i != index`` some level ``j``
has ``i_j != b_j``, so ``k_i`` contains a PRF value under a key the receiver never saw and is
pseudo-random to it. Security: that of the base OT (semi-honest Naor–Pinkas or malicious
Masny–Rindal, random-oracle model) plus AES as a PRF and AES-CTR as a stream cipher.

Streaming. The sender calls ``payload(i)`` once per entry, in order, masks it into a reused
buffer and sends it as one message, so it keeps one entry in memory at a time. The receiver
reads every entry in order, checks its frame and keeps only the one it chose. The receiver checks every
frame the same way whatever its index, so a sender that corrupts one entry's frame makes every
receiver abort alike and learns nothing from the abort.

Leakage. The receiver learns ``n`` and the length of every payload (each masked entry has
the payload's length); callers that must hide lengths pad the payloads to one size. The
sender learns nothing about ``index``.

Wire format and cost, with the 5-byte header ``h`` and ``l = ceil(log2 n)``:

* base OT (only when ``l >= 1``): receiver -> sender ``h + 32 l`` (semi-honest) or
  ``h + 64 l`` (malicious); sender -> receiver ``h + 32``;
* entry ``i``: one message of ``h + 8 + L_i`` bytes (header, 8-byte big-endian payload length,
  masked payload), sequence number ``i``.

Sender -> receiver total: ``[l >= 1] (h + 32) + sum_i (13 + L_i)``; for ``n = 3000`` payloads of
768 x 768 float32 (2,359,296 bytes each) that is ``3000 * 2,359,296 + 39,037`` bytes. Rounds: 2
when ``l >= 1`` (the base-OT messages cross, then the entries follow), 1 when ``n = 1``: then no
base OT runs and the single entry is masked under the all-zero key, since the receiver is
entitled to it anyway.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from testbed.effects import Party, Phase, Receive, Send
from testbed.errors import MalformedMessage, TruncatedMessage

from protocols.ot.base import KEY_BYTES, base_ot_receiver, base_ot_sender
from protocols.ot.codec import HEADER_BYTES, Kind, header, parse

LENGTH = struct.Struct(">Q")
ENTRY_OVERHEAD = HEADER_BYTES + LENGTH.size
_INDEX_DOMAIN = b"1-of-n\x00\x00"
_ZERO_NONCE = bytes(16)
_KEY_CHUNK = 1 << 16


def levels(n: int) -> int:
    """Return ``ceil(log2 n)``, the number of base OTs for ``n`` entries."""
    if n < 1:
        raise ValueError(f"invalid number of entries {n}: expected at least 1")
    return (n - 1).bit_length()


def _encode_indices(start: int, stop: int) -> np.ndarray:
    blocks = np.empty((stop - start, 16), dtype=np.uint8)
    blocks[:, :8] = np.arange(start, stop, dtype="<u8")[:, None].view(np.uint8)
    blocks[:, 8:] = np.frombuffer(_INDEX_DOMAIN, dtype=np.uint8)
    return blocks


def _prf(key: bytes, blocks: np.ndarray) -> np.ndarray:
    out = np.empty(blocks.size + 16, dtype=np.uint8)
    Cipher(algorithms.AES(key), modes.ECB()).encryptor().update_into(blocks.reshape(-1), out)
    return out[: blocks.size].reshape(blocks.shape)


def entry_keys(keys0: np.ndarray, keys1: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Return the AES keys ``k_i`` of entries ``start .. stop - 1`` from the sender's key pairs."""
    indices = np.arange(start, stop, dtype=np.int64)
    blocks = _encode_indices(start, stop)
    combined = np.zeros((stop - start, 16), dtype=np.uint8)
    for j in range(len(keys0)):
        bit = ((indices >> j) & 1).astype(bool)
        combined ^= np.where(bit[:, None], _prf(bytes(keys1[j]), blocks), _prf(bytes(keys0[j]), blocks))
    return combined


def receiver_entry_key(keys: np.ndarray, index: int) -> bytes:
    """Return ``k_index`` from the receiver's keys ``K_j^{b_j}`` (uint8 ``(l, 16)``)."""
    block = _encode_indices(index, index + 1)
    combined = np.zeros((1, 16), dtype=np.uint8)
    for j in range(len(keys)):
        combined ^= _prf(bytes(keys[j]), block)
    return combined.tobytes()


def _as_bytes_view(data: bytes | bytearray | memoryview | np.ndarray, i: int) -> memoryview:
    try:
        view = memoryview(data)
    except TypeError as exc:
        raise TypeError(f"payload({i}) returned {type(data).__name__}: expected bytes or a buffer") from exc
    if not view.c_contiguous:
        raise ValueError(f"payload({i}) returned a non-contiguous buffer: pass a C-contiguous one")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def one_of_n_sender(
    peer: str,
    n: int,
    payload: Callable[[int], bytes | memoryview],
    *,
    malicious: bool = False,
    phase: str | None = None,
) -> Party[None]:
    """Run 1-out-of-n OT as sender of the entries ``payload(0) .. payload(n - 1)``.

    ``payload(i)`` is called once per ``i``, in order. It may return bytes or any C-contiguous
    buffer, such as a numpy array or a memoryview of a mapped file, and payloads may differ in
    length. ``malicious`` selects Masny–Rindal base OTs.
    """
    level_count = levels(n)
    if n > 2**32 - 1:
        raise ValueError(f"invalid number of entries {n}: at most 2^32 - 1 fit the sequence numbers")
    if phase is not None:
        yield Phase(phase)
    keys0, keys1 = yield from base_ot_sender(peer, level_count, malicious=malicious)

    buffer = bytearray(ENTRY_OVERHEAD + 16)
    keys = np.zeros((0, 16), dtype=np.uint8)
    for i in range(n):
        if i % _KEY_CHUNK == 0:
            keys = entry_keys(keys0, keys1, i, min(n, i + _KEY_CHUNK))
        data = _as_bytes_view(payload(i), i)
        size = len(data)
        if len(buffer) < ENTRY_OVERHEAD + size + 15:
            buffer = bytearray(ENTRY_OVERHEAD + size + 15)
        view = memoryview(buffer)
        view[:HEADER_BYTES] = header(Kind.ONE_OF_N_ENTRY, i)
        view[HEADER_BYTES:ENTRY_OVERHEAD] = LENGTH.pack(size)
        encryptor = Cipher(algorithms.AES(keys[i % _KEY_CHUNK].tobytes()), modes.CTR(_ZERO_NONCE)).encryptor()
        encryptor.update_into(data, view[ENTRY_OVERHEAD:])
        # The runner copies a payload when it takes the Send, so the buffer is free again after it.
        yield Send(peer, view[: ENTRY_OVERHEAD + size])
    return None


def _entry_body(message: bytes, i: int) -> memoryview:
    body = parse(message, Kind.ONE_OF_N_ENTRY, i)
    if len(body) < LENGTH.size:
        raise TruncatedMessage(f"entry {i} has {len(body)} bytes after its header, shorter than the length field")
    (size,) = LENGTH.unpack_from(body)
    masked = body[LENGTH.size :]
    if len(masked) < size:
        raise TruncatedMessage(f"entry {i} declares {size} payload bytes but carries {len(masked)}")
    if len(masked) > size:
        raise MalformedMessage(f"entry {i} declares {size} payload bytes but carries {len(masked)}")
    return masked


def one_of_n_receiver(
    peer: str, n: int, index: int, *, malicious: bool = False, phase: str | None = None
) -> Party[bytes]:
    """Run 1-out-of-n OT as receiver of entry ``index``; return its payload.

    Raises ``ValueError`` unless ``0 <= index < n``, and the ``codec`` aborts when any entry
    is missing, reordered, replayed, truncated or longer than it declares.
    """
    level_count = levels(n)
    if not 0 <= index < n:
        raise ValueError(f"invalid index {index}: expected 0 <= index < {n}")
    if phase is not None:
        yield Phase(phase)
    bits = np.array([(index >> j) & 1 for j in range(level_count)], dtype=np.uint8)
    keys = yield from base_ot_receiver(peer, bits, malicious=malicious)
    key = receiver_entry_key(keys, index) if level_count else bytes(KEY_BYTES)

    result = b""
    for i in range(n):
        masked = _entry_body((yield Receive(peer)), i)
        if i == index:
            decryptor = Cipher(algorithms.AES(key), modes.CTR(_ZERO_NONCE)).decryptor()
            result = decryptor.update(masked) + decryptor.finalize()
    return result
