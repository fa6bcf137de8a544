"""Inner products into additive shares with OT-based multiplication (Gilboa 1999), vectorised.

Construction. Gilboa's multiplication ("Two party RSA key generation", CRYPTO 1999) turns one
1-out-of-2 OT per bit of one factor into additive shares of a product. The SP (OT receiver)
holds the query ``q̂`` in ``b``-bit two's complement, ``q̂_i = Σ_j w_j·c_ij`` with ``w_j = 2^j``
for ``j < b−1`` and ``w_{b−1} = −2^(b−1)``. The MRI (OT sender) holds the encoded keys ``K̂``
(n × d). For coordinate ``i`` and bit ``j`` one random OT gives the MRI two 16-byte seeds
``m0, m1`` and the SP ``m_c`` for its bit ``c = c_ij``. With ``G`` a PRG that expands a seed into
``n`` ring elements, the MRI sends the correction vector

    u_ij = G(m0) − G(m1) + K̂[:, i]                      (n elements of Z_2^32)

and the SP sets ``y_ij = G(m_c) + c·u_ij = G(m0) + c·K̂[:, i]``. ``G`` is the tweakable
correlation-robust hash of Guo, Katz, Wang and Yu (IEEE S&P 2020) over fixed-key AES, run in
counter mode over its tweak ``(OT index, block)``; one ECB call expands a whole batch of seeds,
where AES-CTR would need one cipher context per seed (most of the run time at ``n = 500``). So the shares

    SP:  Σ_ij w_j·y_ij          MRI:  −Σ_ij w_j·G(m0)_ij

add up to ``Σ_i q̂_i·K̂[:, i] = K̂ q̂`` modulo 2^32, hence modulo any 2^ℓ with ℓ ≤ 32. Only
the low ``ℓ − j`` bits of ``u_ij`` affect the result modulo 2^ℓ, because its weight ``w_j`` is a
multiple of 2^j, so the wire carries ``ceil((ℓ − j) / 8)`` bytes per element. A seed ``m_{1−c}``
the SP never sees makes ``u_ij`` pseudorandom to it; the MRI sees nothing of the choice bits but
what the OT itself reveals, which is nothing. Semi-honest security, assuming a secure random OT
and fixed-key AES modelled as a random permutation (the assumption of the OT extension too).
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocols.ot.hashing import FIXED_KEY

SEED_BYTES = 16
_BLOCK_WORDS = 2
# Rows expanded per AES call, sized so one batch of blocks stays near 2 MB.
_BATCH_BYTES = 2 << 20

# Tweak offset of the seed expansion: the OT extension hashes its own rows under tweaks with OT
# indices from 0, so shifting ours by 2^62 keeps the two sets of hash inputs apart.
EXPANSION_INDEX_OFFSET = 1 << 62


def expand_seeds(seeds: np.ndarray, count: int, first_index: int) -> np.ndarray:
    """Return G(i, seed) for each 16-byte seed: (m, count) uint32, row k with OT index first_index + k.

    Block ``t`` of row ``k`` is ``H((2^62 + first_index + k, t), seed_k)`` with the tweakable hash
    ``H(i, x) = π(π(x) ⊕ i) ⊕ π(x)`` over fixed-key AES. This is the function of
    ``protocols.ot.hashing.tcr_expand`` (same key and tweak layout), batched over all rows.
    """
    seeds = np.ascontiguousarray(seeds, dtype=np.uint8)
    if seeds.ndim != 2 or seeds.shape[1] != SEED_BYTES:
        raise ValueError(f"seeds must have shape (m, {SEED_BYTES}), got {seeds.shape}")
    rows = seeds.shape[0]
    blocks = -(-4 * count // SEED_BYTES)
    encryptor = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor()

    def permute_into(words: np.ndarray, out: np.ndarray) -> None:
        # update_into needs one spare block of room in its output.
        encryptor.update_into(words.reshape(-1).view(np.uint8), out.view(np.uint8))

    permuted_buffer = np.empty(rows * _BLOCK_WORDS + _BLOCK_WORDS, dtype=np.uint64)
    permute_into(seeds.view("<u8").reshape(rows, _BLOCK_WORDS), permuted_buffer)
    permuted = permuted_buffer[: rows * _BLOCK_WORDS].reshape(rows, _BLOCK_WORDS)

    expanded = np.empty((rows, blocks, _BLOCK_WORDS), dtype=np.uint64)
    block_ids = np.arange(blocks, dtype=np.uint64)
    batch = max(1, _BATCH_BYTES // max(1, blocks * SEED_BYTES))
    tweaked = np.empty((min(batch, rows), blocks, _BLOCK_WORDS), dtype=np.uint64)
    hashed = np.empty(tweaked.size + _BLOCK_WORDS, dtype=np.uint64)
    for start in range(0, rows, batch):
        stop = min(rows, start + batch)
        size = stop - start
        # The tweak carries the OT index in its low word and the block number in its high word.
        indices = np.arange(first_index + start, first_index + stop, dtype=np.uint64)
        indices += np.uint64(EXPANSION_INDEX_OFFSET)
        tweaked[:size, :, 0] = (permuted[start:stop, 0] ^ indices)[:, None]
        tweaked[:size, :, 1] = permuted[start:stop, 1, None] ^ block_ids[None, :]
        permute_into(tweaked[:size], hashed[: size * blocks * _BLOCK_WORDS + _BLOCK_WORDS])
        np.bitwise_xor(
            hashed[: size * blocks * _BLOCK_WORDS].reshape(size, blocks, _BLOCK_WORDS),
            permuted[start:stop, None, :],
            out=expanded[start:stop],
        )
    return expanded.view(np.uint32).reshape(rows, blocks * 4)[:, :count]


def query_weights(query_bits: int) -> np.ndarray:
    """Return the two's-complement bit weights w_j modulo 2^32 as uint32, shape (b,)."""
    weights = [(1 << j) for j in range(query_bits - 1)] + [(1 << 32) - (1 << (query_bits - 1))]
    return np.array(weights, dtype=np.uint32)


