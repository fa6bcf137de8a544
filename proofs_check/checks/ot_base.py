"""Checks of base random OT (``protocols.ot.base``): Naor–Pinkas and Masny–Rindal, both parties."""

from __future__ import annotations

from functools import partial

import numpy as np

from protocols.ot import base, group
from protocols.ot.codec import HEADER_BYTES
from simulators import ideal
from simulators import ot_base as simulator
from testbed.transcript import ViewEntry

from proofs_check.spec import CheckSpec, Flow

PHASE = "ot.base"
COUNT = 4
OUTPUT_KEYS = 4


def point_coordinates(view: list[ViewEntry]) -> np.ndarray:
    """Map every 32-byte point after each message header to its y-coordinate over ``2^255``."""
    values = []
    for entry in view:
        body = entry.payload[HEADER_BYTES:]
        for start in range(0, len(body) - group.POINT_BYTES + 1, group.POINT_BYTES):
            y = int.from_bytes(body[start : start + group.POINT_BYTES], "little") & ((1 << 255) - 1)
            values.append(y / 2.0**255)
    return np.array(values)


def key_bits(keys: np.ndarray) -> np.ndarray:
    """Return the bits of the first ``OUTPUT_KEYS`` keys as a feature vector."""
    keys = np.asarray(keys, dtype=np.uint8)[:OUTPUT_KEYS]
    return np.unpackbits(keys.reshape(-1), bitorder="little").astype(np.float32)


def sender_key_bits(output) -> np.ndarray:
    return np.concatenate([key_bits(output[0]), key_bits(output[1])])


def _parties(malicious: bool, inputs: dict) -> dict:
    return {
        "sender": base.base_ot_sender("receiver", len(inputs["choices"]), malicious=malicious, phase=PHASE),
        "receiver": base.base_ot_receiver("sender", inputs["choices"], malicious=malicious, phase=PHASE),
    }


def _sample(rng: np.random.Generator) -> dict:
    return {"choices": rng.integers(0, 2, COUNT).astype(np.uint8)}


def _choice_pair(rng: np.random.Generator) -> tuple[dict, dict]:
    return {"choices": np.zeros(COUNT, np.uint8)}, {"choices": np.ones(COUNT, np.uint8)}


def _same_choices(rng: np.random.Generator) -> tuple[dict, dict]:
    # The sender of random OT has no input, so the receiver's view can depend on nothing honest:
    # both inputs are the same draw, and the family checks that views do not vary by run alone.
    choices = rng.integers(0, 2, COUNT).astype(np.uint8)
    return {"choices": choices}, {"choices": choices.copy()}


def _consistent(inputs: dict, outputs: dict) -> bool:
    return ideal.random_ot_consistent(inputs["choices"], outputs["sender"], outputs["receiver"])


def _flow(malicious: bool, inputs: dict) -> Flow:
    count = len(inputs["choices"])
    per_ot = 2 * group.POINT_BYTES if malicious else group.POINT_BYTES
    return Flow(
        messages={("sender", "receiver", PHASE): 1, ("receiver", "sender", PHASE): 1},
        bytes_by_direction={
            "sender->receiver": HEADER_BYTES + group.POINT_BYTES,
            "receiver->sender": HEADER_BYTES + per_ot * count,
        },
        rounds=1,
    )


def sender_spec(malicious: bool = False) -> CheckSpec:
    """Return the check of a corrupted base-OT sender; the honest input is the choice bits."""
    name = "masny-rindal" if malicious else "naor-pinkas"
    return CheckSpec(
        protocol=f"ot.base.{name}",
        party="sender",
        description=f"base random OT ({name}), corrupted sender, {COUNT} OTs per run",
        parties=partial(_parties, malicious),
        sample_inputs=_sample,
        input_pair=_choice_pair,
        corrupted_input=lambda inputs: len(inputs["choices"]),
        ideal=lambda inputs: ideal.random_ot(inputs["choices"])["sender"],
        simulate=lambda count, output: simulator.sender_view("receiver", count, malicious=malicious, phase=PHASE),
        consistent=_consistent,
        flow=partial(_flow, malicious),
        elements=point_coordinates,
        output_features=sender_key_bits,
        samples=300,
    )


def receiver_spec(malicious: bool = False) -> CheckSpec:
    """Return the check of a corrupted base-OT receiver; the sender has no input to hide."""
    name = "masny-rindal" if malicious else "naor-pinkas"
    return CheckSpec(
        protocol=f"ot.base.{name}",
        party="receiver",
        description=f"base random OT ({name}), corrupted receiver, {COUNT} OTs per run",
        parties=partial(_parties, malicious),
        sample_inputs=_sample,
        input_pair=_same_choices,
        corrupted_input=lambda inputs: inputs["choices"],
        ideal=lambda inputs: ideal.random_ot(inputs["choices"])["receiver"],
        simulate=lambda choices, output: simulator.receiver_view(
            "sender", len(choices), malicious=malicious, phase=PHASE
        ),
        consistent=_consistent,
        flow=partial(_flow, malicious),
        elements=point_coordinates,
        output_features=key_bits,
        samples=300,
    )


def specs() -> list[CheckSpec]:
    """Return the checks of both base-OT constructions, both parties."""
    return [sender_spec(False), receiver_spec(False), sender_spec(True), receiver_spec(True)]
