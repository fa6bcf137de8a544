"""Fixed-key AES hashing and AES-CTR expansion for OT extension, vectorised over batches.

* :func:`tcr_hash` is the tweakable correlation-robust hash
  ``H(i, x) = pi(pi(x) XOR i) XOR pi(x)`` of Guo, Katz, Wang and Yu, "Efficient and Secure
  Multiparty Computation from Fixed-Key Block Ciphers" (IEEE S&P 2020, ePrint 2019/074).
  Here ``pi`` is AES-128 under a fixed public key, and the tweak ``i`` encodes the OT index
  and a block number. Security assumes fixed-key AES behaves as a random permutation.
* :class:`CounterStream` is AES-128-CTR under a secret 16-byte key with a zero nonce. It is
  the pseudo-random generator that stretches base-OT keys, and each key feeds one stream only.

Each AES pass covers the whole batch in one ``update_into`` call, through ``cryptography``.
"""

from __future__ import annotations

import hashlib

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
FIXED_KEY = hashlib.sha256(b"sure-testbed/ot/fixed-key-aes").digest()[:BLOCK]
_ZERO_NONCE = bytes(BLOCK)


def _permute(blocks: np.ndarray) -> np.ndarray:
    """Return ``pi`` applied to each row of ``blocks`` (uint8 ``(n, 16)``, C-contiguous)."""
    count = blocks.shape[0]
    out = np.empty(count * BLOCK + BLOCK, dtype=np.uint8)
    encryptor = Cipher(algorithms.AES(FIXED_KEY), modes.ECB()).encryptor()
    encryptor.update_into(np.ascontiguousarray(blocks).reshape(-1), out)
    return out[: count * BLOCK].reshape(count, BLOCK)


def _add_tweaks(blocks: np.ndarray, first_index: int, block: int) -> np.ndarray:
    """Return ``blocks`` XOR the tweaks of OT indices ``first_index, first_index + 1, ...``.

    A tweak holds the OT index in its low 8 bytes and the block number in its high 8 bytes,
    both little-endian, so every (index, block) pair has its own tweak.
    """
    tweaked = np.array(blocks, dtype=np.uint8, order="C", copy=True)
    words = tweaked.view("<u8").reshape(len(blocks), 2)
    words[:, 0] ^= np.arange(first_index, first_index + len(blocks), dtype=np.uint64)
    if block:
        words[:, 1] ^= np.uint64(block)
    return tweaked


def tcr_hash(blocks: np.ndarray, first_index: int) -> np.ndarray:
    """Return ``H(first_index + k, blocks[k])`` for every row ``k``, uint8 ``(n, 16)``."""
    permuted = _permute(blocks)
    hashed = _permute(_add_tweaks(permuted, first_index, 0))
    hashed ^= permuted
    return hashed


def tcr_expand(blocks: np.ndarray, first_index: int, length: int) -> np.ndarray:
    """Return ``length`` pseudo-random bytes per row: ``H(i, x)`` over blocks ``0, 1, ...``.

    Block ``b`` of row ``k`` is ``H`` with tweak ``(first_index + k, b)``, so block 0 equals
    :func:`tcr_hash`. The output is uint8 ``(n, length)``.
    """
    count = len(blocks)
    block_count = -(-length // BLOCK)
    if block_count == 0:
        return np.zeros((count, 0), dtype=np.uint8)
    permuted = _permute(blocks)
    inputs = np.empty((count, block_count, BLOCK), dtype=np.uint8)
    for b in range(block_count):
        inputs[:, b] = _add_tweaks(permuted, first_index, b)
    hashed = _permute(inputs.reshape(-1, BLOCK)).reshape(count, block_count, BLOCK)
    hashed ^= permuted[:, None, :]
    return hashed.reshape(count, block_count * BLOCK)[:, :length]


class CounterStream:
    """AES-128-CTR keystream under ``key`` with a zero nonce, read in consecutive pieces."""

    def __init__(self, key: bytes) -> None:
        if len(key) != BLOCK:
            raise ValueError(f"invalid AES key length {len(key)}: expected {BLOCK} bytes")
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(_ZERO_NONCE)).encryptor()

    def read_into(self, zeros: np.ndarray | memoryview, out: np.ndarray | memoryview) -> None:
        """Write the next ``len(zeros)`` keystream bytes to the start of ``out``.

        ``zeros`` must be all zero and ``out`` at least 15 bytes longer than ``zeros``, as
        ``update_into`` requires.
        """
        self._encryptor.update_into(zeros, out)

    def mask_into(self, data: bytes | memoryview, out: np.ndarray | memoryview | bytearray) -> int:
        """XOR the next ``len(data)`` keystream bytes onto ``data``, writing to ``out``."""
        return self._encryptor.update_into(data, out)
