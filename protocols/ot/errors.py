"""Protocol aborts specific to oblivious transfer, refining those of ``testbed.errors``."""

from __future__ import annotations

from testbed.errors import CheatingDetected, MalformedMessage, UnexpectedMessage


class InvalidPoint(MalformedMessage):
    """A peer sent a group element that is not a canonical point of the prime-order subgroup.

    Covers encodings off the curve, non-canonical encodings, the identity, points of small
    order and points with a torsion component.
    """


class WrongMessageKind(UnexpectedMessage):
    """A peer message carries the kind tag of another protocol step."""


class OutOfSequence(UnexpectedMessage):
    """A peer message carries an unexpected sequence number (reordered, dropped or replayed)."""


class CorrelationCheckFailed(CheatingDetected):
    """The KOS correlation check failed: the OT extension receiver used inconsistent choices."""
