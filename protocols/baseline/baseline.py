"""Generic-MPC baseline: the whole repair inside MPyC, as the published comparison point for SURE.

SURE's authors compare against computing the TIME update inside generic MPC: a linear-scan
matching over the MRI's database, an oblivious selection of the matching fix, and ``W ← W · W_fix``
for every cross-attention key and value projection of the UNet, all on secret-shared matrices.
This module runs that computation with MPyC (Shamir sharing, honest majority, ``m ≥ 3`` parties:
the SP, the MRI and helpers; semi-honest) at sizes this machine can run; ``cost_model`` fits and
extrapolates it to Stable Diffusion v1.4 sizes. The published baseline used a different MPC
framework and two parties, so compare orders of magnitude, not seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from protocols.mpyc_matching.matching import check_party_count, party_names
from protocols.mpyc_matching.process import MpycRun, run_mpyc_program
from testbed.relay import LinkShape

PARTY_MODULE = "protocols.baseline.party"

# Output widths (rows) of SD v1.4's 16 cross-attention blocks, each with a ``to_k`` and a
# ``to_v`` projection of input width 768: down blocks 320, 320, 640, 640, 1280, 1280; the mid
# block 1280; up blocks 1280 ×3, 640 ×3, 320 ×3 (diffusers ``UNet2DConditionModel`` config of
# CompVis/stable-diffusion-v1-4, block_out_channels (320, 640, 1280, 1280)).
SD14_BLOCK_ROWS = (320, 320, 640, 640, 1280, 1280, 1280, 1280, 1280, 1280, 640, 640, 640, 320, 320, 320)
SD14_LAYER_ROWS = tuple(rows for rows in SD14_BLOCK_ROWS for _ in ("to_k", "to_v"))
SD14_DIM = 768


def scaled_layer_rows(dim: int, layers: int = 32) -> list[int]:
    """Return SD v1.4's layer widths scaled from input width 768 to ``dim`` (at least 1 row each).

    ``layers`` takes that many of the 32 projections, in UNet order.
    """
    if not 1 <= layers <= len(SD14_LAYER_ROWS):
        raise ValueError(f"invalid layers {layers}: use 1 to {len(SD14_LAYER_ROWS)}")
    return [max(1, round(rows * dim / SD14_DIM)) for rows in SD14_LAYER_ROWS[:layers]]


@dataclass(frozen=True)
class BaselineResult:
    """Repaired layers at the SP, their error against the plaintext repair, and the run."""

    layers: list[np.ndarray] = field(repr=False)
    index: int
    max_abs_error: float
    run: MpycRun = field(repr=False)


def plaintext_repair(
    query: np.ndarray, keys: np.ndarray, fixes: np.ndarray, layers: Sequence[np.ndarray]
) -> tuple[int, list[np.ndarray]]:
    """Return the matched index (first maximum) and ``W · W_fix`` for every layer, in float64."""
    index = int(np.argmax(np.asarray(keys, dtype=np.float64) @ np.asarray(query, dtype=np.float64)))
    fix = np.asarray(fixes[index], dtype=np.float64)
    return index, [np.asarray(w, dtype=np.float64) @ fix for w in layers]


def run_baseline(
    query: np.ndarray,
    keys: np.ndarray,
    fixes: np.ndarray,
    layers: Sequence[np.ndarray],
    *,
    parties: int = 3,
    bit_length: int = 32,
    frac_bits: int = 16,
    shapes: Mapping[tuple[str, str], LinkShape] | None = None,
    timeout_s: float = 600.0,
) -> BaselineResult:
    """Run the generic-MPC repair with ``parties`` MPyC processes and return the repaired layers.

    ``layers`` are the SP's projections (``r_l × d`` each), ``fixes`` the MRI's ``n × d × d``
    fixes. Raises ``ValueError`` for mismatched shapes or non-finite values, and the errors of
    ``run_mpyc_matching`` for the party count and for failed processes.
    """
    check_party_count(parties)
    query = np.asarray(query, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    fixes = np.asarray(fixes, dtype=np.float64)
    layers = [np.asarray(w, dtype=np.float64) for w in layers]
    if keys.ndim != 2 or keys.shape[0] < 1:
        raise ValueError(f"keys must be a non-empty (n, d) matrix, got shape {keys.shape}")
    n, d = keys.shape
    if query.shape != (d,):
        raise ValueError(f"query has shape {query.shape}, expected ({d},)")
    if fixes.shape != (n, d, d):
        raise ValueError(f"fixes have shape {fixes.shape}, expected ({n}, {d}, {d})")
    if not layers or any(w.ndim != 2 or w.shape[1] != d for w in layers):
        raise ValueError(f"layers must be non-empty (rows, {d}) matrices, got {[w.shape for w in layers]}")
    for name, array in (("query", query), ("keys", keys), ("fixes", fixes), ("layers", np.concatenate(layers))):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or infinite values")

    rows = [w.shape[0] for w in layers]
    params = {"n": n, "dim": d, "rows": sum(rows), "bit_length": bit_length, "frac_bits": frac_bits}
    names = party_names(parties)
    jobs = [{"role": name, "params": params} for name in names]
    inputs: list[dict | None] = [None] * parties
    inputs[0] = {"query": query, "weights": np.concatenate(layers)}
    inputs[1] = {"keys": keys, "fixes": fixes}
    run = run_mpyc_program(PARTY_MODULE, names, jobs, inputs, shapes=shapes, timeout_s=timeout_s)
    run.trace.meta.update({"protocol": "mpyc-baseline", **params, "layers": len(rows)})

    stacked = np.asarray(run.results["sp"]["output"], dtype=np.float64)
    split = np.split(stacked, np.cumsum(rows)[:-1])
    index, expected = plaintext_repair(query, keys, fixes, layers)
    error = max(float(np.max(np.abs(a - b))) for a, b in zip(split, expected))
    return BaselineResult(split, index, error, run)


def synthetic_instance(n: int, dim: int, layer_rows: Sequence[int], seed: int = 0):
    """Return a random ``(query, keys, fixes, layers)`` of the given sizes (non-secret, seeded).

    Keys are unit rows, fixes ``I + U Vᵀ`` of rank 2 with small factors, and layer weights are
    drawn like a trained projection's (normal, standard deviation ``1 / √d``).
    """
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(n, dim))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    query = keys[rng.integers(n)] + 0.05 * rng.normal(size=dim)
    query /= np.linalg.norm(query)
    u = rng.normal(scale=0.1, size=(n, dim, 2))
    v = rng.normal(scale=0.1, size=(n, dim, 2))
    fixes = np.eye(dim) + u @ v.transpose(0, 2, 1)
    layers = [rng.normal(scale=dim**-0.5, size=(rows, dim)) for rows in layer_rows]
    return query, keys, fixes, layers
