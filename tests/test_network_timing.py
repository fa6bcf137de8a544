"""Simulated times against closed forms: the network model's table of cases."""

import math

import networkx as nx
import pytest

from testbed.effects import Phase, Receive, Send
from testbed.errors import LinkDown, RunFailed
from testbed.network import PROFILES, LinkSpec, Network, mathis_limit_bps
from testbed.runners.simulated import Fault, run_simulated

OVERHEAD = 8


def mesh(bandwidth=1e9, latency=0.01, **extra) -> Network:
    return Network.full_mesh(["a", "b", "c"], LinkSpec(bandwidth, latency, **extra), overhead_bytes=OVERHEAD)


def tx(nbytes, bandwidth=1e9):
    return (nbytes + OVERHEAD) * 8 / bandwidth


def sender(peer, sizes):
    for size in sizes:
        yield Send(peer, bytes(size))


def receiver(peer, count):
    sizes = []
    for _ in range(count):
        sizes.append(len((yield Receive(peer))))
    return sizes


def request_response(peer, rounds, size):
    for _ in range(rounds):
        yield Send(peer, bytes(size))
        yield Receive(peer)


def responder(peer, rounds, size):
    for _ in range(rounds):
        yield Receive(peer)
        yield Send(peer, bytes(size))


def test_single_message_time():
    result = run_simulated({"a": sender("b", [1_000_000]), "b": receiver("a", 1)}, mesh(), compute_factor=0)
    assert result.sim_seconds == pytest.approx(tx(1_000_000) + 0.01, rel=1e-12)
    assert result.transcript.records[0].sim_recv_s == pytest.approx(tx(1_000_000) + 0.01, rel=1e-12)


def test_back_to_back_messages_pipeline():
    sizes = [500_000, 250_000, 125_000]
    result = run_simulated({"a": sender("b", sizes), "b": receiver("a", 3)}, mesh(), compute_factor=0)
    arrivals = [r.sim_recv_s for r in result.transcript.records]
    expected, sent = [], 0.0
    for size in sizes:
        sent += tx(size)
        expected.append(sent + 0.01)
    assert arrivals == pytest.approx(expected, rel=1e-12)
    # One latency in total, not one per message.
    assert result.sim_seconds == pytest.approx(sum(tx(s) for s in sizes) + 0.01, rel=1e-12)


@pytest.mark.parametrize("rounds", [1, 5, 20])
def test_request_response_rounds(rounds):
    result = run_simulated(
        {"a": request_response("b", rounds, 1000), "b": responder("a", rounds, 10)}, mesh(), compute_factor=0
    )
    expected = rounds * (tx(1000) + 0.01 + tx(10) + 0.01)
    assert result.sim_seconds == pytest.approx(expected, rel=1e-12)
    assert result.transcript.rounds() == 2 * rounds


def test_multi_hop_path_uses_bottleneck_and_sums_latency():
    graph = nx.Graph()
    graph.add_edge("a", "r1", link=LinkSpec(1e9, 0.001))
    graph.add_edge("r1", "r2", link=LinkSpec(100e6, 0.02))
    graph.add_edge("r2", "b", link=LinkSpec(1e9, 0.002))
    net = Network(graph, overhead_bytes=OVERHEAD)
    result = run_simulated({"a": sender("b", [1_000_000]), "b": receiver("a", 1)}, net, compute_factor=0)
    assert result.sim_seconds == pytest.approx(0.023 + tx(1_000_000, 100e6), rel=1e-12)


def test_path_follows_lowest_latency():
    graph = nx.Graph()
    graph.add_edge("a", "b", link=LinkSpec(1e9, 0.05))
    graph.add_edge("a", "r", link=LinkSpec(1e9, 0.01))
    graph.add_edge("r", "b", link=LinkSpec(1e9, 0.01))
    net = Network(graph, overhead_bytes=OVERHEAD)
    assert net.path("a", "b") == ["a", "r", "b"]
    result = run_simulated({"a": sender("b", [1000]), "b": receiver("a", 1)}, net, compute_factor=0)
    assert result.sim_seconds == pytest.approx(0.02 + tx(1000), rel=1e-12)


def test_two_flows_share_link_fifo():
    # a and c both send 1 MB to b through router r; the r-b link is the shared bottleneck.
    graph = nx.Graph()
    graph.add_edge("a", "r", link=LinkSpec(10e9, 0.0))
    graph.add_edge("c", "r", link=LinkSpec(10e9, 0.0))
    graph.add_edge("r", "b", link=LinkSpec(1e9, 0.01))
    net = Network(graph, overhead_bytes=OVERHEAD)

    def both_receiver():
        first = yield Receive("a")
        second = yield Receive("c")
        return len(first) + len(second)

    result = run_simulated(
        {"a": sender("b", [1_000_000]), "c": sender("b", [1_000_000]), "b": both_receiver()}, net, compute_factor=0
    )
    arrivals = sorted(r.sim_recv_s for r in result.transcript.records)
    assert arrivals[0] == pytest.approx(tx(1_000_000) + 0.01, rel=1e-9)
    assert arrivals[1] == pytest.approx(2 * tx(1_000_000) + 0.01, rel=1e-9)


