"""Leaky variants of the OT protocols, built by wrapping or re-assembling the real parties."""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from testbed.effects import Party, Phase, Receive, Send

from protocols.ot import base, extension, group, one_of_n
from protocols.ot.codec import HEADER_BYTES, Kind, frame, header, parse
from protocols.ot.hashing import tcr_expand

from proofs_check.checks import one_of_n as one_of_n_checks
from proofs_check.checks import ot_base as base_checks
from proofs_check.checks import ot_extension as extension_checks
from proofs_check.mutants.wrappers import (
    receive_after,
    rewrite_receives,
    rewrite_sends,
    send_after,
    with_fixed_randomness,
)
from proofs_check.spec import Mutant

FIXED_SEED = b"proofs_check/fixed-seed"


def _choice_appended(inputs: dict) -> dict:
    bits = np.packbits(inputs["choices"], bitorder="little").tobytes()
    suffix = len(bits)
    count = len(inputs["choices"])
    return {
        "sender": rewrite_receives(base.base_ot_sender("receiver", count, phase=base_checks.PHASE), lambda k, p: p[:-suffix]),
        "receiver": rewrite_sends(
            base.base_ot_receiver("sender", inputs["choices"], phase=base_checks.PHASE), lambda k, p: p + bits
        ),
    }


def grinding_receiver(peer: str, choices: np.ndarray, phase: str) -> Party[np.ndarray]:
    """Run the Naor–Pinkas receiver, redrawing ``x_j`` until the sign bit of ``PK0_j`` equals ``c_j``."""
    bits = base.choice_bits(choices)
    yield Phase(phase)
    secrets_, public_keys = [], []
    for choice in bits:
        while True:
            scalar = group.random_scalar()
            own = group.base_mult(scalar)
            pk0 = own if choice == 0 else group.sub(base.NP_POINT_C, own)
            if pk0[31] >> 7 == choice:
                break
        secrets_.append(scalar)
        public_keys.append(pk0)
    yield Send(peer, frame(Kind.NP_RECEIVER_POINTS, b"".join(public_keys)))
    body = parse((yield Receive(peer)), Kind.NP_SENDER_POINT, 0, group.POINT_BYTES)
    sender_point = group.decode_point(body, "Naor-Pinkas sender point R")
    keys = np.zeros((len(bits), base.KEY_BYTES), dtype=np.uint8)
    for j, scalar in enumerate(secrets_):
        key = base._derive_key(base.NP_LABEL, j, int(bits[j]), sender_point + public_keys[j], group.mult(scalar, sender_point))
        keys[j] = np.frombuffer(key, dtype=np.uint8)
    return keys


def _grinding(inputs: dict) -> dict:
    return {
        "sender": base.base_ot_sender("receiver", len(inputs["choices"]), phase=base_checks.PHASE),
        "receiver": grinding_receiver("sender", inputs["choices"], base_checks.PHASE),
    }


def _fixed_party(role: str, make) -> callable:
    def parties(inputs: dict) -> dict:
        coroutines = make(inputs)
        coroutines[role] = with_fixed_randomness(coroutines[role], FIXED_SEED)
        return coroutines

    return parties


def leaky_chosen_sender(
    peer: str, m0: np.ndarray, m1: np.ndarray, *, reuse_pad: bool = False, pad_mask: int = 0xFF, phase: str
) -> Party[None]:
    """Run the IKNP chosen-OT sender with a reused pad (both messages under ``P(i, q_i)``) or a masked pad."""
    count, length = m0.shape
    yield Phase(phase)
    # NOTE: this re-assembles the sender from the extension module's private batch function, so
    # a change of that function's signature breaks this mutant (the mutant tests catch it).
    q_rows, s, first_index = yield from extension._extension_sender(peer, count, False, None)
    pad0 = tcr_expand(q_rows, first_index, length) & np.uint8(pad_mask)
    pad1 = pad0 if reuse_pad else tcr_expand(q_rows ^ s, first_index, length) & np.uint8(pad_mask)
    ciphertexts = np.empty((count, 2, length), dtype=np.uint8)
    ciphertexts[:, 0] = m0 ^ pad0
    ciphertexts[:, 1] = m1 ^ pad1
    yield Send(peer, header(Kind.EXT_CIPHERTEXTS, 0) + ciphertexts.tobytes())
    return None


def masked_pad_receiver(peer: str, choices: np.ndarray, length: int, pad_mask: int, phase: str) -> Party[np.ndarray]:
    """Run the IKNP chosen-OT receiver that strips the same bits from its pad as the biased sender."""
    bits = base.choice_bits(choices)
    yield Phase(phase)
    t_rows, first_index = yield from extension._extension_receiver(peer, bits, False, None)
    count = len(bits)
    body = parse((yield Receive(peer)), Kind.EXT_CIPHERTEXTS, 0, 2 * length * count)
    ciphertexts = np.frombuffer(body, dtype=np.uint8).reshape(count, 2, length)
    chosen = ciphertexts[np.arange(count), bits]
    return chosen ^ (tcr_expand(t_rows, first_index, length) & np.uint8(pad_mask))


