"""Benchmark SURE end to end at the published scale, next to the published figures.

For every database size and fix encoding this runs the ``paper-table`` scenario: the SD v1.4
UNet built from its config, a synthetic 768-wide database and the loopback network (compute
only). It then replays the recorded trace on the 10 Gbit/s LAN and 100 Mbit/s WAN profiles and
prints the lower bound that bytes on the wire divided by bandwidth sets.

Run: ``python -m benchmarks.bench_sure [--sizes 500,1000,...] [--encodings dense,low-rank]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from testbed import scenario as scenarios
from testbed.experiment import replay_scenario, run_scenario
from testbed.network import profile
from testbed.report import machine_info
from testbed.trace import Trace

# Published semi-honest figures of SURE (NeurIPS 2025): entries -> (repair s, matching+repair s).
PUBLISHED = {
    500: (0.54, 2.82),
    1000: (1.05, 5.60),
    1500: (1.53, 8.60),
    2000: (2.05, 11.09),
    2500: (2.59, 15.24),
    3000: (3.09, 16.83),
}


def phase_seconds(report: dict, *names: str) -> float:
    return sum(report["phases"].get(name, {}).get("sim_seconds", 0.0) for name in names)


def run_point(entries: int, encoding: str, out_root: Path, extra: list[str]) -> dict:
    overrides = [f"database.entries={entries}", f'database.encoding="{encoding}"', *extra]
    scenario = scenarios.load("paper-table", overrides)
    out_dir = out_root / f"{encoding}-{entries}"
    report = run_scenario(scenario, out_dir)
    if report["status"] != "ok":
        raise RuntimeError(f"run failed: {report.get('error')}")
    trace = Trace.load(out_dir / "trace.json.gz")
    row = {
        "entries": entries,
        "encoding": encoding,
        "entry_bytes": report["database"]["entry_bytes"],
        "match_correct": report["match"]["correct"],
        "max_abs_error": report["repair"]["max_abs_error_vs_plaintext"],
        "compute": {
            phase: report["phases"][phase]["compute_seconds"] for phase in report["phases"]
        },
        "loopback": {
            "matching": phase_seconds(report, "matching"),
            "retrieval_repair": phase_seconds(report, "retrieval", "repair"),
            "total": report["total"]["sim_seconds"],
        },
        "bytes": report["total"]["bytes"],
        "rounds": report["total"]["rounds"],
    }
    for name in ("lan-10g", "wan-100m"):
        net = scenarios.load("paper-table", [*overrides, f'network.profile="{name}"'])
        replayed = replay_scenario(trace, net)
        row[name] = {
            "total": replayed["total"]["sim_seconds"],
            "bytes_over_bandwidth": report["total"]["bytes"] * 8 / profile(name).link.bandwidth_bps,
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="500,1000,1500,2000,2500,3000", help="database sizes, comma-separated")
    parser.add_argument("--encodings", default="dense,low-rank", help="fix encodings, comma-separated")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra scenario override for every run")
    args = parser.parse_args()
    print("machine:", machine_info())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for encoding in args.encodings.split(","):
            for entries in (int(n) for n in args.sizes.split(",")):
                row = run_point(entries, encoding, Path(tmp), args.overrides)
                rows.append(row)
                published = PUBLISHED.get(entries, (float("nan"), float("nan")))
                loop = row["loopback"]
                print(
                    f"{encoding:8s} n={entries:5d} entry {row['entry_bytes']:>9,d} B | loopback: matching "
                    f"{loop['matching']:.3f} s, retrieval+repair {loop['retrieval_repair']:.3f} s "
                    f"(published {published[0]:.2f}), total {loop['total']:.3f} s (published {published[1]:.2f}) | "
                    f"10G LAN {row['lan-10g']['total']:.3f} s (bytes/bw {row['lan-10g']['bytes_over_bandwidth']:.3f}) | "
                    f"100M WAN {row['wan-100m']['total']:.2f} s (bytes/bw {row['wan-100m']['bytes_over_bandwidth']:.2f}) | "
                    f"{row['bytes']:,} B, {row['rounds']} rounds, match {row['match_correct']}, "
                    f"error {row['max_abs_error']:.2e}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
