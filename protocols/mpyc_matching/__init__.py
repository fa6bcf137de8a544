"""Secure matching with MPyC among three or more parties (SP, MRI, helpers), honest majority."""

from protocols.mpyc_matching.encoding import (
    InvalidMatchingInput,
    MatchingEncoding,
    encode_keys,
    encode_query,
    encode_threshold,
    reference_match,
)
from protocols.mpyc_matching.matching import (
    InsecureThresholdError,
    MpycMatchingResult,
    check_party_count,
    party_names,
    run_mpyc_matching,
    threshold_for,
)

__all__ = [
    "InsecureThresholdError",
    "InvalidMatchingInput",
    "MatchingEncoding",
    "MpycMatchingResult",
    "check_party_count",
    "encode_keys",
    "encode_query",
    "encode_threshold",
    "party_names",
    "reference_match",
    "run_mpyc_matching",
    "threshold_for",
]
