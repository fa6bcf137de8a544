"""Benchmark the runtime: replay speed and a 1,000-point network sweep.

Run: ``python -m benchmarks.bench_runtime``. Prints figures with their parameters and the machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from testbed.network import LinkSpec, Network
from testbed.replay import replay
from testbed.report import machine_info
from testbed.runners.memory import run_in_memory
from testbed.sweep import parse_grid, run_sweep
from testbed.trace import Trace
from testbed.workloads import ping, pong


def record_pingpong(exchanges: int) -> Trace:
    result = run_in_memory({"ping": ping(exchanges, 64), "pong": pong(exchanges)}, keep_payloads=False)
    return Trace(result.trace)


def bench_replay(exchanges: int, repeats: int) -> None:
    trace = record_pingpong(exchanges)
    net = Network.full_mesh(["ping", "pong"], LinkSpec(1e9, 0.001))
    for record_transcript in (False, True):
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            result = replay(trace, net, record_transcript=record_transcript)
            best = min(best, time.perf_counter() - started)
        print(
            f"replay ping-pong: {result.messages:,} messages in {best:.3f} s = "
            f"{result.messages / best:,.0f} messages/s (transcript {'on' if record_transcript else 'off'}, "
            f"best of {repeats})"
        )


def bench_sweep(points: int, exchanges: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        rows = run_sweep(
            "pingpong",
            [parse_grid(f"network.latency_s=lin:0:0.05:{points}")],
            Path(tmp) / "sweep",
            [f"pingpong.exchanges={exchanges}"],
            progress=False,
        )
        elapsed = time.perf_counter() - started
    print(
        f"sweep: {len(rows)} points over a trace of {rows[0]['messages']:,} messages in {elapsed:.2f} s "
        f"(including the one recorded run, the CSV and the plot)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exchanges", type=int, default=100_000, help="ping-pong exchanges in the replay trace")
    parser.add_argument("--repeats", type=int, default=3, help="replays per figure; the best is reported")
    parser.add_argument("--sweep-points", type=int, default=1000, help="grid points of the sweep")
    parser.add_argument("--sweep-exchanges", type=int, default=500, help="exchanges (2 messages each) in the sweep")
    args = parser.parse_args()
    print("machine:", machine_info())
    bench_replay(args.exchanges, args.repeats)
    bench_sweep(args.sweep_points, args.sweep_exchanges)


if __name__ == "__main__":
    main()