def query_choice_bits(q_hat: np.ndarray, query_bits: int) -> np.ndarray:
    """Return the SP's OT choice bits c_ij, shape (d, b) uint8: bit j of q̂_i in b-bit two's complement."""
    unsigned = np.asarray(q_hat, dtype=np.int64) & ((1 << query_bits) - 1)
    shifts = np.arange(query_bits, dtype=np.int64)
    return ((unsigned[:, None] >> shifts[None, :]) & 1).astype(np.uint8)


def correction_widths(query_bits: int, ring_bits: int) -> list[int]:
    """Return the bytes per element of u_ij on the wire for each bit j: ceil((ℓ − j) / 8), at least 1."""
    return [max(1, -(-(ring_bits - j) // 8)) for j in range(query_bits)]


def sender_products(
    seeds0: np.ndarray, seeds1: np.ndarray, key_columns: np.ndarray, query_bits: int, first_index: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the MRI's side for a block of coordinates.

    ``seeds0``/``seeds1`` are the OT seeds, shape (c·b, 16), ordered coordinate-major, and
    ``first_index`` is the OT index of their first row.
    ``key_columns`` is K̂[:, block] transposed, shape (c, n) uint32. Returns the corrections
    u (c, b, n) uint32 and this block's share −Σ w_j G(m0)_ij, shape (n,) uint32.
    """
    coordinates, n = key_columns.shape
    g0 = expand_seeds(seeds0, n, first_index).reshape(coordinates, query_bits, n)
    g1 = expand_seeds(seeds1, n, first_index).reshape(coordinates, query_bits, n)
    corrections = g0 - g1
    corrections += key_columns[:, None, :]
    per_bit = g0.sum(axis=0, dtype=np.uint32)
    share = np.uint32(0) - (per_bit * query_weights(query_bits)[:, None]).sum(axis=0, dtype=np.uint32)
    return corrections, share


def receiver_products(
    seeds: np.ndarray, choices: np.ndarray, corrections: np.ndarray, first_index: int = 0
) -> np.ndarray:
    """Compute the SP's share Σ w_j y_ij for a block of coordinates.

    ``seeds`` (c·b, 16) are the chosen OT seeds (OT indices from ``first_index``), ``choices`` (c, b) the SP's bits and
    ``corrections`` (c, b, n) uint32 the MRI's vectors u (only their low ℓ − j bits matter).
    Returns shape (n,) uint32.
    """
    coordinates, query_bits, n = corrections.shape
    received = expand_seeds(seeds, n, first_index).reshape(coordinates, query_bits, n)
    mask = np.uint32(0) - choices.astype(np.uint32)
    received += corrections & mask[:, :, None]
    per_bit = received.sum(axis=0, dtype=np.uint32)
    return (per_bit * query_weights(query_bits)[:, None]).sum(axis=0, dtype=np.uint32)


def pack_corrections(corrections: np.ndarray, widths: list[int]) -> bytes:
    """Serialise u (c, b, n) uint32 keeping the low ``widths[j]`` bytes of each element of bit j, little-endian."""
    as_bytes = np.ascontiguousarray(corrections, dtype="<u4").view(np.uint8)
    coordinates, query_bits, n = corrections.shape
    as_bytes = as_bytes.reshape(coordinates, query_bits, n, 4)
    parts = [as_bytes[:, j, :, :width].tobytes() for j, width in enumerate(widths)]
    return b"".join(parts)


def packed_corrections_size(coordinates: int, n: int, widths: list[int]) -> int:
    return coordinates * n * sum(widths)


def unpack_corrections(data: bytes, coordinates: int, n: int, widths: list[int]) -> np.ndarray:
    """Invert :func:`pack_corrections`; bytes above each width are zero. ``data`` must have the exact size."""
    out = np.zeros((coordinates, len(widths), n, 4), dtype=np.uint8)
    raw = np.frombuffer(data, dtype=np.uint8)
    start = 0
    for j, width in enumerate(widths):
        size = coordinates * n * width
        out[:, j, :, :width] = raw[start : start + size].reshape(coordinates, n, width)
        start += size
    return out.view("<u4").reshape(coordinates, len(widths), n).astype(np.uint32, copy=False)
