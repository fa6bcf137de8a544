"""Model repair in plaintext: TIME/UCE fixes, their application to a UNet, and the repair database.

Public API used by the composed SURE protocol:

* :func:`compute_fix` and :func:`fix_for_edit` build a :class:`Fix` (``dense``, ``low_rank``,
  ``to_bytes``, ``Fix.from_bytes``);
* :func:`apply_fix` repairs every cross-attention key and value projection of a diffusers UNet;
* :class:`RepairDatabase` builds (``build``), stores (``save``, ``load``), pads
  (``pad_synthetic``) and serves (``key``, ``entry_bytes``) the MRI's entries.
"""

from protocols.repair.apply import apply_fix, cross_attention_width, find_cross_attention_projections
from protocols.repair.database import RepairDatabase
from protocols.repair.edit import Edit, fix_for_edit
from protocols.repair.fix import DENSE, LOW_RANK, Fix, align_tokens, compute_fix, encoded_size

__all__ = [
    "DENSE", "LOW_RANK", "Edit", "Fix", "RepairDatabase", "align_tokens", "apply_fix", "compute_fix",
    "cross_attention_width", "encoded_size", "find_cross_attention_projections", "fix_for_edit",
]