def test_jitter_stays_within_bound_and_keeps_order():
    net = mesh(jitter_s=0.005)
    result = run_simulated({"a": sender("b", [100] * 200), "b": receiver("a", 200)}, net, compute_factor=0)
    arrivals = [r.sim_recv_s for r in result.transcript.records]
    assert arrivals == sorted(arrivals)
    lower = [(i + 1) * tx(100) + 0.01 for i in range(200)]
    for arrival, low in zip(arrivals, lower):
        assert low - 1e-12 <= arrival
    assert arrivals[0] <= lower[0] + 0.005 + 1e-12
    assert max(a - low for a, low in zip(arrivals, lower)) <= 0.005 + 1e-12


def test_loss_limits_throughput_by_mathis_formula():
    net = mesh(bandwidth=1e9, latency=0.02, loss_rate=0.01)
    result = run_simulated({"a": sender("b", [10_000_000]), "b": receiver("a", 1)}, net, compute_factor=0)
    rate = mathis_limit_bps(0.04, 0.01)
    assert rate < 1e9
    assert result.sim_seconds == pytest.approx((10_000_000 + OVERHEAD) * 8 / rate + 0.02, rel=1e-12)


def test_compute_factor_scales_measured_compute():
    def busy():
        total = 0
        for i in range(200_000):
            total += i
        yield Send("b", total.to_bytes(8, "big"))

    fast = run_simulated({"a": busy(), "b": receiver("a", 1)}, mesh(latency=0.0, bandwidth=math.inf), compute_factor=0)
    assert fast.sim_seconds == 0.0
    slow = run_simulated({"a": busy(), "b": receiver("a", 1)}, mesh(latency=0.0, bandwidth=math.inf), compute_factor=3)
    assert slow.sim_seconds == pytest.approx(3 * slow.compute_seconds["a"] + 3 * slow.compute_seconds["b"], rel=0.5)
    assert slow.sim_seconds > 0


def test_profiles_have_documented_numbers():
    assert PROFILES["loopback"].link.bandwidth_bps == math.inf
    assert PROFILES["loopback"].link.latency_s == 0
    assert PROFILES["lan-10g"].link.bandwidth_bps == 10e9
    assert PROFILES["lan-1g"].link.bandwidth_bps == 1e9
    assert PROFILES["wan-100m"].link.bandwidth_bps == 100e6
    assert PROFILES["mobile"].link.loss_rate > 0


def test_loopback_costs_only_compute():
    net = Network.full_mesh(["a", "b"], PROFILES["loopback"].link)
    result = run_simulated({"a": sender("b", [50_000_000]), "b": receiver("a", 1)}, net, compute_factor=0)
    assert result.sim_seconds == 0.0


def test_cut_link_stops_both_parties():
    net = mesh()
    with pytest.raises(RunFailed) as failed:
        run_simulated(
            {"a": request_response("b", 10, 1000), "b": responder("a", 10, 10)},
            net,
            compute_factor=0,
            faults=[Fault("cut_link", 0.05, a="a", b="b")],
        )
    assert set(failed.value.failures) == {"a", "b"}
    assert any(isinstance(e, LinkDown) for e in failed.value.failures.values())
    assert failed.value.stopped_at == pytest.approx(0.05, abs=0.03)


def test_stop_party_fault_is_reported():
    net = mesh()
    with pytest.raises(RunFailed) as failed:
        run_simulated(
            {"a": request_response("b", 10, 1000), "b": responder("a", 10, 10)},
            net,
            compute_factor=0,
            faults=[Fault("stop_party", 0.03, party="b")],
        )
    assert type(failed.value.failures["b"]).__name__ == "PartyStopped"
    assert type(failed.value.failures["a"]).__name__ == "PeerAborted"
    assert failed.value.stopped_at == pytest.approx(0.03)


def test_phases_tag_messages():
    def tagged():
        yield Phase("first")
        yield Send("b", b"1")
        yield Phase("second")
        yield Send("b", b"22")

    result = run_simulated({"a": tagged(), "b": receiver("a", 2)}, mesh(), compute_factor=0)
    assert [r.phase for r in result.transcript.records] == ["first", "second"]
    assert result.transcript.bytes_by_direction("second") == {"a->b": 2}