def _leaky_chosen(reuse_pad: bool, pad_mask: int):
    def parties(inputs: dict) -> dict:
        coroutines = extension_checks._parties("chosen", False, inputs)
        coroutines["sender"] = leaky_chosen_sender(
            "receiver", inputs["m0"], inputs["m1"], reuse_pad=reuse_pad, pad_mask=pad_mask, phase=extension_checks.PHASE
        )
        if pad_mask != 0xFF:
            coroutines["receiver"] = masked_pad_receiver(
                "sender", inputs["choices"], extension_checks.LENGTH, pad_mask, extension_checks.PHASE
            )
        return coroutines

    return parties


def _extension_choices_sent(inputs: dict) -> dict:
    coroutines = extension_checks._parties("random", False, inputs)
    bits = np.packbits(inputs["choices"], bitorder="little").tobytes()
    coroutines["receiver"] = send_after(coroutines["receiver"], "sender", lambda output: bits)
    coroutines["sender"] = receive_after(coroutines["sender"], "receiver")
    return coroutines


def same_key_sender(peer: str, payloads: list[bytes], phase: str) -> Party[None]:
    """Run the 1-out-of-n sender with every entry under entry 0's key."""
    n = len(payloads)
    yield Phase(phase)
    keys0, keys1 = yield from base.base_ot_sender(peer, one_of_n.levels(n))
    key = one_of_n.entry_keys(keys0, keys1, 0, 1)[0].tobytes()
    for i, payload in enumerate(payloads):
        encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        masked = encryptor.update(payload) + encryptor.finalize()
        yield Send(peer, header(Kind.ONE_OF_N_ENTRY, i) + one_of_n.LENGTH.pack(len(payload)) + masked)
    return None


def _same_key(inputs: dict) -> dict:
    coroutines = one_of_n_checks._parties(inputs)
    coroutines["sender"] = same_key_sender("receiver", inputs["payloads"], one_of_n_checks.PHASE)
    return coroutines


def mutants() -> list[Mutant]:
    """Return the OT mutants."""
    np_sender = base_checks.sender_spec(False)
    np_receiver = base_checks.receiver_spec(False)
    chosen_receiver = extension_checks.receiver_spec("chosen")
    random_sender = extension_checks.sender_spec("random")
    return [
        Mutant(
            "ot.base.choice-appended",
            "Naor–Pinkas receiver appends its packed choice bits to its message",
            "the sender reads the choice bits",
            np_sender.with_parties(_choice_appended),
        ),
        Mutant(
            "ot.base.choice-in-sign-bit",
            "Naor–Pinkas receiver redraws x_j until the sign bit of PK0_j equals its choice bit",
            "the sender reads each choice bit from a point encoding; uniform when choices are uniform",
            np_sender.with_parties(_grinding),
        ),
        Mutant(
            "ot.base.fixed-receiver-seed",
            "Naor–Pinkas receiver draws its scalars from a fixed PRG seed",
            "PK0_j takes one of two values, one per choice bit",
            np_sender.with_parties(_fixed_party("receiver", lambda i: base_checks._parties(False, i))),
        ),
        Mutant(
            "ot.base.fixed-sender-seed",
            "Naor–Pinkas sender draws its scalar from a fixed PRG seed",
            "R repeats across runs, so a receiver can open both keys of later runs",
            np_receiver.with_parties(_fixed_party("sender", lambda i: base_checks._parties(False, i))),
        ),
        Mutant(
            "ot.extension.reused-pad",
            "IKNP chosen-OT sender masks both messages with P(i, q_i); receivers with choice 1 get wrong output",
            "a receiver with choice 0 opens both messages",
            chosen_receiver.with_parties(_leaky_chosen(True, 0xFF)),
        ),
        Mutant(
            "ot.extension.biased-pad",
            "IKNP chosen-OT sender clears the top bit of every pad byte",
            "the top bit of every byte of the unchosen message shows through",
            chosen_receiver.with_parties(_leaky_chosen(False, 0x7F)),
        ),
        Mutant(
            "ot.extension.choices-sent",
            "IKNP receiver sends its choice bits in an extra message after the extension",
            "the sender reads the choice bits",
            random_sender.with_parties(_extension_choices_sent),
        ),
        Mutant(
            "ot.one_of_n.reused-key",
            "1-out-of-n sender masks every entry under entry 0's key; receivers of other entries get wrong output",
            "a receiver of entry 0 opens every entry; entries XOR to payload XORs",
            one_of_n_checks.receiver_spec().with_parties(_same_key),
        ),
        Mutant(
            "ot.one_of_n.fixed-sender-seed",
            "1-out-of-n sender draws its base-OT randomness from a fixed PRG seed",
            "entry keys repeat across runs, so equal payloads give equal masked entries",
            one_of_n_checks.receiver_spec().with_parties(_fixed_party("sender", one_of_n_checks._parties)),
        ),
    ]
