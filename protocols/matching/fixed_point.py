"""Fixed-point encoding of the matching inputs and the plaintext reference on that encoding.

The query ``q`` and every key ``k`` are unit vectors of width ``d``. Both are rounded to signed
integers, ``q̂ = round(q · 2^f_q)`` and ``k̂ = round(k · 2^f_k)``, and the secure protocol computes
the integer scores ``ŝ = K̂ q̂`` exactly, in the ring ``Z_2^ring_bits``. :func:`reference_match`
evaluates the same integer scores in the clear, so it defines the exact output the protocol must
return; :func:`float_match` is the same decision on the unrounded floats.

Error bound. Write ``q̂ / 2^f_q = q + e_q`` and ``k̂ / 2^f_k = k + e_k`` with every coordinate of
``e_q`` at most ``2^-(f_q+1)`` and of ``e_k`` at most ``2^-(f_k+1)`` in absolute value. Then, for
``‖q‖, ‖k‖ ≤ 1 + η`` and by Cauchy–Schwarz,

    |ŝ / 2^(f_q+f_k) − ⟨q, k⟩| ≤ δ = (1+η)·√d·(2^-(f_q+1) + 2^-(f_k+1)) + d·2^-(f_q+f_k+2).

So the encoded argmax can differ from the float argmax only when the two similarities involved
are within ``2δ`` of each other, and the match/no-match decision only when the largest similarity
is within ``δ`` of the threshold. With the defaults (``f_q = 12``, ``f_k = 16``) and ``d = 768``,
``δ ≈ 3.6e-3``. That is a worst case: the rounding errors are independent, so a typical score
error is near ``2^-f_q / √12 ≈ 7e-5``. ``benchmarks.bench_matching`` measures how often the
argmax moves on synthetic and text-embedding databases.

The threshold ``τ`` is encoded as ``τ̂ = ceil(τ · 2^(f_q+f_k))``, so for integer scores
``ŝ ≥ τ̂`` exactly when ``ŝ / 2^(f_q+f_k) ≥ τ``: the threshold itself adds no rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Inputs must be unit vectors up to this relative tolerance on the Euclidean norm. The ring
# width and the error bound are computed for norms up to 1 + NORM_TOLERANCE.
NORM_TOLERANCE = 1e-3

# Shares live in uint32 arithmetic, so the score ring can be at most 32 bits wide.
MAX_RING_BITS = 32


@dataclass(frozen=True)
class FixedPointParams:
    """Public parameters of the encoding, agreed by both parties before the protocol runs.

    ``query_frac_bits`` (``f_q``) sets the cost of the protocol: the SP's query contributes
    ``query_bits = f_q + 2`` oblivious transfers per coordinate. ``key_frac_bits`` (``f_k``)
    only widens the ring.
    """

    dim: int
    query_frac_bits: int = 12
    key_frac_bits: int = 16

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"invalid dimension {self.dim}: use a positive key width")
        if not 1 <= self.query_frac_bits <= 24:
            raise ValueError(f"invalid query_frac_bits {self.query_frac_bits}: use 1 to 24")
        if not 1 <= self.key_frac_bits <= 24:
            raise ValueError(f"invalid key_frac_bits {self.key_frac_bits}: use 1 to 24")
        if self.ring_bits > MAX_RING_BITS:
            raise ValueError(
                f"scores need a {self.ring_bits}-bit ring, more than {MAX_RING_BITS}: "
                "lower query_frac_bits or key_frac_bits"
            )

    @property
    def query_bits(self) -> int:
        """Width of the two's-complement query coordinates: |q̂_i| < 2^(f_q+1)."""
        return self.query_frac_bits + 2

    @property
    def score_frac_bits(self) -> int:
        return self.query_frac_bits + self.key_frac_bits

    @property
    def max_abs_score(self) -> float:
        """Upper bound on |ŝ| for inputs within the norm tolerance: ‖q̂‖·‖k̂‖."""
        half_root_d = 0.5 * math.sqrt(self.dim)
        query_norm = (1 + NORM_TOLERANCE) * 2.0**self.query_frac_bits + half_root_d
        key_norm = (1 + NORM_TOLERANCE) * 2.0**self.key_frac_bits + half_root_d
        return query_norm * key_norm

    @property
    def ring_bits(self) -> int:
        """Smallest ℓ with every score and the clamped threshold strictly inside (−2^(ℓ−1), 2^(ℓ−1) − 1)."""
        bits = 2
        while 2.0 ** (bits - 1) - 1 <= self.max_abs_score:
            bits += 1
        return bits

    @property
    def error_bound(self) -> float:
        """δ: the largest possible |ŝ / 2^(f_q+f_k) − ⟨q, k⟩| for inputs within the norm tolerance."""
        root_d = math.sqrt(self.dim)
        linear = (1 + NORM_TOLERANCE) * root_d * (2.0 ** -(self.query_frac_bits + 1) + 2.0 ** -(self.key_frac_bits + 1))
        return linear + self.dim * 2.0 ** -(self.score_frac_bits + 2)


