"""Recording and shaping TCP relay on 127.0.0.1 for parties that run as separate processes.

Programs that open their own sockets (MPyC runs one party per process over TCP) cannot be driven
as sans-IO coroutines. Instead every connection between two of their processes goes through this
relay: a party connects to a relay port, the relay connects on to the real destination port and
forwards bytes both ways, recording each chunk it moves and shaping each directed link in real time.

Recording. TCP carries a byte stream, not messages, so the relay records what it observes: each
chunk it reads from a source socket (``read_s``) and the moment it writes that chunk to the
destination socket (``deliver_s``). Chunks longer than ``segment_bytes`` are split and each piece
is recorded on its own. A "message" in a recorded trace is therefore one forwarded segment, not
one application-level message: the application may have written two messages that the kernel
handed over as one chunk, or one large message that arrived in many chunks. Byte totals and the
order of bytes per direction are exact; message counts depend on how the kernel batched the stream.

Shaping. Each directed link ``(src, dst)`` has a ``LinkShape``. A segment read at time ``t`` starts
to leave when the link is free (``max(t, busy_until)``), occupies it for ``8 * nbytes /
bandwidth_bps`` seconds (pacing, i.e. a token bucket with no burst allowance) and is written to the
destination ``latency_s`` seconds after it has left. This is the serialisation-then-propagation
model of ``testbed.network`` with no framing overhead, so a trace recorded here replays with
``overhead_bytes=0``. Delivery is late by the event loop's timer resolution (about a millisecond
on Linux) and never early.

Clock. All times are ``time.monotonic()`` seconds. On Linux that is ``CLOCK_MONOTONIC``, shared
by every process on the machine, so marks that party processes log with ``time.monotonic()`` line
up with the relay's record.

Compute gaps. ``trace_from_records`` turns a record into a ``testbed.trace.Trace``. It cannot see
inside a process, so it charges a party's compute as the wall-clock gap between its previous event
(a send, a delivery to it, or a phase mark it logged) and its next send or phase mark; deliveries
to the party get zero compute before them. This misses compute that overlapped a wait (a message
delivered while the party was still busy starts the next gap too late) and it includes time the
party spent waiting for a CPU when processes outnumber cores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed.errors import TestbedError
from testbed.trace import PartyTrace, Trace, TraceStep

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
READ_BYTES = 1 << 16
SEGMENT_BYTES = 1 << 14


class RelayError(TestbedError):
    """The relay could not forward a connection, or a party process failed or timed out."""


@dataclass(frozen=True, slots=True)
class LinkShape:
    """Shaping of one directed link: bit/s (``math.inf`` for no limit) and one-way seconds."""

    bandwidth_bps: float = math.inf
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.bandwidth_bps > 0:
            raise ValueError(f"invalid bandwidth_bps {self.bandwidth_bps!r}: use bits per second > 0, e.g. 100e6")
        if not (self.latency_s >= 0 and math.isfinite(self.latency_s)):
            raise ValueError(f"invalid latency_s {self.latency_s!r}: use seconds >= 0, e.g. 0.01")

    def transfer_s(self, nbytes: int) -> float:
        """Seconds for ``nbytes`` to cross an idle link: serialisation plus latency."""
        return 8 * nbytes / self.bandwidth_bps + self.latency_s


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One forwarded segment: direction, size, when the relay read it and when it wrote it on.

    ``src_cpu_s`` is the CPU time the sender had used when the relay read the segment, and
    ``dst_cpu_s`` the CPU time the receiver had used at delivery. Both are ``None`` unless the
    relay has a ``cpu_clock``.
    """

    src: str
    dst: str
    nbytes: int
    read_s: float
    deliver_s: float
    src_cpu_s: float | None = None
    dst_cpu_s: float | None = None


