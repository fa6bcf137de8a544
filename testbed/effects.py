"""Effects that a sans-IO protocol party yields to its runner.

A party is a generator function. It yields effects and returns its output::

    def receiver(choice: int) -> Party[bytes]:
        yield Phase("ot")
        yield Send("sender", encode(choice))
        reply = yield Receive("sender")
        return decode(reply)

``yield Send(...)`` and ``yield Phase(...)`` evaluate to ``None``; ``yield Receive(peer)``
evaluates to the next message from ``peer`` as ``bytes``. Messages between two parties arrive
in the order they were sent (each direction is a reliable FIFO channel, like one TCP stream).
Protocol code never reads a clock, sleeps or opens a socket: the runner does all of that, so
one coroutine runs unchanged in memory, in the network simulator and over TCP.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``payload`` to the party named ``peer``; the sender does not wait for delivery.

    ``payload`` is ``bytes``, ``bytearray`` or a ``memoryview``. Every runner copies it when it
    takes the effect, before the party resumes, so a party may reuse a buffer it sent from.
    """

    peer: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Receive:
    """Wait for the next message from the party named ``peer``."""

    peer: str


@dataclass(frozen=True, slots=True)
class Phase:
    """Mark the start of a named protocol phase; later messages of this party belong to it."""

    name: str


Effect: TypeAlias = Send | Receive | Phase
Party: TypeAlias = Generator[Effect, bytes | None, T]
