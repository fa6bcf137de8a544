"""Benchmark the generic-MPC baseline in MPyC, fit its cost model and extrapolate to SD v1.4.

Run: ``python -m benchmarks.bench_baseline``. Measures the whole repair inside MPyC (three
parties through an unshaped relay on 127.0.0.1: linear-scan matching, oblivious selection of the
fix, ``W · W_fix`` for the layers) on a grid of small sizes, fits the cost model of
``protocols.baseline.cost_model`` to the real protocol time and to the bytes forwarded, prints
the fit error, and extrapolates to SD v1.4 (``d = 768``, 32 projections with 24,960 rows in all)
for ``n`` = 500 … 3000, next to the published baseline (167 h semi-honest at 500 entries) and
the published SURE times.
"""

from __future__ import annotations

import argparse
import time

from protocols.baseline.baseline import SD14_DIM, SD14_LAYER_ROWS, run_baseline, scaled_layer_rows, synthetic_instance
from protocols.baseline.cost_model import FEATURES, CostPoint, fit_cost_model
from testbed.report import machine_info

# Grid of measured sizes: (n, d, number of the 32 SD v1.4 projections, scaled to width d). It
# varies n at a fixed small layer load and d at the full 32 layers, so every feature of the
# model moves on its own in some pair of points.
GRID = (
    (8, 8, 32),
    (64, 8, 4),
    (256, 8, 4),
    (8, 16, 32),
    (8, 16, 8),
    (128, 16, 2),
    (512, 16, 2),
    (32, 24, 32),
    (16, 32, 16),
    (8, 32, 32),
    (128, 32, 2),
    (256, 24, 2),
)

# Published figures (semi-honest): generic-MPC baseline at 500 entries, and SURE's whole run
# (matching + repair) per database size, in seconds.
PUBLISHED_BASELINE_S = {500: 167 * 3600.0}
PUBLISHED_SURE_S = {500: 2.82, 1000: 5.60, 1500: 8.60, 2000: 11.09, 2500: 15.24, 3000: 16.83}


def measure(grid, parties: int, seed: int) -> list[dict]:
    rows = []
    for n, d, layers in grid:
        layer_rows = scaled_layer_rows(d, layers)
        query, keys, fixes, weights = synthetic_instance(n, d, layer_rows, seed=seed)
        started = time.perf_counter()
        result = run_baseline(query, keys, fixes, weights, parties=parties, timeout_s=900)
        rows.append(
            {
                "n": n,
                "d": d,
                "layers": layers,
                "R": sum(layer_rows),
                "seconds": result.run.protocol_seconds(),
                "launch_wall": time.perf_counter() - started,
                "bytes": result.run.total_bytes,
                "rounds": result.run.rounds,
                "error": result.max_abs_error,
            }
        )
        row = rows[-1]
        print(
            f"  measured n={n} d={d} layers={layers} R={row['R']}: {row['seconds']:.2f} s, "
            f"{row['bytes'] / 1e6:.2f} MB, {row['rounds']} rounds, max |error| {row['error']:.2e}",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parties", type=int, default=3, help="MPyC parties m (3 or more)")
    parser.add_argument("--seed", type=int, default=3, help="seed of the synthetic instances (not secret)")
    parser.add_argument("--quick", action="store_true", help="measure only the first 7 grid points")
    args = parser.parse_args()

    grid = GRID[:7] if args.quick else GRID
    print("machine:", machine_info())
    print(f"command: python -m benchmarks.bench_baseline --parties {args.parties}{' --quick' if args.quick else ''}")
    print(f"baseline in MPyC, m = {args.parties}, SecFxp(32, 16), through an unshaped relay")
    rows = measure(grid, args.parties, args.seed)

    time_model = fit_cost_model([CostPoint(r["n"], r["d"], r["R"], r["seconds"]) for r in rows])
    byte_model = fit_cost_model([CostPoint(r["n"], r["d"], r["R"], float(r["bytes"])) for r in rows])

    print()
    print("| n | d | layers | R | measured (s) | model (s) | MB | model MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['d']} | {r['layers']} | {r['R']} | {r['seconds']:.2f} | "
            f"{time_model.predict(r['n'], r['d'], r['R']):.2f} | {r['bytes'] / 1e6:.2f} | "
            f"{byte_model.predict(r['n'], r['d'], r['R']) / 1e6:.2f} |"
        )
    print()
    print(f"features: {', '.join(FEATURES)} (R = stacked layer rows)")
    for name, model, unit in (("time", time_model, "s"), ("bytes", byte_model, "B")):
        print(
            f"{name} model: {model.formula(unit)}; relative fit error rms {100 * model.rel_rms_error:.1f} %, "
            f"max {100 * model.rel_max_error:.1f} %, leave-one-out max {100 * model.loo_rel_max_error:.1f} % "
            f"({model.points} points)"
        )

    rows_sd = sum(SD14_LAYER_ROWS)
    print()
    print(f"extrapolation to SD v1.4: d = {SD14_DIM}, 32 projections, R = {rows_sd}")
    print("| n | model (h) | model (GB) | largest term | published baseline (h) | published SURE (s) | speedup of SURE (model) | speedup (published) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (500, 1000, 1500, 2000, 2500, 3000):
        seconds = time_model.predict(n, SD14_DIM, rows_sd)
        terms = time_model.terms(n, SD14_DIM, rows_sd)
        largest = max(terms, key=terms.get)
        published = PUBLISHED_BASELINE_S.get(n)
        sure = PUBLISHED_SURE_S[n]
        published_h = f"{published / 3600:.0f}" if published else "-"
        published_speedup = f"{published / sure:.2g}" if published else "-"
        print(
            f"| {n} | {seconds / 3600:.1f} | {byte_model.predict(n, SD14_DIM, rows_sd) / 1e9:.0f} | "
            f"{largest} ({100 * terms[largest] / seconds:.0f} %) | {published_h} | {sure} | "
            f"{seconds / sure:.2g} | {published_speedup} |"
        )


if __name__ == "__main__":
    main()
