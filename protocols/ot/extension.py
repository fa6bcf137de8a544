"""OT extension: IKNP (semi-honest) and KOS (malicious), random, correlated and chosen OT.

Construction. Ishai, Kilian, Nissim, Petrank, "Extending Oblivious Transfers Efficiently"
(CRYPTO 2003), with the correlation check of Keller, Orsini, Scholl, "Actively Secure OT
Extension with Optimal Overhead" (CRYPTO 2015) for malicious security. ``kappa = 128`` base
random OTs run with the roles swapped: the extension *receiver* acts as base-OT sender and
gets seed pairs ``(k0_j, k1_j)``, the extension *sender* picks ``s`` in {0,1}^128 and gets
``k_{s_j, j}``. Each seed is stretched with AES-128-CTR to one column of ``N'`` bits. The
receiver sends ``u_j = G(k0_j) XOR G(k1_j) XOR r`` for its choice vector ``r``; the sender
computes ``q_j = G(k_{s_j}) XOR s_j u_j``. After a bit-matrix transpose, row ``i`` satisfies
``q_i = t_i XOR r_i s``. Outputs use the tweakable correlation-robust hash ``H`` of
``protocols.ot.hashing``: random OT gives the sender ``H(i, q_i)`` and ``H(i, q_i XOR s)``
and the receiver ``H(i, t_i)``.

KOS adds ``kappa + sigma = 192`` rows with random choices (``sigma = 64`` statistical
security), then a check: the sender sends a fresh 16-byte seed that expands to coefficients
``chi_i`` in GF(2^128). The receiver replies with ``x = sum chi_i r_i`` and
``t = sum chi_i t_i``, and the sender aborts with ``CorrelationCheckFailed`` unless
``sum chi_i q_i = t + x s``. The base OTs are then Masny–Rindal instead of Naor–Pinkas.
Security: semi-honest (IKNP) or malicious (KOS) in the random-oracle model, with fixed-key
AES modelled as a random permutation and AES-CTR as a pseudo-random generator.

NOTE: the KOS proof of Keller, Orsini and Scholl models ``H`` as a random oracle. Here ``H``
is the fixed-key AES hash, an instantiation this module assumes secure but does not prove.

Correlated OT (Asharov, Lindell, Schneider, Zohner, CCS 2013): the sender sends
``y_i = H(i, q_i) XOR H(i, q_i XOR s) XOR delta``; the receiver outputs ``H(i, t_i)``, XORed with
``y_i`` when ``r_i = 1``. Chosen-message OT: the sender sends ``m0_i XOR P(i, q_i)`` and
``m1_i XOR P(i, q_i XOR s)``, where ``P`` stretches ``H`` over block tweaks to ``L`` bytes.

Rows are padded to ``N' = 128 ceil((N + 192 [malicious]) / 128)`` for ``N`` OTs and split into
matrix chunks of at most ``2^20`` rows, ``C = ceil(N' / 2^20)``. Bytes on the wire, with the
5-byte header ``h`` (R is the extension receiver, S the extension sender):

======================  ==========  =================================
step                    direction   bytes
======================  ==========  =================================
base OT, semi-honest    R -> S      ``h + 32``
base OT, semi-honest    S -> R      ``h + 32 * 128 = 4101``
base OT, malicious      R -> S      ``h + 32``
base OT, malicious      S -> R      ``h + 64 * 128 = 8197``
matrix ``u``            R -> S      ``C h + 16 N'``
KOS challenge           S -> R      ``h + 16``
KOS response            R -> S      ``h + 32``
correlated OT           S -> R      ``ceil(N / 2^20) h + 16 N``
chosen OT, ``L`` bytes  S -> R      ``ceil(N / B_L) h + 2 L N``
======================  ==========  =================================

Chosen-OT ciphertexts travel in messages of ``B_L = min(2^20, max(1, floor(2^26 / 2L)))`` OTs,
so no message exceeds 64 MiB unless one OT alone does.

Rounds (longest causal chain of messages): random OT 2 (IKNP) or 4 (KOS); correlated and
chosen OT one more, 3 or 5. With ``N = 0`` no message is sent.

Reusing base OTs. :func:`extension_sender_setup` and :func:`extension_receiver_setup` run the
128 base OTs once and return state that the batch functions take as ``setup``. Batches that
share a setup continue the same AES-CTR streams and take consecutive OT indices, so no
keystream or hash tweak repeats. Each batch then costs only its own rows in the table above
and one round less (random OT 1 or 3 rounds). Batches sharing a setup must run one after
another, in the same order on both sides, with the same ``malicious`` flag.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from testbed.effects import Party, Phase, Receive, Send

from protocols.ot import gf128
from protocols.ot.base import KEY_BYTES, base_ot_receiver, base_ot_sender, choice_bits
from protocols.ot.bitmatrix import transpose
from protocols.ot.codec import Kind, frame, header, parse
from protocols.ot.errors import CorrelationCheckFailed
from protocols.ot.hashing import CounterStream, tcr_expand, tcr_hash

KAPPA = 128
STATISTICAL_SECURITY = 64
KOS_EXTRA_ROWS = KAPPA + STATISTICAL_SECURITY
ROW_ALIGN = 128
CHUNK_ROWS = 1 << 20
MAX_CIPHERTEXT_MESSAGE = 1 << 26


def padded_rows(count: int, malicious: bool) -> int:
    """Return ``N'``, the number of extended rows for ``count`` OTs."""
    if count == 0:
        return 0
    rows = count + (KOS_EXTRA_ROWS if malicious else 0)
    return -(-rows // ROW_ALIGN) * ROW_ALIGN


def _chunks(total: int, size: int) -> Iterator[tuple[int, int, int]]:
    for seq, start in enumerate(range(0, total, size)):
        yield seq, start, min(total, start + size)


def ciphertext_rows_per_message(length: int) -> int:
    """Return ``B_L``, the OTs per chosen-OT ciphertext message for ``length``-byte messages."""
    return min(CHUNK_ROWS, max(1, MAX_CIPHERTEXT_MESSAGE // max(1, 2 * length)))


def _random_bits(count: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(secrets.token_bytes(-(-count // 8)), dtype=np.uint8))[:count]


class _ColumnGenerator:
    """The 128 AES-CTR streams of one party, read chunk by chunk into one column matrix."""

    def __init__(self, keys: np.ndarray) -> None:
        self._streams = [CounterStream(bytes(key)) for key in keys]
        self._zeros = np.zeros(0, dtype=np.uint8)

    def next_columns(self, nbytes: int) -> np.ndarray:
        if len(self._zeros) < nbytes:
            self._zeros = np.zeros(nbytes, dtype=np.uint8)
        out = np.empty(len(self._streams) * nbytes + 16, dtype=np.uint8)
        for j, stream in enumerate(self._streams):
            stream.read_into(self._zeros[:nbytes], out[j * nbytes :])
        return out[: len(self._streams) * nbytes].reshape(len(self._streams), nbytes)


def _challenge_columns(seed: bytes, rows: int) -> np.ndarray:
    nbytes = rows // 8
    out = np.empty(KAPPA * nbytes + 16, dtype=np.uint8)
    CounterStream(seed).read_into(np.zeros(KAPPA * nbytes, dtype=np.uint8), out)
    return out[: KAPPA * nbytes].reshape(KAPPA, nbytes)


@dataclass
class ExtensionSenderSetup:
    """Base-OT state of an extension sender: ``s`` and the seeds ``k_{s_j, j}`` as AES-CTR streams.

    One setup serves any number of batches with the same receiver, run one after another.
    Each batch reads fresh keystream and takes fresh OT indices, starting at ``next_index``.
    """

    malicious: bool
    s_bits: np.ndarray
    generator: _ColumnGenerator
    next_index: int = 0


@dataclass
class ExtensionReceiverSetup:
    """Base-OT state of an extension receiver: both seeds of every column as AES-CTR streams."""

    malicious: bool
    generator0: _ColumnGenerator
    generator1: _ColumnGenerator
    next_index: int = 0


def extension_sender_setup(
    peer: str, *, malicious: bool = False, phase: str | None = None
) -> Party[ExtensionSenderSetup]:
    """Run the 128 base OTs as extension sender; return the state later batches extend.

    Pass the result as ``setup`` to the ``*_ot_sender`` functions so several batches share
    one set of base OTs. The receiver must do the same with :func:`extension_receiver_setup`.
    """
    if phase is not None:
        yield Phase(phase)
    s_bits = _random_bits(KAPPA)
    keys = yield from base_ot_receiver(peer, s_bits, malicious=malicious)
    return ExtensionSenderSetup(malicious, s_bits, _ColumnGenerator(keys))


def extension_receiver_setup(
    peer: str, *, malicious: bool = False, phase: str | None = None
) -> Party[ExtensionReceiverSetup]:
    """Run the 128 base OTs as extension receiver; return the state later batches extend."""
    if phase is not None:
        yield Phase(phase)
    keys0, keys1 = yield from base_ot_sender(peer, KAPPA, malicious=malicious)
    return ExtensionReceiverSetup(malicious, _ColumnGenerator(keys0), _ColumnGenerator(keys1))


def _check_setup(setup: ExtensionSenderSetup | ExtensionReceiverSetup, malicious: bool) -> None:
    if setup.malicious != malicious:
        raise ValueError(
            f"setup was made with malicious={setup.malicious} but this batch asks for malicious={malicious}"
        )


def _extension_receiver(
    peer: str, bits: np.ndarray, malicious: bool, setup: ExtensionReceiverSetup | None
) -> Party[tuple[np.ndarray, int]]:
    """Run one extension batch as receiver; return the rows ``t_i`` and the first OT index."""
    if setup is None:
        setup = yield from extension_receiver_setup(peer, malicious=malicious)
    _check_setup(setup, malicious)
    count = len(bits)
    rows = padded_rows(count, malicious)
    first_index = setup.next_index
    setup.next_index += rows

    choices = np.empty(rows, dtype=np.uint8)
    choices[:count] = bits
    choices[count:] = _random_bits(rows - count)
    packed = np.packbits(choices, bitorder="little")

    t_rows = np.empty((rows, KEY_BYTES), dtype=np.uint8)
    t_columns = np.empty((KAPPA, rows // 8), dtype=np.uint8) if malicious else None
    for seq, start, stop in _chunks(rows, CHUNK_ROWS):
        nbytes = (stop - start) // 8
        columns = setup.generator0.next_columns(nbytes)
        matrix = setup.generator1.next_columns(nbytes)
        matrix ^= columns
        matrix ^= packed[start // 8 : stop // 8]
        yield Send(peer, header(Kind.EXT_MATRIX, seq) + matrix.tobytes())
        if t_columns is not None:
            t_columns[:, start // 8 : stop // 8] = columns
        t_rows[start:stop] = transpose(columns, overwrite=True)

    if t_columns is not None:
        seed = bytes(parse((yield Receive(peer)), Kind.KOS_CHALLENGE, 0, 16))
        coefficients = _challenge_columns(seed, rows)
        x = gf128.select_sum(coefficients, packed)
        t = gf128.inner_product(coefficients, t_columns)
        yield Send(peer, frame(Kind.KOS_RESPONSE, gf128.to_bytes(x) + gf128.to_bytes(t)))
    return t_rows[:count], first_index


def _extension_sender(
    peer: str, count: int, malicious: bool, setup: ExtensionSenderSetup | None
) -> Party[tuple[np.ndarray, np.ndarray, int]]:
    """Run one extension batch as sender; return the rows ``q_i``, ``s`` and the first OT index."""
    if setup is None:
        setup = yield from extension_sender_setup(peer, malicious=malicious)
    _check_setup(setup, malicious)
    s_packed = np.packbits(setup.s_bits, bitorder="little")
    selected = setup.s_bits.astype(bool)
    rows = padded_rows(count, malicious)
    first_index = setup.next_index
    setup.next_index += rows

    q_rows = np.empty((rows, KEY_BYTES), dtype=np.uint8)
    q_columns = np.empty((KAPPA, rows // 8), dtype=np.uint8) if malicious else None
    for seq, start, stop in _chunks(rows, CHUNK_ROWS):
        nbytes = (stop - start) // 8
        body = parse((yield Receive(peer)), Kind.EXT_MATRIX, seq, KAPPA * nbytes)
        matrix = np.frombuffer(body, dtype=np.uint8).reshape(KAPPA, nbytes)
        columns = setup.generator.next_columns(nbytes)
        columns[selected] ^= matrix[selected]
        if q_columns is not None:
            q_columns[:, start // 8 : stop // 8] = columns
        q_rows[start:stop] = transpose(columns, overwrite=True)

    if q_columns is not None:
        seed = secrets.token_bytes(16)
        yield Send(peer, frame(Kind.KOS_CHALLENGE, seed))
        body = parse((yield Receive(peer)), Kind.KOS_RESPONSE, 0, 32)
        x = gf128.to_int(body[:16])
        t = gf128.to_int(body[16:])
        coefficients = _challenge_columns(seed, rows)
        q = gf128.inner_product(coefficients, q_columns)
        expected = t ^ gf128.multiply(x, gf128.to_int(s_packed))
        if not hmac.compare_digest(gf128.to_bytes(q), gf128.to_bytes(expected)):
            raise CorrelationCheckFailed(
                "KOS correlation check failed: the receiver's matrix is not consistent with one choice vector"
            )
    return q_rows[:count], s_packed, first_index


def _check_count(count: int) -> None:
    if count < 0:
        raise ValueError(f"invalid count {count}: expected a non-negative number of OTs")


def random_ot_sender(
    peer: str,
    count: int,
    *,
    malicious: bool = False,
    phase: str | None = None,
    setup: ExtensionSenderSetup | None = None,
) -> Party[tuple[np.ndarray, np.ndarray]]:
    """Run ``count`` random OTs as sender; return ``(m0, m1)``, uint8 ``(count, 16)`` each.

    Without ``setup`` the batch runs its own 128 base OTs. Raises ``CorrelationCheckFailed``
    (malicious only) when the receiver cheats in the KOS check, and the ``codec`` aborts for
    malformed messages.
    """
    _check_count(count)
    if phase is not None:
        yield Phase(phase)
    if count == 0:
        return np.zeros((0, 16), dtype=np.uint8), np.zeros((0, 16), dtype=np.uint8)
    q_rows, s, first_index = yield from _extension_sender(peer, count, malicious, setup)
    return tcr_hash(q_rows, first_index), tcr_hash(q_rows ^ s, first_index)


def random_ot_receiver(
    peer: str,
    choices: np.ndarray,
    *,
    malicious: bool = False,
    phase: str | None = None,
    setup: ExtensionReceiverSetup | None = None,
) -> Party[np.ndarray]:
    """Run random OTs as receiver with ``choices`` (bool or 0/1 of shape ``(count,)``).

    Returns ``m_choice``, uint8 ``(count, 16)``: row ``i`` equals the sender's ``m{c_i}[i]``.
    """
    bits = choice_bits(choices)
    if phase is not None:
        yield Phase(phase)
    if len(bits) == 0:
        return np.zeros((0, 16), dtype=np.uint8)
    t_rows, first_index = yield from _extension_receiver(peer, bits, malicious, setup)
    return tcr_hash(t_rows, first_index)


def _check_delta(delta: bytes) -> bytes:
    if not isinstance(delta, (bytes, bytearray)) or len(delta) != 16:
        raise ValueError(f"invalid delta {delta!r}: expected 16 bytes")
    return bytes(delta)


def correlated_ot_sender(
    peer: str,
    count: int,
    delta: bytes,
    *,
    malicious: bool = False,
    phase: str | None = None,
    setup: ExtensionSenderSetup | None = None,
) -> Party[np.ndarray]:
    """Run ``count`` correlated OTs with offset ``delta`` (16 bytes) as sender.

    Returns ``m0``, uint8 ``(count, 16)``; the receiver gets ``m0 XOR (c_i * delta)``.
    """
    _check_count(count)
    offset = np.frombuffer(_check_delta(delta), dtype=np.uint8)
    if phase is not None:
        yield Phase(phase)
    if count == 0:
        return np.zeros((0, 16), dtype=np.uint8)
    q_rows, s, first_index = yield from _extension_sender(peer, count, malicious, setup)
    m0 = np.empty((count, 16), dtype=np.uint8)
    for seq, start, stop in _chunks(count, CHUNK_ROWS):
        m0[start:stop] = tcr_hash(q_rows[start:stop], first_index + start)
        correction = tcr_hash(q_rows[start:stop] ^ s, first_index + start)
        correction ^= m0[start:stop]
        correction ^= offset
        yield Send(peer, header(Kind.EXT_CORRECTIONS, seq) + correction.tobytes())
    return m0


def correlated_ot_receiver(
    peer: str,
    choices: np.ndarray,
    *,
    malicious: bool = False,
    phase: str | None = None,
    setup: ExtensionReceiverSetup | None = None,
) -> Party[np.ndarray]:
    """Run correlated OTs as receiver; return ``m0 XOR (c_i * delta)``, uint8 ``(count, 16)``."""
    bits = choice_bits(choices)
    if phase is not None:
        yield Phase(phase)
    count = len(bits)
    if count == 0:
        return np.zeros((0, 16), dtype=np.uint8)
    t_rows, first_index = yield from _extension_receiver(peer, bits, malicious, setup)
    out = np.empty((count, 16), dtype=np.uint8)
    for seq, start, stop in _chunks(count, CHUNK_ROWS):
        body = parse((yield Receive(peer)), Kind.EXT_CORRECTIONS, seq, 16 * (stop - start))
        correction = np.frombuffer(body, dtype=np.uint8).reshape(stop - start, 16)
        out[start:stop] = tcr_hash(t_rows[start:stop], first_index + start)
        out[start:stop] ^= correction * bits[start:stop, None]
    return out


def _check_messages(m0: np.ndarray, m1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.asarray(m0)
    second = np.asarray(m1)
    if first.ndim != 2 or first.dtype != np.uint8 or first.shape != second.shape or second.dtype != np.uint8:
        raise ValueError(
            f"invalid messages: shapes {first.shape} and {second.shape}, dtypes {first.dtype} and "
            f"{second.dtype}; expected two uint8 arrays of the same shape (count, length)"
        )
    return first, second


def chosen_ot_sender(
    peer: str,
    m0: np.ndarray,
    m1: np.ndarray,
    *,
    malicious: bool = False,
    phase: str | None = None,
    setup: ExtensionSenderSetup | None = None,
) -> Party[None]:
    """Run chosen-message OTs as sender of ``m0`` and ``m1`` (uint8 ``(count, L)``, any L >= 0)."""
    first, second = _check_messages(m0, m1)
    count, length = first.shape
    if phase is not None:
        yield Phase(phase)
    if count == 0:
        return None
    q_rows, s, first_index = yield from _extension_sender(peer, count, malicious, setup)
    for seq, start, stop in _chunks(count, ciphertext_rows_per_message(length)):
        ciphertexts = np.empty((stop - start, 2, length), dtype=np.uint8)
        ciphertexts[:, 0] = tcr_expand(q_rows[start:stop], first_index + start, length)
        ciphertexts[:, 0] ^= first[start:stop]
        ciphertexts[:, 1] = tcr_expand(q_rows[start:stop] ^ s, first_index + start, length)
        ciphertexts[:, 1] ^= second[start:stop]
        yield Send(peer, header(Kind.EXT_CIPHERTEXTS, seq) + ciphertexts.tobytes())
    return None


def chosen_ot_receiver(
    peer: str,
    choices: np.ndarray,
    length: int,
    *,
    malicious: bool = False,
    phase: str | None = None,
    setup: ExtensionReceiverSetup | None = None,
) -> Party[np.ndarray]:
    """Run chosen-message OTs as receiver; return the chosen messages, uint8 ``(count, length)``."""
    bits = choice_bits(choices)
    if length < 0:
        raise ValueError(f"invalid message length {length}: expected a non-negative number of bytes")
    if phase is not None:
        yield Phase(phase)
    count = len(bits)
    out = np.empty((count, length), dtype=np.uint8)
    if count == 0:
        return out
    t_rows, first_index = yield from _extension_receiver(peer, bits, malicious, setup)
    for seq, start, stop in _chunks(count, ciphertext_rows_per_message(length)):
        size = stop - start
        body = parse((yield Receive(peer)), Kind.EXT_CIPHERTEXTS, seq, 2 * length * size)
        ciphertexts = np.frombuffer(body, dtype=np.uint8).reshape(size, 2, length)
        chosen = ciphertexts[np.arange(size), bits[start:stop]]
        out[start:stop] = chosen ^ tcr_expand(t_rows[start:stop], first_index + start, length)
    return out
