"""Fixed-point encoding for MPyC matching and the plaintext reference on that encoding.

MPyC's secure fixed-point type ``SecFxp(l, f)`` stores a real ``x`` as the integer
``round(x * 2^f)`` (Python's ``round``, half to even). This module encodes the SP's query and the
MRI's keys the same way, with ``f_q`` and ``f_k`` fractional bits, and defines the exact scores
``ŝ_j = Σ_i k̂_ji q̂_i``, which carry ``f_q + f_k`` fractional bits. The secure computation works on
these encodings as secure integers rather than through ``SecFxp`` multiplication, because MPyC
truncates every fixed-point product with probabilistic rounding: truncated scores could break a
tie differently from run to run, while untruncated ones make the output a deterministic function
of the inputs, which ``reference_match`` computes in the clear.

Output rule (the same as the two-party matching): the index of the largest score, the lowest such
index on ties, or ``None`` ("no match") when that score is below ``τ̂ = ceil(τ · 2^(f_q + f_k))``.
For integer scores, ``ŝ ≥ τ̂`` exactly when ``ŝ / 2^(f_q + f_k) ≥ τ``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Inputs must have Euclidean norm within this distance of 1; bit widths are sized for it.
NORM_TOLERANCE = 1e-3


class InvalidMatchingInput(ValueError):
    """A query, key matrix or threshold does not fit the matching functionality."""


@dataclass(frozen=True)
class MatchingEncoding:
    """Public parameters of the encoding: key width ``dim`` and fractional bits of query and keys.

    The defaults (12 and 16 fractional bits) are those of the two-party matching, so both
    protocols compute the same output on the same inputs.
    """

    dim: int
    query_frac_bits: int = 12
    key_frac_bits: int = 16

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise InvalidMatchingInput(f"invalid dimension {self.dim}: use a positive key width")
        for name in ("query_frac_bits", "key_frac_bits"):
            value = getattr(self, name)
            if not 1 <= value <= 30:
                raise InvalidMatchingInput(f"invalid {name} {value}: use 1 to 30")

    @property
    def score_frac_bits(self) -> int:
        """Fractional bits of an encoded score: ``f_q + f_k``."""
        return self.query_frac_bits + self.key_frac_bits

    @property
    def max_abs_score(self) -> int:
        """Upper bound on ``|ŝ|`` by Cauchy–Schwarz, since rounding moves a vector by at most ``√d / 2``."""
        half_root_d = 0.5 * math.sqrt(self.dim)
        query_norm = (1 + NORM_TOLERANCE) * 2.0**self.query_frac_bits + half_root_d
        key_norm = (1 + NORM_TOLERANCE) * 2.0**self.key_frac_bits + half_root_d
        return math.ceil(query_norm * key_norm)

    @property
    def bit_length(self) -> int:
        """Bit length ``l`` of MPyC's ``SecInt(l)`` for the scores.

        MPyC compares ``a < b`` through the sign of ``a − b`` and requires
        ``−2^(l−1) ≤ a − b < 2^(l−1)``. Scores and the clamped threshold lie in ``[−B−1, B+1]``
        for ``B = max_abs_score``, so ``2^(l−2) > B + 1`` is enough.
        """
        bits = 2
        while 2 ** (bits - 2) <= self.max_abs_score + 1:
            bits += 1
        return bits


def _check_unit_rows(x: np.ndarray, dim: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != dim:
        raise InvalidMatchingInput(f"{what} has shape {x.shape}, expected last dimension {dim}")
    if not np.all(np.isfinite(x)):
        raise InvalidMatchingInput(f"{what} contains NaN or infinite values")
    norms = np.linalg.norm(x, axis=-1)
    deviation = np.abs(norms - 1.0)
    if np.any(deviation > NORM_TOLERANCE):
        worst = float(norms.flat[int(np.argmax(deviation))])
        raise InvalidMatchingInput(f"{what} must have unit norm (found {worst:.6f}): normalise it first")
    return x


def encode_query(query: np.ndarray, encoding: MatchingEncoding) -> np.ndarray:
    """Return ``q̂ = round(q · 2^f_q)`` as int64 of shape ``(d,)``; the query must be a unit vector."""
    query = _check_unit_rows(query, encoding.dim, "query")
    if query.ndim != 1:
        raise InvalidMatchingInput(f"query must be one vector, got shape {query.shape}")
    return np.rint(query * 2.0**encoding.query_frac_bits).astype(np.int64)


def encode_keys(keys: np.ndarray, encoding: MatchingEncoding) -> np.ndarray:
    """Return ``K̂ = round(K · 2^f_k)`` as int64 of shape ``(n, d)``; every row must be a unit vector."""
    keys = _check_unit_rows(keys, encoding.dim, "keys")
    if keys.ndim != 2 or keys.shape[0] < 1:
        raise InvalidMatchingInput(f"keys must be a non-empty (n, d) matrix, got shape {keys.shape}")
    return np.rint(keys * 2.0**encoding.key_frac_bits).astype(np.int64)


def encode_threshold(threshold: float | None, encoding: MatchingEncoding) -> int | None:
    """Return ``τ̂ = ceil(τ · 2^(f_q + f_k))`` clamped to ``[−B, B + 1]``, or ``None`` for no threshold.

    Clamping changes no decision: every score is at least ``−B`` and at most ``B``.
    """
    if threshold is None:
        return None
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise InvalidMatchingInput(f"invalid threshold {threshold!r}: use a finite similarity or None")
    scaled = math.ceil(threshold * 2.0**encoding.score_frac_bits)
    bound = encoding.max_abs_score
    return int(min(max(scaled, -bound), bound + 1))


def encoded_scores(query_hat: np.ndarray, keys_hat: np.ndarray) -> np.ndarray:
    """Return the exact integer scores ``K̂ q̂`` as Python integers (object array, no overflow)."""
    return keys_hat.astype(object) @ query_hat.astype(object)


def reference_match(
    query: np.ndarray, keys: np.ndarray, threshold: float | None, encoding: MatchingEncoding
) -> int | None:
    """Return the exact output of MPyC matching: the argmax of the encoded scores or ``None``.

    Ties go to the lowest index; ``None`` when the largest score is below ``τ̂``.
    """
    scores = encoded_scores(encode_query(query, encoding), encode_keys(keys, encoding))
    best = 0
    for index in range(1, len(scores)):
        if scores[index] > scores[best]:
            best = index
    limit = encode_threshold(threshold, encoding)
    if limit is not None and scores[best] < limit:
        return None
    return best
