"""Two-party secure matching between the SP and the MRI: the nearest repair key, no third party.

* ``fixed_point``: the encoding of query, keys and threshold, its error bound, and the
  plaintext reference that defines the exact output;
* ``arithmetic``: inner products into additive shares with Gilboa's OT-based multiplication;
* ``garbled``: the garbled-circuit argmax (free-XOR, half-gates, fixed-key AES);
* ``protocol``: the party coroutines ``matching_sp`` and ``matching_mri``.
"""

from protocols.matching.fixed_point import FixedPointParams, float_match, reference_match
from protocols.matching.protocol import matching_mri, matching_sp

__all__ = ["FixedPointParams", "float_match", "matching_mri", "matching_sp", "reference_match"]
