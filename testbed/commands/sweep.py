"""``python -m testbed sweep SCENARIO --grid KEY=V1,V2,... [--grid ...] --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

from testbed.commands.run import SET_HELP
from testbed.sweep import parse_grid, run_sweep


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a scenario over a grid of key values; write sweep.csv and sweep.png",
        description=(
            "Run a scenario for every combination of the grid values. Grids over network.*, topology.* "
            "and compute.* keys record one run and replay its trace per point."
        ),
    )
    parser.add_argument("scenario", help="scenario TOML file or the name of one in scenarios/")
    parser.add_argument(
        "--grid", action="append", default=[], metavar="KEY=VALUES", required=True,
        help=(
            "a grid axis: KEY=V1,V2,... or KEY=lin:START:STOP:COUNT or KEY=log:START:STOP:COUNT, in the "
            "key's unit (bandwidth in bit/s, latency in s); repeatable"
        ),
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    parser.add_argument("--out", type=Path, required=True, help="output folder for sweep.csv, sweep.json, sweep.png")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    axes = [parse_grid(text) for text in args.grid]
    rows = run_sweep(args.scenario, axes, args.out, args.overrides, progress=not args.no_progress)
    failed = sum(1 for r in rows if r["status"] != "ok")
    print(f"{len(rows)} points, {failed} failed: {args.out / 'sweep.csv'}, {args.out / 'sweep.png'}")
    return 0 if failed == 0 else 1
