"""Trace record and replay: same network gives the live timing, other networks shift it."""

import networkx as nx
import pytest

from testbed.effects import Phase, Receive, Send
from testbed.network import LinkSpec, Network
from testbed.replay import replay
from testbed.runners.memory import run_in_memory
from testbed.runners.simulated import run_simulated
from testbed.trace import Trace


def client(rounds):
    yield Phase("setup")
    yield Send("server", bytes(5000))
    yield Receive("server")
    yield Phase("work")
    acc = 0
    for i in range(rounds):
        for j in range(2000):  # real compute between effects
            acc += j * i
        yield Send("server", acc.to_bytes(16, "big") * (1 + i % 7))
        yield Receive("server")
    return acc


def server(rounds):
    yield Phase("setup")
    yield Receive("client")
    yield Send("client", bytes(100_000))
    yield Phase("work")
    for _ in range(rounds):
        message = yield Receive("client")
        yield Send("client", message[::-1] * 3)


def star(party_names, link):
    graph = nx.Graph()
    for name in party_names:
        graph.add_edge(name, "router", link=link)
    return Network(graph, seed=7)


def test_replay_equals_live_run_on_same_network():
    for link in (LinkSpec(1e9, 0.001), LinkSpec(100e6, 0.02, jitter_s=0.002), LinkSpec(20e6, 0.04, 0.01, 0.01)):
        net = Network.full_mesh(["client", "server"], link, seed=3)
        live = run_simulated({"client": client(30), "server": server(30)}, net)
        replayed = replay(Trace(live.trace), net)
        assert replayed.sim_seconds == live.sim_seconds
        assert replayed.party_end_s == live.party_end_s
        assert [r.sim_recv_s for r in replayed.transcript] == [r.sim_recv_s for r in live.transcript]
        assert replayed.phase_span_s == live.phase_span_s


def test_replay_equals_live_run_with_shared_router():
    def sink():
        for _ in range(20):
            yield Receive("a")
            yield Receive("b")
        yield Send("a", b"done")
        yield Send("b", b"done")

    def source(payload_size):
        for i in range(20):
            yield Send("c", bytes(payload_size + i))
        yield Receive("c")

    net = star(["a", "b", "c"], LinkSpec(1e9, 0.0005, jitter_s=0.0001))
    live = run_simulated({"a": source(300_000), "b": source(200_000), "c": sink()}, net)
    replayed = replay(Trace(live.trace), net)
    assert replayed.sim_seconds == live.sim_seconds
    assert [r.sim_recv_s for r in replayed.transcript] == [r.sim_recv_s for r in live.transcript]


def test_added_latency_grows_time_by_rounds():
    net = Network.full_mesh(["client", "server"], LinkSpec(1e9, 0.001))
    live = run_simulated({"client": client(25), "server": server(25)}, net)
    rounds = live.transcript.rounds()
    slower = replay(Trace(live.trace), net.with_link(latency_s=0.011))
    assert rounds == 52
    assert slower.sim_seconds - live.sim_seconds == pytest.approx(rounds * 0.010, rel=1e-9)


def test_trace_from_memory_run_replays():
    result = run_in_memory({"client": client(5), "server": server(5)})
    trace = Trace(result.trace)
    assert trace.message_count() == 12
    net = Network.full_mesh(["client", "server"], LinkSpec(1e9, 0.01))
    timing = replay(trace, net, compute_factor=0)
    assert timing.sim_seconds == pytest.approx(12 * 0.01 + sum((r.nbytes + 8) * 8 / 1e9 for r in result.transcript))


def test_trace_round_trips_through_file(tmp_path):
    net = Network.full_mesh(["client", "server"], LinkSpec(1e9, 0.001))
    live = run_simulated({"client": client(3), "server": server(3)}, net)
    trace = Trace(live.trace, meta={"scenario": "t"})
    trace.save(tmp_path / "trace.json.gz")
    loaded = Trace.load(tmp_path / "trace.json.gz")
    assert loaded.meta == {"scenario": "t"}
    assert replay(loaded, net).sim_seconds == live.sim_seconds


def test_trace_with_bad_format_is_rejected():
    with pytest.raises(ValueError, match="unsupported trace format"):
        Trace.from_json({"format": 99, "parties": {}})
    with pytest.raises(ValueError, match="invalid trace step kind"):
        Trace.from_json({"format": 1, "parties": {"a": {"final_compute_s": 0, "steps": [[0, "jump", "", 0, ""]]}}})


def test_simultaneous_exchange_replays_without_livelock():
    def exchange(peer, rounds):
        for i in range(rounds):
            yield Send(peer, bytes(10 + i))
            yield Receive(peer)

    net = Network.full_mesh(["a", "b"], LinkSpec())
    live = run_simulated({"a": exchange("b", 50), "b": exchange("a", 50)}, net, compute_factor=0)
    replayed = replay(Trace(live.trace), net, compute_factor=0)
    assert replayed.messages == 100
    assert replayed.sim_seconds == live.sim_seconds == 0.0
