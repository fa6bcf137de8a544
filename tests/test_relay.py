"""Tests of the recording and shaping relay: integrity, shaping, record summaries, processes."""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
import time

import pytest

from testbed.relay import (
    ChunkRecord,
    LinkShape,
    ProcessFailure,
    Relay,
    bytes_by_direction,
    pid_is_running,
    record_rounds,
    run_processes,
    trace_from_records,
)

HOST = "127.0.0.1"


def random_chunks(seed: int, total: int) -> list[bytes]:
    rng = random.Random(seed)
    chunks = []
    sent = 0
    while sent < total:
        size = min(total - sent, rng.choice([1, 7, 100, 1500, 16384, 70000]))
        chunks.append(rng.randbytes(size))
        sent += size
    return chunks


async def send_all(writer: asyncio.StreamWriter, chunks: list[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        writer.write(chunk)
        digest.update(chunk)
        await writer.drain()
    writer.write_eof()
    return digest.hexdigest()


async def read_all(reader: asyncio.StreamReader) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    while chunk := await reader.read(50000):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


async def exchange_through_relay(relay: Relay, up: list[bytes], down: list[bytes], server_delay_s: float = 0.0):
    """Send ``up`` client->server and ``down`` server->client at the same time; return digests."""
    received: dict[str, tuple[str, int]] = {}
    sent: dict[str, str] = {}
    server_done = asyncio.Event()

    async def serve(reader, writer):
        got, sent["down"] = await asyncio.gather(read_all(reader), send_all(writer, down))
        received["up"] = got
        writer.close()
        server_done.set()

    # Reserve a port, open the route, and only then start the destination: the relay must retry.
    probe = await asyncio.start_server(lambda r, w: None, host=HOST, port=0)
    target_port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    port = await relay.open_route("client", "server", target_port)

    async def start_server_later():
        await asyncio.sleep(server_delay_s)
        return await asyncio.start_server(serve, host=HOST, port=target_port)

    server_task = asyncio.ensure_future(start_server_later())
    reader, writer = await asyncio.open_connection(HOST, port)
    (sent["up"], received["down"]) = await asyncio.gather(send_all(writer, up), read_all(reader))
    await asyncio.wait_for(server_done.wait(), 30)
    writer.close()
    server = await server_task
    server.close()
    await relay.close()
    return sent, received


def test_relay_forwards_streams_intact():
    up = random_chunks(1, 700_000)
    down = random_chunks(2, 300_000)
    relay = Relay()
    sent, received = asyncio.run(exchange_through_relay(relay, up, down, server_delay_s=0.2))

    assert received["up"] == (sent["up"], 700_000)
    assert received["down"] == (sent["down"], 300_000)
    assert bytes_by_direction(relay.records) == {"client->server": 700_000, "server->client": 300_000}
    assert relay.errors == []


def test_relay_keeps_order_under_shaping():
    up = random_chunks(3, 200_000)
    down = random_chunks(4, 50_000)
    relay = Relay(default_shape=LinkShape(50e6, 0.005), segment_bytes=4096)
    sent, received = asyncio.run(exchange_through_relay(relay, up, down))

    assert received["up"] == (sent["up"], 200_000)
    assert received["down"] == (sent["down"], 50_000)
    assert max(r.nbytes for r in relay.records) <= 4096


async def timed_transfer(shape: LinkShape, nbytes: int) -> tuple[list[ChunkRecord], float, float]:
    """Send ``nbytes`` through a shaped link; return the record and the wall time seen by the endpoints."""
    relay = Relay({("client", "server"): shape})
    done = asyncio.get_running_loop().create_future()

    async def serve(reader, writer):
        got = 0
        while got < nbytes:
            chunk = await reader.read(65536)
            if not chunk:
                break
            got += len(chunk)
        done.set_result(time.monotonic())
        writer.close()

    server = await asyncio.start_server(serve, host=HOST, port=0)
    port = await relay.open_route("client", "server", server.sockets[0].getsockname()[1])
    reader, writer = await asyncio.open_connection(HOST, port)
    await asyncio.sleep(0.05)  # let the relay connect on, so connection setup is not timed
    start = time.monotonic()
    writer.write(bytes(nbytes))
    await writer.drain()
    end = await asyncio.wait_for(done, 30)
    writer.close()
    server.close()
    await relay.close()
    return relay.records, start, end


# Shaped delivery is never early and is late by timer and scheduling delays only. The documented
# tolerance for a single transfer of at least 50 ms is +30 % plus 20 ms.
SHAPING_TOLERANCE = 0.30
SHAPING_SLACK_S = 0.020


@pytest.mark.parametrize("bandwidth_bps, latency_s", [(8e6, 0.030), (40e6, 0.080)])
def test_relay_shaping_matches_link(bandwidth_bps, latency_s):
    shape = LinkShape(bandwidth_bps, latency_s)
    nbytes = 100_000
    records, start, end = asyncio.run(timed_transfer(shape, nbytes))
    expected = shape.transfer_s(nbytes)

    first_read = min(r.read_s for r in records)
    last_delivery = max(r.deliver_s for r in records)
    recorded = last_delivery - first_read
    assert sum(r.nbytes for r in records) == nbytes
    assert recorded >= expected * (1 - 1e-6) - 0.002
    assert recorded <= expected * (1 + SHAPING_TOLERANCE) + SHAPING_SLACK_S
    assert end - start >= expected * 0.95
    assert end - start <= expected * (1 + SHAPING_TOLERANCE) + 2 * SHAPING_SLACK_S


def test_relay_delays_each_segment_by_latency():
    shape = LinkShape(latency_s=0.05)
    records, _, _ = asyncio.run(timed_transfer(shape, 1000))
    for r in records:
        assert r.deliver_s - r.read_s >= 0.05 - 1e-3


def test_link_shape_rejects_bad_values():
    with pytest.raises(ValueError, match="bandwidth_bps"):
        LinkShape(0)
    with pytest.raises(ValueError, match="latency_s"):
        LinkShape(1e6, -1.0)


def test_record_rounds_counts_causal_chain():
    records = [
        ChunkRecord("a", "b", 10, 0.0, 0.1),
        ChunkRecord("a", "b", 10, 0.01, 0.11),  # same flight as the first
        ChunkRecord("b", "a", 5, 0.2, 0.3),
        ChunkRecord("a", "c", 7, 0.4, 0.5),
        ChunkRecord("c", "b", 3, 0.05, 0.06),  # independent, depth 1
    ]
    assert record_rounds(records) == 3


def test_trace_from_records_charges_gaps():
    records = [
        ChunkRecord("a", "b", 10, 1.0, 1.1),
        ChunkRecord("b", "a", 20, 1.5, 1.6),
        ChunkRecord("a", "b", 30, 2.0, 2.05),
    ]
    trace = trace_from_records(
        records,
        ["a", "b"],
        starts={"a": 0.5, "b": 0.0},
        ends={"a": 2.5, "b": 2.25},
        phases={"a": [(0.75, "work")]},
    )
    a = trace.parties["a"]
    assert [s.kind for s in a.steps] == ["phase", "send", "recv", "send"]
    assert [s.compute_s for s in a.steps] == pytest.approx([0.25, 0.25, 0.0, 0.4])
    assert a.final_compute_s == pytest.approx(0.5)
    b = trace.parties["b"]
    assert [(s.kind, s.peer, s.nbytes) for s in b.steps] == [("recv", "a", 0), ("send", "a", 20), ("recv", "a", 0)]
    assert [s.compute_s for s in b.steps] == pytest.approx([0.0, 0.4, 0.0])
    assert b.final_compute_s == pytest.approx(0.2)
    assert trace.message_count() == 3


def test_trace_from_records_rejects_unknown_party():
    with pytest.raises(ValueError, match="'z'"):
        trace_from_records([ChunkRecord("a", "z", 1, 0.0, 0.1)], ["a"], starts={"a": 0}, ends={"a": 1})


def test_run_processes_returns_outputs():
    commands = {
        "p0": [sys.executable, "-c", "print('hello from p0')"],
        "p1": [sys.executable, "-c", "import sys; print('p1', file=sys.stderr)"],
    }
    outcomes = asyncio.run(run_processes(commands, timeout_s=30))
    assert outcomes["p0"].returncode == 0
    assert "hello from p0" in outcomes["p0"].output_tail
    assert "p1" in outcomes["p1"].output_tail


def test_run_processes_stops_peers_on_failure(tmp_path):
    pid_file = tmp_path / "pid"
    sleeper = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    failer = "import time, sys; time.sleep(0.5); sys.exit(3)"
    commands = {"sleeper": [sys.executable, "-c", sleeper], "failer": [sys.executable, "-c", failer]}
    with pytest.raises(ProcessFailure, match="failer exited with 3") as info:
        asyncio.run(run_processes(commands, timeout_s=30, grace_s=2))
    assert info.value.outcomes["failer"].returncode == 3
    assert info.value.outcomes["sleeper"].returncode != 0
    assert not pid_is_running(int(pid_file.read_text()))


def test_run_processes_stops_all_on_timeout(tmp_path):
    pid_file = tmp_path / "pid"
    stubborn = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )
    commands = {"stubborn": [sys.executable, "-c", stubborn]}
    with pytest.raises(ProcessFailure, match="timed out"):
        asyncio.run(run_processes(commands, timeout_s=1.0, grace_s=0.5))
    assert not pid_is_running(int(pid_file.read_text()))


def test_trace_from_records_cpu_mode():
    records = [
        ChunkRecord("a", "b", 10, 1.0, 1.1, src_cpu_s=0.3, dst_cpu_s=5.0),
        ChunkRecord("b", "a", 20, 1.5, 1.6, src_cpu_s=5.2, dst_cpu_s=0.35),
        ChunkRecord("a", "b", 30, 2.0, 2.05, src_cpu_s=0.6, dst_cpu_s=5.25),
    ]
    trace = trace_from_records(
        records,
        ["a", "b"],
        starts={"a": 0.0, "b": 0.0},
        ends={"a": 3.0, "b": 3.0},
        phases={"a": [(0.5, "work", 0.1)]},
        cpu_starts={"a": 0.0, "b": 4.9},
        cpu_ends={"a": 0.7, "b": 5.3},
    )
    a = trace.parties["a"]
    assert [s.kind for s in a.steps] == ["phase", "send", "recv", "send"]
    assert [s.compute_s for s in a.steps] == pytest.approx([0.1, 0.2, 0.05, 0.25])
    assert a.final_compute_s == pytest.approx(0.1)
    assert a.compute_total_s() == pytest.approx(0.7)
    b = trace.parties["b"]
    assert [s.compute_s for s in b.steps] == pytest.approx([0.1, 0.2, 0.05])
    assert b.compute_total_s() == pytest.approx(0.4)


def test_trace_cpu_mode_needs_stamps():
    with pytest.raises(ValueError, match="cpu_clock"):
        trace_from_records(
            [ChunkRecord("a", "b", 1, 0.0, 0.1)],
            ["a", "b"],
            starts={"a": 0, "b": 0},
            ends={"a": 1, "b": 1},
            cpu_starts={"a": 0, "b": 0},
            cpu_ends={"a": 1, "b": 1},
        )


def test_sansio_processes_run_two_party_matching():
    np = pytest.importorskip("numpy")
    protocol = pytest.importorskip("protocols.matching.protocol")
    from protocols.matching.fixed_point import FixedPointParams, reference_match
    from testbed.relay import PartySpec, run_sansio_processes

    rng = np.random.default_rng(3)
    keys = rng.normal(size=(9, 8))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    query = keys[4]
    specs = {
        "sp": PartySpec(f"{protocol.__name__}:matching_sp", ("mri", query, 9)),
        "mri": PartySpec(f"{protocol.__name__}:matching_mri", ("sp", keys, 0.5)),
    }
    run = run_sansio_processes(specs, default_shape=LinkShape(latency_s=0.01), timeout_s=60)

    assert run.outputs["sp"] == reference_match(query, keys, 0.5, FixedPointParams(8)) == 4
    assert run.outputs["mri"] is None
    sent = sum(s.nbytes for t in run.trace.parties.values() for s in t.steps if s.kind == "send")
    hello_bytes = 8 + len("sp")
    framing = 8 * run.trace.message_count()
    assert sum(r.nbytes for r in run.records) == sent + framing + hello_bytes
    assert all(r.deliver_s - r.read_s >= 0.01 - 1e-3 for r in run.records)
    assert run.protocol_seconds() >= 0.01 * record_rounds(run.records)
