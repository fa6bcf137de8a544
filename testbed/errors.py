"""Exceptions of the runtime and the base classes for protocol aborts.

Protocol code raises a subclass of :class:`ProtocolAbort` when a peer message violates the
protocol; runners never turn such an abort into a crash of the whole run, they record which
party aborted and tell its peers with :class:`PeerAborted`.
"""

from __future__ import annotations


class TestbedError(Exception):
    """Base class of every error raised by the testbed itself."""


class ProtocolAbort(TestbedError):
    """A party stopped the protocol because a peer message violates it."""


class MalformedMessage(ProtocolAbort):
    """A peer message has the wrong length, type tag or encoding."""


class TruncatedMessage(MalformedMessage):
    """A peer message is shorter than the protocol requires."""


class UnexpectedMessage(ProtocolAbort):
    """A peer message arrived out of order, twice, or from the wrong session."""


class CheatingDetected(ProtocolAbort):
    """A consistency check of a maliciously secure protocol failed."""


class PeerAborted(TestbedError):
    """The peer this party waits for has stopped; thrown into the waiting party by the runner."""

    def __init__(self, peer: str, reason: str) -> None:
        super().__init__(f"peer {peer!r} stopped: {reason}")
        self.peer = peer
        self.reason = reason


class LinkDown(TestbedError):
    """A link on the path between two parties was cut while a message needed it."""


class PartyStopped(TestbedError):
    """A fault stopped this party at a given simulated time."""


class DeadlockError(TestbedError):
    """Every unfinished party waits for a message that no party will send."""


class RunFailed(TestbedError):
    """At least one party ended with an exception; ``failures`` maps each such party to it."""

    def __init__(
        self, failures: dict[str, BaseException], stopped_at: float | None = None, partial: object = None
    ) -> None:
        parts = ", ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in failures.items())
        where = "" if stopped_at is None else f" at simulated time {stopped_at:.6f} s"
        super().__init__(f"run failed{where} ({parts})")
        self.failures = failures
        self.stopped_at = stopped_at
        # The run's result up to the failure (a RunResult with outputs of None), when the runner has one.
        self.partial = partial

    @property
    def first(self) -> BaseException:
        """The exception of the party that failed first."""
        return next(iter(self.failures.values()))


class ScenarioError(TestbedError):
    """A scenario file or override is invalid; the message names the key, the value and the fix."""
