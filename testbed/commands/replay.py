"""``python -m testbed replay TRACE [--scenario S] [--set KEY=VALUE ...] --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from testbed import scenario as scenarios
from testbed.commands.run import SET_HELP
from testbed.experiment import replay_scenario
from testbed.trace import Trace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a recorded trace on another network, without running the cryptography",
        description="Replay the trace.json.gz of an earlier run on the network of a scenario.",
    )
    parser.add_argument("trace", type=Path, help="trace.json.gz written by `run`")
    parser.add_argument(
        "--scenario", default=None,
        help="scenario whose [network], [topology] and [compute] to use (default: scenarios/default.toml)",
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    parser.add_argument("--out", type=Path, default=None, help="output folder for report.json (default: print only)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    trace = Trace.load(args.trace)
    scenario = scenarios.load(args.scenario, args.overrides)
    report = replay_scenario(trace, scenario, args.out)
    total = report["total"]
    print(
        f"replay of {trace.meta.get('scenario', args.trace)} on {report['network']['profile']}: "
        f"{total['sim_seconds']:.6f} s simulated, {total['bytes']:,} bytes, {total['rounds']} rounds"
    )
    return 0
