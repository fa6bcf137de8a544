"""TCP runner: party coroutines exchange length-prefixed frames over real sockets on 127.0.0.1.

Every party listens on its own ephemeral loopback port. For each ordered pair of parties the
sender opens one connection to the receiver and first sends a hello frame with its own name.
After that every frame is an 8-byte big-endian length followed by the payload. All parties run
as tasks of one asyncio event loop in this process, so compute is measured per party as in the
other runners while the bytes really cross the kernel's TCP stack.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Mapping

from testbed.effects import Party, Phase, Receive, Send
from testbed.errors import PeerAborted, RunFailed, TestbedError
from testbed.runtime import (
    Interceptor,
    MessageLog,
    PartyDriver,
    RunResult,
    apply_interceptor,
    check_party_names,
    unknown_peer,
)

HOST = "127.0.0.1"
LENGTH = struct.Struct(">Q")
MAX_FRAME_BYTES = 1 << 34
_CLOSED = object()


class TransportError(TestbedError):
    """A TCP connection broke, or a peer sent a frame that violates the framing."""


async def _read_frame(reader: asyncio.StreamReader, max_bytes: int) -> bytes | None:
    try:
        header = await reader.readexactly(LENGTH.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise TransportError("connection closed inside a frame header") from exc
    (length,) = LENGTH.unpack(header)
    if length > max_bytes:
        raise TransportError(f"frame of {length} bytes exceeds the limit of {max_bytes} bytes")
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise TransportError(f"connection closed after {len(exc.partial)} of {length} frame bytes") from exc


def run_tcp(
    parties: Mapping[str, Party],
    *,
    keep_payloads: bool = True,
    intercept: Interceptor | None = None,
    timeout_s: float = 600.0,
    max_frame_bytes: int = MAX_FRAME_BYTES,
) -> RunResult:
    """Run party coroutines over TCP on 127.0.0.1 and return their outputs.

    Raises ``RunFailed`` when a party raises (peers waiting on it see ``PeerAborted``) and
    ``TimeoutError`` when the run takes longer than ``timeout_s`` wall-clock seconds.
    """
    check_party_names(parties)
    return asyncio.run(_run(parties, keep_payloads, intercept, timeout_s, max_frame_bytes))


async def _run(parties, keep_payloads, intercept, timeout_s, max_frame_bytes) -> RunResult:
    names = list(parties)
    drivers = {name: PartyDriver(name, parties[name]) for name in names}
    log = MessageLog(keep_payloads)
    inboxes = {(a, b): asyncio.Queue() for a in names for b in names if a != b}
    failures: dict[str, BaseException] = {}
    reader_tasks: set[asyncio.Task] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        reader_tasks.add(task)
        src = None
        try:
            hello = await _read_frame(reader, 1024)
            src = hello.decode() if hello else None
            if src not in drivers:
                raise TransportError(f"hello from unknown party {src!r}")
            dst = writer.get_extra_info("sockname")[1]
            dst_name = ports_to_name[dst]
            queue = inboxes[(src, dst_name)]
            while (frame := await _read_frame(reader, max_frame_bytes)) is not None:
                queue.put_nowait(frame)
            queue.put_nowait(_CLOSED)
        except TransportError as exc:
            if src in drivers:
                inboxes[(src, ports_to_name[writer.get_extra_info("sockname")[1]])].put_nowait(exc)
        finally:
            writer.close()

    servers = {}
    ports_to_name: dict[int, str] = {}
    for name in names:
        server = await asyncio.start_server(accept, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        servers[name] = server
        ports_to_name[port] = name
    name_to_port = {v: k for k, v in ports_to_name.items()}

    writers: dict[tuple[str, str], asyncio.StreamWriter] = {}

    async def connection(src: str, dst: str) -> asyncio.StreamWriter:
        writer = writers.get((src, dst))
        if writer is None:
            _, writer = await asyncio.open_connection(HOST, name_to_port[dst])
            hello = src.encode()
            writer.write(LENGTH.pack(len(hello)) + hello)
            writers[(src, dst)] = writer
        return writer

    sent_count: dict[tuple[str, str], int] = {}
    # Records of messages on the wire per direction, in order, so a read can mark its record delivered.
    unread: dict[tuple[str, str], deque] = {key: deque() for key in inboxes}

    async def drive(driver: PartyDriver) -> None:
        name = driver.name
        effect = driver.advance(None)
        while effect is not None:
            if isinstance(effect, Phase):
                effect = driver.advance(None)
                continue
            error = unknown_peer(driver, effect.peer, drivers)
            if error is not None:
                effect = driver.throw(error)
                continue
            if isinstance(effect, Send):
                key = (name, effect.peer)
                index = sent_count.get(key, 0)
                sent_count[key] = index + 1
                writer = await connection(name, effect.peer)
                for payload in apply_interceptor(intercept, name, effect.peer, index, bytes(effect.payload)):
                    unread[key].append(log.record(driver.phase, name, effect.peer, payload, 0.0, 0.0))
                    writer.write(LENGTH.pack(len(payload)))
                    writer.write(payload)
                    await writer.drain()
                effect = driver.advance(None)
            else:
                assert isinstance(effect, Receive)
                item = await inboxes[(effect.peer, name)].get()
                if isinstance(item, bytes):
                    log.delivered(unread[(effect.peer, name)].popleft())
                    effect = driver.advance(item)
                elif isinstance(item, BaseException):
                    effect = driver.throw(item)
                else:
                    reason = str(failures.get(effect.peer, "it closed the connection"))
                    effect = driver.throw(PeerAborted(effect.peer, reason))
        # Closing our outgoing connections signals end of stream to each waiting peer.
        for (src, dst), writer in list(writers.items()):
            if src == name:
                writer.close()
        if driver.error is not None:
            failures[name] = driver.error
            for other in names:
                if other != name:
                    inboxes[(name, other)].put_nowait(_CLOSED)

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(drive(d) for d in drivers.values())), timeout_s)
    except TimeoutError:
        raise TimeoutError(f"TCP run exceeded {timeout_s} s; parties still running") from None
    finally:
        for writer in writers.values():
            writer.close()
        # Readers end on the EOF that closing the writers sends; cancel any that hang.
        if reader_tasks:
            _, pending = await asyncio.wait(reader_tasks, timeout=5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*reader_tasks, return_exceptions=True)
        for server in servers.values():
            server.close()
            await server.wait_closed()
    wall = time.perf_counter() - started
    if failures:
        raise RunFailed(failures) from next(iter(failures.values()))
    return RunResult.from_drivers(
        drivers,
        log,
        sim_seconds=wall,
    )