class Relay:
    """Forward TCP connections between named endpoints on 127.0.0.1, recording and shaping them.

    Use inside a running event loop::

        relay = Relay({("sp", "mri"): LinkShape(100e6, 0.02)})
        port = await relay.open_route("sp", "mri", target_port=mri_port)
        ...                     # "sp" connects to 127.0.0.1:port and talks to "mri"
        await relay.close()
        relay.records           # [ChunkRecord, ...] in delivery order

    ``open_route`` listens on a fresh port and forwards every connection accepted there to
    ``target_port``. The relay retries that connect until ``connect_timeout_s``, because the
    destination process may still be starting. Bytes the client sends meanwhile are read (and
    timed) at once and delivered when the destination accepts.
    """

    def __init__(
        self,
        shapes: Mapping[tuple[str, str], LinkShape] | None = None,
        *,
        default_shape: LinkShape = LinkShape(),
        segment_bytes: int = SEGMENT_BYTES,
        connect_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[str], float | None] | None = None,
    ) -> None:
        if segment_bytes < 1:
            raise ValueError(f"invalid segment_bytes {segment_bytes!r}: use a positive size, e.g. 16384")
        self._shapes = dict(shapes or {})
        self._default_shape = default_shape
        self._segment_bytes = segment_bytes
        self._connect_timeout_s = connect_timeout_s
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._busy_until: dict[tuple[str, str], float] = defaultdict(float)
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.records: list[ChunkRecord] = []
        self.errors: list[str] = []

    def shape(self, src: str, dst: str) -> LinkShape:
        """Return the shaping of the directed link ``src -> dst``."""
        return self._shapes.get((src, dst), self._default_shape)

    def set_shape(self, src: str, dst: str, shape: LinkShape) -> None:
        """Change the shaping of ``src -> dst``; it applies to segments read from now on."""
        self._shapes[(src, dst)] = shape

    async def open_route(self, client: str, server: str, target_port: int) -> int:
        """Listen on a fresh 127.0.0.1 port whose connections go to ``target_port``; return the port."""
        if client == server:
            raise ValueError(f"invalid route {client!r} -> {server!r}: the endpoints must differ")

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                await self._forward(client, server, target_port, reader, writer)
            except asyncio.CancelledError:
                # close() cancels forwarding on purpose; asyncio would log a cancelled callback.
                pass
            finally:
                if task is not None:
                    self._tasks.discard(task)

        srv = await asyncio.start_server(accept, host=HOST, port=0)
        self._servers.append(srv)
        port = srv.sockets[0].getsockname()[1]
        logger.debug("route %s -> %s listens on %s:%d for %s:%d", client, server, HOST, port, HOST, target_port)
        return port

    async def close(self) -> None:
        """Stop listening, close every forwarded connection and end the relay's tasks."""
        for srv in self._servers:
            srv.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for srv in self._servers:
            await srv.wait_closed()
        self._servers.clear()

    async def _forward(
        self,
        client: str,
        server: str,
        target_port: int,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        self._writers.add(client_writer)
        server_writer: asyncio.Future[asyncio.StreamWriter | None] = asyncio.get_running_loop().create_future()
        to_server: asyncio.Queue = asyncio.Queue()
        to_client: asyncio.Queue = asyncio.Queue()
        client_done = asyncio.get_running_loop().create_future()
        client_done.set_result(client_writer)
        pumps = [
            asyncio.ensure_future(self._read_side(client_reader, to_server, client, server)),
            asyncio.ensure_future(self._write_side(server_writer, to_server, client, server)),
        ]
        try:
            reader, writer = await self._connect(target_port, client, server)
        except RelayError as exc:
            self.errors.append(str(exc))
            logger.error("%s", exc)
            server_writer.set_result(None)
            for pump in pumps:
                pump.cancel()
            client_writer.close()
            self._writers.discard(client_writer)
            return
        self._writers.add(writer)
        server_writer.set_result(writer)
        pumps.append(asyncio.ensure_future(self._read_side(reader, to_client, server, client)))
        pumps.append(asyncio.ensure_future(self._write_side(client_done, to_client, server, client)))
        try:
            await asyncio.gather(*pumps)
        finally:
            for pump in pumps:
                pump.cancel()
            for w in (client_writer, writer):
                w.close()
                self._writers.discard(w)

    async def _connect(self, port: int, client: str, server: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        deadline = self._clock() + self._connect_timeout_s
        while True:
            try:
                return await asyncio.open_connection(HOST, port)
            except OSError as exc:
                if self._clock() > deadline:
                    raise RelayError(
                        f"route {client} -> {server}: connecting to {HOST}:{port} failed for "
                        f"{self._connect_timeout_s} s ({exc}); check that {server!r} listens there"
                    ) from exc
            await asyncio.sleep(0.02)

    def _schedule(self, src: str, dst: str, nbytes: int, now: float) -> float:
        shape = self.shape(src, dst)
        key = (src, dst)
        start = max(now, self._busy_until[key])
        end = start + 8 * nbytes / shape.bandwidth_bps
        self._busy_until[key] = end
        return end + shape.latency_s

    async def _read_side(self, reader: asyncio.StreamReader, queue: asyncio.Queue, src: str, dst: str) -> None:
        step = self._segment_bytes
        while True:
            try:
                data = await reader.read(READ_BYTES)
            except ConnectionError as exc:
                logger.warning("link %s -> %s: read failed (%s); closing the connection", src, dst, exc)
                queue.put_nowait(None)
                return
            now = self._clock()
            if not data:
                queue.put_nowait(None)
                return
            cpu = self._cpu_clock(src) if self._cpu_clock is not None else None
            for offset in range(0, len(data), step):
                segment = data[offset : offset + step]
                queue.put_nowait((now, cpu, self._schedule(src, dst, len(segment), now), segment))

    async def _write_side(
        self, writer_future: asyncio.Future, queue: asyncio.Queue, src: str, dst: str
    ) -> None:
        writer = await writer_future
        if writer is None:
            return
        while True:
            item = await queue.get()
            if item is None:
                # Pass the half-close on, so the destination reads the end of the stream.
                if writer.can_write_eof() and not writer.is_closing():
                    try:
                        writer.write_eof()
                    except OSError:
                        pass
                return
            read_s, src_cpu, deliver_at, segment = item
            delay = deliver_at - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if writer.is_closing():
                logger.warning("link %s -> %s: destination closed; dropping %d bytes", src, dst, len(segment))
                continue
            writer.write(segment)
            dst_cpu = self._cpu_clock(dst) if self._cpu_clock is not None else None
            self.records.append(ChunkRecord(src, dst, len(segment), read_s, self._clock(), src_cpu, dst_cpu))
            try:
                await writer.drain()
            except ConnectionError as exc:
                logger.warning("link %s -> %s: write failed (%s)", src, dst, exc)
                return


# --- Summaries of a record ----------------------------------------------------------------------


def bytes_by_direction(records: Sequence[ChunkRecord]) -> dict[str, int]:
    """Return total bytes per ``"src->dst"`` direction."""
    totals: dict[str, int] = defaultdict(int)
    for r in records:
        totals[f"{r.src}->{r.dst}"] += r.nbytes
    return dict(totals)


def record_depths(records: Sequence[ChunkRecord]) -> list[int]:
    """Return each segment's causal depth, in the order of ``records``.

    A segment's depth is 1 when its sender had received nothing when the relay read it. Otherwise
    it is one more than the deepest segment already delivered to the sender by then. This is the
    round count of the testbed's transcripts, measured on relay timestamps.
    """
    events = []
    for index, r in enumerate(records):
        events.append((r.read_s, 1, index))
        events.append((r.deliver_s, 0, index))
    events.sort()
    deepest_received: dict[str, int] = defaultdict(int)
    depths = [0] * len(records)
    for _, kind, index in events:
        r = records[index]
        if kind == 1:
            depths[index] = deepest_received[r.src] + 1
        else:
            deepest_received[r.dst] = max(deepest_received[r.dst], depths[index])
    return depths


def record_rounds(records: Sequence[ChunkRecord]) -> int:
    """Return the longest causal chain of segments (see ``record_depths``); 0 for no traffic."""
    return max(record_depths(records), default=0)


def trace_from_records(
    records: Sequence[ChunkRecord],
    parties: Sequence[str],
    *,
    starts: Mapping[str, float],
    ends: Mapping[str, float],
    phases: Mapping[str, Sequence[Sequence]] | None = None,
    cpu_starts: Mapping[str, float] | None = None,
    cpu_ends: Mapping[str, float] | None = None,
    meta: dict | None = None,
) -> Trace:
    """Build a replayable ``Trace`` from a relay record and the parties' own time marks.

    ``starts[p]`` and ``ends[p]`` are the ``time.monotonic()`` instants at which party ``p``
    began and finished its protocol work. ``phases[p]`` lists the ``(time, name)`` marks it
    logged, or ``(time, name, cpu)`` in CPU mode.

    Wall mode (the default): compute before a send or a phase mark is the wall-clock gap since
    the party's previous event, and a delivery to the party gets none; the module docstring
    says what this misses. CPU mode (``cpu_starts`` and ``cpu_ends`` given, and every record
    carrying CPU stamps): compute before every step, deliveries included, is the CPU time the
    party used since its previous event. Time spent waiting for a core or for a message is then
    not charged, and compute that overlapped a delivery is charged before it.
    """
    cpu_mode = cpu_starts is not None
    if cpu_mode and cpu_ends is None:
        raise ValueError("CPU mode needs both cpu_starts and cpu_ends")
    events: dict[str, list[tuple[float, int, TraceStep, float]]] = {p: [] for p in parties}
    for r in records:
        for name in (r.src, r.dst):
            if name not in events:
                raise ValueError(f"record names party {name!r}, which is not among {list(parties)}")
        if cpu_mode and (r.src_cpu_s is None or r.dst_cpu_s is None):
            raise ValueError("CPU mode needs records with CPU stamps: give the relay a cpu_clock")
        # At equal times sends sort before deliveries, because a send placed after a delivery it
        # caused would make the replay wait on a message that only that send triggers.
        events[r.src].append((r.read_s, 1, TraceStep(0.0, "send", r.dst, r.nbytes), r.src_cpu_s or 0.0))
        events[r.dst].append((r.deliver_s, 2, TraceStep(0.0, "recv", r.src), r.dst_cpu_s or 0.0))
    for name, marks in (phases or {}).items():
        for mark in marks:
            cpu = float(mark[2]) if cpu_mode else 0.0
            events[name].append((float(mark[0]), 0, TraceStep(0.0, "phase", phase=str(mark[1])), cpu))

    traces = {}
    for name in parties:
        ordered = sorted(events[name], key=lambda e: (e[0], e[1]))
        previous = cpu_starts[name] if cpu_mode else starts[name]
        steps = []
        for t, _, step, cpu in ordered:
            if cpu_mode:
                compute = max(0.0, cpu - previous)
                previous = max(previous, cpu)
            else:
                compute = 0.0 if step.kind == "recv" else max(0.0, t - previous)
                previous = max(previous, t)
            steps.append(TraceStep(compute, step.kind, step.peer, step.nbytes, step.phase))
        last = cpu_ends[name] if cpu_mode else ends[name]
        traces[name] = PartyTrace(steps, max(0.0, last - previous))
    return Trace(traces, dict(meta or {}))


def thread_cpu_seconds(pid: int) -> float | None:
    """Return the CPU seconds used so far by the main thread of process ``pid`` (Linux only).

    Reads the first field of ``/proc/PID/schedstat`` (nanoseconds on a CPU), the same clock as
    ``time.thread_time()`` in that thread. Returns ``None`` where it cannot be read.
    """
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as stat:
            return int(stat.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


# --- Supervising party processes ----------------------------------------------------------------


@dataclass(frozen=True)
class ProcessOutcome:
    """Exit code of one party process (negative for a signal) and the tail of its output."""

    name: str
    returncode: int
    output_tail: str


class ProcessFailure(RelayError):
    """A party process exited non-zero or the run timed out; every process has been stopped."""

    def __init__(self, message: str, outcomes: dict[str, ProcessOutcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


async def run_processes(
    commands: Mapping[str, Sequence[str]],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    grace_s: float = 3.0,
    tail_chars: int = 4000,
    on_start: Callable[[str, int], None] | None = None,
) -> dict[str, ProcessOutcome]:
    """Start one process per party, wait for all, and stop them all on error or timeout.

    Returns each party's outcome when every process exits with code 0. When any process exits
    non-zero, or ``timeout_s`` passes, the others get SIGTERM, then SIGKILL after ``grace_s``,
    and ``ProcessFailure`` is raised with every outcome. Standard output and error of each
    process are captured together. ``on_start(name, pid)`` is called as each process starts.
    """
    procs: dict[str, asyncio.subprocess.Process] = {}
    outputs: dict[str, bytearray] = {name: bytearray() for name in commands}
    readers: list[asyncio.Task] = []

    async def collect(name: str, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            buf = outputs[name]
            buf.extend(chunk)
            if len(buf) > 4 * tail_chars:
                del buf[: len(buf) - 2 * tail_chars]

    def outcome(name: str) -> ProcessOutcome:
        code = procs[name].returncode if name in procs else -1
        text = outputs[name].decode("utf-8", "replace")[-tail_chars:]
        return ProcessOutcome(name, -999 if code is None else code, text)

    async def stop_all() -> None:
        alive = [p for p in procs.values() if p.returncode is None]
        for p in alive:
            p.send_signal(signal.SIGTERM)
        if alive:
            _, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in alive], timeout=grace_s)
            for p in alive:
                if p.returncode is None:
                    p.kill()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    try:
        for name, argv in commands.items():
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=None if cwd is None else str(cwd),
                env=None if env is None else dict(env),
                start_new_session=True,
            )
            procs[name] = proc
            assert proc.stdout is not None
            readers.append(asyncio.ensure_future(collect(name, proc.stdout)))
            logger.info("started party %s (pid %d)", name, proc.pid)
            if on_start is not None:
                on_start(name, proc.pid)

        waits = {asyncio.ensure_future(p.wait()): name for name, p in procs.items()}
        deadline = time.monotonic() + timeout_s
        pending = set(waits)
        while pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await stop_all()
                await asyncio.gather(*readers, return_exceptions=True)
                raise ProcessFailure(
                    f"party processes timed out after {timeout_s} s; stopped them all "
                    f"(still running: {sorted(waits[w] for w in pending)})",
                    {name: outcome(name) for name in commands},
                )
            done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            failed = [waits[w] for w in done if w.result() != 0]
            if failed:
                await stop_all()
                await asyncio.gather(*readers, return_exceptions=True)
                details = "; ".join(f"{n} exited with {procs[n].returncode}" for n in sorted(failed))
                raise ProcessFailure(
                    f"party process failed ({details}); stopped the others", {n: outcome(n) for n in commands}
                )
        await asyncio.gather(*readers, return_exceptions=True)
        return {name: outcome(name) for name in commands}
    except BaseException:
        # Covers cancellation and errors while starting: never leave a process behind.
        await asyncio.shield(stop_all())
        raise
    finally:
        for task in readers:
            if not task.done():
                task.cancel()


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    NOTE: another program may take a port between this check and its use; callers that must
    not fail retry the run.
    """
    import socket

    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def pid_is_running(pid: int) -> bool:
    """Tell whether a process with this id exists (for tests that check nothing is left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Sans-IO parties as processes through the relay ---------------------------------------------
#
# Our own protocols are sans-IO coroutines, so their compute is timed exactly by the party driver.
# Running each in its own process through the relay gives real, shaped runs to compare with the
# simulator's replay of the driver's trace. Wire format: one TCP connection per pair of parties
# (the lower-indexed party dials through the relay), a hello frame with the dialler's name, then
# frames of an 8-byte big-endian length and the payload, as ``testbed.runners.tcp`` sends them.

_FRAME = struct.Struct(">Q")


@dataclass(frozen=True)
class PartySpec:
    """Recipe of a party process's coroutine: ``"module:function"``, positional and keyword args."""

    target: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass
class SansioRun:
    """Outputs, driver traces and the relay's record of sans-IO parties run as processes."""

    outputs: dict[str, object]
    trace: Trace
    records: list[ChunkRecord]
    starts: dict[str, float]
    ends: dict[str, float]

    def protocol_seconds(self) -> float:
        """Wall seconds from the first party's start to the last party's end."""
        return max(self.ends.values()) - min(self.starts.values())


def run_sansio_processes(
    parties: Mapping[str, PartySpec],
    *,
    shapes: Mapping[tuple[str, str], LinkShape] | None = None,
    default_shape: LinkShape = LinkShape(),
    timeout_s: float = 600.0,
) -> SansioRun:
    """Run each sans-IO party in its own process, every message through a recording relay.

    Each party's trace is the one its ``PartyDriver`` measured (exact compute per step, logical
    messages). Raises ``ProcessFailure`` when a party process fails or the run times out, and
    ``RelayError`` when a party's coroutine raised (its exception text is in the message).
    """
    import pickle
    import sys
    import tempfile

    names = list(parties)
    if len(names) < 2:
        raise ValueError(f"got parties {names}: run at least two")

    async def run(workdir: Path) -> SansioRun:
        listen = free_ports(len(names))
        relay = Relay(shapes, default_shape=default_shape)
        commands = {}
        try:
            for i, name in enumerate(names):
                dial = {}
                for j in range(i + 1, len(names)):
                    dial[names[j]] = await relay.open_route(name, names[j], listen[j])
                job = {
                    "name": name,
                    "peers": [p for p in names if p != name],
                    "listen_port": listen[i],
                    "dial": dial,
                    "spec": parties[name],
                    "result": str(workdir / f"result-{i}.pickle"),
                }
                job_path = workdir / f"job-{i}.pickle"
                job_path.write_bytes(pickle.dumps(job))
                commands[name] = [sys.executable, "-m", "testbed.relay", "--sansio-job", str(job_path)]
            await run_processes(commands, timeout_s=timeout_s)
        finally:
            await relay.close()
        results = {name: pickle.loads((workdir / f"result-{i}.pickle").read_bytes()) for i, name in enumerate(names)}
        errors = {name: r["error"] for name, r in results.items() if r["error"]}
        if errors:
            raise RelayError(f"party coroutines raised: {errors}")
        trace = Trace({name: r["trace"] for name, r in results.items()}, {"source": "sansio-relay"})
        return SansioRun(
            {name: r["output"] for name, r in results.items()},
            trace,
            sorted(relay.records, key=lambda r: r.deliver_s),
            {name: r["start"] for name, r in results.items()},
            {name: r["end"] for name, r in results.items()},
        )

    with tempfile.TemporaryDirectory(prefix="sansio-run-") as tmp:
        return asyncio.run(run(Path(tmp)))


async def _read_frame(reader: asyncio.StreamReader) -> bytes | None:
    try:
        header = await reader.readexactly(_FRAME.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise RelayError("connection closed inside a frame header") from exc
        return None
    (length,) = _FRAME.unpack(header)
    return await reader.readexactly(length)


async def _sansio_party(job: dict) -> dict:
    """Run one party coroutine over its connections; return its output, trace and times."""
    import importlib

    from testbed.effects import Phase, Receive, Send
    from testbed.runtime import PartyDriver

    name = job["name"]
    peers = job["peers"]
    inbox: dict[str, asyncio.Queue] = {peer: asyncio.Queue() for peer in peers}
    writers: dict[str, asyncio.StreamWriter] = {}
    readers: list[asyncio.Task] = []
    connected = asyncio.Event()

    async def pump(peer: str, reader: asyncio.StreamReader) -> None:
        while (frame := await _read_frame(reader)) is not None:
            inbox[peer].put_nowait(frame)

    def register(peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers[peer] = writer
        readers.append(asyncio.ensure_future(pump(peer, reader)))
        if len(writers) == len(peers):
            connected.set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await _read_frame(reader)
        peer = (hello or b"").decode()
        if peer not in inbox:
            writer.close()
            return
        register(peer, reader, writer)

    server = await asyncio.start_server(accept, HOST, job["listen_port"])
    for peer, port in job["dial"].items():
        reader, writer = await asyncio.open_connection(HOST, port)
        hello = name.encode()
        writer.write(_FRAME.pack(len(hello)) + hello)
        register(peer, reader, writer)
    await connected.wait()
    server.close()

    spec: PartySpec = job["spec"]
    module_name, function_name = spec.target.split(":")
    factory = getattr(importlib.import_module(module_name), function_name)
    start = time.monotonic()
    driver = PartyDriver(name, factory(*spec.args, **spec.kwargs))
    effect = driver.advance(None)
    while effect is not None:
        if isinstance(effect, Send):
            writers[effect.peer].write(_FRAME.pack(len(effect.payload)) + bytes(effect.payload))
            await writers[effect.peer].drain()
            effect = driver.advance(None)
        elif isinstance(effect, Receive):
            effect = driver.advance(await inbox[effect.peer].get())
        else:
            assert isinstance(effect, Phase)
            effect = driver.advance(None)
    end = time.monotonic()

    # Half-close every connection, then wait for the peers to do the same, so nothing in flight
    # through the relay is cut off when this process exits.
    for writer in writers.values():
        if writer.can_write_eof():
            writer.write_eof()
    await asyncio.gather(*readers, return_exceptions=True)
    for writer in writers.values():
        writer.close()
    error = None if driver.error is None else f"{type(driver.error).__name__}: {driver.error}"
    return {"output": driver.output, "error": error, "trace": driver.trace, "start": start, "end": end}


def _sansio_main(job_path: str) -> None:
    import pickle

    job = pickle.loads(Path(job_path).read_bytes())
    result = asyncio.run(_sansio_party(job))
    Path(job["result"]).write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run one sans-IO party process (started by run_sansio_processes).")
    parser.add_argument("--sansio-job", required=True, help="path of the party's pickled job file")
    _sansio_main(parser.parse_args().sansio_job)
