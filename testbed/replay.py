"""Replay a recorded trace on a network model without running any cryptography.

The replay engine follows the simulated runner's rules exactly. A party's clock advances by its
recorded compute times (times ``compute_factor``) and by waiting for messages. Sends go through
the same ``Network.transmit`` in the same global time order, and ties between equal times are
broken the same way (first scheduled, first served). Replaying a trace on the network it
was recorded on therefore reproduces the live run's times exactly. It is a plain event loop
over a heap, much faster than simpy, so sweeps over thousands of network settings are cheap.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

from testbed.errors import DeadlockError
from testbed.network import Network
from testbed.runtime import MessageLog
from testbed.timeline import PhaseClock
from testbed.trace import Trace
from testbed.transcript import Transcript


@dataclass
class ReplayResult:
    """Timing of a replayed run: the same timing fields as a live ``RunResult``, no outputs."""

    sim_seconds: float
    party_end_s: dict[str, float]
    messages: int
    transcript: Transcript | None = None
    phase_span_s: dict[str, tuple[float, float]] = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


class _State:
    __slots__ = ("name", "steps", "index", "now", "charged", "blocked_on", "final", "done", "deferred")

    def __init__(self, name: str, steps, final: float) -> None:
        self.name = name
        self.steps = steps
        self.index = 0
        self.now = 0.0
        self.charged = False
        self.blocked_on: str | None = None
        self.final = final
        self.done = False
        self.deferred = False


def replay(
    trace: Trace,
    network: Network,
    *,
    compute_factor: float = 1.0,
    record_transcript: bool = True,
) -> ReplayResult:
    """Replay ``trace`` on ``network`` and return its simulated timing.

    ``network`` is reset first. Set ``record_transcript=False`` for the fastest sweeps.
    """
    if not compute_factor >= 0:
        raise ValueError(f"invalid compute_factor {compute_factor!r}: use a factor >= 0, e.g. 1.0")
    network.reset()
    states = {name: _State(name, t.steps, t.final_compute_s) for name, t in trace.parties.items()}
    mailbox: dict[tuple[str, str], deque] = {}
    log = MessageLog(keep_payloads=False) if record_transcript else None
    phases = PhaseClock() if record_transcript else None
    current_phase = {name: "main" for name in states}
    heap: list[tuple[float, int, str]] = []
    counter = 0
    messages = 0
    transmit = network.transmit
    push = heapq.heappush

    for name in states:
        heap.append((0.0, counter, name))
        counter += 1
        if phases is not None:
            phases.enter(name, "main", 0.0)

    while heap:
        now, _, name = heapq.heappop(heap)
        state = states[name]
        state.now = now
        steps = state.steps
        # Run this party until it must wait for simulated time to pass.
        while True:
            if state.index == len(steps):
                if not state.charged and state.final * compute_factor > 0:
                    state.charged = True
                    due = now + state.final * compute_factor
                    if heap and heap[0][0] <= due:
                        push(heap, (due, counter, name))
                        counter += 1
                        break
                    now = state.now = due
                state.done = True
                if phases is not None:
                    phases.leave(name, now)
                break
            step = steps[state.index]
            if not state.charged:
                state.charged = True
                delay = step.compute_s * compute_factor
                if delay > 0:
                    due = now + delay
                    if heap and heap[0][0] <= due:
                        push(heap, (due, counter, name))
                        counter += 1
                        break
                    now = state.now = due
            kind = step.kind
            if kind == "send":
                peer = step.peer
                arrival = transmit(name, peer, step.nbytes, now)
                arrival = now + (arrival - now)  # the live runner schedules delivery by delay
                messages += 1
                record = None
                if log is not None:
                    record = log.record(current_phase[name], name, peer, None, now, arrival, nbytes=step.nbytes)
                key = (name, peer)
                queue = mailbox.get(key)
                if queue is None:
                    queue = mailbox[key] = deque()
                queue.append((arrival, record))
                receiver = states[peer]
                if receiver.blocked_on == name:
                    receiver.blocked_on = None
                    push(heap, (arrival, counter, peer))
                    counter += 1
            elif kind == "recv":
                queue = mailbox.get((step.peer, name))
                if not queue:
                    state.blocked_on = step.peer
                    break
                arrival, record = queue[0]
                if arrival > now:
                    push(heap, (arrival, counter, name))
                    counter += 1
                    break
                if not state.deferred and heap and heap[0][0] <= now:
                    # Like simpy, let events already scheduled for this instant run first, once.
                    state.deferred = True
                    push(heap, (now, counter, name))
                    counter += 1
                    break
                state.deferred = False
                queue.popleft()
                if log is not None:
                    log.delivered(record)
            else:
                current_phase[name] = step.phase
                if phases is not None:
                    phases.enter(name, step.phase, now)
            state.index += 1
            state.charged = False

    stuck = [s.name for s in states.values() if not s.done]
    if stuck:
        waits = ", ".join(f"{s.name} waits for {s.blocked_on}" for s in states.values() if not s.done)
        raise DeadlockError(f"trace replay deadlocked: {waits}")
    ends = {s.name: s.now for s in states.values()}
    return ReplayResult(
        sim_seconds=max(ends.values(), default=0.0),
        party_end_s=ends,
        messages=messages,
        transcript=log.transcript() if log is not None else None,
        phase_span_s=phases.spans() if phases is not None else {},
    )
