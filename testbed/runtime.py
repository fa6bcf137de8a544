"""Pieces shared by every runner: stepping a party coroutine and recording its messages."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testbed.effects import Effect, Party, Phase, Receive, Send
from testbed.trace import PartyTrace, TraceStep
from testbed.transcript import MessageRecord, Transcript, payload_digest, top_phase

# An interceptor sees each message before delivery and returns what is delivered instead:
# the same bytes, other bytes, a sequence of messages (to duplicate or inject), or an empty
# sequence (to drop it). Tests use it to tamper with, truncate, replay or reorder messages.
Interceptor = Callable[[str, str, int, bytes], "bytes | Sequence[bytes]"]

DEFAULT_PHASE = "main"


@dataclass
class RunResult:
    """Outputs of a finished run, with its transcript and trace.

    ``sim_seconds`` is the simulated time at which the last party finished (0 in memory).
    ``party_end_s`` and ``compute_seconds`` give each party's end time and its measured
    compute time, the latter before any hardware factor.
    """

    outputs: dict[str, Any]
    transcript: Transcript
    trace: dict[str, PartyTrace]
    sim_seconds: float = 0.0
    party_end_s: dict[str, float] = field(default_factory=dict)
    compute_seconds: dict[str, float] = field(default_factory=dict)
    phase_compute_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    phase_span_s: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_drivers(cls, drivers: Mapping[str, "PartyDriver"], log: "MessageLog", **timing: Any) -> "RunResult":
        """Collect the outputs, transcript, traces and compute of finished drivers; ``timing`` sets the rest."""
        return cls(
            outputs={name: d.output for name, d in drivers.items()},
            transcript=log.transcript(),
            trace={name: d.trace for name, d in drivers.items()},
            compute_seconds={name: d.trace.compute_total_s() for name, d in drivers.items()},
            phase_compute_seconds={name: dict(d.phase_compute) for name, d in drivers.items()},
            **timing,
        )


class PartyDriver:
    """Step one party coroutine, time its compute and record its trace.

    ``advance`` sends a value into the coroutine and returns the next effect, or ``None``
    once the coroutine has returned (``output``) or raised (``error``).
    """

    def __init__(self, name: str, party: Party, clock: Callable[[], float] = time.perf_counter) -> None:
        self.name = name
        self._party = party
        self._clock = clock
        self.phase = DEFAULT_PHASE
        self.done = False
        self.output: Any = None
        self.error: BaseException | None = None
        self.last_compute = 0.0
        self.trace = PartyTrace(steps=[])
        self.phase_compute: dict[str, float] = defaultdict(float)

    def advance(self, value: bytes | None = None) -> Effect | None:
        return self._step(lambda: self._party.send(value))

    def throw(self, exc: BaseException) -> Effect | None:
        return self._step(lambda: self._party.throw(exc))

    def _step(self, resume: Callable[[], Any]) -> Effect | None:
        started = self._clock()
        try:
            effect = resume()
        except StopIteration as stop:
            self._charge(self._clock() - started)
            self.trace.final_compute_s = self.last_compute
            self.done = True
            self.output = stop.value
            return None
        except Exception as exc:  # a party may fail with anything; the runner reports it
            self._charge(self._clock() - started)
            self.trace.final_compute_s = self.last_compute
            self.done = True
            self.error = exc
            return None
        self._charge(self._clock() - started)
        if not isinstance(effect, (Send, Receive, Phase)):
            self.done = True
            self.error = TypeError(
                f"party {self.name!r} yielded {effect!r}: a party may yield only Send, Receive or Phase"
            )
            self._party.close()
            return None
        if isinstance(effect, Send) and not isinstance(effect.payload, (bytes, bytearray, memoryview)):
            self.done = True
            self.error = TypeError(
                f"party {self.name!r} sent a {type(effect.payload).__name__}: payloads must be bytes"
            )
            self._party.close()
            return None
        self.trace.steps.append(TraceStep.of(self.last_compute, effect))
        if isinstance(effect, Phase):
            self.phase = effect.name
        return effect

    def _charge(self, seconds: float) -> None:
        self.last_compute = seconds
        self.phase_compute[self.phase] += seconds


class MessageLog:
    """Build the transcript of a run and the causal depth of each message."""

    def __init__(self, keep_payloads: bool) -> None:
        self._keep = keep_payloads
        self._records: list[MessageRecord] = []
        self._seen_depth: dict[str, int] = defaultdict(int)
        self._seen_phase_depth: dict[tuple[str, str], int] = defaultdict(int)

    def record(
        self,
        phase: str,
        src: str,
        dst: str,
        payload: bytes | None,
        send_s: float,
        recv_s: float,
        nbytes: int | None = None,
    ) -> MessageRecord:
        """Record a message at send time; its depth follows what ``src`` had received so far.

        A replay has sizes but no payloads: it passes ``payload=None`` and ``nbytes``.
        """
        record = MessageRecord(
            seq=len(self._records),
            phase=phase,
            src=src,
            dst=dst,
            nbytes=len(payload) if payload is not None else int(nbytes or 0),
            sim_send_s=send_s,
            sim_recv_s=recv_s,
            digest=payload_digest(payload) if payload is not None else "",
            depth=self._seen_depth[src] + 1,
            phase_depth=self._seen_phase_depth[(src, top_phase(phase))] + 1,
            payload=bytes(payload) if self._keep and payload is not None else None,
        )
        self._records.append(record)
        return record

    def delivered(self, record: MessageRecord) -> None:
        """Note that ``record.dst`` has read the message, so its later sends depend on it."""
        dst = record.dst
        self._seen_depth[dst] = max(self._seen_depth[dst], record.depth)
        key = (dst, top_phase(record.phase))
        self._seen_phase_depth[key] = max(self._seen_phase_depth[key], record.phase_depth)

    def transcript(self) -> Transcript:
        return Transcript(self._records, payloads_kept=self._keep)


def apply_interceptor(
    intercept: Interceptor | None, src: str, dst: str, index: int, payload: bytes
) -> list[bytes]:
    """Return the messages to deliver in place of ``payload`` (the message ``index`` from src to dst)."""
    if intercept is None:
        return [payload]
    replaced = intercept(src, dst, index, payload)
    if isinstance(replaced, (bytes, bytearray, memoryview)):
        return [bytes(replaced)]
    return [bytes(p) for p in replaced]


def check_party_names(parties: Mapping[str, Party]) -> None:
    if len(parties) < 1:
        raise ValueError("a run needs at least one party")
    for name in parties:
        if not isinstance(name, str) or not name or "->" in name:
            raise ValueError(f"invalid party name {name!r}: use a non-empty string without '->'")


def unknown_peer(driver: PartyDriver, peer: str, parties: Mapping[str, Any]) -> ValueError | None:
    """Return the error to throw into ``driver`` when ``peer`` is not another party of the run."""
    if peer in parties and peer != driver.name:
        return None
    return ValueError(f"party {driver.name!r} addressed unknown peer {peer!r}; parties are {sorted(parties)}")
