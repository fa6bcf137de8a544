"""Write ``checks.json`` and ``checks.md``, each atomically (a temporary file, then ``os.replace``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _interval(advantage: dict) -> str:
    return f"{advantage['estimate']:+.3f} [{advantage['low']:+.3f}, {advantage['high']:+.3f}]"


def render_markdown(report: dict) -> str:
    """Return the report as Markdown for a person."""
    summary = report["summary"]
    lines = [
        "# Security simulation checks",
        "",
        "Empirical evidence, not a proof: each check compares real views of a corrupted party with",
        "simulated ones and with real views under another honest input.",
        "",
        f"* started {report['started']}, run time {report['seconds']:.1f} s",
        f"* level alpha = {report['alpha']:g} per check (Holm over the check's tests), input seed {report['seed']}",
        f"* checks passed: {summary['checks_passed']} of {summary['checks']}; "
        f"mutants caught: {summary['mutants_caught']} of {summary['mutants']}",
        f"* machine: {report['machine']['platform']}, {report['machine']['cpu_count']} CPUs, Python {report['machine']['python']}",
        "",
        "## Protocols",
        "",
        "| protocol | party | samples | advantage real vs simulated [95%] | advantage input A vs B [95%] | smallest Holm p | flow | outputs | verdict | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for check in report["checks"]:
        smallest = min(check["tests"], key=lambda t: t["p_holm"])
        flow = "ok" if check["flow_ok"] else "differs"
        lines.append(
            f"| {check['protocol']} | {check['party']} | {check['samples']} | {_interval(check['advantage'])} | "
            f"{_interval(check['advantage_input'])} | {smallest['p_holm']:.3g} ({smallest['name']}) | {flow} | "
            f"{check['outputs_inconsistent']} inconsistent | **{check['verdict']}** | {check['seconds']:.1f} |"
        )
    for name, error in report.get("unavailable", {}).items():
        lines.append(f"| {name} | – | – | – | – | – | – | – | unavailable: {error} | – |")

    lines += ["", "### Statistics per check", ""]
    for check in report["checks"]:
        lines += [f"**{check['protocol']} / {check['party']}**: {check['description']}", "", "| test | p | Holm p | detail |", "|---|---|---|---|"]
        for test in check["tests"]:
            lines.append(f"| {test['name']} | {test['p_value']:.3g} | {test['p_holm']:.3g} | {test['detail']} |")
        lines.append("")

    lines += ["## Mutants", "", "| mutant | party | leak | caught | flagged by | seconds |", "|---|---|---|---|---|---|"]
    for mutant in report["mutants"]:
        caught = "**caught**" if mutant["caught"] else "**missed**"
        flagged = ", ".join(mutant["flagged_by"]) or "–"
        lines.append(f"| {mutant['name']} | {mutant['party']} | {mutant['leak']} | {caught} | {flagged} | {mutant['seconds']:.1f} |")

    if report["exact"]:
        lines += [
            "",
            "## Exact enumeration on tiny instances",
            "",
            "| instance | party | compared | max total variation | bound | verdict |",
            "|---|---|---|---|---|---|",
        ]
        for entry in report["exact"]:
            lines.append(
                f"| {entry['name']} | {entry['party']} | {entry['compared']} | {entry['max_total_variation']} "
                f"({entry['worst_case']}) | {entry['bound']} | {entry['verdict']} |"
            )
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    """Write ``out/checks.json`` and ``out/checks.md``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "checks.json"
    markdown_path = out / "checks.md"
    write_atomic(json_path, json.dumps(report, indent=2, default=_json_default) + "\n")
    write_atomic(markdown_path, render_markdown(report))
    return json_path, markdown_path