def _check_unit_rows(x: np.ndarray, dim: int, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != dim:
        raise ValueError(f"{name} has width {x.shape[-1]}, expected {dim}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    norms = np.linalg.norm(x, axis=-1)
    if np.any(np.abs(norms - 1.0) > NORM_TOLERANCE):
        worst = float(norms.flat[np.argmax(np.abs(norms - 1.0))])
        raise ValueError(f"{name} must have unit norm (found {worst:.6f}): normalise it first")
    return x


def encode_query(q: np.ndarray, params: FixedPointParams) -> np.ndarray:
    """Return q̂ = round(q · 2^f_q) as int64, shape (d,). Raises ``ValueError`` unless q is a unit vector."""
    q = _check_unit_rows(q, params.dim, "query")
    if q.ndim != 1:
        raise ValueError(f"query must be one vector, got shape {q.shape}")
    return np.rint(q * 2.0**params.query_frac_bits).astype(np.int64)


def encode_keys(keys: np.ndarray, params: FixedPointParams) -> np.ndarray:
    """Return K̂ = round(K · 2^f_k) as int64, shape (n, d). Raises ``ValueError`` unless rows are unit vectors."""
    keys = _check_unit_rows(keys, params.dim, "keys")
    if keys.ndim != 2 or keys.shape[0] < 1:
        raise ValueError(f"keys must be a non-empty (n, d) matrix, got shape {keys.shape}")
    return np.rint(keys * 2.0**params.key_frac_bits).astype(np.int64)


def encode_threshold(threshold: float | None, params: FixedPointParams) -> int:
    """Return τ̂ = ceil(τ · 2^(f_q+f_k)) clamped to the ring; ``None`` gives the ring minimum, which every score passes."""
    low = -(2 ** (params.ring_bits - 1))
    high = 2 ** (params.ring_bits - 1) - 1
    if threshold is None:
        return low
    if not math.isfinite(threshold):
        raise ValueError(f"invalid threshold {threshold!r}: use a finite similarity or None")
    scaled = math.ceil(threshold * 2.0**params.score_frac_bits)
    return int(min(max(scaled, low), high))


def encoded_scores(q_hat: np.ndarray, k_hat: np.ndarray) -> np.ndarray:
    """Return the exact integer scores K̂ q̂ (int64; no overflow for ring_bits ≤ 32)."""
    return k_hat @ q_hat


def reference_match(
    q: np.ndarray, keys: np.ndarray, threshold: float | None, params: FixedPointParams
) -> int | None:
    """Return the index of the largest encoded score (lowest index on ties), or ``None`` when it is below τ̂.

    This is the exact output of the secure protocol.
    """
    scores = encoded_scores(encode_query(q, params), encode_keys(keys, params))
    best = int(np.argmax(scores))
    if scores[best] < encode_threshold(threshold, params):
        return None
    return best


def float_match(q: np.ndarray, keys: np.ndarray, threshold: float | None) -> int | None:
    """Return the same decision as :func:`reference_match` on unrounded float64 inner products."""
    scores = np.asarray(keys, dtype=np.float64) @ np.asarray(q, dtype=np.float64)
    best = int(np.argmax(scores))
    if threshold is not None and scores[best] < threshold:
        return None
    return best
