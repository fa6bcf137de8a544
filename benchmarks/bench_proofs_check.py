"""Benchmark the security checks: run time of the full suite, and power and false alarms.

Run: ``python -m benchmarks.bench_proofs_check`` runs every check, mutant and exact
enumeration once with default sample sizes and prints the run time per check and in total.
``--repeats R`` instead repeats the selected checks and mutants ``R`` times, with fresh
protocol randomness and a new input seed each time. It prints the false-alarm rate (correct
protocols that fail) and the power (mutants caught), each with a Clopper–Pearson 95% interval.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

from testbed.report import machine_info  # noqa: E402

from proofs_check.runner import DEFAULT_ALPHA  # noqa: E402
from proofs_check.stats import clopper_pearson  # noqa: E402
from proofs_check.suite import run_suite  # noqa: E402


def bench_full(args: argparse.Namespace) -> None:
    report = run_suite(protocol=args.protocol, samples=args.samples, alpha=args.alpha, seed=args.seed)
    for check in report["checks"]:
        print(
            f"check  {check['protocol']:28} {check['party']:9} samples {check['samples']:4}  "
            f"{check['seconds']:6.1f} s  {check['verdict']}"
        )
    for mutant in report["mutants"]:
        print(
            f"mutant {mutant['name']:28} {mutant['party']:9} samples {mutant['samples']:4}  "
            f"{mutant['seconds']:6.1f} s  {'caught' if mutant['caught'] else 'MISSED'}"
        )
    summary = report["summary"]
    print(
        f"full suite: {report['seconds']:.1f} s for {summary['checks']} checks "
        f"({summary['checks_passed']} passed) and {summary['mutants']} mutants ({summary['mutants_caught']} caught), "
        f"alpha {args.alpha:g}, samples {'per check' if args.samples is None else args.samples}"
    )


def bench_repeats(args: argparse.Namespace) -> None:
    failures: dict[str, int] = defaultdict(int)
    misses: dict[str, int] = defaultdict(int)
    check_runs = mutant_runs = 0
    null_p_values: list[float] = []
    started = time.perf_counter()
    for repeat in range(args.repeats):
        report = run_suite(
            protocol=args.protocol, samples=args.samples, alpha=args.alpha, seed=args.seed + repeat, exact=False
        )
        for check in report["checks"]:
            check_runs += 1
            failures[f"{check['protocol']}/{check['party']}"] += check["verdict"] == "fail"
            null_p_values += [test["p_value"] for test in check["tests"]]
        for mutant in report["mutants"]:
            mutant_runs += 1
            misses[mutant["name"]] += not mutant["caught"]
        print(
            f"repeat {repeat + 1}/{args.repeats}: {report['seconds']:.1f} s, so far {sum(failures.values())}/{check_runs} "
            f"false alarms and {mutant_runs - sum(misses.values())}/{mutant_runs} mutants caught",
            flush=True,
        )
    elapsed = time.perf_counter() - started

    false_alarms = sum(failures.values())
    caught = mutant_runs - sum(misses.values())
    low, high = clopper_pearson(false_alarms, check_runs)
    print(
        f"false alarms: {false_alarms}/{check_runs} check runs = {false_alarms / max(check_runs, 1):.4f} "
        f"(95% interval {low:.4f} to {high:.4f})"
    )
    low, high = clopper_pearson(caught, mutant_runs)
    print(f"power: {caught}/{mutant_runs} mutant runs = {caught / max(mutant_runs, 1):.4f} (95% interval {low:.4f} to {high:.4f})")
    # Every test of a correct protocol runs under its null hypothesis, so a calibrated or
    # conservative test rejects at most a fraction p of the time at raw level p.
    for level in (0.05, 0.01, 0.001):
        below = sum(p < level for p in null_p_values)
        print(f"raw p-values of correct protocols below {level:g}: {below}/{len(null_p_values)} = {below / max(len(null_p_values), 1):.4f}")
    for name, count in sorted(failures.items()):
        print(f"  check {name}: {count}/{args.repeats} false alarms")
    for name, count in sorted(misses.items()):
        print(f"  mutant {name}: {args.repeats - count}/{args.repeats} caught")
    print(
        f"repeats {args.repeats}, protocol {args.protocol or 'all'}, alpha {args.alpha:g}, "
        f"samples {'per check' if args.samples is None else args.samples}, {elapsed:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=0, help="repeat the checks and mutants this many times (0: one full run with timings)")
    parser.add_argument("--protocol", help="protocol name or prefix (default: all)")
    parser.add_argument("--samples", type=int, help="views per sample (default: each check's own)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="level per check after Holm's correction")
    parser.add_argument("--seed", type=int, default=0, help="first input seed")
    args = parser.parse_args()
    print(f"command: python -m benchmarks.bench_proofs_check --repeats {args.repeats} --protocol {args.protocol} --samples {args.samples}")
    print("machine:", machine_info())
    if args.repeats:
        bench_repeats(args)
    else:
        bench_full(args)


if __name__ == "__main__":
    main()
