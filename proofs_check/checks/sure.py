"""Checks of the composed SURE protocol (``protocols.sure``): matching, retrieval and local repair.

The instance is the small matching of :mod:`proofs_check.checks.matching` (``d = 4``, ``n = 3``)
with dense 4 x 4 float32 fixes, repaired into a single diffusers cross-attention block, so one
run stays well under a second while every phase of the protocol runs.
"""

from __future__ import annotations

import numpy as np

from protocols.repair.fix import DENSE, Fix
from protocols.sure import protocol as sure
from simulators import ideal
from simulators import sure as simulator

from proofs_check.checks import matching as matching_checks
from proofs_check.checks.one_of_n import one_of_n_flow
from proofs_check.spec import CheckSpec, Flow

PARAMS = matching_checks.PARAMS
KEYS = matching_checks.KEYS
FIX_FORMAT = sure.FixFormat(dim=4, encoding=DENSE, dtype="float32", rank=None)


def tiny_unet():
    """Return a module with one cross-attention block whose ``to_k``/``to_v`` take width 4."""
    import torch
    from diffusers.models.attention_processor import Attention

    module = torch.nn.Module()
    module.attn2 = Attention(query_dim=8, cross_attention_dim=FIX_FORMAT.dim, heads=1, dim_head=8)
    return module


def _fix_bytes(matrix: np.ndarray) -> bytes:
    return Fix(dim=FIX_FORMAT.dim, matrix=matrix).to_bytes(DENSE, FIX_FORMAT.dtype)


def _random_fix(rng: np.random.Generator) -> bytes:
    return _fix_bytes(np.eye(FIX_FORMAT.dim) + 0.1 * rng.normal(size=(FIX_FORMAT.dim, FIX_FORMAT.dim)))


def _sample(rng: np.random.Generator) -> dict:
    inputs = matching_checks._sample(rng)
    inputs["fixes"] = [_random_fix(rng) for _ in range(KEYS)]
    return inputs


def _parties(inputs: dict) -> dict:
    return {
        "sp": sure.sure_sp("mri", inputs["query"], KEYS, FIX_FORMAT, tiny_unet(), params=PARAMS),
        "mri": sure.sure_mri("sp", inputs["keys"], inputs["fixes"].__getitem__, inputs["threshold"], params=PARAMS),
    }


def _ideal(inputs: dict) -> tuple[int | None, bytes | None]:
    index = ideal.matching(inputs["query"], inputs["keys"], inputs["threshold"], PARAMS)["sp"]
    return index, None if index is None else inputs["fixes"][index]


def _consistent(inputs: dict, outputs: dict) -> bool:
    index, fix = _ideal(inputs)
    output = outputs["sp"]
    if outputs["mri"] is not None or output.index != index:
        return False
    if index is None:
        return output.fix is None and output.layers_repaired == 0
    expected = Fix.from_bytes(fix, dim=FIX_FORMAT.dim, encoding=DENSE, dtype=FIX_FORMAT.dtype)
    return bool(np.array_equal(output.fix.dense(), expected.dense())) and output.layers_repaired == 2


def sure_flow(inputs: dict) -> Flow:
    """Return the flow the SURE module documents: matching's and retrieval's, added up."""
    matching = matching_checks.matching_flow(KEYS, PARAMS)
    lengths = [len(f) for f in inputs["fixes"]]
    # Retrieval runs over the n fixes and the public dummy entry n, of the same length.
    retrieval = one_of_n_flow([*lengths, lengths[0]], simulator.PHASE_RETRIEVAL)
    renamed = {"sender->receiver": "mri->sp", "receiver->sender": "sp->mri"}
    parties = {"sender": "mri", "receiver": "sp"}
    messages = dict(matching.messages)
    for (src, dst, phase), count in retrieval.messages.items():
        messages[(parties[src], parties[dst], phase)] = count
    total = dict(matching.bytes_by_direction)
    for direction, count in retrieval.bytes_by_direction.items():
        total[renamed[direction]] += count
    return Flow(messages, total, matching.rounds + retrieval.rounds)


def _index_one_hot(output) -> np.ndarray:
    index = output[0] if isinstance(output, tuple) else output.index
    return matching_checks._index_one_hot(index)


def sp_spec() -> CheckSpec:
    """Return the check of a corrupted SP; the honest input is the MRI's keys and fixes."""

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first, second = matching_checks.sp_spec().input_pair(rng)
        chosen = _random_fix(rng)
        index = _ideal(dict(first, fixes=[chosen] * KEYS))[0]
        fixes_a = [_fix_bytes(np.eye(FIX_FORMAT.dim))] * KEYS
        fixes_b = [_fix_bytes(2 * np.eye(FIX_FORMAT.dim))] * KEYS
        fixes_a[index] = fixes_b[index] = chosen
        return dict(first, fixes=fixes_a), dict(second, fixes=fixes_b)

    def simulate(corrupted, output) -> list:
        index, fix = output
        return simulator.sp_view("mri", PARAMS, index, fix, corrupted[1])

    return CheckSpec(
        protocol="sure",
        party="sp",
        description=f"SURE, matching d={PARAMS.dim} n={KEYS} and dense {FIX_FORMAT.dim}x{FIX_FORMAT.dim} fixes, corrupted SP",
        parties=_parties,
        sample_inputs=_sample,
        input_pair=pair,
        # The fix sizes are public through the fix format.
        corrupted_input=lambda inputs: (inputs["query"], [len(f) for f in inputs["fixes"]]),
        ideal=_ideal,
        simulate=simulate,
        consistent=_consistent,
        flow=sure_flow,
        output_features=_index_one_hot,
        samples=50,
    )


def mri_spec() -> CheckSpec:
    """Return the check of a corrupted MRI; the honest input is the SP's query."""

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first = _sample(rng)
        return first, dict(first, query=-first["query"])

    return CheckSpec(
        protocol="sure",
        party="mri",
        description=f"SURE, matching d={PARAMS.dim} n={KEYS} and dense {FIX_FORMAT.dim}x{FIX_FORMAT.dim} fixes, corrupted MRI",
        parties=_parties,
        sample_inputs=_sample,
        input_pair=pair,
        corrupted_input=lambda inputs: (inputs["keys"], inputs["fixes"], inputs["threshold"]),
        ideal=lambda inputs: None,
        simulate=lambda corrupted, output: simulator.mri_view("sp", len(corrupted[0]), PARAMS),
        consistent=_consistent,
        flow=sure_flow,
        samples=50,
    )


def specs() -> list[CheckSpec]:
    """Return the checks of the composed SURE protocol, both parties."""
    return [sp_spec(), mri_spec()]
