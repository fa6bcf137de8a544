"""Run a scenario end to end and assemble its report (the ``run`` and ``replay`` commands)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from testbed.build import base_link, build_faults, build_network
from testbed.errors import RunFailed, ScenarioError
from testbed.replay import ReplayResult, replay
from testbed.report import atomic_output_dir, dump_json, machine_info, phase_table, render_markdown, totals
from testbed.runners.simulated import run_simulated
from testbed.runtime import RunResult
from testbed.scenario import Scenario
from testbed.trace import Trace
from testbed.workloads import WORKLOADS

logger = logging.getLogger(__name__)


def network_fields(scenario: Scenario) -> dict[str, Any]:
    link, overhead = base_link(scenario)
    return {
        "profile": scenario["network.profile"],
        "bandwidth_bps": link.bandwidth_bps,
        "latency_s": link.latency_s,
        "jitter_s": link.jitter_s,
        "loss_rate": link.loss_rate,
        "overhead_bytes": overhead,
        "custom_topology": bool(scenario["topology.links"] or scenario["topology.file"]),
    }


def _timing_report(scenario: Scenario, variant: str, result: RunResult | ReplayResult, compute) -> dict[str, Any]:
    transcript = result.transcript
    return {
        "scenario": scenario.name,
        "variant": variant,
        "seed": scenario["scenario.seed"],
        "network": network_fields(scenario),
        "compute_factor": scenario["compute.factor"],
        "phases": phase_table(transcript, result.phase_span_s, compute),
        "total": totals(transcript, result.sim_seconds),
        "party_end_s": result.party_end_s,
    }


def run_scenario(scenario: Scenario, out_dir: Path) -> dict[str, Any]:
    """Run ``scenario`` in the network simulator and write its outputs into ``out_dir``.

    Returns the report. A failed run (a party raised, or a fault stopped it) still writes a
    report whose ``status`` is ``"failed"`` with the error and the simulated time it stopped at.
    Its ``transcript.jsonl`` then contains the messages sent before that time.
    """
    workload = WORKLOADS[scenario["scenario.workload"]]
    wall_start = time.perf_counter()
    with atomic_output_dir(out_dir) as staging:
        session = workload.prepare(scenario)
        if session.record_trace is not None:
            return _run_recorded(scenario, workload.name, session, staging, wall_start)
        parties = session.parties
        network = build_network(scenario, list(parties))
        faults = build_faults(scenario)
        logger.info("running %s (%s) with parties %s", scenario.name, workload.name, ", ".join(parties))
        failure: RunFailed | None = None
        try:
            result = run_simulated(
                parties,
                network,
                compute_factor=scenario["compute.factor"],
                keep_payloads=scenario["output.keep_payloads"],
                faults=faults,
            )
        except RunFailed as exc:
            if exc.partial is None:
                raise
            failure, result = exc, exc.partial
        report = _timing_report(scenario, session.variant, result, result.phase_compute_seconds)
        report["compute_seconds"] = result.compute_seconds
        report.update(session.report)
        if failure is None:
            report["status"] = "ok"
            if session.finish is not None:
                report.update(session.finish(result, staging))
        else:
            report["status"] = "failed"
            report["error"] = str(failure)
            report["stopped_at_s"] = failure.stopped_at
            report["failures"] = {p: f"{type(e).__name__}: {e}" for p, e in failure.failures.items()}
        trace = Trace(result.trace, meta={"scenario": scenario.name, "workload": workload.name})
        _write_outputs(staging, scenario, report, result.transcript, trace, wall_start)
    return report


def _write_outputs(staging: Path, scenario: Scenario, report: dict, transcript, trace: Trace, wall_start: float) -> None:
    """Complete the report with the settings, machine and wall time, then write every output file."""
    report["scenario_settings"] = scenario.as_dict()
    report["machine"] = machine_info()
    report["wall_seconds"] = time.perf_counter() - wall_start
    transcript.write_jsonl(staging / "transcript.jsonl")
    trace.save(staging / "trace.json.gz")
    dump_json(staging / "report.json", report)
    (staging / "report.md").write_text(render_markdown(report), encoding="utf-8")


def _run_recorded(scenario: Scenario, workload_name: str, session, staging: Path, wall_start: float) -> dict[str, Any]:
    """Run a process-based workload for real, then time its trace on the scenario's network."""
    if build_faults(scenario):
        raise ScenarioError(f"[faults] is not supported by workload {workload_name!r}, whose parties are processes")
    trace, outputs = session.record_trace()
    network = build_network(scenario, list(trace.parties))
    result = replay(trace, network, compute_factor=scenario["compute.factor"])
    result.outputs = outputs
    compute = _compute_by_phase(trace)
    report = _timing_report(scenario, session.variant, result, compute)
    report["compute_seconds"] = {name: party.compute_total_s() for name, party in trace.parties.items()}
    report.update(session.report)
    report["status"] = "ok"
    if session.finish is not None:
        report.update(session.finish(result, staging))
    trace.meta.setdefault("scenario", scenario.name)
    trace.meta.setdefault("workload", workload_name)
    _write_outputs(staging, scenario, report, result.transcript, trace, wall_start)
    return report


def replay_scenario(trace: Trace, scenario: Scenario, out_dir: Path | None = None) -> dict[str, Any]:
    """Replay ``trace`` on the network of ``scenario``; write the report when ``out_dir`` is given."""
    network = build_network(scenario, list(trace.parties))
    result = replay(trace, network, compute_factor=scenario["compute.factor"])
    compute = _compute_by_phase(trace)
    report = _timing_report(scenario, "replay", result, compute)
    report["status"] = "ok"
    report["replayed_trace"] = trace.meta
    if out_dir is not None:
        with atomic_output_dir(out_dir) as staging:
            result.transcript.write_jsonl(staging / "transcript.jsonl")
            dump_json(staging / "report.json", report)
            (staging / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return report


def _compute_by_phase(trace: Trace) -> dict[str, dict[str, float]]:
    by_party = {}
    for name, party in trace.parties.items():
        phase = "main"
        sums: dict[str, float] = {}
        for step in party.steps:
            sums[phase] = sums.get(phase, 0.0) + step.compute_s
            if step.kind == "phase":
                phase = step.phase
        sums[phase] = sums.get(phase, 0.0) + party.final_compute_s
        by_party[name] = sums
    return by_party
