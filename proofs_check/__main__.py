"""Command line: ``python -m proofs_check [--protocol P] [--party X] [--samples N] --out DIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from proofs_check.checks import CHECK_MODULES, load_specs
from proofs_check.mutants import catalogue
from proofs_check.report import write_report
from proofs_check.runner import DEFAULT_ALPHA
from proofs_check.suite import run_suite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m proofs_check",
        description=(
            "Compare real views of each corrupted party with simulated views, run the leaky "
            "mutants and the exact enumerations, and write DIR/checks.json and DIR/checks.md."
        ),
    )
    parser.add_argument("--protocol", help=f"protocol name or prefix, or several separated by commas, e.g. ot.base, ot.extension.iknp, matching; registry: {', '.join(CHECK_MODULES)}")
    parser.add_argument("--party", help="corrupted party, e.g. sender, receiver, sp, mri")
    parser.add_argument("--samples", type=int, help="views per sample for every check (default: each check's own, 40 to 300)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help=f"level per check after Holm's correction (default {DEFAULT_ALPHA:g})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator that picks honest inputs (protocol randomness is always fresh)")
    parser.add_argument("--mutant", action="append", help="run only this mutant (repeatable); see --list")
    parser.add_argument("--no-mutants", action="store_true", help="skip the mutant catalogue")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact enumeration on tiny instances")
    parser.add_argument("--list", action="store_true", help="list the checks and mutants, then exit")
    parser.add_argument("--out", type=Path, help="output folder for checks.json and checks.md")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.list:
        specs, unavailable = load_specs()
        for spec in specs:
            print(f"check   {spec.protocol:32} {spec.party:9} {spec.samples:4} samples  {spec.description}")
        for name, error in unavailable.items():
            print(f"check   {name:32} unavailable: {error}")
        for mutant in catalogue():
            print(f"mutant  {mutant.name:32} {mutant.spec.party:9} {mutant.description}")
        return 0
    if args.out is None:
        print("missing --out DIR: name the folder for checks.json and checks.md", file=sys.stderr)
        return 2
    if args.samples is not None and args.samples < 20:
        print(f"invalid --samples {args.samples}: use at least 20 views per sample", file=sys.stderr)
        return 2

    report = run_suite(
        protocol=args.protocol,
        party=args.party,
        samples=args.samples,
        alpha=args.alpha,
        seed=args.seed,
        mutants=not args.no_mutants,
        exact=not args.no_exact,
        mutant_names=args.mutant,
    )
    json_path, markdown_path = write_report(report, args.out)
    summary = report["summary"]
    print(
        f"checks passed {summary['checks_passed']}/{summary['checks']}, mutants caught "
        f"{summary['mutants_caught']}/{summary['mutants']}, {report['seconds']:.1f} s; wrote {json_path} and {markdown_path}"
    )
    failed = summary["checks_passed"] < summary["checks"] or summary["mutants_caught"] < summary["mutants"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
