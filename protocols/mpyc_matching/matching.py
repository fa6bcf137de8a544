"""Honest-majority secure matching with MPyC: SP, MRI and at least one independent helper.

Functionality: the SP inputs a unit query ``q``, the MRI inputs ``n`` unit keys ``K`` and an
optional threshold ``τ``; the SP alone learns the index of the key with the largest inner product
with ``q`` (lowest index on ties), or "no match" when that inner product is below ``τ``. The MRI
and the helpers learn nothing. Scores are computed exactly on the fixed-point encodings of
``protocols.mpyc_matching.encoding``, so the output equals ``reference_match``.

Construction: MPyC's Shamir secret sharing over a prime field with threshold ``t = (m − 1) // 2``
(Schoenmakers, MPyC 0.11; BGW-style multiplication with resharing, Damgård et al. style secure
comparison). Security: semi-honest adversaries corrupting at most ``t`` of the ``m`` parties, which
needs an honest majority (``2t < m``) and private channels between the parties.

With ``m = 2`` MPyC's bound ``t < m/2`` forces ``t = 0``: each party's share *is* the secret, so
the run gives no privacy at all. Such a run is rejected unless asked for explicitly as an insecure
negative control, and its result is labelled insecure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from protocols.mpyc_matching.encoding import (
    InvalidMatchingInput,
    MatchingEncoding,
    encode_keys,
    encode_query,
    encode_threshold,
)
from protocols.mpyc_matching.process import MpycRun, run_mpyc_program
from testbed.relay import LinkShape

logger = logging.getLogger(__name__)

PARTY_MODULE = "protocols.mpyc_matching.party"
SECURE = "semi-honest, honest majority"
INSECURE = "INSECURE: two MPyC parties have threshold t = 0, so no privacy"


class InsecureThresholdError(ValueError):
    """MPyC was asked to run with fewer than three parties, where its threshold gives no privacy."""


def party_names(parties: int) -> list[str]:
    """Return the party names by MPyC index: ``sp``, ``mri``, then ``helper1``, ``helper2``, ..."""
    return ["sp", "mri"] + [f"helper{i}" for i in range(1, parties - 1)]


def threshold_for(parties: int) -> int:
    """Return MPyC's default threshold ``t = (m − 1) // 2``, the largest with ``2t < m``."""
    return (parties - 1) // 2


def check_party_count(parties: int, allow_insecure_two_party: bool = False) -> str:
    """Validate the number of MPyC parties and return the security label of such a run.

    Raises ``InsecureThresholdError`` for ``parties == 2`` unless ``allow_insecure_two_party``,
    and ``ValueError`` for fewer than two parties.
    """
    if not isinstance(parties, int) or parties < 2:
        raise ValueError(f"invalid number of MPyC parties {parties!r}: matching needs the SP, the MRI and a helper (3 or more)")
    if parties == 2:
        if not allow_insecure_two_party:
            raise InsecureThresholdError(
                "MPyC with 2 parties is rejected: MPyC tolerates t < m/2 corrupt parties, so m = 2 gives "
                "threshold t = 0 and every share equals the secret (no privacy). Use 3 or more parties "
                "(SP, MRI and independent helpers), or set allow_insecure_two_party=True for an "
                "insecure negative control."
            )
        logger.warning("running MPyC matching with 2 parties as an insecure negative control (t = 0)")
        return INSECURE
    return SECURE


@dataclass(frozen=True)
class MpycMatchingResult:
    """Output of an MPyC matching run at the SP, its security label, and the run's record."""

    index: int | None
    parties: int
    threshold_t: int
    security: str
    encoding: MatchingEncoding
    run: MpycRun = field(repr=False)

    @property
    def insecure(self) -> bool:
        return self.security == INSECURE


def run_mpyc_matching(
    query: np.ndarray,
    keys: np.ndarray,
    threshold: float | None = None,
    *,
    parties: int = 3,
    encoding: MatchingEncoding | None = None,
    allow_insecure_two_party: bool = False,
    shapes: Mapping[tuple[str, str], LinkShape] | None = None,
    default_shape: LinkShape = LinkShape(),
    timeout_s: float = 600.0,
) -> MpycMatchingResult:
    """Run MPyC matching with ``parties`` processes through the relay; return the SP's output.

    ``shapes`` maps ``(src, dst)`` party names (see ``party_names``) to link shapes. Raises
    ``InvalidMatchingInput`` for inputs that are not unit vectors of a common width,
    ``InsecureThresholdError`` for two parties unless allowed, and
    ``testbed.relay.ProcessFailure`` when a party process fails or times out.
    """
    security = check_party_count(parties, allow_insecure_two_party)
    keys = np.asarray(keys)
    if keys.ndim != 2:
        raise InvalidMatchingInput(f"keys must be an (n, d) matrix, got shape {keys.shape}")
    encoding = encoding or MatchingEncoding(dim=keys.shape[1])
    query_hat = encode_query(query, encoding)
    keys_hat = encode_keys(keys, encoding)
    limit = encode_threshold(threshold, encoding)

    names = party_names(parties)
    params = {
        "n": int(keys_hat.shape[0]),
        "dim": encoding.dim,
        "bit_length": encoding.bit_length,
        "has_threshold": limit is not None,
    }
    jobs = [{"role": name, "params": params} for name in names]
    inputs: list[dict | None] = [None] * parties
    inputs[0] = {"query": query_hat}
    inputs[1] = {"keys": keys_hat}
    if limit is not None:
        inputs[1]["threshold"] = np.array(limit, dtype=object).astype(np.int64)

    run = run_mpyc_program(
        PARTY_MODULE, names, jobs, inputs, shapes=shapes, default_shape=default_shape, timeout_s=timeout_s
    )
    raw = run.results["sp"]["output"]
    index = None if raw is None or raw < 0 else int(raw)
    run.trace.meta.update({"protocol": "mpyc-matching", "n": params["n"], "dim": encoding.dim, "security": security})
    return MpycMatchingResult(index, parties, threshold_for(parties), security, encoding, run)
