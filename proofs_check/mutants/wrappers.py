"""Party wrappers that turn a real protocol party into a leaky one without touching its code.

Each wrapper is a generator that drives the wrapped party, forwards its effects and changes
one thing: a message it sends or receives, an extra message at the end, or its randomness.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from testbed.effects import Party, Phase, Receive, Send


def rewrite_sends(party: Party, rewrite: Callable[[int, bytes], bytes]) -> Party:
    """Forward ``party``'s effects, replacing the payload of its ``k``-th send by ``rewrite(k, payload)``."""
    value = None
    sent = 0
    while True:
        try:
            effect = party.send(value)
        except StopIteration as stop:
            return stop.value
        if isinstance(effect, Send):
            effect = Send(effect.peer, rewrite(sent, effect.payload))
            sent += 1
        value = yield effect


def rewrite_receives(party: Party, rewrite: Callable[[int, bytes], bytes]) -> Party:
    """Forward ``party``'s effects, handing it ``rewrite(k, payload)`` for its ``k``-th received message."""
    value = None
    received = 0
    while True:
        try:
            effect = party.send(value)
        except StopIteration as stop:
            return stop.value
        value = yield effect
        if isinstance(effect, Receive):
            value = rewrite(received, value)
            received += 1


def send_after(party: Party, peer: str, message: Callable[[Any], bytes], phase: str | None = None) -> Party:
    """Run ``party``, then send ``message(output)`` to ``peer``; return the same output."""
    output = yield from party
    if phase is not None:
        yield Phase(phase)
    yield Send(peer, message(output))
    return output


def receive_after(party: Party, peer: str) -> Party:
    """Run ``party``, then receive and drop one more message from ``peer``."""
    output = yield from party
    yield Receive(peer)
    return output


class _FixedStream:
    """A deterministic byte stream from SHAKE-256 of a fixed seed and a call counter."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.calls = 0

    def token_bytes(self, nbytes: int | None = None) -> bytes:
        size = 32 if nbytes is None else nbytes
        self.calls += 1
        return hashlib.shake_256(self.seed + self.calls.to_bytes(8, "big")).digest(size)


def with_fixed_randomness(party: Party, seed: bytes) -> Party:
    """Run ``party`` with ``secrets.token_bytes`` replaced by a fixed-seed stream while it computes.

    The protocols draw all their randomness through ``secrets.token_bytes``. The original
    function comes back before every effect goes to the runner, so other parties keep real
    randomness.
    """
    stream = _FixedStream(seed)
    value = None
    while True:
        original = secrets.token_bytes
        secrets.token_bytes = stream.token_bytes
        try:
            effect = party.send(value)
        except StopIteration as stop:
            return stop.value
        finally:
            secrets.token_bytes = original
        value = yield effect
