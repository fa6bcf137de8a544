"""Checks of IKNP/KOS OT extension (``protocols.ot.extension``): random and chosen OT, both parties."""

from __future__ import annotations

from functools import partial

import numpy as np

from protocols.ot import extension as ext
from protocols.ot.codec import HEADER_BYTES
from simulators import ideal
from simulators import ot_extension as simulator
from testbed.transcript import ViewEntry

from proofs_check.checks.ot_base import key_bits, point_coordinates, sender_key_bits
from proofs_check.spec import CheckSpec, Flow

PHASE = "ot.extension"
COUNT = 4
LENGTH = 16


def _sample(kind: str, rng: np.random.Generator) -> dict:
    inputs = {"choices": rng.integers(0, 2, COUNT).astype(np.uint8)}
    if kind == simulator.CHOSEN:
        inputs["m0"] = rng.integers(0, 256, (COUNT, LENGTH), dtype=np.uint8)
        inputs["m1"] = rng.integers(0, 256, (COUNT, LENGTH), dtype=np.uint8)
    return inputs


def _parties(kind: str, malicious: bool, inputs: dict) -> dict:
    if kind == simulator.CHOSEN:
        return {
            "sender": ext.chosen_ot_sender("receiver", inputs["m0"], inputs["m1"], malicious=malicious, phase=PHASE),
            "receiver": ext.chosen_ot_receiver("sender", inputs["choices"], LENGTH, malicious=malicious, phase=PHASE),
        }
    return {
        "sender": ext.random_ot_sender("receiver", len(inputs["choices"]), malicious=malicious, phase=PHASE),
        "receiver": ext.random_ot_receiver("sender", inputs["choices"], malicious=malicious, phase=PHASE),
    }


def _ideal_outputs(kind: str, inputs: dict):
    if kind == simulator.CHOSEN:
        outputs = ideal.chosen_ot(
            [m.tobytes() for m in inputs["m0"]], [m.tobytes() for m in inputs["m1"]], inputs["choices"]
        )
        chosen = np.vstack([np.frombuffer(m, dtype=np.uint8) for m in outputs["receiver"]])
        return {"sender": None, "receiver": chosen}
    return ideal.random_ot(inputs["choices"])


def _consistent(kind: str, inputs: dict, outputs: dict) -> bool:
    if kind == simulator.CHOSEN:
        expected = np.where(inputs["choices"][:, None] == 1, inputs["m1"], inputs["m0"])
        return bool(np.array_equal(np.asarray(outputs["receiver"]), expected))
    return ideal.random_ot_consistent(inputs["choices"], outputs["sender"], outputs["receiver"])


def extension_flow(kind: str, malicious: bool, count: int, length: int, phase: str) -> Flow:
    """Return the flow the extension module documents for ``count`` OTs (one matrix chunk)."""
    h = HEADER_BYTES
    rows = ext.padded_rows(count, malicious)
    to_sender = h + 32 + h + 16 * rows
    to_receiver = h + (64 if malicious else 32) * ext.KAPPA
    messages_to_sender, messages_to_receiver = 2, 1
    rounds = 2
    if malicious:
        to_sender += h + 32
        to_receiver += h + 16
        messages_to_sender += 1
        messages_to_receiver += 1
        rounds = 4
    if kind == simulator.CHOSEN:
        to_receiver += h + 2 * length * count
        messages_to_receiver += 1
        rounds += 1
    return Flow(
        messages={("receiver", "sender", phase): messages_to_sender, ("sender", "receiver", phase): messages_to_receiver},
        bytes_by_direction={"receiver->sender": to_sender, "sender->receiver": to_receiver},
        rounds=rounds,
    )


def ciphertext_relations(view: list[ViewEntry]) -> bytes:
    """Return ``y0_i ⊕ y1_i`` for every chosen-OT ciphertext pair, which a reused pad makes equal to ``m0_i ⊕ m1_i``."""
    parts = []
    for entry in view:
        if entry.payload[:1] == bytes([ext.Kind.EXT_CIPHERTEXTS]):
            body = np.frombuffer(entry.payload[HEADER_BYTES:], dtype=np.uint8).reshape(-1, 2, LENGTH)
            parts.append((body[:, 0] ^ body[:, 1]).tobytes())
            parts.append(body.reshape(-1, LENGTH)[:, :1].tobytes())
    return b"".join(parts)


