"""The same coroutines under the in-memory, simulated and TCP runners."""

import hashlib

import pytest

from testbed.effects import Phase, Receive, Send
from testbed.errors import DeadlockError, MalformedMessage, PeerAborted, RunFailed
from testbed.network import LinkSpec, Network
from testbed.runners.memory import run_in_memory
from testbed.runners.simulated import run_simulated
from testbed.runners.tcp import run_tcp


def hash_chain_a(rounds: int, seed: bytes):
    """Alternate hashing with the peer; the output depends on every message in order."""
    yield Phase("chain")
    state = seed
    for i in range(rounds):
        yield Send("b", state * (i + 1))
        state = hashlib.sha256((yield Receive("b"))).digest()
    return state


def hash_chain_b(rounds: int):
    yield Phase("chain")
    seen = []
    for _ in range(rounds):
        message = yield Receive("a")
        seen.append(len(message))
        yield Send("a", hashlib.sha256(message).digest() + bytes(len(seen)))
    return seen


def fan_in(parties):
    """Party c receives one message from every other party."""
    total = []
    for peer in parties:
        total.append((yield Receive(peer)))
    return b"".join(total)


def one_shot(peer, payload):
    yield Send(peer, payload)
    return len(payload)


def make_chain():
    return {"a": hash_chain_a(12, b"seed"), "b": hash_chain_b(12)}


def run_all(make):
    net = Network.full_mesh(["a", "b", "c"], LinkSpec(1e9, 0.001))
    return [
        run_in_memory(make()),
        run_simulated(make(), net, keep_payloads=True),
        run_tcp(make()),
    ]


def test_same_outputs_in_every_runner():
    results = run_all(make_chain)
    outputs = [r.outputs for r in results]
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0]["b"] == [4 * (i + 1) for i in range(1)] + [32 * (i + 1) for i in range(1, 12)]


def test_same_transcripts_in_every_runner():
    results = run_all(make_chain)
    digests = [[(r.src, r.dst, r.nbytes, r.digest) for r in result.transcript] for result in results]
    assert digests[0] == digests[1] == digests[2]
    views = [result.transcript.view("a") for result in results]
    assert [v.payload for v in views[0]] == [v.payload for v in views[1]] == [v.payload for v in views[2]]


def test_three_parties_in_every_runner():
    def make():
        return {"a": one_shot("c", b"A" * 10), "b": one_shot("c", b"B" * 20), "c": fan_in(["a", "b"])}

    results = run_all(make)
    for result in results:
        assert result.outputs == {"a": 10, "b": 20, "c": b"A" * 10 + b"B" * 20}


def test_view_lists_received_messages_in_order():
    result = run_in_memory(make_chain())
    view = result.transcript.view("b")
    assert len(view) == 12
    assert all(entry.src == "a" and entry.phase == "chain" for entry in view)
    assert view[0].payload == b"seed"


def test_view_needs_kept_payloads():
    result = run_in_memory(make_chain(), keep_payloads=False)
    assert result.outputs["b"][0] == 4
    with pytest.raises(ValueError, match="keep_payloads"):
        result.transcript.view("a")


def test_trace_records_every_effect():
    result = run_in_memory(make_chain())
    kinds = [step.kind for step in result.trace["a"].steps]
    assert kinds == ["phase"] + ["send", "recv"] * 12
    assert [s.nbytes for s in result.trace["a"].steps if s.kind == "send"][:2] == [4, 64]


def test_memory_runner_detects_deadlock():
    def waits(peer):
        yield Receive(peer)

    with pytest.raises(DeadlockError, match="a waits for b"):
        run_in_memory({"a": waits("b"), "b": waits("a")})


def test_failure_propagates_to_waiting_peer():
    def strict():
        message = yield Receive("b")
        if message != b"ok":
            raise MalformedMessage(f"expected b'ok', got {message!r}")
        yield Send("b", b"done")

    def peer():
        yield Send("a", b"bad")
        return (yield Receive("a"))

    for run in (run_in_memory, lambda p: run_simulated(p, Network.full_mesh(["a", "b"], LinkSpec())), run_tcp):
        with pytest.raises(RunFailed) as failed:
            run({"a": strict(), "b": peer()})
        assert isinstance(failed.value.failures["a"], MalformedMessage)
        assert isinstance(failed.value.failures["b"], PeerAborted)


def test_intercept_can_tamper_drop_and_replay():
    seen = {}

    def tamper(src, dst, index, payload):
        if src == "a" and index == 0:
            return [payload, payload]  # replayed
        return payload

    def count_receiver():
        first = yield Receive("a")
        second = yield Receive("a")
        return first == second

    result = run_in_memory({"a": one_shot("b", b"x"), "b": count_receiver()}, intercept=tamper)
    assert result.outputs["b"] is True
    seen = [r.nbytes for r in result.transcript]
    assert seen == [1, 1]


def test_yielding_a_non_effect_fails_clearly():
    def wrong():
        yield "send please"

    with pytest.raises(RunFailed, match="may yield only Send, Receive or Phase"):
        run_in_memory({"a": wrong(), "b": one_shot("a", b"")})


def test_unknown_peer_fails_clearly():
    with pytest.raises(RunFailed, match="unknown peer 'zed'"):
        run_in_memory({"a": one_shot("zed", b"x")})


def test_non_bytes_payload_fails_clearly():
    def sends_str():
        yield Send("b", "text")

    with pytest.raises(RunFailed, match="payloads must be bytes"):
        run_in_memory({"a": sends_str(), "b": hash_chain_b(0)})


def test_tcp_carries_large_and_empty_messages():
    def big_sender():
        yield Send("b", b"")
        yield Send("b", bytes(range(256)) * 40_000)
        return (yield Receive("b"))

    def big_receiver():
        empty = yield Receive("a")
        big = yield Receive("a")
        yield Send("a", hashlib.sha256(big).digest())
        return len(empty), len(big)

    result = run_tcp({"a": big_sender(), "b": big_receiver()})
    assert result.outputs["b"] == (0, 10_240_000)
    assert result.outputs["a"] == hashlib.sha256(bytes(range(256)) * 40_000).digest()


def test_rounds_count_causal_chain():
    for result in run_all(make_chain):
        assert result.transcript.rounds() == 24
        assert result.transcript.rounds("chain") == 24


def test_memory_runner_streams_with_bounded_memory():
    import tracemalloc

    def stream():
        for _ in range(100):
            yield Send("b", bytes(1_000_000))

    def drain():
        total = 0
        for _ in range(100):
            total += len((yield Receive("a")))
        return total

    tracemalloc.start()
    try:
        result = run_in_memory({"a": stream(), "b": drain()}, keep_payloads=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.outputs["b"] == 100_000_000
    assert peak < 10_000_000


def test_sender_may_reuse_its_buffer():
    def reuse():
        buffer = bytearray(4)
        for i in range(3):
            buffer[:] = bytes([i]) * 4
            yield Send("b", memoryview(buffer))

    def collect():
        received = []
        for _ in range(3):
            received.append((yield Receive("a")))
        return received

    for run in (run_in_memory, lambda p: run_simulated(p, Network.full_mesh(["a", "b"], LinkSpec())), run_tcp):
        result = run({"a": reuse(), "b": collect()})
        assert result.outputs["b"] == [b"\x00" * 4, b"\x01" * 4, b"\x02" * 4]
