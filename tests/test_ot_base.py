"""Tests of the base random OTs (Naor–Pinkas and Masny–Rindal) over Ed25519."""

from __future__ import annotations

import numpy as np
import pytest

from testbed.errors import RunFailed, TruncatedMessage
from testbed.runners.memory import run_in_memory

from protocols.ot import group
from protocols.ot.base import base_ot_receiver, base_ot_sender
from protocols.ot.codec import HEADER_BYTES
from protocols.ot.errors import InvalidPoint, WrongMessageKind

ORDER_8_POINT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
SECURITY = [pytest.param(False, id="semi-honest"), pytest.param(True, id="malicious")]


def run_base(choices, malicious, intercept=None):
    return run_in_memory(
        {
            "sender": base_ot_sender("receiver", len(choices), malicious=malicious),
            "receiver": base_ot_receiver("sender", choices, malicious=malicious),
        },
        intercept=intercept,
    )


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("count", [1, 2, 37])
def test_base_ot_receiver_gets_chosen_key(malicious, count):
    choices = np.random.default_rng(count).integers(0, 2, count)
    result = run_base(choices, malicious)
    keys0, keys1 = result.outputs["sender"]
    chosen = result.outputs["receiver"]
    assert chosen.shape == (count, 16)
    assert np.array_equal(chosen, np.where(choices[:, None] == 1, keys1, keys0))
    assert np.all((keys0 != keys1).any(axis=1))
    assert len({bytes(k) for k in keys0} | {bytes(k) for k in keys1}) == 2 * count


@pytest.mark.parametrize("malicious", SECURITY)
def test_base_ot_bytes_and_rounds_match_formula(malicious):
    count = 20
    result = run_base(np.zeros(count, dtype=bool), malicious)
    per_ot = 64 if malicious else 32
    assert result.transcript.bytes_by_direction() == {
        "sender->receiver": HEADER_BYTES + 32,
        "receiver->sender": HEADER_BYTES + per_ot * count,
    }
    assert result.transcript.rounds() == 1


@pytest.mark.parametrize("malicious", SECURITY)
def test_base_ot_zero_count_sends_nothing(malicious):
    result = run_base(np.zeros(0, dtype=np.uint8), malicious)
    assert len(result.transcript) == 0
    assert result.outputs["receiver"].shape == (0, 16)


def replace_point(position, replacement, direction=("receiver", "sender")):
    def intercept(src, dst, index, payload):
        if (src, dst) != direction:
            return payload
        offset = HEADER_BYTES + 32 * position
        return payload[:offset] + replacement + payload[offset + 32 :]

    return intercept


BAD_POINTS = [
    pytest.param(group.IDENTITY, id="identity"),
    pytest.param(ORDER_8_POINT, id="small-order"),
    pytest.param(b"\xff" * 32, id="off-curve"),
]


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("bad", BAD_POINTS)
def test_base_ot_sender_rejects_invalid_receiver_point(malicious, bad):
    with pytest.raises(RunFailed) as failed:
        run_base(np.array([0, 1, 1]), malicious, replace_point(1, bad))
    assert isinstance(failed.value.failures["sender"], InvalidPoint)


@pytest.mark.parametrize("malicious", SECURITY)
def test_base_ot_sender_rejects_torsion_component(malicious):
    def intercept(src, dst, index, payload):
        if src != "receiver":
            return payload
        point = payload[HEADER_BYTES : HEADER_BYTES + 32]
        return payload[:HEADER_BYTES] + group.add(point, ORDER_8_POINT) + payload[HEADER_BYTES + 32 :]

    with pytest.raises(RunFailed) as failed:
        run_base(np.array([1, 0]), malicious, intercept)
    assert isinstance(failed.value.failures["sender"], InvalidPoint)


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("bad", BAD_POINTS)
def test_base_ot_receiver_rejects_invalid_sender_point(malicious, bad):
    with pytest.raises(RunFailed) as failed:
        run_base(np.array([0, 1]), malicious, replace_point(0, bad, ("sender", "receiver")))
    assert isinstance(failed.value.failures["receiver"], InvalidPoint)


def test_naor_pinkas_rejects_public_key_equal_to_c():
    from protocols.ot.base import NP_POINT_C

    with pytest.raises(RunFailed) as failed:
        run_base(np.array([0, 1]), False, replace_point(0, NP_POINT_C))
    assert isinstance(failed.value.failures["sender"], InvalidPoint)


def test_masny_rindal_rejects_pair_evaluating_to_identity():
    from protocols.ot.base import MR_LABEL, _index

    other = group.random_point()
    # r0 = -H(0, 0, r1) makes B_0 = r0 + H(0, 0, r1) the identity.
    r0 = group.sub(group.IDENTITY, group.hash_to_point(MR_LABEL, _index(0, 0) + other))

    def intercept(src, dst, index, payload):
        if src != "receiver":
            return payload
        return payload[:HEADER_BYTES] + r0 + other + payload[HEADER_BYTES + 64 :]

    with pytest.raises(RunFailed) as failed:
        run_base(np.array([0]), True, intercept)
    assert isinstance(failed.value.failures["sender"], InvalidPoint)


@pytest.mark.parametrize("malicious", SECURITY)
def test_base_ot_rejects_truncated_and_mislabelled_messages(malicious):
    with pytest.raises(RunFailed) as failed:
        run_base(np.array([0, 1]), malicious, lambda s, d, i, p: p[:-1] if s == "receiver" else p)
    assert isinstance(failed.value.failures["sender"], TruncatedMessage)

    with pytest.raises(RunFailed) as failed:
        run_base(np.array([0, 1]), malicious, lambda s, d, i, p: bytes([0x7F]) + p[1:] if s == "sender" else p)
    assert isinstance(failed.value.failures["receiver"], WrongMessageKind)


def bit_frequencies(bodies: list[bytes]) -> np.ndarray:
    data = np.frombuffer(b"".join(bodies), dtype=np.uint8).reshape(len(bodies), -1)
    return np.unpackbits(data, axis=1).mean(axis=0)


def max_z_score(first: list[bytes], second: list[bytes]) -> float:
    """Return the largest two-proportion z-score over bit positions of two message samples."""
    p1, p2 = bit_frequencies(first), bit_frequencies(second)
    pooled = (p1 + p2) / 2
    spread = np.sqrt(pooled * (1 - pooled) * (2 / len(first)))
    constant = spread == 0
    assert np.array_equal(p1[constant], p2[constant])
    return float(np.max(np.abs(p1 - p2)[~constant] / spread[~constant]))


@pytest.mark.parametrize("malicious", SECURITY)
def test_base_ot_receiver_message_independent_of_choices(malicious):
    count = 400
    views = {}
    for choice in (0, 1):
        result = run_base(np.full(count, choice, dtype=np.uint8), malicious)
        (entry,) = result.transcript.view("sender")
        body = entry.payload[HEADER_BYTES:]
        width = 64 if malicious else 32
        views[choice] = [body[width * j : width * (j + 1)] for j in range(count)]
    assert {len(b"".join(v)) for v in views.values()} == {count * (64 if malicious else 32)}
    # Bonferroni over 256 or 512 bit positions: |z| > 5.5 happens by chance with p < 1e-5.
    assert max_z_score(views[0], views[1]) < 5.5
