"""Reports of a run: ``report.json`` (the contract), ``report.md`` and ``transcript.jsonl``.

All outputs of a run are written into a temporary folder beside the output folder and moved
into place at the end, so an interrupted run never leaves a half-written output folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testbed.transcript import Transcript, in_phase, top_phase


def machine_info() -> dict[str, Any]:
    """Describe this machine for benchmark and report records."""
    import numpy

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.is_available()
    except ImportError:
        pass
    return info


def phase_table(
    transcript: Transcript,
    phase_span_s: dict[str, tuple[float, float]],
    phase_compute_seconds: dict[str, dict[str, float]],
) -> dict[str, dict[str, Any]]:
    """Per top-level phase: simulated span, compute per party, bytes per direction and rounds.

    Sub-phases (``matching.argmax``) fold into their top-level phase (``matching``) and are
    listed under its ``subphases`` with their own bytes and compute.
    """
    all_names = list(dict.fromkeys([*transcript.phases(), *phase_span_s]))
    for by_phase in phase_compute_seconds.values():
        all_names += [name for name in by_phase if name not in all_names]
    table = {}
    for phase in dict.fromkeys(top_phase(name) for name in all_names):
        members = [name for name in all_names if in_phase(name, phase)]
        spans = [phase_span_s[name] for name in members if name in phase_span_s]
        start = min((a for a, _ in spans), default=0.0)
        end = max((b for _, b in spans), default=0.0)
        compute = {
            party: sum(by_phase.get(name, 0.0) for name in members)
            for party, by_phase in phase_compute_seconds.items()
        }
        sent = transcript.bytes_by_direction(phase)
        if not sent and end == start:
            continue
        row: dict[str, Any] = {
            "sim_seconds": end - start,
            "compute_seconds": compute,
            "bytes": sent,
            "rounds": transcript.rounds(phase),
        }
        subphases = [name for name in members if name != phase]
        if subphases:
            row["subphases"] = {
                name: {
                    "bytes": {k: v for k, v in _exact_bytes(transcript, name).items()},
                    "compute_seconds": {p: by.get(name, 0.0) for p, by in phase_compute_seconds.items()},
                }
                for name in subphases
            }
        table[phase] = row
    return table


def _exact_bytes(transcript: Transcript, phase: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for r in transcript:
        if r.phase == phase:
            key = f"{r.src}->{r.dst}"
            totals[key] = totals.get(key, 0) + r.nbytes
    return totals


def totals(transcript: Transcript, sim_seconds: float) -> dict[str, Any]:
    return {
        "sim_seconds": sim_seconds,
        "bytes": sum(r.nbytes for r in transcript),
        "messages": len(transcript),
        "rounds": transcript.rounds(),
    }


def render_markdown(report: dict[str, Any]) -> str:
    """Render a report for a person: the headline figures, then one table row per phase."""
    lines = [f"# Run report: {report['scenario']}", ""]
    status = report.get("status", "ok")
    lines.append(f"* status: **{status}**")
    if status != "ok":
        lines.append(f"* error: {report.get('error', '')}")
        if report.get("stopped_at_s") is not None:
            lines.append(f"* stopped at simulated time {report['stopped_at_s']:.6f} s")
    net = report["network"]
    lines.append(
        f"* variant {report['variant']}, seed {report['seed']}, network `{net['profile']}` "
        f"({_rate(net['bandwidth_bps'])}, {net['latency_s'] * 1e3:g} ms one-way, "
        f"jitter {net['jitter_s'] * 1e3:g} ms, loss {net['loss_rate']:g})"
    )
    total = report["total"]
    lines.append(
        f"* total: {total['sim_seconds']:.6f} s simulated, {total['bytes']:,} bytes in "
        f"{total['messages']:,} messages, {total['rounds']} rounds"
    )
    lines += ["", "| phase | simulated s | compute s (per party) | bytes (per direction) | rounds |", "|---|---|---|---|---|"]
    for phase, row in report["phases"].items():
        compute = ", ".join(f"{p} {s:.4f}" for p, s in row["compute_seconds"].items())
        sent = ", ".join(f"{d} {n:,}" for d, n in row["bytes"].items())
        lines.append(f"| {phase} | {row['sim_seconds']:.6f} | {compute} | {sent} | {row['rounds']} |")
    extras = {k: v for k, v in report.items() if k not in _HEADLINE_KEYS}
    if extras:
        lines += ["", "## Details", "", "```json", json.dumps(extras, indent=2, default=str), "```"]
    return "\n".join(lines) + "\n"


_HEADLINE_KEYS = {"scenario", "variant", "seed", "network", "phases", "total", "status", "error", "stopped_at_s"}


def _rate(bps: float) -> str:
    if bps == float("inf"):
        return "unlimited bandwidth"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:g} {unit}"
    return f"{bps:g} bit/s"


def json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return value
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def dump_json(path: Path, data: Any) -> None:
    # JSON has no infinity; an unlimited bandwidth is written as null.
    text = json.dumps(_finite(data), indent=2, default=json_default)
    path.write_text(text + "\n", encoding="utf-8")


def _finite(data: Any) -> Any:
    if isinstance(data, float) and (data == float("inf") or data != data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it replaces ``out_dir`` whole.

    On an exception the temporary folder is removed and ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
