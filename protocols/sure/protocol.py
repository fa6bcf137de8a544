"""The SURE protocol between the service provider (SP) and the model repair institute (MRI).

Ideal functionality. The SP inputs its UNet and a unit-norm matching key ``q`` computed from the
user-flagged prompt. The MRI inputs its repair database ``(key_i, fix_i)`` of public size ``n``
and public fix encoding, and an optional similarity threshold. The SP receives ``i* = argmax_i
<key_i, q>`` (lowest index on ties, or "no match" below the threshold) and ``fix_{i*}``, and
repairs its UNet; the MRI receives nothing.

Construction (semi-honest, the composition of two protocols secure against a semi-honest
adversary that corrupts one party; sequential composition preserves that, Canetti 2000):

1. **Matching** (:mod:`protocols.matching.protocol`): the SP learns ``i*`` or "no match".
2. **Retrieval** (:mod:`protocols.ot.one_of_n`): 1-out-of-(n+1) OT of the encoded fixes followed
   by a public dummy entry (``entry_size`` zero bytes) at index ``n``, with the SP's choice ``i*``,
   or ``n`` on "no match". Retrieval therefore always runs, so the MRI's view is the same whether
   or not a match was found, and after "no match" the SP opens only the dummy, never a real fix.
3. **Repair** (local to the SP): the SP parses the fix with every check of
   :meth:`protocols.repair.fix.Fix.from_bytes` (header, width, encoding, dtype, finite values)
   and applies ``W <- W W_fix`` (dense) or ``W <- W + (W U) V^T`` (low-rank) to every
   cross-attention key and value projection.

A malicious SP could retrieve an index other than the matched one; the semi-honest model rules
that out. Rounds and bytes are those of the two sub-protocols added up; repair sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from protocols.matching.fixed_point import FixedPointParams
from protocols.matching.protocol import matching_mri, matching_sp
from protocols.ot.one_of_n import one_of_n_receiver, one_of_n_sender
from protocols.repair.apply import apply_fix
from protocols.repair.fix import Fix
from testbed.effects import Party, Phase

PHASE_MATCHING = "matching"
PHASE_RETRIEVAL = "retrieval"
PHASE_REPAIR = "repair"


@dataclass(frozen=True)
class FixFormat:
    """The public format of every database entry: width, encoding, dtype and low-rank rank."""

    dim: int
    encoding: str
    dtype: str
    rank: int | None


@dataclass
class SpOutput:
    """The SP's output: the matched index (``None`` for no match), the fix and layers repaired."""

    index: int | None
    fix: Fix | None
    layers_repaired: int


def sure_sp(
    peer: str,
    query: np.ndarray,
    n: int,
    fix_format: FixFormat,
    unet,
    *,
    params: FixedPointParams | None = None,
    malicious_ot: bool = False,
) -> Party[SpOutput]:
    """Run the SP's side against the MRI named ``peer``; repair ``unet`` in place on a match.

    Raises a ``ProtocolAbort`` subclass for an invalid peer message, including a retrieved fix
    that fails :meth:`Fix.from_bytes`'s checks (the model is then unchanged).
    """
    yield Phase(PHASE_MATCHING)
    index = yield from matching_sp(peer, query, n, params=params)

    yield Phase(PHASE_RETRIEVAL)
    choice = n if index is None else index
    payload = yield from one_of_n_receiver(peer, n + 1, choice, malicious=malicious_ot)

    yield Phase(PHASE_REPAIR)
    if index is None:
        return SpOutput(index=None, fix=None, layers_repaired=0)
    rank = fix_format.rank if fix_format.encoding == "low-rank" else None
    fix = Fix.from_bytes(
        payload, dim=fix_format.dim, encoding=fix_format.encoding, dtype=fix_format.dtype, rank=rank
    )
    layers = apply_fix(unet, fix, fix_format.encoding)
    return SpOutput(index=index, fix=fix, layers_repaired=layers)


def sure_mri(
    peer: str,
    keys: np.ndarray,
    payload: Callable[[int], bytes | memoryview],
    threshold: float | None = None,
    *,
    params: FixedPointParams | None = None,
    malicious_ot: bool = False,
) -> Party[None]:
    """Run the MRI's side against the SP named ``peer``; ``payload(i)`` returns entry ``i``'s encoded fix.

    Every entry must have the same length; the dummy entry ``n`` has that length too.
    """
    n = len(keys)
    dummy = bytes(len(payload(0)))

    def payload_or_dummy(index: int) -> bytes | memoryview:
        return dummy if index == n else payload(index)

    yield Phase(PHASE_MATCHING)
    yield from matching_mri(peer, keys, threshold, params=params)

    yield Phase(PHASE_RETRIEVAL)
    yield from one_of_n_sender(peer, n + 1, payload_or_dummy, malicious=malicious_ot)

    yield Phase(PHASE_REPAIR)
    return None
