"""Command-line interface: ``python -m testbed {run,sweep,replay,repair} ...``.

Each subcommand lives in its own module under ``testbed/commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable that takes the
parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from testbed.errors import TestbedError

COMMAND_MODULES = ("run", "sweep", "replay", "repair")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m testbed",
        description="SURE testbed: run secure model repair over simulated networks.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"testbed.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"testbed.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (TestbedError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
