"""The ``mpyc-matching`` workload: SURE's matching step computed by m ≥ 3 MPyC parties.

Construction: MPyC (Schoenmakers, 0.11) Shamir secret sharing with threshold ``t = (m − 1) // 2``
among the SP, the MRI and independent helpers (see ``protocols.mpyc_matching.matching``). It is
secure against semi-honest adversaries when the parties have an honest majority. The parties run as processes through the testbed's
recording relay on 127.0.0.1. Their trace is then replayed on the scenario's ``[network]``, so the
report's phases and total are simulated times on that network, not the wall time of the run.

The MRI's database comes from the ``[database]`` section (synthetic by default, ``entries`` keys
of width ``key_dim``), and the SP's query is the key of database entry ``mpyc.query_entry``.
The report compares the SP's output with the plaintext reference of the two-party matching
(``protocols.matching.fixed_point.reference_match``) and with MPyC's own reference.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from protocols.matching.fixed_point import FixedPointParams
from protocols.matching.fixed_point import reference_match as fixed_point_reference
from protocols.mpyc_matching.encoding import MatchingEncoding
from protocols.mpyc_matching.encoding import reference_match as mpyc_reference
from protocols.mpyc_matching.matching import (
    InsecureThresholdError,
    check_party_count,
    party_names,
    run_mpyc_matching,
    threshold_for,
)
from protocols.sure.workload import load_mri_database
from testbed.errors import ScenarioError
from testbed.relay import LinkShape
from testbed.replay import ReplayResult
from testbed.scenario import Key, Scenario, register_section
from testbed.workloads import Session, Workload, register_workload

logger = logging.getLogger(__name__)

register_section(
    "mpyc",
    {
        "parties": Key("int", 3, "number of MPyC parties m: the SP, the MRI and m − 2 helpers (3 or more; "
                       "2 only with allow_insecure_two_party)", minimum=2),
        "allow_insecure_two_party": Key("bool", False, "run m = 2 anyway as an insecure negative control "
                                        "(threshold t = 0, no privacy); the report's variant says INSECURE"),
        "query_entry": Key("int", 0, "the SP's query is the key of this database entry", minimum=0),
        "threshold": Key("float", None, "least inner product that counts as a match (unset: always match)",
                         minimum=-1, maximum=1),
        "probe_latency_s": Key("float", 0.01, "one-way latency in seconds of every relay link during the "
                               "recorded run, whose trace is then replayed on [network]", minimum=0),
        "timeout_s": Key("float", 600.0, "seconds before the party processes are stopped", exclusive_minimum=0),
    },
)


def matching_variant(parties: int, security: str) -> str:
    """Return the report's ``variant``: the party count and the security label."""
    if security.startswith("INSECURE"):
        return f"mpyc-{parties}party, {security}"
    return f"mpyc-{parties}party, honest majority"


def checked_security(scenario: Scenario) -> str:
    """Return the security label of the scenario's party count, or raise ``ScenarioError``."""
    parties = scenario["mpyc.parties"]
    try:
        return check_party_count(parties, scenario["mpyc.allow_insecure_two_party"])
    except InsecureThresholdError as exc:
        raise ScenarioError(
            f"invalid mpyc.parties = {parties}: {exc} In a scenario, that flag is "
            f"mpyc.allow_insecure_two_party = true."
        ) from None


def prepare(scenario: Scenario) -> Session:
    """Set up the MRI's database and the SP's query, and return a session that runs MPyC for real."""
    security = checked_security(scenario)
    parties = scenario["mpyc.parties"]
    database = load_mri_database(scenario, encoder=None)
    entry = scenario["mpyc.query_entry"]
    if entry >= len(database):
        raise ScenarioError(f"invalid mpyc.query_entry = {entry}: the database has {len(database)} entries")
    query = database.key(entry)
    keys = database.keys.astype(np.float64)
    threshold = scenario["mpyc.threshold"]
    probe = LinkShape(latency_s=scenario["mpyc.probe_latency_s"])
    expected = fixed_point_reference(query, keys, threshold, FixedPointParams(dim=database.key_dim))
    expected_mpyc = mpyc_reference(query, keys, threshold, MatchingEncoding(dim=database.key_dim))

    def record_trace():
        logger.info("running MPyC matching: m = %d, n = %d, d = %d", parties, len(database), database.key_dim)
        result = run_mpyc_matching(
            query, keys, threshold, parties=parties,
            allow_insecure_two_party=scenario["mpyc.allow_insecure_two_party"],
            default_shape=probe, timeout_s=scenario["mpyc.timeout_s"],
        )
        outputs = {
            "index": result.index,
            "rounds": result.run.rounds,
            "bytes": result.run.bytes,
            "protocol_seconds": result.run.protocol_seconds(),
        }
        return result.run.trace, outputs

    def finish(result: ReplayResult, out_dir: Path) -> dict[str, Any]:
        index = result.outputs["index"]
        return {
            "match": {
                "index": index,
                "plaintext_index": expected,
                "mpyc_reference_index": expected_mpyc,
                "correct": index == expected,
                "entry": None if index is None else database.entries[index].id,
            },
            "recorded_run": {
                "probe_latency_s": scenario["mpyc.probe_latency_s"],
                "wall_seconds": result.outputs["protocol_seconds"],
                "rounds": result.outputs["rounds"],
                "bytes_by_direction": result.outputs["bytes"],
                "note": "measured through the relay on 127.0.0.1 with probe latency on every link; "
                        "phases and total are the replay of its trace on [network]",
            },
        }

    report = {
        "security": security,
        "parties": party_names(parties),
        "threshold_t": threshold_for(parties),
        "database": database.summary(),
        "query": {"entry": entry, "threshold": threshold},
    }
    return Session(variant=matching_variant(parties, security), report=report, finish=finish,
                   record_trace=record_trace)


register_workload(Workload("mpyc-matching", prepare))
