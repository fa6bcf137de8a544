"""Tests of IKNP and KOS OT extension: random, correlated and chosen-message OT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.effects import Receive, Send
from testbed.errors import MalformedMessage, RunFailed, TruncatedMessage
from testbed.runners.memory import run_in_memory

from protocols.ot import extension, gf128
from protocols.ot.base import base_ot_sender
from protocols.ot.bitmatrix import transpose
from protocols.ot.codec import HEADER_BYTES, Kind, frame, header, parse
from protocols.ot.errors import CorrelationCheckFailed, OutOfSequence, WrongMessageKind
from protocols.ot.extension import (
    chosen_ot_receiver,
    chosen_ot_sender,
    correlated_ot_receiver,
    correlated_ot_sender,
    padded_rows,
    random_ot_receiver,
    random_ot_sender,
)
from protocols.ot.hashing import tcr_expand, tcr_hash

SECURITY = [pytest.param(False, id="iknp"), pytest.param(True, id="kos")]
DELTA = bytes(range(100, 116))


def random_choices(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, count).astype(np.uint8)


def run_pair(sender, receiver, intercept=None, keep_payloads=True):
    return run_in_memory({"sender": sender, "receiver": receiver}, intercept=intercept, keep_payloads=keep_payloads)


@pytest.mark.parametrize("rows,row_bytes", [(64, 8), (128, 16), (128, 1040), (192, 24)])
def test_transpose_matches_unpacked_transpose(rows, row_bytes):
    matrix = np.random.default_rng(rows).integers(0, 256, (rows, row_bytes), dtype=np.uint8)
    expected = np.packbits(np.unpackbits(matrix, axis=1, bitorder="little").T, axis=1, bitorder="little")
    assert np.array_equal(transpose(matrix), expected)


@settings(max_examples=20, deadline=None)
@given(row_groups=st.integers(1, 4), word_columns=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_transpose_twice_is_identity(row_groups, word_columns, seed):
    matrix = np.random.default_rng(seed).integers(0, 256, (64 * row_groups, 8 * word_columns), dtype=np.uint8)
    once = transpose(matrix)
    assert once.shape == (64 * word_columns, 8 * row_groups)
    assert np.array_equal(transpose(once), matrix)


def test_transpose_rejects_unaligned_shape():
    with pytest.raises(ValueError):
        transpose(np.zeros((100, 8), dtype=np.uint8))


def test_tcr_hash_depends_on_index_and_input():
    blocks = np.zeros((4, 16), dtype=np.uint8)
    hashed = tcr_hash(blocks, 0)
    assert len({bytes(row) for row in hashed}) == 4
    assert np.array_equal(tcr_hash(blocks[2:], 2), hashed[2:])
    assert np.array_equal(tcr_expand(blocks, 0, 40)[:, :16], hashed)
    assert tcr_expand(blocks, 0, 0).shape == (4, 0)


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("count", [1, 7, 128, 1000, 4099])
def test_random_ot_receiver_gets_chosen_message(malicious, count):
    choices = random_choices(count, count)
    result = run_pair(
        random_ot_sender("receiver", count, malicious=malicious),
        random_ot_receiver("sender", choices.astype(bool), malicious=malicious),
    )
    m0, m1 = result.outputs["sender"]
    chosen = result.outputs["receiver"]
    assert m0.shape == m1.shape == chosen.shape == (count, 16)
    assert np.array_equal(chosen, np.where(choices[:, None] == 1, m1, m0))
    assert np.all((m0 != m1).any(axis=1))
    assert len({bytes(row) for row in m0}) == count


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("count", [1, 300, 2049])
def test_correlated_ot_receiver_gets_offset_message(malicious, count):
    choices = random_choices(count, count + 1)
    result = run_pair(
        correlated_ot_sender("receiver", count, DELTA, malicious=malicious),
        correlated_ot_receiver("sender", choices, malicious=malicious),
    )
    m0 = result.outputs["sender"]
    expected = m0 ^ (choices[:, None] * np.frombuffer(DELTA, dtype=np.uint8))
    assert np.array_equal(result.outputs["receiver"], expected)


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("count,length", [(1, 0), (5, 1), (200, 16), (129, 17), (64, 1000)])
def test_chosen_ot_receiver_gets_chosen_messages(malicious, count, length):
    rng = np.random.default_rng(count * 1000 + length)
    m0 = rng.integers(0, 256, (count, length), dtype=np.uint8)
    m1 = rng.integers(0, 256, (count, length), dtype=np.uint8)
    choices = rng.integers(0, 2, count)
    result = run_pair(
        chosen_ot_sender("receiver", m0, m1, malicious=malicious),
        chosen_ot_receiver("sender", choices, length, malicious=malicious),
    )
    assert np.array_equal(result.outputs["receiver"], np.where(choices[:, None] == 1, m1, m0))


@pytest.mark.parametrize("malicious", SECURITY)
def test_chosen_ot_receiver_cannot_unmask_other_message(malicious):
    count, length = 64, 48
    rng = np.random.default_rng(5)
    m0 = rng.integers(0, 256, (count, length), dtype=np.uint8)
    m1 = rng.integers(0, 256, (count, length), dtype=np.uint8)
    choices = np.zeros(count, dtype=np.uint8)
    result = run_pair(
        chosen_ot_sender("receiver", m0, m1, malicious=malicious),
        chosen_ot_receiver("sender", choices, length, malicious=malicious),
    )
    assert np.array_equal(result.outputs["receiver"], m0)

    # The receiver's only pad for row i is the one that unmasks m0; try it on the m1 ciphertext.
    (body,) = [e.payload for e in result.transcript.view("receiver") if e.payload[0] == Kind.EXT_CIPHERTEXTS]
    ciphertexts = np.frombuffer(body[HEADER_BYTES:], dtype=np.uint8).reshape(count, 2, length)
    pad = ciphertexts[:, 0] ^ m0
    attempt = ciphertexts[:, 1] ^ pad
    assert np.all((attempt != m1).any(axis=1))
    assert np.all((ciphertexts[:, 1] != m1).any(axis=1))


@pytest.mark.parametrize("malicious", SECURITY)
@pytest.mark.parametrize("count", [1, 1000])
def test_extension_bytes_and_rounds_match_formula(malicious, count):
    result = run_pair(
        random_ot_sender("receiver", count, malicious=malicious),
        random_ot_receiver("sender", random_choices(count, 3), malicious=malicious),
    )
    h = HEADER_BYTES
    rows = padded_rows(count, malicious)
    base_up = h + (64 if malicious else 32) * 128
    kos_down, kos_up = (h + 16, h + 32) if malicious else (0, 0)
    assert result.transcript.bytes_by_direction() == {
        "receiver->sender": h + 32 + h + 16 * rows + kos_up,
        "sender->receiver": base_up + kos_down,
    }
    assert result.transcript.rounds() == (4 if malicious else 2)

    length = 20
    chosen = run_pair(
        chosen_ot_sender("receiver", np.zeros((count, length), np.uint8), np.ones((count, length), np.uint8), malicious=malicious),
        chosen_ot_receiver("sender", random_choices(count, 4), length, malicious=malicious),
    )
    assert chosen.transcript.bytes_by_direction()["sender->receiver"] == base_up + kos_down + h + 2 * length * count
    assert chosen.transcript.rounds() == (5 if malicious else 3)

    correlated = run_pair(
        correlated_ot_sender("receiver", count, DELTA, malicious=malicious),
        correlated_ot_receiver("sender", random_choices(count, 5), malicious=malicious),
    )
    assert correlated.transcript.bytes_by_direction()["sender->receiver"] == base_up + kos_down + h + 16 * count
    assert correlated.transcript.rounds() == (5 if malicious else 3)


def test_padded_rows_formula():
    assert padded_rows(0, False) == 0
    assert padded_rows(1, False) == 128
    assert padded_rows(128, False) == 128
    assert padded_rows(1, True) == 256
    assert padded_rows(1000, True) == 1280


@pytest.mark.parametrize("malicious", SECURITY)
def test_zero_ots_send_nothing(malicious):
    result = run_pair(
        random_ot_sender("receiver", 0, malicious=malicious),
        random_ot_receiver("sender", np.zeros(0, dtype=bool), malicious=malicious),
    )
    assert len(result.transcript) == 0


def test_invalid_inputs_raise_value_error():
    with pytest.raises(ValueError):
        next(random_ot_receiver("sender", np.array([0, 2])))
    with pytest.raises(ValueError):
        next(random_ot_receiver("sender", np.zeros((2, 2), dtype=np.uint8)))
    with pytest.raises(ValueError):
        next(correlated_ot_sender("receiver", 4, b"short"))
    with pytest.raises(ValueError):
        next(chosen_ot_sender("receiver", np.zeros((3, 4), np.uint8), np.zeros((3, 5), np.uint8)))
    with pytest.raises(ValueError):
        next(random_ot_sender("receiver", -1))


def matrix_intercept(change):
    """Apply ``change(index, payload)`` to extension-matrix messages from the receiver."""

    def intercept(src, dst, index, payload):
        if src == "receiver" and payload[0] == Kind.EXT_MATRIX:
            return change(index, payload)
        return payload

    return intercept


def run_random(count, malicious, intercept):
    return run_pair(
        random_ot_sender("receiver", count, malicious=malicious),
        random_ot_receiver("sender", random_choices(count, 9), malicious=malicious),
        intercept=intercept,
    )


@pytest.mark.parametrize("malicious", SECURITY)
def test_truncated_or_padded_matrix_aborts(malicious):
    with pytest.raises(RunFailed) as failed:
        run_random(200, malicious, matrix_intercept(lambda i, p: p[:-3]))
    assert isinstance(failed.value.failures["sender"], TruncatedMessage)
    with pytest.raises(RunFailed) as failed:
        run_random(200, malicious, matrix_intercept(lambda i, p: p + b"\x00"))
    assert type(failed.value.failures["sender"]) is MalformedMessage


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(extension, "CHUNK_ROWS", 256)


@pytest.mark.parametrize("malicious", SECURITY)
def test_reordered_or_replayed_matrix_chunks_abort(small_chunks, malicious):
    seen = []

    def swap_first_two(index, payload):
        seen.append(payload)
        if len(seen) == 1:
            return []
        if len(seen) == 2:
            return [payload, seen[0]]
        return payload

    with pytest.raises(RunFailed) as failed:
        run_random(1000, malicious, matrix_intercept(swap_first_two))
    assert isinstance(failed.value.failures["sender"], OutOfSequence)

    replayed = []

    def replay_first(index, payload):
        replayed.append(payload)
        return [payload, payload] if len(replayed) == 1 else payload

    with pytest.raises(RunFailed) as failed:
        run_random(1000, malicious, matrix_intercept(replay_first))
    assert isinstance(failed.value.failures["sender"], OutOfSequence)


def test_chunked_extension_still_correct(small_chunks):
    count = 1000
    choices = random_choices(count, 11)
    result = run_pair(
        correlated_ot_sender("receiver", count, DELTA, malicious=True),
        correlated_ot_receiver("sender", choices, malicious=True),
    )
    matrices = [e for e in result.transcript.view("sender") if e.payload[0] == Kind.EXT_MATRIX]
    assert len(matrices) == padded_rows(count, True) // 256
    expected = result.outputs["sender"] ^ (choices[:, None] * np.frombuffer(DELTA, dtype=np.uint8))
    assert np.array_equal(result.outputs["receiver"], expected)


def test_replayed_base_message_aborts():
    with pytest.raises(RunFailed) as failed:
        run_random(100, False, lambda s, d, i, p: [p, p] if s == "receiver" and i == 0 else p)
    assert isinstance(failed.value.failures["sender"], WrongMessageKind)


def test_tampered_kos_response_is_caught():
    def flip_response(src, dst, index, payload):
        if src == "receiver" and payload[0] == Kind.KOS_RESPONSE:
            return payload[:-1] + bytes([payload[-1] ^ 1])
        return payload

    with pytest.raises(RunFailed) as failed:
        run_random(500, True, flip_response)
    assert isinstance(failed.value.failures["sender"], CorrelationCheckFailed)


def cheating_kos_receiver(peer: str, count: int, cheat_columns: int):
    """A KOS receiver that uses a different choice vector in each of the first columns.

    Column ``j < cheat_columns`` carries the honest choices with row ``j`` flipped, which
    would let it learn ``s_j``. It then computes the check response as an honest receiver.
    """
    keys0, keys1 = yield from base_ot_sender(peer, 128, malicious=True)
    rows = padded_rows(count, True)
    choices = np.random.default_rng(1).integers(0, 2, rows).astype(np.uint8)
    packed = np.packbits(choices, bitorder="little")
    t_columns = extension._ColumnGenerator(keys0).next_columns(rows // 8)
    matrix = extension._ColumnGenerator(keys1).next_columns(rows // 8) ^ t_columns ^ packed
    for j in range(cheat_columns):
        matrix[j, j // 8] ^= 1 << (j % 8)
    yield Send(peer, header(Kind.EXT_MATRIX, 0) + matrix.tobytes())
    seed = bytes(parse((yield Receive(peer)), Kind.KOS_CHALLENGE, 0, 16))
    coefficients = extension._challenge_columns(seed, rows)
    x = gf128.select_sum(coefficients, packed)
    t = gf128.inner_product(coefficients, t_columns)
    yield Send(peer, frame(Kind.KOS_RESPONSE, gf128.to_bytes(x) + gf128.to_bytes(t)))


def test_kos_catches_receiver_with_inconsistent_columns():
    count = 300
    with pytest.raises(RunFailed) as failed:
        run_pair(random_ot_sender("receiver", count, malicious=True), cheating_kos_receiver("sender", count, 64))
    assert isinstance(failed.value.failures["sender"], CorrelationCheckFailed)


def test_kos_check_passes_when_columns_are_consistent():
    count = 300
    result = run_pair(random_ot_sender("receiver", count, malicious=True), cheating_kos_receiver("sender", count, 0))
    assert result.outputs["sender"][0].shape == (count, 16)


def bit_frequencies(matrix: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(matrix, dtype=np.uint8)).reshape(-1, 8 * 64).mean(axis=0)


@pytest.mark.parametrize("malicious", SECURITY)
def test_sender_view_independent_of_choices(malicious):
    count = 4096
    matrices = {}
    for choice in (0, 1):
        result = run_random_with(count, malicious, np.full(count, choice, dtype=np.uint8))
        bodies = [e.payload for e in result.transcript.view("sender") if e.payload[0] == Kind.EXT_MATRIX]
        matrices[choice] = b"".join(b[HEADER_BYTES:] for b in bodies)
    assert len(matrices[0]) == len(matrices[1])
    # Each of the 512 bit positions of 64-byte blocks is averaged over len / 64 blocks.
    blocks = len(matrices[0]) // 64
    p0, p1 = bit_frequencies(matrices[0]), bit_frequencies(matrices[1])
    z = np.abs(p0 - p1) / np.sqrt(0.25 * 2 / blocks)
    assert np.max(z) < 5.5
    assert abs(p0.mean() - 0.5) < 0.01


def run_random_with(count, malicious, choices):
    return run_pair(
        random_ot_sender("receiver", count, malicious=malicious),
        random_ot_receiver("sender", choices, malicious=malicious),
    )


def batches_sender(peer, malicious, counts):
    setup = yield from extension.extension_sender_setup(peer, malicious=malicious)
    outputs = []
    for count in counts:
        outputs.append((yield from random_ot_sender(peer, count, malicious=malicious, setup=setup)))
    outputs.append((yield from correlated_ot_sender(peer, 50, DELTA, malicious=malicious, setup=setup)))
    return outputs


def batches_receiver(peer, malicious, choices_list):
    setup = yield from extension.extension_receiver_setup(peer, malicious=malicious)
    outputs = []
    for choices in choices_list:
        outputs.append((yield from random_ot_receiver(peer, choices, malicious=malicious, setup=setup)))
    outputs.append((yield from correlated_ot_receiver(peer, np.ones(50, dtype=np.uint8), malicious=malicious, setup=setup)))
    return outputs


@pytest.mark.parametrize("malicious", SECURITY)
def test_shared_setup_serves_several_batches(malicious):
    counts = [10, 300, 10]
    choices_list = [random_choices(count, 20 + k) for k, count in enumerate(counts)]
    result = run_pair(batches_sender("receiver", malicious, counts), batches_receiver("sender", malicious, choices_list))
    sent = result.outputs["sender"]
    received = result.outputs["receiver"]
    for (m0, m1), chosen, choices in zip(sent[:3], received[:3], choices_list):
        assert np.array_equal(chosen, np.where(choices[:, None] == 1, m1, m0))
    assert np.array_equal(received[3], sent[3] ^ np.frombuffer(DELTA, dtype=np.uint8))

    # Equal-sized batches still get unrelated outputs, because keystream and tweaks move on.
    assert not np.any(np.all(sent[0][0] == sent[2][0], axis=1))

    base_messages = [r for r in result.transcript.records if r.payload[0] in (Kind.NP_SENDER_POINT, Kind.MR_SENDER_POINT)]
    assert len(base_messages) == 1


def test_setup_with_other_security_is_rejected():
    def sender(peer):
        setup = yield from extension.extension_sender_setup(peer, malicious=False)
        return (yield from random_ot_sender(peer, 10, malicious=True, setup=setup))

    def receiver(peer):
        setup = yield from extension.extension_receiver_setup(peer, malicious=False)
        return (yield from random_ot_receiver(peer, np.zeros(10, dtype=np.uint8), malicious=False, setup=setup))

    with pytest.raises(RunFailed) as failed:
        run_pair(sender("receiver"), receiver("sender"))
    assert isinstance(failed.value.failures["sender"], ValueError)
