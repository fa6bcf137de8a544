"""Checks of 1-out-of-n OT (``protocols.ot.one_of_n``), both parties."""

from __future__ import annotations

import numpy as np

from protocols.ot import group, one_of_n
from protocols.ot.codec import HEADER_BYTES
from simulators import ideal
from simulators import one_of_n as simulator

from proofs_check.checks.ot_base import point_coordinates
from proofs_check.spec import CheckSpec, Flow

PHASE = "ot.one_of_n"
ENTRIES = 4
LENGTH = 16


def _sample(rng: np.random.Generator) -> dict:
    payloads = [rng.integers(0, 256, LENGTH, dtype=np.uint8).tobytes() for _ in range(ENTRIES)]
    return {"payloads": payloads, "index": int(rng.integers(0, ENTRIES))}


def _parties(inputs: dict) -> dict:
    payloads = inputs["payloads"]
    return {
        "sender": one_of_n.one_of_n_sender("receiver", len(payloads), payloads.__getitem__, phase=PHASE),
        "receiver": one_of_n.one_of_n_receiver("sender", len(payloads), inputs["index"], phase=PHASE),
    }


def _consistent(inputs: dict, outputs: dict) -> bool:
    return outputs["receiver"] == ideal.one_of_n_ot(inputs["payloads"], inputs["index"])["receiver"]


def one_of_n_flow(payload_lengths: list[int], phase: str) -> Flow:
    """Return the flow the 1-out-of-n module documents: base OT for ``l`` bits, then one message per entry."""
    n = len(payload_lengths)
    level_count = one_of_n.levels(n)
    entries = sum(HEADER_BYTES + 8 + size for size in payload_lengths)
    messages = {("sender", "receiver", phase): n}
    bytes_by_direction = {"sender->receiver": entries}
    if level_count:
        messages[("sender", "receiver", phase)] += 1
        messages[("receiver", "sender", phase)] = 1
        bytes_by_direction["sender->receiver"] += HEADER_BYTES + group.POINT_BYTES
        bytes_by_direction["receiver->sender"] = HEADER_BYTES + group.POINT_BYTES * level_count
    return Flow(messages, bytes_by_direction, 2 if level_count else 1)


def _payload_bits(output: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(output, dtype=np.uint8), bitorder="little").astype(np.float32)


def sender_spec() -> CheckSpec:
    """Return the check of a corrupted 1-out-of-n sender; the honest input is the index."""

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first = _sample(rng)
        return dict(first, index=0), dict(first, index=ENTRIES - 1)

    return CheckSpec(
        protocol="ot.one_of_n",
        party="sender",
        description=f"1-out-of-{ENTRIES} OT of {LENGTH}-byte entries, corrupted sender",
        parties=_parties,
        sample_inputs=_sample,
        input_pair=pair,
        corrupted_input=lambda inputs: len(inputs["payloads"]),
        ideal=lambda inputs: None,
        simulate=lambda n, output: simulator.sender_view("receiver", n, phase=PHASE),
        consistent=_consistent,
        flow=lambda inputs: one_of_n_flow([len(p) for p in inputs["payloads"]], PHASE),
        elements=point_coordinates,
        samples=300,
    )


def receiver_spec() -> CheckSpec:
    """Return the check of a corrupted 1-out-of-n receiver; the honest input is the other entries."""

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first = _sample(rng)
        index = first["index"]
        zeros = [bytes(LENGTH)] * ENTRIES
        ones = [b"\xff" * LENGTH] * ENTRIES
        zeros[index] = ones[index] = first["payloads"][index]
        return dict(first, payloads=zeros), dict(first, payloads=ones)

    def simulate(corrupted: tuple, output: bytes):
        index, lengths = corrupted
        return simulator.receiver_view("sender", index, output, lengths, phase=PHASE)

    return CheckSpec(
        protocol="ot.one_of_n",
        party="receiver",
        description=f"1-out-of-{ENTRIES} OT of {LENGTH}-byte entries, corrupted receiver",
        parties=_parties,
        sample_inputs=_sample,
        input_pair=pair,
        # The functionality leaks n and the payload lengths to the receiver by design.
        corrupted_input=lambda inputs: (inputs["index"], [len(p) for p in inputs["payloads"]]),
        ideal=lambda inputs: ideal.one_of_n_ot(inputs["payloads"], inputs["index"])["receiver"],
        simulate=simulate,
        consistent=_consistent,
        flow=lambda inputs: one_of_n_flow([len(p) for p in inputs["payloads"]], PHASE),
        elements=point_coordinates,
        samples=300,
        output_features=_payload_bits,
    )


def specs() -> list[CheckSpec]:
    """Return the checks of 1-out-of-n OT, both parties."""
    return [sender_spec(), receiver_spec()]
