"""Security simulation checks: real views of a corrupted party against simulated views.

For each protocol and each corruptible party, ``proofs_check`` collects real views from real
runs and simulated views from ``simulators`` and compares them with statistical
distinguishers. It also checks the message flow, bytes and rounds against the documented
formulas, enumerates tiny instances exactly, and runs a catalogue of leaky mutants that must
be caught. The results are
empirical evidence that the simulation arguments hold for the code as written, not a proof.
Run ``python -m proofs_check --help``.
"""
