"""``python -m testbed run [SCENARIO] [--out DIR] [--set KEY=VALUE ...]``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from testbed import scenario as scenarios
from testbed.experiment import run_scenario

SET_HELP = (
    "override a scenario key, e.g. --set network.latency_s=0.01 (seconds) or "
    "--set network.bandwidth_bps=1e9 (bit/s); repeatable"
)


def default_out_dir(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one scenario in the network simulator",
        description="Run one scenario and write report.json, report.md, transcript.jsonl and trace.json.gz.",
    )
    parser.add_argument(
        "scenario", nargs="?", default=None,
        help="scenario TOML file or the name of one in scenarios/ (default: scenarios/default.toml)",
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: runs/NAME-TIMESTAMP)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    scenario = scenarios.load(args.scenario, args.overrides)
    out_dir = args.out or default_out_dir(scenario.name)
    report = run_scenario(scenario, out_dir)
    total = report["total"]
    print(
        f"{scenario.name}: {report['status']}, {total['sim_seconds']:.6f} s simulated, "
        f"{total['bytes']:,} bytes, {total['rounds']} rounds"
    )
    for key in ("match", "repair", "utility", "calibration"):
        if key in report:
            print(f"  {key}: {report[key]}")
    if report["status"] != "ok":
        print(f"  error: {report['error']}")
    print(f"report: {Path(out_dir) / 'report.md'}")
    return 0 if report["status"] == "ok" else 1
