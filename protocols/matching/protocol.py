"""Two-party secure matching: the SP learns the index of the MRI key nearest to its query.

Ideal functionality. The SP inputs a unit vector ``q`` (width ``d``) and the public database
size ``n``; the MRI inputs ``n`` unit keys ``K`` and an optional threshold ``τ``. The SP receives
``argmax_i ŝ_i`` (lowest index on ties) on the fixed-point scores ``ŝ = K̂ q̂`` of
:mod:`protocols.matching.fixed_point`, or ``None`` ("no match") when that maximum is below
``τ̂``; the MRI receives nothing. :func:`protocols.matching.fixed_point.reference_match` computes
exactly this output in the clear.

Construction (semi-honest, two parties, no helper):

1. **Random OT.** One batch of ``d·b + n·ℓ`` random 1-out-of-2 OTs from the OT-extension stack
   (``protocols.ot.extension``), the SP as receiver. The first ``d·b`` use the bits of ``q̂``
   as choices (``b = f_q + 2``); the last ``n·ℓ`` use fresh random bits ``r``.
2. **Inner products into shares** (Gilboa, CRYPTO 1999; :mod:`protocols.matching.arithmetic`).
   The MRI sends the correction vectors ``u`` in chunks of coordinates; the parties end with
   additive shares ``a + b_sp = K̂ q̂ (mod 2^ℓ)``.
3. **Evaluator input labels.** The last ``n·ℓ`` random OTs become correlated OTs: the MRI sends
   ``m0 ⊕ m1 ⊕ Δ`` for each, so the SP holds ``m0 ⊕ r·Δ``; the SP then sends ``e = bits(b_sp) ⊕
   r`` and the MRI takes ``m0 ⊕ e·Δ`` as the zero label of that input wire (Beaver's
   derandomisation of a precomputed OT).
4. **Garbled argmax** (Yao; free-XOR, Kolesnikov–Schneider 2008; half-gates, Zahur–Rosulek–Evans
   2015; fixed-key AES hash, Bellare et al. 2013, in the form of Guo et al. 2020;
   :mod:`protocols.matching.garbled`). The MRI garbles ``argmax(a + b_sp, τ̂)`` with the
   threshold as candidate ``n``, and sends its own input labels (its share offset by
   ``2^(ℓ−1)`` so the unsigned order is the signed one, ``τ̂ + 2^(ℓ−1)``, and a constant-zero
   wire), the garbled tables and the decoding bits of the index wires only. The SP evaluates
   and decodes ``ceil(log2(n+1))`` bits; index ``n`` means no match.

Security (semi-honest, one corrupted party, simulation-based). The MRI receives only OT
messages, which hide the SP's choices, and ``e``, which is uniform because ``r`` is uniform and
hidden by the OT; so its view does not depend on ``q`` and it learns nothing, not even whether a
match was found. The SP receives OT outputs, correction vectors masked by PRG outputs of seeds it
never learns, one label per wire, and decoding bits for the output wires alone. Labels of all
other wires (scores, sums, comparison results) carry a uniformly random point-and-permute bit
and no decoding information, so the SP can decode nothing but the output index.

Costs, with ``b = f_q + 2``, ``ℓ`` the ring width, ``W = ceil(log2(n+1))``, ``A`` the AND-gate
count of :func:`protocols.matching.garbled.count_and_gates` (about ``3·n·ℓ``), ``w_j =
ceil((ℓ − j)/8)``, ``C`` the number of correction chunks, ``N = d·b + n·ℓ`` random OTs and
``N' = 128·ceil(N/128)`` (IKNP extension, semi-honest, from ``protocols.ot.extension``):

* MRI → SP: ``4101`` (base OTs) ``+ n·d·Σ_j w_j + 15·C`` (corrections) ``+ 16·n·ℓ + 1``
  (correlated-OT corrections) ``+ 16·((n+1)·ℓ + 1) + 32·A + ceil(W/8) + 1`` (garbled circuit).
* SP → MRI: ``37 + 16·N' + 5·ceil(N'/2^20)`` (base OTs and extension matrix) ``+ ceil(n·ℓ/8) + 1``
  (choice flips).
* Rounds (longest chain of messages): 2 for the OT batch, whose last message goes to the MRI,
  then corrections (MRI → SP), flips (SP → MRI) and the garbled circuit (MRI → SP): 5 in all.

For ``d = 768`` with the default encoding (``b = 14``, ``ℓ = 30``, ``Σ_j w_j = 48``) and
``n = 3000`` that is 122.1 MB to the SP and 1.6 MB to the MRI, almost all of it the corrections.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Generator
from typing import Any

import numpy as np

from protocols.matching import arithmetic, garbled
from protocols.matching.fixed_point import (
    FixedPointParams,
    encode_keys,
    encode_query,
    encode_threshold,
)
from protocols.ot.extension import random_ot_receiver, random_ot_sender
from testbed.effects import Party, Phase, Receive, Send
from testbed.errors import MalformedMessage, TruncatedMessage, UnexpectedMessage

# Message kinds, the first byte of every message of this protocol.
KIND_CORRECTIONS = 0x01
KIND_LABEL_CORRECTIONS = 0x02
KIND_CHOICE_FLIPS = 0x03
KIND_GARBLED_CIRCUIT = 0x04

# Correction chunk header: kind, chunk index, n, d, f_q, f_k.
_CHUNK_HEADER = struct.Struct(">BIIIBB")

# Upper bound on the bytes of one correction chunk; a chunk holds at least one coordinate.
CORRECTION_CHUNK_BYTES = 8 << 20

PHASE_OT = "matching.ot"
PHASE_PRODUCTS = "matching.inner_products"
PHASE_ARGMAX = "matching.argmax"


class MatchingAbort(MalformedMessage):
    """A matching message failed validation: wrong kind, size, header or padding."""


class MatchingTruncated(TruncatedMessage, MatchingAbort):
    """A matching message is shorter than its kind requires."""


class MatchingOutOfOrder(UnexpectedMessage):
    """A matching message arrived out of order, was replayed, or belongs to another session."""


def _chunk_coordinates(params: FixedPointParams, n: int) -> int:
    widths = arithmetic.correction_widths(params.query_bits, params.ring_bits)
    per_coordinate = n * sum(widths)
    return max(1, min(params.dim, CORRECTION_CHUNK_BYTES // per_coordinate))


def message_bytes(n: int, params: FixedPointParams) -> dict[str, int]:
    """Return this protocol's payload bytes per direction, excluding the OT stack's messages."""
    d = params.dim
    ring = params.ring_bits
    widths = arithmetic.correction_widths(params.query_bits, ring)
    chunks = -(-d // _chunk_coordinates(params, n))
    corrections = n * d * sum(widths) + _CHUNK_HEADER.size * chunks
    label_corrections = 1 + 16 * n * ring
    circuit = (
        1
        + 16 * (ring * (n + 1) + 1)
        + 32 * garbled.count_and_gates(n, ring)
        + -(-garbled.index_bits(n + 1) // 8)
    )
    flips = 1 + -(-(n * ring) // 8)
    return {"mri->sp": corrections + label_corrections + circuit, "sp->mri": flips}


def ot_count(n: int, params: FixedPointParams) -> int:
    """Return the number of random OTs one run takes: d·b for the products, n·ℓ for the input labels."""
    return params.dim * params.query_bits + n * params.ring_bits


def _check_kind(message: bytes, kind: int, name: str) -> None:
    if not isinstance(message, (bytes, bytearray)) or len(message) == 0:
        raise MatchingTruncated(f"{name}: empty message")
    if message[0] == kind:
        return
    known = (KIND_CORRECTIONS, KIND_LABEL_CORRECTIONS, KIND_CHOICE_FLIPS, KIND_GARBLED_CIRCUIT)
    if message[0] in known:
        raise MatchingOutOfOrder(f"{name}: got a message of kind {message[0]:#04x}, expected {kind:#04x}")
    raise MatchingAbort(f"{name}: unknown message kind {message[0]:#04x}")


def _check_size(message: bytes, expected: int, name: str) -> None:
    if len(message) < expected:
        raise MatchingTruncated(f"{name}: {len(message)} bytes, expected {expected}")
    if len(message) > expected:
        raise MatchingAbort(f"{name}: {len(message)} bytes, expected {expected}")


def _unpack_bits(data: bytes, count: int, name: str) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    if np.any(bits[count:]):
        raise MatchingAbort(f"{name}: padding bits after the first {count} are not zero")
    return bits[:count]


def matching_sp(
    peer: str,
    query: np.ndarray,
    n_keys: int,
    *,
    params: FixedPointParams | None = None,
) -> Party[int | None]:
    """Run the SP's side against the MRI named ``peer``; return the matching index or ``None``.

    ``n_keys`` is the public size of the MRI's database. Raises ``ValueError`` for invalid
    local inputs and a ``ProtocolAbort`` subclass for an invalid peer message.
    """
    if params is None:
        params = FixedPointParams(dim=len(query))
    if n_keys < 1:
        raise ValueError(f"invalid n_keys {n_keys}: the database needs at least one key")
    n = int(n_keys)
    d = params.dim
    bits_q = params.query_bits
    ring = params.ring_bits

    q_hat = encode_query(query, params)
    query_choices = arithmetic.query_choice_bits(q_hat, bits_q)
    label_choices = np.frombuffer(secrets.token_bytes(n * ring), dtype=np.uint8) & np.uint8(1)

    yield Phase(PHASE_OT)
    seeds = yield from random_ot_receiver(peer, np.concatenate([query_choices.reshape(-1), label_choices]))
    seeds = np.asarray(seeds, dtype=np.uint8)

    yield Phase(PHASE_PRODUCTS)
    share = yield from _receive_products(peer, params, n, query_choices, seeds[: d * bits_q])

    message = yield Receive(peer)
    _check_kind(message, KIND_LABEL_CORRECTIONS, "label corrections")
    _check_size(message, 1 + 16 * n * ring, "label corrections")
    corrections = np.frombuffer(message, dtype=np.uint64, offset=1).reshape(ring, n, 2)
    chosen = seeds[d * bits_q :].view(np.uint64).reshape(ring, n, 2)
    choice_bits = label_choices.reshape(ring, n)
    own_labels = chosen ^ (corrections & (np.uint64(0) - choice_bits.astype(np.uint64))[..., None])

    share_bits = garbled.int_to_bits(share & np.uint32((1 << ring) - 1), ring)
    flips = share_bits ^ choice_bits
    yield Send(peer, bytes([KIND_CHOICE_FLIPS]) + np.packbits(flips.reshape(-1), bitorder="little").tobytes())

    yield Phase(PHASE_ARGMAX)
    message = yield Receive(peer)
    garbler_labels, tables, decoding = _parse_garbled_circuit(message, n, ring)
    evaluator = garbled.Evaluator(tables)
    index_labels = garbled.matching_circuit(
        evaluator,
        garbler_labels[: ring * n].reshape(ring, n, 2),
        own_labels,
        garbler_labels[ring * n : ring * (n + 1)].reshape(ring, 1, 2),
        garbler_labels[-1],
    )
    index = garbled.bits_to_int(garbled.permute_bits(index_labels) ^ decoding)
    if index > n:
        raise MatchingAbort(f"garbled circuit decodes to index {index}, outside 0..{n}")
    return None if index == n else index


def _receive_products(
    peer: str, params: FixedPointParams, n: int, query_choices: np.ndarray, seeds: np.ndarray
) -> Generator[Any, Any, np.ndarray]:
    d = params.dim
    bits_q = params.query_bits
    widths = arithmetic.correction_widths(bits_q, params.ring_bits)
    step = _chunk_coordinates(params, n)
    share = np.zeros(n, dtype=np.uint32)
    for chunk, start in enumerate(range(0, d, step)):
        stop = min(d, start + step)
        message = yield Receive(peer)
        _check_kind(message, KIND_CORRECTIONS, "correction chunk")
        body_size = arithmetic.packed_corrections_size(stop - start, n, widths)
        _check_size(message, _CHUNK_HEADER.size + body_size, f"correction chunk {chunk}")
        _, index, n_sent, d_sent, fq_sent, fk_sent = _CHUNK_HEADER.unpack_from(message)
        if (n_sent, d_sent, fq_sent, fk_sent) != (n, d, params.query_frac_bits, params.key_frac_bits):
            raise MatchingOutOfOrder(
                f"correction chunk for n={n_sent}, d={d_sent}, f_q={fq_sent}, f_k={fk_sent}; "
                f"this SP runs n={n}, d={d}, f_q={params.query_frac_bits}, f_k={params.key_frac_bits}"
            )
        if index != chunk:
            raise MatchingOutOfOrder(f"correction chunk {index} arrived where chunk {chunk} was expected")
        corrections = arithmetic.unpack_corrections(message[_CHUNK_HEADER.size :], stop - start, n, widths)
        share += arithmetic.receiver_products(
            seeds[start * bits_q : stop * bits_q], query_choices[start:stop], corrections, start * bits_q
        )
    return share


def _parse_garbled_circuit(message: bytes, n: int, ring: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_kind(message, KIND_GARBLED_CIRCUIT, "garbled circuit")
    label_count = ring * (n + 1) + 1
    gates = garbled.count_and_gates(n, ring)
    width = garbled.index_bits(n + 1)
    decoding_bytes = -(-width // 8)
    _check_size(message, 1 + 16 * label_count + 32 * gates + decoding_bytes, "garbled circuit")

    offset = 1
    labels = np.frombuffer(message, dtype=np.uint64, count=2 * label_count, offset=offset).reshape(label_count, 2)
    offset += 16 * label_count
    tables = np.frombuffer(message, dtype=np.uint64, count=4 * gates, offset=offset).reshape(gates, 2, 2)
    offset += 32 * gates
    decoding = _unpack_bits(message[offset:], width, "garbled circuit decoding bits")
    return labels, tables, decoding


def matching_mri(
    peer: str,
    keys: np.ndarray,
    threshold: float | None = None,
    *,
    params: FixedPointParams | None = None,
) -> Party[None]:
    """Run the MRI's side against the SP named ``peer``; the MRI's output is ``None``.

    ``threshold`` is the least similarity that counts as a match (``None``: every query
    matches). Raises ``ValueError`` for invalid local inputs and a ``ProtocolAbort`` subclass
    for an invalid peer message.
    """
    keys = np.asarray(keys)
    if params is None:
        params = FixedPointParams(dim=keys.shape[-1])
    k_hat = encode_keys(keys, params)
    threshold_hat = encode_threshold(threshold, params)
    n, d = k_hat.shape
    bits_q = params.query_bits
    ring = params.ring_bits
    ring_mask = (1 << ring) - 1
    offset = 1 << (ring - 1)

    yield Phase(PHASE_OT)
    seeds0, seeds1 = yield from random_ot_sender(peer, d * bits_q + n * ring)
    seeds0 = np.asarray(seeds0, dtype=np.uint8)
    seeds1 = np.asarray(seeds1, dtype=np.uint8)

    yield Phase(PHASE_PRODUCTS)
    key_columns = np.ascontiguousarray(k_hat.T).astype(np.uint32)
    widths = arithmetic.correction_widths(bits_q, ring)
    step = _chunk_coordinates(params, n)
    share = np.zeros(n, dtype=np.uint32)
    for chunk, start in enumerate(range(0, d, step)):
        stop = min(d, start + step)
        corrections, block_share = arithmetic.sender_products(
            seeds0[start * bits_q : stop * bits_q],
            seeds1[start * bits_q : stop * bits_q],
            key_columns[start:stop],
            bits_q,
            start * bits_q,
        )
        share += block_share
        header = _CHUNK_HEADER.pack(
            KIND_CORRECTIONS, chunk, n, d, params.query_frac_bits, params.key_frac_bits
        )
        yield Send(peer, header + arithmetic.pack_corrections(corrections, widths))

    delta = garbled.random_delta()
    label_seeds0 = seeds0[d * bits_q :].view(np.uint64).reshape(ring, n, 2)
    label_seeds1 = seeds1[d * bits_q :].view(np.uint64).reshape(ring, n, 2)
    label_corrections = label_seeds0 ^ label_seeds1 ^ delta
    yield Send(peer, bytes([KIND_LABEL_CORRECTIONS]) + label_corrections.tobytes())

    message = yield Receive(peer)
    _check_kind(message, KIND_CHOICE_FLIPS, "choice flips")
    _check_size(message, 1 + -(-(n * ring) // 8), "choice flips")
    flips = _unpack_bits(message[1:], n * ring, "choice flips").reshape(ring, n)

    yield Phase(PHASE_ARGMAX)
    evaluator_zero = garbled.select_labels(label_seeds0, flips, delta)
    own_zero = garbled.random_labels(ring * n).reshape(ring, n, 2)
    threshold_zero = garbled.random_labels(ring).reshape(ring, 1, 2)
    zero_wire = garbled.random_labels(1)[0]

    garbler = garbled.Garbler(delta)
    index_zero = garbled.matching_circuit(garbler, own_zero, evaluator_zero, threshold_zero, zero_wire)

    offset_share = (share.astype(np.uint64) + np.uint64(offset)) & np.uint64(ring_mask)
    own_active = garbled.bundle_from_ints(own_zero, offset_share, ring, delta)
    threshold_value = np.array([(threshold_hat + offset) & ring_mask], dtype=np.uint64)
    threshold_active = garbled.bundle_from_ints(threshold_zero, threshold_value, ring, delta)
    decoding = np.packbits(garbled.permute_bits(index_zero), bitorder="little")

    yield Send(
        peer,
        bytes([KIND_GARBLED_CIRCUIT])
        + own_active.tobytes()
        + threshold_active.tobytes()
        + zero_wire.tobytes()
        + garbler.table_bytes()
        + decoding.tobytes(),
    )
    return None
