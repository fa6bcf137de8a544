"""Simulators for the composed SURE protocol (``protocols.sure.protocol``): matching, then retrieval.

Simulation argument (semi-honest, one corrupted party). SURE runs two-party matching and then
1-out-of-n OT of the encoded fixes, one after the other. Sequential composition (Canetti,
"Security and Composition of Multiparty Cryptographic Protocols", J. Cryptology 2000)
lets each sub-protocol be replaced by its ideal functionality, so the simulator
of the whole is the concatenation of the sub-protocols' simulators:

* Corrupted **MRI**: the matching MRI view (:func:`simulators.matching.mri_view`), then the
  1-out-of-(n+1) sender view (:func:`simulators.one_of_n.sender_view`). Retrieval runs even
  after "no match", so neither part depends on the SP's query or on the output.
* Corrupted **SP**: the matching SP view for the ideal index, then the 1-out-of-(n+1) receiver
  view that delivers the ideal fix, or the public all-zero dummy entry ``n`` after "no match";
  the local repair sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from testbed.transcript import ViewEntry

from protocols.matching.fixed_point import FixedPointParams
from simulators import matching, one_of_n

PHASE_RETRIEVAL = "retrieval"


def mri_view(sp: str, n: int, params: FixedPointParams, *, malicious_ot: bool = False) -> list[ViewEntry]:
    """Return a simulated view of the MRI for a database of ``n`` entries; its output is ``None``."""
    view = matching.mri_view(sp, n, params)
    view += one_of_n.sender_view(sp, n + 1, malicious=malicious_ot, phase=PHASE_RETRIEVAL)
    return view


def sp_view(
    mri: str,
    params: FixedPointParams,
    index: int | None,
    fix: bytes | None,
    lengths: Sequence[int],
    *,
    malicious_ot: bool = False,
) -> list[ViewEntry]:
    """Return a simulated view of the SP with ideal output ``(index, fix)``.

    ``lengths`` are the encoded fix sizes, public by the fix format. ``index`` is ``None`` for
    no match, and ``fix`` is then ignored: the SP retrieves the public dummy entry ``n``.
    """
    n = len(lengths)
    view = matching.sp_view(mri, n, params, index)
    retrieved_lengths = [*lengths, lengths[0]]
    if index is None:
        chosen, payload = n, bytes(lengths[0])
    else:
        chosen, payload = index, bytes(fix)
    view += one_of_n.receiver_view(
        mri, chosen, payload, retrieved_lengths, malicious=malicious_ot, phase=PHASE_RETRIEVAL
    )
    return view
