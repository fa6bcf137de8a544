"""Garbled argmax: Yao's garbled circuits with free-XOR and half-gates, vectorised per circuit layer.

Construction. Yao's garbled circuits (Yao 1986) with point-and-permute, the free-XOR technique
of Kolesnikov and Schneider (ICALP 2008: every wire's two labels differ by one global secret
``Δ`` whose least significant bit is 1, so XOR gates cost nothing), and the half-gates AND of
Zahur, Rosulek and Evans (EUROCRYPT 2015: two ciphertexts of 16 bytes per AND gate). The hash
is fixed-key AES as proposed by Bellare, Hoang, Keelveedhi and Rogaway (IEEE S&P 2013), in the
tweakable circular-correlation-robust form ``H(x, i) = π(π(x) ⊕ i) ⊕ π(x)`` of Guo, Katz, Wang
and Yu (IEEE S&P 2020), where ``π`` is AES-128 under a fixed public key. Security holds against
a semi-honest adversary when ``π`` is modelled as a random permutation.

Wires carry 128-bit labels stored as ``uint64`` pairs (``[..., 0]`` holds the low word; its bit
0 is the point-and-permute bit). Circuits are written once against a *backend*: the
:class:`Garbler` computes zero labels and appends the two half-gate ciphertexts of every AND gate
to its table; the :class:`Evaluator` computes the active labels from the same table. Every AND
call is a batch of gates evaluated with a few numpy operations and one AES call, and the gate
counter, hence the hash tweaks, advance identically on both sides.

The circuit is the argmax of ``n + 1`` unsigned ``ℓ``-bit values: ``n`` sums of two additive
shares (a ripple-carry adder, ``ℓ − 1`` ANDs each) and one value the garbler supplies alone,
reduced by a tournament tree. Each level compares neighbours with a one-AND-per-bit comparator
(Kolesnikov, Sadeghi and Schneider, CANS 2009) and multiplexes the winner's value and the low
bits of its index. The left operand of every comparison holds the lower indices and the right
one replaces it only when strictly greater, so ties go to the lowest index. Only the index bits
are ever decoded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LABEL_BYTES = 16
TABLE_BYTES_PER_AND = 2 * LABEL_BYTES

# The public fixed key of the permutation π; any public constant works in the random-permutation model.
FIXED_AES_KEY = bytes(range(16))


def random_labels(count: int) -> np.ndarray:
    """Return ``count`` fresh uniformly random labels, shape (count, 2) uint64."""
    return np.frombuffer(secrets.token_bytes(LABEL_BYTES * count), dtype=np.uint64).reshape(count, 2).copy()


def random_delta() -> np.ndarray:
    """Return the free-XOR offset Δ: a random label with its point-and-permute bit set."""
    delta = random_labels(1)[0]
    delta[0] |= np.uint64(1)
    return delta


def permute_bits(labels: np.ndarray) -> np.ndarray:
    """Return the point-and-permute bit of each label as uint8."""
    return (labels[..., 0] & np.uint64(1)).astype(np.uint8)


def select_labels(zero_labels: np.ndarray, bits: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Return the labels that encode ``bits``: ``zero ⊕ bit·Δ``."""
    mask = np.uint64(0) - np.asarray(bits, dtype=np.uint64)
    return zero_labels ^ (mask[..., None] & delta)


def _bit_mask(labels: np.ndarray) -> np.ndarray:
    """Return all-ones uint64 where the label's permute bit is 1, zero elsewhere, shape (..., 1)."""
    return (np.uint64(0) - (labels[..., 0] & np.uint64(1)))[..., None]


class FixedKeyHash:
    """The tweakable hash ``H(x, i) = π(π(x) ⊕ i) ⊕ π(x)`` over fixed-key AES-128, batched."""

    def __init__(self) -> None:
        self._encryptor = Cipher(algorithms.AES(FIXED_AES_KEY), modes.ECB()).encryptor()

    def permute(self, blocks: np.ndarray) -> np.ndarray:
        """Return π applied to each 128-bit block of a (m, 2) uint64 array."""
        data = np.ascontiguousarray(blocks, dtype=np.uint64)
        out = np.empty(data.size + 2, dtype=np.uint64)  # update_into wants one spare block
        self._encryptor.update_into(data.reshape(-1).view(np.uint8), out.view(np.uint8))
        return out[: data.size].reshape(data.shape)

    def hash(self, blocks: np.ndarray, tweaks: np.ndarray) -> np.ndarray:
        """Return H(x_k, i_k) for labels ``blocks`` (m, 2) and tweaks ``tweaks`` (m,) uint64."""
        once = self.permute(blocks)
        tweaked = once.copy()
        tweaked[:, 0] ^= tweaks
        return self.permute(tweaked) ^ once


