"""The catalogue of deliberately leaky protocol variants that the checks must flag.

Every mutant wraps or re-assembles the real party coroutines; none edits a protocol module.
A mutant is caught when its check fails: a distinguisher rejects at the configured level, an
output disagrees with the ideal functionality, or the message flow differs from the
specification.
"""

from __future__ import annotations

from proofs_check.spec import Mutant


def catalogue() -> list[Mutant]:
    """Return every mutant, OT first, then matching."""
    from proofs_check.mutants import matching, ot

    return ot.mutants() + matching.mutants()
