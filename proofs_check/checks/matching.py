"""Checks of two-party secure matching (``protocols.matching``), SP and MRI corrupted.

The instance is deliberately small (``d = 4``, ``n = 3``, ``f_q = f_k = 3``, an 8-bit ring),
so one run takes a fraction of a second. Every message kind and every step of the protocol
still runs.
"""

from __future__ import annotations

import numpy as np

from protocols.matching import arithmetic, garbled
from protocols.matching import protocol as matching
from protocols.matching.fixed_point import FixedPointParams, reference_match
from protocols.ot import extension as ext
from protocols.ot.codec import HEADER_BYTES
from simulators import ideal
from simulators import matching as simulator

from proofs_check.spec import CheckSpec, Flow

PARAMS = FixedPointParams(dim=4, query_frac_bits=3, key_frac_bits=3)
KEYS = 3
THRESHOLDS = (None, None, 0.0, 0.6)


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _sample(rng: np.random.Generator) -> dict:
    threshold = THRESHOLDS[int(rng.integers(0, len(THRESHOLDS)))]
    return {"query": _unit(rng, (PARAMS.dim,)), "keys": _unit(rng, (KEYS, PARAMS.dim)), "threshold": threshold}


def _parties(inputs: dict) -> dict:
    return {
        "sp": matching.matching_sp("mri", inputs["query"], len(inputs["keys"]), params=PARAMS),
        "mri": matching.matching_mri("sp", inputs["keys"], inputs["threshold"], params=PARAMS),
    }


def _ideal_index(inputs: dict) -> int | None:
    return ideal.matching(inputs["query"], inputs["keys"], inputs["threshold"], PARAMS)["sp"]


def _consistent(inputs: dict, outputs: dict) -> bool:
    return outputs["sp"] == _ideal_index(inputs) and outputs["mri"] is None


def matching_flow(n: int, params: FixedPointParams) -> Flow:
    """Return the flow the matching module documents, with the IKNP random OT it runs on."""
    d, b, ring = params.dim, params.query_bits, params.ring_bits
    ot_count = d * b + n * ring
    widths = arithmetic.correction_widths(b, ring)
    chunks = -(-d // matching._chunk_coordinates(params, n))
    gates = garbled.count_and_gates(n, ring)
    width = garbled.index_bits(n + 1)
    mri_to_sp = (
        n * d * sum(widths) + 15 * chunks
        + 16 * n * ring + 1
        + 16 * ((n + 1) * ring + 1) + 32 * gates + -(-width // 8) + 1
    )
    # IKNP random OT, the SP as extension receiver: base OT h + 32 * 128 to the SP; h + 32 and the matrix to the MRI.
    mri_to_sp += HEADER_BYTES + 32 * ext.KAPPA
    sp_to_mri = -(-(n * ring) // 8) + 1 + HEADER_BYTES + 32 + HEADER_BYTES + 16 * ext.padded_rows(ot_count, False)
    messages = {
        ("mri", "sp", matching.PHASE_OT): 1,
        ("sp", "mri", matching.PHASE_OT): 2,
        ("mri", "sp", matching.PHASE_PRODUCTS): chunks + 1,
        ("sp", "mri", matching.PHASE_PRODUCTS): 1,
        ("mri", "sp", matching.PHASE_ARGMAX): 1,
    }
    return Flow(messages, {"mri->sp": mri_to_sp, "sp->mri": sp_to_mri}, rounds=2 + 3)


def _index_one_hot(output: int | None) -> np.ndarray:
    features = np.zeros(KEYS + 1, dtype=np.float32)
    features[KEYS if output is None else output] = 1.0
    return features


def sp_spec() -> CheckSpec:
    """Return the check of a corrupted SP; the honest input is the MRI's keys and threshold."""

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        query = _unit(rng, (PARAMS.dim,))
        first = {"query": query, "keys": _unit(rng, (KEYS, PARAMS.dim)), "threshold": None}
        target = _ideal_index(first)
        while True:
            second = {"query": query, "keys": _unit(rng, (KEYS, PARAMS.dim)), "threshold": None}
            if _ideal_index(second) == target:
                return first, second

    return CheckSpec(
        protocol="matching",
        party="sp",
        description=f"two-party matching, d={PARAMS.dim}, n={KEYS}, {PARAMS.ring_bits}-bit ring, corrupted SP",
        parties=_parties,
        sample_inputs=_sample,
        input_pair=pair,
        corrupted_input=lambda inputs: (inputs["query"], len(inputs["keys"])),
        ideal=_ideal_index,
        simulate=lambda corrupted, output: simulator.sp_view("mri", corrupted[1], PARAMS, output),
        consistent=_consistent,
        flow=lambda inputs: matching_flow(len(inputs["keys"]), PARAMS),
        output_features=_index_one_hot,
        samples=80,
    )


def mri_spec() -> CheckSpec:
    """Return the check of a corrupted MRI; the honest input is the SP's query."""

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first = _sample(rng)
        return first, dict(first, query=-first["query"])

    return CheckSpec(
        protocol="matching",
        party="mri",
        description=f"two-party matching, d={PARAMS.dim}, n={KEYS}, {PARAMS.ring_bits}-bit ring, corrupted MRI",
        parties=_parties,
        sample_inputs=_sample,
        input_pair=pair,
        corrupted_input=lambda inputs: (inputs["keys"], inputs["threshold"]),
        ideal=lambda inputs: None,
        simulate=lambda corrupted, output: simulator.mri_view("sp", len(corrupted[0]), PARAMS),
        consistent=_consistent,
        flow=lambda inputs: matching_flow(len(inputs["keys"]), PARAMS),
        samples=80,
    )


def specs() -> list[CheckSpec]:
    """Return the checks of two-party matching, both parties."""
    return [sp_spec(), mri_spec()]
