"""Errors of fix computation, fix encodings, model repair and repair databases."""

from __future__ import annotations

from testbed.errors import MalformedMessage, TestbedError, TruncatedMessage


class RepairError(TestbedError, ValueError):
    """A repair input is invalid; the message names the value and what to change."""


class AlignmentError(RepairError):
    """The tokens of a source and a destination prompt cannot be paired."""


class SingularSystemError(RepairError):
    """The regularised normal-equation matrix of a fix is singular or numerically so."""


class FixWidthError(RepairError):
    """A fix's width differs from the cross-attention width of the model it is applied to."""


class NonFiniteError(RepairError):
    """A fix, an embedding or a model weight contains NaN or infinity."""


class EditSpecError(RepairError):
    """An edit-spec file is malformed; the message names the entry and the field."""


class DatabaseError(RepairError):
    """A repair database on disk is missing files or fails validation."""


class FixDecodeError(MalformedMessage, RepairError):
    """Bytes that should encode a fix have a wrong header, length or non-finite values."""


class TruncatedFix(TruncatedMessage, FixDecodeError):
    """Bytes that should encode a fix end before the length their header states."""