@dataclass
class Garbler:
    """Garbling backend: wires are zero labels; AND gates append half-gate ciphertexts to ``tables``."""

    delta: np.ndarray
    hasher: FixedKeyHash = field(default_factory=FixedKeyHash)
    gates: int = 0
    tables: list[np.ndarray] = field(default_factory=list)

    def and_gates(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Garble a batch of AND gates with zero labels ``a``, ``b`` (same shape (..., 2)); return output zero labels."""
        shape = a.shape
        a0 = a.reshape(-1, 2)
        b0 = b.reshape(-1, 2)
        count = a0.shape[0]

        gate_ids = np.arange(self.gates, self.gates + count, dtype=np.uint64)
        self.gates += count
        tweak_g = gate_ids * np.uint64(2)
        tweak_e = tweak_g + np.uint64(1)
        hashed = self.hasher.hash(
            np.concatenate([a0, a0 ^ self.delta, b0, b0 ^ self.delta]),
            np.concatenate([tweak_g, tweak_g, tweak_e, tweak_e]),
        )
        ha0, ha1, hb0, hb1 = np.split(hashed, 4)
        pa = _bit_mask(a0)
        pb = _bit_mask(b0)

        # Garbler half-gate: the garbler knows pb, the evaluator learns a ⊕ pa from the permute bit.
        table_g = ha0 ^ ha1 ^ (pb & self.delta)
        out_g = ha0 ^ (pa & table_g)

        # Evaluator half-gate: the evaluator learns b ⊕ pb and uses its own label of a.
        table_e = hb0 ^ hb1 ^ a0
        out_e = hb0 ^ (pb & (table_e ^ a0))

        self.tables.append(np.stack([table_g, table_e], axis=1))
        return (out_g ^ out_e).reshape(shape)

    def table_bytes(self) -> bytes:
        if not self.tables:
            return b""
        return np.concatenate(self.tables).tobytes()


@dataclass
class Evaluator:
    """Evaluation backend: wires are active labels; AND gates read the garbler's ciphertexts in order."""

    tables: np.ndarray  # (and gates, 2, 2) uint64
    hasher: FixedKeyHash = field(default_factory=FixedKeyHash)
    gates: int = 0

    def and_gates(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Evaluate a batch of AND gates on active labels ``a``, ``b``; return the output labels."""
        shape = a.shape
        a1 = a.reshape(-1, 2)
        b1 = b.reshape(-1, 2)
        count = a1.shape[0]
        if self.gates + count > self.tables.shape[0]:
            raise ValueError(f"garbled table holds {self.tables.shape[0]} AND gates, the circuit needs more")

        table = self.tables[self.gates : self.gates + count]
        gate_ids = np.arange(self.gates, self.gates + count, dtype=np.uint64)
        self.gates += count
        tweak_g = gate_ids * np.uint64(2)
        hashed = self.hasher.hash(np.concatenate([a1, b1]), np.concatenate([tweak_g, tweak_g + np.uint64(1)]))
        ha, hb = np.split(hashed, 2)

        out_g = ha ^ (_bit_mask(a1) & table[:, 0])
        out_e = hb ^ (_bit_mask(b1) & (table[:, 1] ^ a1))
        return (out_g ^ out_e).reshape(shape)


Backend = Garbler | Evaluator


# Circuits. Bundles of ℓ-bit values are bit-major arrays (ℓ, m, 2), least significant bit first,
# so each bit slice is one contiguous batch.


def add_circuit(backend: Backend, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the bundle of a + b mod 2^ℓ for bundles a, b of shape (ℓ, m, 2); ℓ − 1 ANDs per sum."""
    bits = a.shape[0]
    total = np.empty_like(a)
    total[0] = a[0] ^ b[0]
    if bits == 1:
        return total
    carry = backend.and_gates(a[0], b[0])
    for i in range(1, bits):
        total[i] = a[i] ^ b[i] ^ carry
        if i < bits - 1:
            # carry' = majority(a, b, carry) = carry ⊕ (a ⊕ carry)(b ⊕ carry)
            carry = carry ^ backend.and_gates(a[i] ^ carry, b[i] ^ carry)
    return total


def greater_than_circuit(backend: Backend, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the wires of [x > y] (unsigned) for bundles x, y of shape (ℓ, m, 2); ℓ ANDs per comparison."""
    # c_{i+1} = x_i ⊕ (x_i ⊕ c_i)(y_i ⊕ c_i) with c_0 = 0 is [x > y] on the low i+1 bits.
    result = x[0] ^ backend.and_gates(x[0], y[0])
    for i in range(1, x.shape[0]):
        result = x[i] ^ backend.and_gates(x[i] ^ result, y[i] ^ result)
    return result


def mux_circuit(backend: Backend, select: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Return ``right`` where ``select`` is 1, else ``left``, for bundles (k, m, 2) and select (m, 2)."""
    if left.shape[0] == 0:
        return left
    chosen = backend.and_gates(np.broadcast_to(select, left.shape).copy(), left ^ right)
    return left ^ chosen


def argmax_circuit(backend: Backend, values: np.ndarray, zero_wire: np.ndarray) -> np.ndarray:
    """Return the index bundle (W, 2) of the largest of ``values`` (ℓ, N, 2), lowest index on ties.

    ``zero_wire`` (2,) carries the constant 0, needed when an odd candidate passes a level
    unopposed. ``W = ceil(log2 N)``; the index is least significant bit first.
    """
    bits, count, _ = values.shape
    offsets = np.empty((0, count, 2), dtype=np.uint64)
    while count > 1:
        pairs = count // 2
        left_values = values[:, 0 : 2 * pairs : 2]
        right_values = values[:, 1 : 2 * pairs : 2]
        right_wins = greater_than_circuit(backend, right_values, left_values)

        root = count == 2
        if root:
            # The root's value is never used, so only the index bits are multiplexed.
            left_all = offsets[:, 0 : 2 * pairs : 2]
            right_all = offsets[:, 1 : 2 * pairs : 2]
        else:
            left_all = np.concatenate([left_values, offsets[:, 0 : 2 * pairs : 2]])
            right_all = np.concatenate([right_values, offsets[:, 1 : 2 * pairs : 2]])
        merged = mux_circuit(backend, right_wins, left_all, right_all)
        if root:
            new_values = values[:, :0]
            merged_offsets = merged
        else:
            new_values = merged[:bits]
            merged_offsets = merged[bits:]
        merged_offsets = np.concatenate([merged_offsets, right_wins[None]])

        if count % 2 == 1:
            # The last candidate passes unopposed; its block starts at an even multiple, so its new top bit is 0.
            carried_offsets = np.concatenate([offsets[:, -1:], zero_wire[None, None]])
            new_values = np.concatenate([new_values, values[:, -1:]], axis=1)
            merged_offsets = np.concatenate([merged_offsets, carried_offsets], axis=1)

        values = new_values
        offsets = merged_offsets
        count = pairs + count % 2
    return offsets[:, 0]


def matching_circuit(
    backend: Backend,
    garbler_shares: np.ndarray,
    evaluator_shares: np.ndarray,
    threshold: np.ndarray,
    zero_wire: np.ndarray,
) -> np.ndarray:
    """Return the index bundle of argmax(garbler_shares + evaluator_shares, threshold).

    Shares are bundles (ℓ, n, 2) whose sums mod 2^ℓ are the offset scores; ``threshold`` is a
    bundle (ℓ, 1, 2) placed at index n, so the output n means that no score reached it.
    """
    sums = add_circuit(backend, garbler_shares, evaluator_shares)
    candidates = np.concatenate([sums, threshold], axis=1)
    return argmax_circuit(backend, candidates, zero_wire)


def index_bits(candidates: int) -> int:
    """Return W = ceil(log2 N), the width of the output index for N candidates."""
    return max(0, (candidates - 1).bit_length())


def count_and_gates(n: int, ring_bits: int) -> int:
    """Return the number of AND gates of :func:`matching_circuit` for n keys and ℓ-bit values.

    ``n·(ℓ−1)`` for the adders, ``n·ℓ`` for the ``n`` comparisons, ``(n−1)·ℓ`` for the value
    multiplexers below the root, and ``Σ_level L·pairs_L`` for the index multiplexers.
    """
    total = n * max(ring_bits - 1, 0)
    count = n + 1
    level = 0
    while count > 1:
        pairs = count // 2
        total += pairs * ring_bits  # comparisons
        if count > 2:
            total += pairs * ring_bits  # value multiplexers
        total += pairs * level  # index multiplexers
        count = pairs + count % 2
        level += 1
    return total


def bundle_from_ints(zero_labels: np.ndarray, values: np.ndarray, bits: int, delta: np.ndarray) -> np.ndarray:
    """Return the bundle (bits, m, 2) encoding the unsigned ``values`` (m,) under zero labels (bits, m, 2)."""
    planes = int_to_bits(values, bits)
    return select_labels(zero_labels, planes, delta)


def int_to_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Return the low ``bits`` bits of ``values`` as a bit-major uint8 array (bits, m), least significant first."""
    values = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(bits, dtype=np.uint64)[:, None]
    return ((values[None, :] >> shifts) & np.uint64(1)).astype(np.uint8)


def bits_to_int(bits: np.ndarray) -> int:
    """Return the integer whose least significant bits come first in ``bits``."""
    return int(sum(int(bit) << position for position, bit in enumerate(bits)))