def _flat(chosen) -> np.ndarray:
    return np.unpackbits(np.asarray(chosen, dtype=np.uint8).reshape(-1), bitorder="little").astype(np.float32)


def sender_spec(kind: str, malicious: bool = False) -> CheckSpec:
    """Return the check of a corrupted extension sender; the honest input is the choice bits."""
    name = "kos" if malicious else "iknp"

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first = _sample(kind, rng)
        second = dict(first)
        first["choices"] = np.zeros(COUNT, np.uint8)
        second["choices"] = np.ones(COUNT, np.uint8)
        return first, second

    return CheckSpec(
        protocol=f"ot.extension.{name}.{kind}",
        party="sender",
        description=f"{name.upper()} {kind} OT, corrupted sender, {COUNT} OTs per run",
        parties=partial(_parties, kind, malicious),
        sample_inputs=partial(_sample, kind),
        input_pair=pair,
        corrupted_input=lambda inputs: len(inputs["choices"]),
        ideal=lambda inputs: _ideal_outputs(kind, inputs)["sender"],
        simulate=lambda count, output: simulator.sender_view("receiver", count, malicious=malicious, phase=PHASE),
        consistent=partial(_consistent, kind),
        flow=lambda inputs: extension_flow(kind, malicious, COUNT, LENGTH, PHASE),
        elements=point_coordinates,
        output_features=sender_key_bits if kind == simulator.RANDOM else None,
        samples=40 if malicious else 80,
    )


def receiver_spec(kind: str, malicious: bool = False) -> CheckSpec:
    """Return the check of a corrupted extension receiver; the honest input is the unchosen messages."""
    name = "kos" if malicious else "iknp"

    def pair(rng: np.random.Generator) -> tuple[dict, dict]:
        first = _sample(kind, rng)
        if kind != simulator.CHOSEN:
            return first, {"choices": first["choices"].copy()}
        second = {key: value.copy() for key, value in first.items()}
        unchosen = first["choices"].astype(bool)
        # Keep every chosen message; set the unchosen ones to all zeros in A and all ones in B.
        first["m1"][~unchosen] = 0
        first["m0"][unchosen] = 0
        second["m1"][~unchosen] = 0xFF
        second["m0"][unchosen] = 0xFF
        return first, second

    def simulate(corrupted: np.ndarray, output) -> list[ViewEntry]:
        return simulator.receiver_view(
            "sender", corrupted, None if kind == simulator.RANDOM else output,
            kind=kind, malicious=malicious, phase=PHASE,
        )

    return CheckSpec(
        protocol=f"ot.extension.{name}.{kind}",
        party="receiver",
        description=f"{name.upper()} {kind} OT, corrupted receiver, {COUNT} OTs per run"
        + (f" of {LENGTH}-byte messages" if kind == simulator.CHOSEN else ""),
        parties=partial(_parties, kind, malicious),
        sample_inputs=partial(_sample, kind),
        input_pair=pair,
        corrupted_input=lambda inputs: inputs["choices"],
        ideal=lambda inputs: _ideal_outputs(kind, inputs)["receiver"],
        simulate=simulate,
        consistent=partial(_consistent, kind),
        flow=lambda inputs: extension_flow(kind, malicious, COUNT, LENGTH, PHASE),
        relations=ciphertext_relations if kind == simulator.CHOSEN else None,
        elements=point_coordinates,
        output_features=key_bits if kind == simulator.RANDOM else _flat,
        samples=40 if malicious else 80,
    )


def specs() -> list[CheckSpec]:
    """Return the checks of IKNP random and chosen OT and KOS random OT, both parties."""
    return [
        sender_spec(simulator.RANDOM),
        receiver_spec(simulator.RANDOM),
        sender_spec(simulator.CHOSEN),
        receiver_spec(simulator.CHOSEN),
        sender_spec(simulator.RANDOM, malicious=True),
        receiver_spec(simulator.RANDOM, malicious=True),
    ]
