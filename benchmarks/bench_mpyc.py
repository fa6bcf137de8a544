"""Benchmark MPyC matching (three parties through the relay) and the simulator's fidelity on it.

Run: ``python -m benchmarks.bench_mpyc [--sizes 500,1000,2000,3000] [--dim 768]``. Prints:

* for each database size ``n``: the real protocol time through an unshaped relay on 127.0.0.1
  (first party's start to last party's end), CPU seconds per party process, compute per party
  as charged by the relay trace, bytes forwarded, rounds (causal depth of forwarded segments),
  and the time a probe trace replays to on the ``loopback``, ``lan-10g`` and ``wan-100m``
  profiles; next to it the two-party matching's compute, bytes, rounds and replayed times for
  the same ``n`` (run in memory; ``--no-two-party`` skips it);
* simulator fidelity at ``--fidelity-n``: the probe trace replayed on the unshaped relay and on
  three shaped networks, against real runs through the relay shaped the same way; then the same
  for the two-party matching, one process per party through the relay, whose trace comes from
  the party driver (exact compute per step) of an unshaped run.

Probe trace: the run whose trace is replayed goes through the relay with ``--probe-latency``
seconds of latency on every link and no bandwidth limit. At zero latency MPyC's asynchronous
evaluation lets deliveries land between sends that do not need them, and the trace turns each
of those into a dependency (the rounds column shows how the measured depth shrinks as latency
grows); with a few milliseconds of latency a party sends all it can before the next flight
arrives, so the trace keeps the protocol's real dependencies.

All parties and the relay share this machine's cores, so compute figures include waiting for a
CPU and the relay's own work.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from protocols.mpyc_matching import MatchingEncoding, party_names, reference_match, run_mpyc_matching
from testbed.network import LinkSpec, Network, profile
from testbed.relay import LinkShape, record_rounds
from testbed.replay import replay
from testbed.report import machine_info
from testbed.trace import Trace

PROFILES = ("loopback", "lan-10g", "wan-100m")

# Shaped settings for the fidelity check: (label, bandwidth bit/s, one-way latency s).
FIDELITY_SETTINGS = (
    ("unshaped", float("inf"), 0.0),
    ("1 Gbit/s, 1 ms", 1e9, 1e-3),
    ("100 Mbit/s, 20 ms", 100e6, 20e-3),
    ("20 Mbit/s, 40 ms", 20e6, 40e-3),
)

def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def instance(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = unit_rows(rng, n, d)
    noisy = keys[n // 3] + rng.normal(scale=0.5 / np.sqrt(d), size=d)
    return noisy / np.linalg.norm(noisy), keys


def replay_seconds(trace: Trace, names: list[str], link: LinkSpec) -> float:
    """Return the time ``trace`` replays to on a full mesh of ``link`` (no framing overhead)."""
    network = Network.full_mesh(names, link, overhead_bytes=0)
    return replay(trace, network, record_transcript=False).sim_seconds


def bench_mpyc(n: int, d: int, parties: int, seed: int, threshold: float, probe_latency_s: float) -> dict:
    query, keys = instance(n, d, seed)
    started = time.perf_counter()
    result = run_mpyc_matching(query, keys, threshold, parties=parties, timeout_s=900)
    wall = time.perf_counter() - started
    run = result.run
    probe = run_mpyc_matching(
        query, keys, threshold, parties=parties, default_shape=LinkShape(latency_s=probe_latency_s), timeout_s=900
    ).run
    names = party_names(parties)
    return {
        "n": n,
        "correct": result.index == reference_match(query, keys, threshold, MatchingEncoding(d)),
        "launch_wall": wall,
        "protocol_s": run.protocol_seconds(),
        "cpu": run.cpu_seconds(),
        "compute": run.compute_seconds(),
        "bytes": run.total_bytes,
        "rounds": run.rounds,
        "probe_rounds": probe.rounds,
        "simulated": {p: replay_seconds(probe.trace, names, profile(p).link) for p in PROFILES},
        "trace": probe.trace,
    }


def bench_two_party(n: int, d: int, seed: int, threshold: float) -> dict | None:
    try:
        from protocols.matching import protocol
    except ImportError:
        return None
    from testbed.runners.memory import run_in_memory

    query, keys = instance(n, d, seed)
    result = run_in_memory(
        {"sp": protocol.matching_sp("mri", query, n), "mri": protocol.matching_mri("sp", keys, threshold)},
        keep_payloads=False,
    )
    trace = Trace(result.trace)
    simulated = {}
    for name in PROFILES:
        setting = profile(name)
        network = Network.full_mesh(["sp", "mri"], setting.link, overhead_bytes=setting.overhead_bytes)
        simulated[name] = replay(trace, network, record_transcript=False).sim_seconds
    return {
        "compute": sum(result.compute_seconds.values()),
        "bytes": sum(result.transcript.bytes_by_direction().values()),
        "rounds": result.transcript.rounds(),
        "simulated": simulated,
    }


def print_cost_table(rows: list[dict], two_party: dict[int, dict | None], parties: int, d: int) -> None:
    print()
    print(f"MPyC matching, m = {parties} parties (t = {(parties - 1) // 2}), d = {d}, through an unshaped relay")
    print(
        "| n | real time (s) | CPU s per party | trace compute s per party | MB | rounds (probe) "
        "| loopback (s) | lan-10g (s) | wan-100m (s) | output ok |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cpu = " / ".join(f"{v:.2f}" for v in row["cpu"].values())
        comp = " / ".join(f"{v:.2f}" for v in row["compute"].values())
        sim = row["simulated"]
        print(
            f"| {row['n']} | {row['protocol_s']:.2f} | {cpu} | {comp} | {row['bytes'] / 1e6:.2f} | {row['rounds']} ({row['probe_rounds']}) "
            f"| {sim['loopback']:.2f} | {sim['lan-10g']:.2f} | {sim['wan-100m']:.2f} | {row['correct']} |"
        )
    if any(two_party.values()):
        print()
        print("two-party matching (in memory, same inputs), for comparison")
        print("| n | compute sum (s) | MB | rounds | loopback (s) | lan-10g (s) | wan-100m (s) |")
        print("|---|---|---|---|---|---|---|")
        for n, row in two_party.items():
            if row is None:
                continue
            sim = row["simulated"]
            print(
                f"| {n} | {row['compute']:.2f} | {row['bytes'] / 1e6:.2f} | {row['rounds']} "
                f"| {sim['loopback']:.2f} | {sim['lan-10g']:.2f} | {sim['wan-100m']:.2f} |"
            )


def bench_fidelity(trace: Trace, n: int, d: int, parties: int, seed: int, threshold: float) -> list[dict]:
    """Replay ``trace`` on each setting and compare with a real run shaped the same way."""
    query, keys = instance(n, d, seed)
    names = party_names(parties)
    rows = []
    for label, bandwidth, latency in FIDELITY_SETTINGS:
        predicted = replay_seconds(trace, names, LinkSpec(bandwidth, latency))
        shaped = run_mpyc_matching(
            query, keys, threshold, parties=parties, default_shape=LinkShape(bandwidth, latency), timeout_s=900
        )
        measured = shaped.run.protocol_seconds()
        rows.append(
            {
                "setting": label,
                "predicted": predicted,
                "measured": measured,
                "error": predicted / measured - 1,
                "rounds": shaped.run.rounds,
            }
        )
    return rows


def print_fidelity(rows: list[dict], n: int, d: int, parties: int, probe_latency_s: float) -> None:
    print()
    print(
        f"simulator fidelity, MPyC matching n = {n}, d = {d}, m = {parties}: replay of one probe trace "
        f"({1e3 * probe_latency_s:g} ms latency, no bandwidth limit) against real shaped runs"
    )
    print("| setting | predicted (s) | measured (s) | error | measured rounds |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['setting']} | {row['predicted']:.2f} | {row['measured']:.2f} | {100 * row['error']:+.1f} % "
            f"| {row['rounds']} |"
        )
    worst = max(abs(r["error"]) for r in rows)
    print(f"largest error {100 * worst:.1f} % (goal: within 10 %)")


def bench_two_party_fidelity(n: int, d: int, seed: int, threshold: float) -> list[dict]:
    """Replay the two-party matching's driver trace of an unshaped process run on each setting."""
    from testbed.network import FRAME_PREFIX_BYTES
    from testbed.relay import PartySpec, run_sansio_processes

    query, keys = instance(n, d, seed)
    specs = {
        "sp": PartySpec("protocols.matching.protocol:matching_sp", ("mri", query, n)),
        "mri": PartySpec("protocols.matching.protocol:matching_mri", ("sp", keys, threshold)),
    }
    base = run_sansio_processes(specs, timeout_s=900)
    rows = []
    for label, bandwidth, latency in FIDELITY_SETTINGS:
        link = LinkSpec(bandwidth, latency)
        network = Network.full_mesh(["sp", "mri"], link, overhead_bytes=FRAME_PREFIX_BYTES)
        predicted = replay(base.trace, network, record_transcript=False).sim_seconds
        shaped = run_sansio_processes(specs, default_shape=LinkShape(bandwidth, latency), timeout_s=900)
        measured = shaped.protocol_seconds()
        rows.append(
            {
                "setting": label,
                "predicted": predicted,
                "measured": measured,
                "error": predicted / measured - 1,
                "rounds": record_rounds(shaped.records),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,1000,2000,3000", help="database sizes n, comma-separated")
    parser.add_argument("--dim", type=int, default=768, help="key width d")
    parser.add_argument("--parties", type=int, default=3, help="MPyC parties m (3 or more)")
    parser.add_argument("--threshold", type=float, default=0.1, help="similarity threshold tau")
    parser.add_argument("--fidelity-n", type=int, default=500, help="database size of the fidelity runs (0 skips them)")
    parser.add_argument("--probe-latency", type=float, default=0.01, help="link latency in s of the probe runs whose traces are replayed")
    parser.add_argument("--no-two-party", action="store_true", help="skip the two-party matching comparison")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic database (not secret)")
    args = parser.parse_args()

    sizes = [int(s) for s in args.sizes.split(",") if s]
    print("machine:", machine_info())
    print(
        f"command: python -m benchmarks.bench_mpyc --sizes {args.sizes} --dim {args.dim} --parties {args.parties} "
        f"--probe-latency {args.probe_latency} --fidelity-n {args.fidelity_n}"
    )

    # Warm-up: the first MPyC run of a process pays for cold caches; keep it out of the figures.
    bench_mpyc(20, 16, args.parties, args.seed, args.threshold, 0.0)
    rows = [bench_mpyc(n, args.dim, args.parties, args.seed, args.threshold, args.probe_latency) for n in sizes]
    two_party = {}
    if not args.no_two_party:
        two_party = {n: bench_two_party(n, args.dim, args.seed, args.threshold) for n in sizes}
    print_cost_table(rows, two_party, args.parties, args.dim)

    if args.fidelity_n:
        base = next((r for r in rows if r["n"] == args.fidelity_n), None)
        if base is None:
            base = bench_mpyc(args.fidelity_n, args.dim, args.parties, args.seed, args.threshold, args.probe_latency)
        fidelity = bench_fidelity(base["trace"], args.fidelity_n, args.dim, args.parties, args.seed, args.threshold)
        print_fidelity(fidelity, args.fidelity_n, args.dim, args.parties, args.probe_latency)
        if not args.no_two_party:
            two_party_rows = bench_two_party_fidelity(args.fidelity_n, args.dim, args.seed, args.threshold)
            print()
            print(
                f"simulator fidelity, two-party matching n = {args.fidelity_n}, d = {args.dim}: one process per "
                "party through the relay; the driver's trace of the unshaped run replayed on each setting"
            )
            print("| setting | predicted (s) | measured (s) | error | measured rounds |")
            print("|---|---|---|---|---|")
            for row in two_party_rows:
                print(
                    f"| {row['setting']} | {row['predicted']:.2f} | {row['measured']:.2f} | "
                    f"{100 * row['error']:+.1f} % | {row['rounds']} |"
                )
            fidelity += two_party_rows
        if not all(math.isfinite(r["error"]) for r in fidelity):
            raise SystemExit("fidelity run produced a non-finite error")


if __name__ == "__main__":
    main()
