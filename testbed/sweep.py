"""Sweeps: run a scenario over a grid of key values and tabulate and plot the results.

When every grid key is a network, topology or compute key, the scenario runs once and each
grid point replays its trace, so no point reruns the cryptography. Other grids run every point live.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from testbed import scenario as scenarios
from testbed.errors import ScenarioError
from testbed.experiment import replay_scenario, run_scenario
from testbed.report import atomic_output_dir, dump_json
from testbed.trace import Trace

logger = logging.getLogger(__name__)

REPLAYABLE_SECTIONS = ("network", "topology", "compute")


@dataclass(frozen=True)
class GridAxis:
    key: str
    values: tuple[Any, ...]


def parse_grid(text: str) -> GridAxis:
    """Parse ``KEY=V1,V2,...`` or ``KEY=lin:START:STOP:COUNT`` / ``KEY=log:START:STOP:COUNT``."""
    if "=" not in text:
        raise ScenarioError(f"invalid grid {text!r}: use KEY=V1,V2,... e.g. network.latency_s=0.001,0.01")
    key, spec = (part.strip() for part in text.split("=", 1))
    if spec.startswith(("lin:", "log:")):
        kind, *parts = spec.split(":")
        if len(parts) != 3:
            raise ScenarioError(f"invalid grid range {spec!r} for {key}: use {kind}:START:STOP:COUNT")
        try:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ScenarioError(f"invalid grid range {spec!r} for {key}: START and STOP are numbers, COUNT an integer") from None
        if count < 1:
            raise ScenarioError(f"invalid grid range {spec!r} for {key}: COUNT must be at least 1")
        if kind == "log":
            if start <= 0 or stop <= 0:
                raise ScenarioError(f"invalid grid range {spec!r} for {key}: a log range needs START and STOP > 0")
            values = np.geomspace(start, stop, count)
        else:
            values = np.linspace(start, stop, count)
        return GridAxis(key, tuple(float(v) for v in values))
    values = []
    for item in spec.split(","):
        try:
            values.append(tomllib.loads(f"v = {item.strip()}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(item.strip())
    return GridAxis(key, tuple(values))


def run_sweep(
    scenario_path: str | Path | None,
    axes: Sequence[GridAxis],
    out_dir: Path,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run the grid and write ``sweep.csv``, ``sweep.json``, ``sweep.png`` (simulated time) and
    ``sweep-bytes.png`` (bytes per phase) into ``out_dir``."""
    from tqdm import tqdm

    if not axes:
        raise ScenarioError("a sweep needs at least one --grid KEY=V1,V2,...")
    points = list(itertools.product(*(axis.values for axis in axes)))
    keys = [axis.key for axis in axes]

    def point_overrides(values) -> list[str]:
        return [*overrides, *(f"{k}={_toml_literal(v)}" for k, v in zip(keys, values))]

    # Validate every point before running any of them.
    checked = [scenarios.load(scenario_path, point_overrides(values)) for values in points]
    replayable = all(k.split(".", 1)[0] in REPLAYABLE_SECTIONS for k in keys)
    rows: list[dict[str, Any]] = []
    with atomic_output_dir(out_dir) as staging:
        trace = None
        if replayable:
            base = scenarios.load(scenario_path, list(overrides))
            run_scenario(base, staging / "recorded-run")
            trace = Trace.load(staging / "recorded-run" / "trace.json.gz")
            logger.info("recorded %d messages; replaying %d grid points", trace.message_count(), len(points))
        bar = tqdm(zip(points, checked), total=len(points), disable=not progress, file=sys.stderr, unit="point")
        for i, (values, scenario) in enumerate(bar):
            if trace is not None:
                report = replay_scenario(trace, scenario)
                mode = "replay"
            else:
                report = run_scenario(scenario, staging / "points" / f"{i:05d}")
                mode = "live"
            row = dict(zip(keys, values))
            row.update(
                status=report["status"],
                mode=mode,
                sim_seconds=report["total"]["sim_seconds"],
                bytes=report["total"]["bytes"],
                messages=report["total"]["messages"],
                rounds=report["total"]["rounds"],
            )
            for phase, phase_row in report["phases"].items():
                row[f"{phase}.sim_seconds"] = phase_row["sim_seconds"]
                row[f"{phase}.bytes"] = sum(phase_row["bytes"].values())
            rows.append(row)
        _write_csv(staging / "sweep.csv", rows)
        dump_json(staging / "sweep.json", {"grid": {a.key: list(a.values) for a in axes}, "rows": rows})
        plot_sweep(rows, keys, staging / "sweep.png")
        plot_phase_bytes(rows, keys, staging / "sweep-bytes.png")
    return rows


def _toml_literal(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return "inf" if value > 0 else "-inf"
    return str(value)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_sweep(rows: list[dict[str, Any]], keys: list[str], path: Path) -> None:
    """Plot simulated seconds against the first grid key, one line per value of the other keys."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_key = keys[0]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys[1:]), []).append(row)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    numeric = all(isinstance(r[x_key], (int, float)) for r in rows)
    for label, members in list(groups.items())[:12]:
        xs = [r[x_key] for r in members]
        ys = [r["sim_seconds"] for r in members]
        name = ", ".join(f"{k}={v}" for k, v in zip(keys[1:], label)) or "simulated time"
        ax.plot(xs if numeric else [str(x) for x in xs], ys, marker="o" if len(xs) <= 30 else None, label=name)
    if numeric:
        positive = [r[x_key] for r in rows if r[x_key] > 0]
        if positive and len(positive) == len(rows) and max(positive) / min(positive) >= 100:
            ax.set_xscale("log")
    ax.set_xlabel(x_key)
    ax.set_ylabel("simulated seconds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_phase_bytes(rows: list[dict[str, Any]], keys: list[str], path: Path) -> None:
    """Plot bytes per phase for every grid point as stacked bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = list(dict.fromkeys(k[: -len(".bytes")] for row in rows for k in row if k.endswith(".bytes")))
    labels = [", ".join(str(row[k]) for k in keys) for row in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows) + 2), 4.5))
    bottom = np.zeros(len(rows))
    for phase in phases:
        heights = np.array([float(row.get(f"{phase}.bytes", 0) or 0) for row in rows])
        if not heights.any():
            continue
        ax.bar(range(len(rows)), heights, bottom=bottom, label=phase)
        bottom += heights
    if len(rows) <= 40:
        ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize="small")
    ax.set_xlabel(", ".join(keys))
    ax.set_ylabel("bytes")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
