"""Leaky variants of two-party matching, built by wrapping the real SP and MRI parties."""

from __future__ import annotations

import struct

import numpy as np

from protocols.matching import protocol as matching
from protocols.matching.fixed_point import encode_keys, encode_query, encoded_scores

from proofs_check.checks import matching as matching_checks
from proofs_check.mutants.wrappers import receive_after, send_after, with_fixed_randomness
from proofs_check.spec import Mutant

FIXED_SEED = b"proofs_check/fixed-seed"


def _sp_sends_index(inputs: dict) -> dict:
    coroutines = matching_checks._parties(inputs)
    coroutines["sp"] = send_after(coroutines["sp"], "mri", lambda index: struct.pack(">i", -1 if index is None else index))
    coroutines["mri"] = receive_after(coroutines["mri"], "sp")
    return coroutines


def _reveals_scores(inputs: dict) -> dict:
    # Stands for a garbled circuit that also decodes every score wire: the SP ends up with the
    # plaintext fixed-point scores. The wrapper computes them from both inputs to emulate it.
    params = matching_checks.PARAMS
    scores = encoded_scores(encode_query(inputs["query"], params), encode_keys(inputs["keys"], params))
    coroutines = matching_checks._parties(inputs)
    coroutines["mri"] = send_after(coroutines["mri"], "sp", lambda output: scores.astype(">i4").tobytes())
    coroutines["sp"] = receive_after(coroutines["sp"], "mri")
    return coroutines


def _fixed_mri(inputs: dict) -> dict:
    coroutines = matching_checks._parties(inputs)
    coroutines["mri"] = with_fixed_randomness(coroutines["mri"], FIXED_SEED)
    return coroutines


def mutants() -> list[Mutant]:
    """Return the matching mutants."""
    return [
        Mutant(
            "matching.sp-sends-index",
            "the SP sends its matching index to the MRI in clear after the protocol",
            "the MRI learns the output, which depends on the SP's query",
            matching_checks.mri_spec().with_parties(_sp_sends_index),
        ),
        Mutant(
            "matching.reveals-scores",
            "the SP receives the fixed-point scores of every key, not only the argmax",
            "the SP learns every similarity, which depends on the MRI's keys",
            matching_checks.sp_spec().with_parties(_reveals_scores),
        ),
        Mutant(
            "matching.fixed-mri-seed",
            "the MRI draws its OT, label and Δ randomness from a fixed PRG seed",
            "garbled labels and tables repeat across runs, so the SP can link and decode runs",
            matching_checks.sp_spec().with_parties(_fixed_mri),
        ),
    ]
