"""Two-party matching protocol: output, views of each party, costs and hostile messages."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.matching import garbled, protocol
from protocols.ot import extension
from protocols.ot.codec import HEADER_BYTES
from protocols.matching.fixed_point import FixedPointParams, encode_keys, encode_query, encoded_scores, reference_match
from testbed.errors import MalformedMessage, ProtocolAbort, RunFailed, TruncatedMessage, UnexpectedMessage
from testbed.network import Network, profile
from testbed.runners.memory import run_in_memory
from testbed.runners.simulated import run_simulated
from testbed.runners.tcp import run_tcp

SP = "sp"
MRI = "mri"


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run_matching(q, keys, threshold=None, *, intercept=None, params=None):
    return run_in_memory(
        {
            SP: protocol.matching_sp(MRI, q, len(keys), params=params),
            MRI: protocol.matching_mri(SP, keys, threshold, params=params),
        },
        intercept=intercept,
    )


def make_case(kind: str, rng: np.random.Generator):
    """Return (q, keys, threshold) for one database of the given kind."""
    d = int(rng.choice([4, 8, 16, 33]))
    n = int(rng.integers(1, 40))
    keys = unit_rows(rng, n, d)
    q = unit_rows(rng, 1, d)[0]
    threshold = None
    params = FixedPointParams(dim=d)
    scale = 2.0**params.score_frac_bits

    if kind == "exact_tie":
        n = max(n, 3)
        keys = unit_rows(rng, n, d)
        i, j = sorted(rng.choice(n, size=2, replace=False))
        keys[j] = keys[i]
        q = keys[i].copy()
    elif kind == "near_tie":
        n = max(n, 2)
        keys = unit_rows(rng, n, d)
        i, j = rng.choice(n, size=2, replace=False)
        perturbed = keys[i] + rng.normal(scale=1e-7, size=d)
        keys[j] = perturbed / np.linalg.norm(perturbed)
        q = keys[i].copy()
    elif kind == "all_equal":
        keys = np.repeat(unit_rows(rng, 1, d), n, axis=0)
    elif kind == "single_key":
        keys = unit_rows(rng, 1, d)
    elif kind in ("threshold_at_max", "threshold_above_max"):
        best = int(np.max(encoded_scores(encode_query(q, params), encode_keys(keys, params))))
        threshold = best / scale if kind == "threshold_at_max" else (best + 1) / scale
    elif kind == "threshold_random":
        threshold = float(rng.uniform(-0.5, 0.5))
    return q, keys, threshold


CASE_KINDS = [
    "random",
    "exact_tie",
    "near_tie",
    "all_equal",
    "single_key",
    "threshold_at_max",
    "threshold_above_max",
    "threshold_random",
]


@pytest.mark.parametrize("kind", CASE_KINDS)
def test_output_equals_reference(kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    for _ in range(40):
        q, keys, threshold = make_case(kind, rng)
        result = run_matching(q, keys, threshold)
        expected = reference_match(q, keys, threshold, FixedPointParams(dim=keys.shape[1]))
        assert result.outputs[SP] == expected
        assert result.outputs[MRI] is None
        if kind == "threshold_above_max":
            assert expected is None
        if kind in ("all_equal", "single_key"):
            assert expected == 0


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 63, 64, 65, 200])
def test_output_for_sizes_around_powers_of_two(n):
    rng = np.random.default_rng(n)
    keys = unit_rows(rng, n, 16)
    for target in {0, n // 2, n - 1}:
        result = run_matching(keys[target].copy(), keys)
        assert result.outputs[SP] == target


def test_output_full_width_chunked(monkeypatch):
    monkeypatch.setattr(protocol, "CORRECTION_CHUNK_BYTES", 200_000)
    rng = np.random.default_rng(768)
    keys = unit_rows(rng, 100, 768)
    q = unit_rows(rng, 1, 768)[0]
    result = run_matching(q, keys, 0.05)
    assert result.outputs[SP] == reference_match(q, keys, 0.05, FixedPointParams(dim=768))
    chunks = [r for r in result.transcript.records if r.phase == protocol.PHASE_PRODUCTS and r.src == MRI]
    assert len(chunks) > 3


def protocol_messages(result, src: str):
    """Return this protocol's own messages from ``src`` (after the OT phase), in order."""
    return [r for r in result.transcript.records if r.src == src and r.phase != protocol.PHASE_OT]


def test_bytes_and_rounds_match_formulas():
    rng = np.random.default_rng(11)
    n, d = 37, 16
    keys = unit_rows(rng, n, d)
    result = run_matching(unit_rows(rng, 1, d)[0], keys)
    expected = protocol.message_bytes(n, FixedPointParams(dim=d))
    assert sum(r.nbytes for r in protocol_messages(result, MRI)) == expected["mri->sp"]
    assert sum(r.nbytes for r in protocol_messages(result, SP)) == expected["sp->mri"]
    # Sub-phase depths count from the start of matching: two OT rounds, then corrections and
    # the SP's flips, then the garbled circuit.
    depth = {}
    for record in result.transcript.records:
        depth[record.phase] = max(depth.get(record.phase, 0), record.depth)
    assert depth[protocol.PHASE_OT] == 2
    assert depth[protocol.PHASE_PRODUCTS] == 4
    assert depth[protocol.PHASE_ARGMAX] == 5
    assert result.transcript.rounds() == 5


