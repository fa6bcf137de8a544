"""Run a selection of checks, mutants and exact enumerations and gather one report."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import numpy as np

from testbed.report import machine_info

from proofs_check.checks import load_specs
from proofs_check.exact import run_exact
from proofs_check.mutants import catalogue
from proofs_check.runner import DEFAULT_ALPHA, run_check

logger = logging.getLogger(__name__)


def _prefixes(protocol: str | None) -> list[str | None]:
    if protocol is None:
        return [None]
    return [name.strip() for name in protocol.split(",") if name.strip()]


def _selected(protocol: str | None, party: str | None, spec_protocol: str, spec_party: str) -> bool:
    prefixes = _prefixes(protocol)
    if prefixes != [None] and not any(spec_protocol.startswith(prefix) for prefix in prefixes):
        return False
    return party is None or spec_party == party


def run_suite(
    *,
    protocol: str | None = None,
    party: str | None = None,
    samples: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    seed: int = 0,
    mutants: bool = True,
    exact: bool = True,
    mutant_names: list[str] | None = None,
) -> dict:
    """Run every selected check and mutant; return the report as a JSON-ready dict.

    ``protocol`` is a protocol name or prefix, or several separated by commas. ``samples``
    overrides each check's default sample size; ``seed`` seeds the generator that
    picks honest inputs only, never protocol randomness.
    """
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    rng = np.random.default_rng(seed)
    specs = []
    unavailable: dict[str, str] = {}
    for prefix in _prefixes(protocol):
        found, missing = load_specs(prefix, party)
        specs += [spec for spec in found if spec not in specs]
        unavailable.update(missing)
    checks = []
    for spec in specs:
        logger.info("check %s: %d samples", spec.key, samples or spec.samples)
        checks.append(run_check(spec, samples or spec.samples, rng, alpha))

    mutant_results = []
    if mutants:
        for mutant in catalogue():
            if mutant_names and mutant.name not in mutant_names:
                continue
            if not mutant_names and not _selected(protocol, party, mutant.spec.protocol, mutant.spec.party):
                continue
            logger.info("mutant %s", mutant.name)
            result = run_check(mutant.spec, samples or mutant.spec.samples, rng, alpha)
            mutant_results.append(
                {
                    "name": mutant.name,
                    "description": mutant.description,
                    "leak": mutant.leak,
                    "protocol": mutant.spec.protocol,
                    "party": mutant.spec.party,
                    "samples": result["samples"],
                    "caught": result["verdict"] == "fail",
                    "flagged_by": result["flagged_by"],
                    "advantage": result["advantage"],
                    "advantage_input": result["advantage_input"],
                    "seconds": result["seconds"],
                }
            )

    return {
        "started": started_at,
        "seconds": time.perf_counter() - started,
        "alpha": alpha,
        "seed": seed,
        "selection": {"protocol": protocol, "party": party, "samples": samples},
        "machine": machine_info(),
        "checks": checks,
        "unavailable": unavailable,
        "mutants": mutant_results,
        "exact": run_exact() if exact else [],
        "summary": {
            "checks_passed": sum(c["verdict"] == "pass" for c in checks),
            "checks": len(checks),
            "mutants_caught": sum(m["caught"] for m in mutant_results),
            "mutants": len(mutant_results),
        },
    }
