"""Tests of streaming 1-out-of-n OT of large payloads."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from testbed.effects import Receive
from testbed.errors import MalformedMessage, RunFailed, TruncatedMessage
from testbed.runners.memory import run_in_memory

from protocols.ot.base import base_ot_receiver
from protocols.ot.codec import HEADER_BYTES, Kind
from protocols.ot.errors import InvalidPoint, OutOfSequence, WrongMessageKind
from protocols.ot.one_of_n import (
    ENTRY_OVERHEAD,
    _entry_body,
    levels,
    one_of_n_receiver,
    one_of_n_sender,
    receiver_entry_key,
)

SECURITY = [pytest.param(False, id="semi-honest"), pytest.param(True, id="malicious")]


def run_one_of_n(payloads, index, malicious=False, intercept=None, keep_payloads=True):
    return run_in_memory(
        {
            "sender": one_of_n_sender("receiver", len(payloads), lambda i: payloads[i], malicious=malicious),
            "receiver": one_of_n_receiver("sender", len(payloads), index, malicious=malicious),
        },
        intercept=intercept,
        keep_payloads=keep_payloads,
    )


def test_levels_is_ceil_log2():
    assert [levels(n) for n in (1, 2, 3, 4, 5, 8, 9, 3000)] == [0, 1, 2, 2, 3, 3, 4, 12]
    with pytest.raises(ValueError):
        levels(0)


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11])
def test_receiver_gets_every_chosen_entry(malicious, n):
    rng = np.random.default_rng(n)
    payloads = [os.urandom(int(rng.integers(0, 70))) for _ in range(n)]
    payloads[0] = b""
    for index in range(n):
        assert run_one_of_n(payloads, index, malicious).outputs["receiver"] == payloads[index]


@pytest.mark.parametrize("malicious", SECURITY)
def test_random_sizes_and_choices(malicious):
    rng = np.random.default_rng(99)
    for _ in range(10):
        n = int(rng.integers(1, 40))
        payloads = [os.urandom(int(rng.choice([0, 1, 15, 16, 17, 1000, 5000]))) for _ in range(n)]
        index = int(rng.integers(0, n))
        assert run_one_of_n(payloads, index, malicious).outputs["receiver"] == payloads[index]


def test_numpy_payloads_travel_as_bytes():
    fixes = [np.full((4, 4), i, dtype=np.float32) for i in range(6)]
    result = run_in_memory(
        {
            "sender": one_of_n_sender("receiver", 6, lambda i: fixes[i]),
            "receiver": one_of_n_receiver("sender", 6, 4),
        }
    )
    received = np.frombuffer(result.outputs["receiver"], dtype=np.float32).reshape(4, 4)
    assert np.array_equal(received, fixes[4])


def test_payload_called_once_per_entry_in_order():
    calls = []

    def payload(i):
        calls.append(i)
        return bytes([i]) * 3

    run_in_memory({"sender": one_of_n_sender("receiver", 7, payload), "receiver": one_of_n_receiver("sender", 7, 2)})
    assert calls == list(range(7))


@pytest.mark.slow
def test_tens_of_megabytes_payloads():
    big = 24 * 1024 * 1024
    payloads = [os.urandom(1000), os.urandom(big), os.urandom(big + 7)]
    result = run_one_of_n(payloads, 2, keep_payloads=False)
    assert result.outputs["receiver"] == payloads[2]
    assert result.transcript.bytes_by_direction()["sender->receiver"] == HEADER_BYTES + 32 + sum(
        ENTRY_OVERHEAD + len(p) for p in payloads
    )


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("n", [1, 2, 6, 17])
def test_bytes_and_rounds_match_formula(malicious, n):
    payloads = [os.urandom(i * 3) for i in range(n)]
    result = run_one_of_n(payloads, n - 1, malicious)
    level_count = levels(n)
    base_down = HEADER_BYTES + 32 if level_count else 0
    expected = {"sender->receiver": base_down + sum(ENTRY_OVERHEAD + len(p) for p in payloads)}
    if level_count:
        point_bytes = 64 if malicious else 32
        expected["receiver->sender"] = HEADER_BYTES + point_bytes * level_count
    assert result.transcript.bytes_by_direction() == expected
    assert result.transcript.rounds() == (2 if level_count else 1)


def test_wire_bytes_for_full_size_fixes_formula():
    # n = 3000 fixes of 768 x 768 float32: the documented total, checked here by the formula
    # over a scaled-down run with the same structure (n = 3000, 16-byte payloads).
    n = 3000
    result = run_one_of_n([bytes(16)] * n, 1234, keep_payloads=False)
    down = result.transcript.bytes_by_direction()["sender->receiver"]
    assert down == n * 16 + n * ENTRY_OVERHEAD + HEADER_BYTES + 32
    full = 768 * 768 * 4
    assert n * full + n * ENTRY_OVERHEAD + HEADER_BYTES + 32 == 7_077_888_000 + 39_037


def curious_receiver(peer: str, n: int, index: int, malicious: bool):
    """A receiver that follows the protocol, then tries to unmask every entry it did not choose.

    For entry i it uses the key it received where the bits of i and index agree, and the same
    key where they differ, because it has no other key material. Returns the decryptions.
    """
    level_count = levels(n)
    bits = np.array([(index >> j) & 1 for j in range(level_count)], dtype=np.uint8)
    keys = yield from base_ot_receiver(peer, bits, malicious=malicious)
    attempts = []
    for i in range(n):
        masked = bytes(_entry_body((yield Receive(peer)), i))
        key = receiver_entry_key(keys, i)
        decryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).decryptor()
        attempts.append(decryptor.update(masked))
    return attempts


@pytest.mark.parametrize("malicious", SECURITY)
def test_receiver_cannot_decrypt_unchosen_entries(malicious):
    n, index = 9, 5
    payloads = [bytes([i]) * 64 for i in range(n)]
    result = run_in_memory(
        {
            "sender": one_of_n_sender("receiver", n, lambda i: payloads[i], malicious=malicious),
            "receiver": curious_receiver("sender", n, index, malicious),
        }
    )
    attempts = result.outputs["receiver"]
    assert attempts[index] == payloads[index]
    for i in range(n):
        if i != index:
            assert attempts[i] != payloads[i]
            # A wrong key gives bytes unrelated to the payload: no run of the constant byte.
            assert attempts[i].count(bytes([i])) < 8


def entry_intercept(change):
    """Apply ``change(position, payload)`` to entry messages, position counting entries from 0."""
    seen = []

    def intercept(src, dst, index, payload):
        if src == "sender" and payload[0] == Kind.ONE_OF_N_ENTRY:
            seen.append(payload)
            return change(len(seen) - 1, payload)
        return payload

    return intercept


PAYLOADS = [bytes([i]) * (10 + i) for i in range(6)]


def receiver_failure(intercept, malicious=False):
    with pytest.raises(RunFailed) as failed:
        run_one_of_n(PAYLOADS, 3, malicious, intercept)
    return failed.value.failures["receiver"]


def test_truncated_entry_aborts():
    assert isinstance(receiver_failure(entry_intercept(lambda k, p: p[:-1] if k == 1 else p)), TruncatedMessage)
    assert isinstance(receiver_failure(entry_intercept(lambda k, p: p[:9] if k == 1 else p)), TruncatedMessage)


def test_entry_longer_than_declared_aborts():
    failure = receiver_failure(entry_intercept(lambda k, p: p + b"x" if k == 4 else p))
    assert type(failure) is MalformedMessage


def test_reordered_entries_abort():
    delayed = []

    def swap(k, payload):
        if k == 1:
            delayed.append(payload)
            return []
        if k == 2:
            return [payload, delayed.pop()]
        return payload

    assert isinstance(receiver_failure(entry_intercept(swap)), OutOfSequence)


def test_replayed_or_dropped_entry_aborts():
    assert isinstance(receiver_failure(entry_intercept(lambda k, p: [p, p] if k == 0 else p)), OutOfSequence)
    assert isinstance(receiver_failure(entry_intercept(lambda k, p: [] if k == 2 else p)), OutOfSequence)


def test_entry_with_wrong_kind_aborts():
    failure = receiver_failure(entry_intercept(lambda k, p: bytes([Kind.EXT_MATRIX]) + p[1:] if k == 5 else p))
    assert isinstance(failure, WrongMessageKind)


@pytest.mark.parametrize("index", [0, 3])
def test_abort_does_not_depend_on_index(index):
    # A corrupted frame of entry 1 makes every receiver abort, whatever it chose.
    with pytest.raises(RunFailed) as failed:
        run_one_of_n(PAYLOADS, index, False, entry_intercept(lambda k, p: p[:-1] if k == 1 else p))
    assert isinstance(failed.value.failures["receiver"], TruncatedMessage)


@pytest.mark.parametrize("malicious", SECURITY)
def test_invalid_sender_point_aborts(malicious):
    def identity_point(src, dst, index, payload):
        if src == "sender" and index == 0:
            return payload[:HEADER_BYTES] + bytes([1]) + bytes(31)
        return payload

    assert isinstance(receiver_failure(identity_point, malicious), InvalidPoint)


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError):
        next(one_of_n_receiver("sender", 4, 4))
    with pytest.raises(ValueError):
        next(one_of_n_receiver("sender", 4, -1))
    with pytest.raises(ValueError):
        next(one_of_n_sender("receiver", 0, lambda i: b""))


@pytest.mark.parametrize("malicious", SECURITY)
def test_sender_view_same_across_indices(malicious):
    n = 2**10
    views = {}
    for index in (0, n - 1):
        result = run_one_of_n([b""] * n, index, malicious)
        (entry,) = result.transcript.view("sender")
        views[index] = entry.payload
    assert len(views[0]) == len(views[n - 1])
    # index 0 and n - 1 differ in all 10 bits; the points must look alike bit by bit.
    bits = {k: np.unpackbits(np.frombuffer(v[HEADER_BYTES:], dtype=np.uint8)) for k, v in views.items()}
    assert 0.4 < bits[0].mean() < 0.6
    assert 0.4 < bits[n - 1].mean() < 0.6


@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(1, 20))
def test_any_sizes_and_index(data, n):
    payloads = data.draw(st.lists(st.binary(max_size=300), min_size=n, max_size=n))
    index = data.draw(st.integers(0, n - 1))
    assert run_one_of_n(payloads, index).outputs["receiver"] == payloads[index]


def test_payload_of_wrong_type_or_layout_raises():
    strided = np.zeros((8, 8), dtype=np.float32)[:, ::2]
    with pytest.raises(RunFailed) as failed:
        run_one_of_n([strided, strided], 0)
    assert isinstance(failed.value.failures["sender"], ValueError)

    with pytest.raises(RunFailed) as failed:
        run_one_of_n(["text", "text"], 1)
    assert isinstance(failed.value.failures["sender"], TypeError)