def test_ot_bytes_match_iknp_formula():
    rng = np.random.default_rng(19)
    n, d = 37, 16
    params = FixedPointParams(dim=d)
    result = run_matching(unit_rows(rng, 1, d)[0], unit_rows(rng, n, d))
    rows = extension.padded_rows(protocol.ot_count(n, params), malicious=False)
    chunks = -(-rows // extension.CHUNK_ROWS)
    ot_bytes = result.transcript.bytes_by_direction(protocol.PHASE_OT)
    # Base OTs: one 32-byte point to the MRI, 128 points back; then the extension matrix.
    assert ot_bytes["sp->mri"] == HEADER_BYTES + 32 + chunks * HEADER_BYTES + 16 * rows
    assert ot_bytes["mri->sp"] == HEADER_BYTES + 32 * 128


def test_mri_view_does_not_depend_on_query():
    # Two very different queries, 30 runs each. Every message the MRI receives (the OT
    # extension's and the SP's choice flips) must have the same size for both queries. Its
    # fraction of one-bits must not tell the queries apart, and the flips must be unbiased bits.
    rng = np.random.default_rng(12)
    n, d = 40, 16
    keys = unit_rows(rng, n, d)
    queries = {"near": keys[3].copy(), "opposite": -keys[3].copy()}
    runs = 30
    sizes = {}
    ones = {}
    for name, q in queries.items():
        sizes[name] = set()
        ones[name] = None
        for _ in range(runs):
            view = run_matching(q, keys).transcript.view(MRI)
            sizes[name].add(tuple(len(entry.payload) for entry in view))
            counts = np.array([np.unpackbits(np.frombuffer(e.payload, np.uint8)).sum() for e in view])
            ones[name] = counts if ones[name] is None else ones[name] + counts
    assert len(sizes["near"]) == 1
    assert sizes["near"] == sizes["opposite"]

    message_bits = 8 * np.array(next(iter(sizes["near"]))) * runs
    near = ones["near"] / message_bits
    opposite = ones["opposite"] / message_bits
    # Five standard deviations of the difference of two means of fair bits.
    tolerance = 5 * np.sqrt(2 * 0.25 / message_bits)
    assert np.all(np.abs(near - opposite) < tolerance)
    flips = -1  # the choice flips are the MRI's last received message
    assert abs(near[flips] - 0.5) < tolerance[flips]
    assert abs(opposite[flips] - 0.5) < tolerance[flips]


def test_sp_decoding_info_covers_only_index_bits():
    rng = np.random.default_rng(13)
    n, d = 50, 8
    keys = unit_rows(rng, n, d)
    result = run_matching(keys[7].copy(), keys)
    garbled_messages = [e.payload for e in result.transcript.view(SP) if e.phase == protocol.PHASE_ARGMAX]
    assert len(garbled_messages) == 1
    ring = FixedPointParams(dim=d).ring_bits
    labels, tables, decoding = protocol._parse_garbled_circuit(garbled_messages[0], n, ring)
    # One label per garbler input wire, two ciphertexts per AND gate, and W = 6 decoding bits.
    assert labels.shape == (ring * (n + 1) + 1, 2)
    assert tables.shape == (garbled.count_and_gates(n, ring), 2, 2)
    assert decoding.shape == (garbled.index_bits(n + 1),)
    tail = len(garbled_messages[0]) - 1 - labels.nbytes - tables.nbytes
    assert tail == 1


# Hostile messages. Each case names the sender whose message is altered, which of that
# sender's protocol messages (after the OT phase), how, the party that must abort and the
# exception it must raise.


def truncate(payload: bytes) -> bytes:
    return payload[: len(payload) // 2]


def extend(payload: bytes) -> bytes:
    return payload + b"\x00"


def unknown_kind(payload: bytes) -> bytes:
    return b"\x7f" + payload[1:]


def set_last_bit(payload: bytes) -> bytes:
    return payload[:-1] + bytes([payload[-1] | 0x80])


def wrong_database_size(payload: bytes) -> bytes:
    header = bytearray(payload)
    header[8] ^= 0x01  # low byte of n in the chunk header
    return bytes(header)


HOSTILE_CASES = [
    (MRI, 0, truncate, SP, TruncatedMessage),
    (MRI, 0, extend, SP, MalformedMessage),
    (MRI, 0, unknown_kind, SP, MalformedMessage),
    (MRI, 0, wrong_database_size, SP, UnexpectedMessage),
    (MRI, 1, truncate, SP, TruncatedMessage),
    (MRI, 1, extend, SP, MalformedMessage),
    (MRI, 2, truncate, SP, TruncatedMessage),
    (MRI, 2, extend, SP, MalformedMessage),
    (MRI, 2, set_last_bit, SP, MalformedMessage),
    (SP, 0, truncate, MRI, TruncatedMessage),
    (SP, 0, extend, MRI, MalformedMessage),
    (SP, 0, unknown_kind, MRI, MalformedMessage),
    (SP, 0, set_last_bit, MRI, MalformedMessage),
    (SP, 0, lambda p: b"", MRI, TruncatedMessage),
]


@pytest.mark.parametrize("src, position, tamper, victim, error", HOSTILE_CASES)
def test_hostile_message_aborts(src, position, tamper, victim, error):
    rng = np.random.default_rng(14)
    n, d = 5, 8  # 150 flip bits and W = 3 index bits: both leave padding bits to set
    keys = unit_rows(rng, n, d)
    q = unit_rows(rng, 1, d)[0]
    clean = run_matching(q, keys)
    ot_messages = sum(1 for r in clean.transcript.records if r.src == src and r.phase == protocol.PHASE_OT)
    dst = SP if src == MRI else MRI

    def intercept(sender, receiver, index, payload):
        if (sender, receiver, index) == (src, dst, ot_messages + position):
            return tamper(payload)
        return payload

    with pytest.raises(RunFailed) as failed:
        run_matching(q, keys, intercept=intercept)
    assert isinstance(failed.value.failures[victim], error)


@pytest.mark.parametrize("duplicate", ["replay", "drop"])
def test_reordered_correction_chunks_abort(monkeypatch, duplicate):
    monkeypatch.setattr(protocol, "CORRECTION_CHUNK_BYTES", 1000)
    rng = np.random.default_rng(15)
    keys = unit_rows(rng, 5, 32)
    q = unit_rows(rng, 1, 32)[0]
    clean = run_matching(q, keys)
    ot_messages = sum(1 for r in clean.transcript.records if r.src == MRI and r.phase == protocol.PHASE_OT)

    def intercept(sender, receiver, index, payload):
        if sender == MRI and index == ot_messages:
            return [payload, payload] if duplicate == "replay" else []
        return payload

    with pytest.raises(RunFailed) as failed:
        run_matching(q, keys, intercept=intercept)
    assert isinstance(failed.value.failures[SP], protocol.MatchingOutOfOrder)


def test_invalid_local_inputs_rejected():
    rng = np.random.default_rng(16)
    keys = unit_rows(rng, 3, 8)
    with pytest.raises(RunFailed) as failed:
        run_matching(np.ones(8), keys)
    assert isinstance(failed.value.failures[SP], ValueError)
    with pytest.raises(ValueError, match="n_keys"):
        next(protocol.matching_sp(MRI, keys[0], 0))


def test_runs_on_simulated_network():
    rng = np.random.default_rng(17)
    keys = unit_rows(rng, 30, 16)
    q = keys[12].copy()
    setting = profile("wan-100m")
    network = Network.full_mesh([SP, MRI], setting.link, overhead_bytes=setting.overhead_bytes)
    result = run_simulated(
        {SP: protocol.matching_sp(MRI, q, 30), MRI: protocol.matching_mri(SP, keys, 0.5)},
        network,
    )
    assert result.outputs[SP] == 12
    # Five message rounds across a 20 ms one-way link take at least 0.1 s.
    assert result.sim_seconds >= 5 * 0.020


def test_runs_over_tcp_loopback():
    rng = np.random.default_rng(18)
    keys = unit_rows(rng, 30, 16)
    q = keys[29].copy()
    result = run_tcp({SP: protocol.matching_sp(MRI, q, 30), MRI: protocol.matching_mri(SP, keys, None)}, timeout_s=60)
    assert result.outputs[SP] == 29
    assert result.outputs[MRI] is None


def test_database_size_mismatch_aborts():
    rng = np.random.default_rng(20)
    keys = unit_rows(rng, 6, 8)
    parties = {
        SP: protocol.matching_sp(MRI, keys[0].copy(), 7),
        MRI: protocol.matching_mri(SP, keys, None),
    }
    with pytest.raises(RunFailed) as failed:
        run_in_memory(parties)
    # The OT batch sizes differ first, so the OT extension's parser rejects the matrix.
    assert any(isinstance(error, ProtocolAbort) for error in failed.value.failures.values())


def test_decoding_outside_index_range_aborts():
    rng = np.random.default_rng(21)
    keys = unit_rows(rng, 5, 8)
    q = keys[2].copy()
    clean = run_matching(q, keys)
    assert clean.outputs[SP] == 2
    ot_messages = sum(1 for r in clean.transcript.records if r.src == MRI and r.phase == protocol.PHASE_OT)

    def intercept(sender, receiver, index, payload):
        if sender == MRI and index == ot_messages + 2:
            # Flip the decoding bits so the three index bits decode to 7, beyond the no-match index 5.
            return payload[:-1] + bytes([payload[-1] ^ (2 ^ 7)])
        return payload

    with pytest.raises(RunFailed) as failed:
        run_matching(q, keys, intercept=intercept)
    assert isinstance(failed.value.failures[SP], protocol.MatchingAbort)
    assert "outside" in str(failed.value.failures[SP])
