"""The ``baseline`` workload: the generic-MPC repair in MPyC, and its extrapolation to SD v1.4.

Construction: the whole repair inside MPyC (Schoenmakers, 0.11; Shamir sharing, honest majority,
semi-honest), as in ``protocols.baseline.baseline``: linear-scan matching, oblivious selection of
the fix and ``W · W_fix`` for the layers. The run uses a small synthetic instance: ``n =
database.entries`` keys and fixes of width ``d = database.key_dim``, and the first
``baseline.layers`` SD v1.4 projections scaled to width ``d``. Its trace is replayed on the
scenario's ``[network]``.

The extrapolation does not refit. It loads the committed coefficients below, fitted by
``python -m benchmarks.bench_baseline`` on twelve measured points, because a fit needs more
runs than a scenario should take. The report also gives the model's value at the run's own size
next to the measured time, as a check of the committed fit on the current machine.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from protocols.baseline.baseline import SD14_DIM, SD14_LAYER_ROWS, run_baseline, scaled_layer_rows, synthetic_instance
from protocols.baseline.cost_model import FEATURES, CostModel
from protocols.mpyc_matching.matching import check_party_count, party_names, threshold_for
from testbed.errors import ScenarioError
from testbed.relay import LinkShape
from testbed.replay import ReplayResult
from testbed.scenario import Key, Scenario, register_section
from testbed.workloads import Session, Workload, register_workload

logger = logging.getLogger(__name__)

# Cost models fitted by ``python -m benchmarks.bench_baseline`` (m = 3, unshaped relay, 12 points
# with n from 8 to 512, d from 8 to 32, R from 12 to 1036 rows, on 2 shared cores with Python 3.11
# and MPyC 0.11 with gmpy2). Coefficients follow ``cost_model.FEATURES`` (1, n, n·d, n·d², R·d,
# R·d²) and are rounded to the three significant digits the benchmark prints.
COMMITTED_TIME_MODEL = CostModel(
    coefficients=(0.244, 0.00169, 0.0, 2.66e-06, 0.00019, 6.76e-07),
    rel_rms_error=0.069, rel_max_error=0.131, loo_rel_max_error=0.241, points=12,
)
COMMITTED_BYTE_MODEL = CostModel(
    coefficients=(6.15e4, 6.63e3, 8.03, 26.0, 1.34e3, 0.566),
    rel_rms_error=0.003, rel_max_error=0.006, loo_rel_max_error=0.008, points=12,
)

# Published figures (semi-honest): the generic-MPC baseline at 500 entries, and SURE's whole run
# (matching + repair) per database size, in seconds.
PUBLISHED_BASELINE_S = {500: 167 * 3600.0}
PUBLISHED_SURE_S = {500: 2.82, 1000: 5.60, 1500: 8.60, 2000: 11.09, 2500: 15.24, 3000: 16.83}

register_section(
    "baseline",
    {
        "layers": Key("int", 32, "how many of SD v1.4's 32 cross-attention projections to repair, scaled "
                      "to width database.key_dim", minimum=1, maximum=len(SD14_LAYER_ROWS)),
        "parties": Key("int", 3, "number of MPyC parties m (3 or more)", minimum=3),
        "probe_latency_s": Key("float", 0.01, "one-way latency in seconds of every relay link during the "
                               "recorded run, whose trace is then replayed on [network]", minimum=0),
        "timeout_s": Key("float", 600.0, "seconds before the party processes are stopped", exclusive_minimum=0),
    },
)


def extrapolation(time_model: CostModel = COMMITTED_TIME_MODEL, byte_model: CostModel = COMMITTED_BYTE_MODEL):
    """Return the modelled baseline at SD v1.4 sizes for n = 500 … 3000 next to the published figures."""
    rows_sd = sum(SD14_LAYER_ROWS)
    table = []
    for n, sure_s in PUBLISHED_SURE_S.items():
        seconds = time_model.predict(n, SD14_DIM, rows_sd)
        terms = time_model.terms(n, SD14_DIM, rows_sd)
        largest = max(terms, key=terms.get)
        published = PUBLISHED_BASELINE_S.get(n)
        table.append({
            "n": n,
            "model_hours": seconds / 3600,
            "model_gigabytes": byte_model.predict(n, SD14_DIM, rows_sd) / 1e9,
            "largest_term": largest,
            "largest_term_share": terms[largest] / seconds,
            "published_baseline_hours": None if published is None else published / 3600,
            "published_sure_seconds": sure_s,
            "sure_speedup_over_model": seconds / sure_s,
            "sure_speedup_published": None if published is None else published / sure_s,
        })
    return table


def _model_fields(model: CostModel, unit: str) -> dict[str, Any]:
    return {
        "formula": model.formula(unit),
        "features": list(FEATURES),
        "coefficients": list(model.coefficients),
        "relative_fit_error_rms": model.rel_rms_error,
        "relative_fit_error_max": model.rel_max_error,
        "leave_one_out_error_max": model.loo_rel_max_error,
        "points": model.points,
    }


def prepare(scenario: Scenario) -> Session:
    """Build the synthetic instance and return a session that runs the baseline in MPyC for real."""
    parties = scenario["baseline.parties"]
    security = check_party_count(parties)
    n, dim = scenario["database.entries"], scenario["database.key_dim"]
    if n < 1:
        raise ScenarioError("invalid database.entries = 0: the baseline needs a database size, e.g. 128")
    if scenario["database.spec"] is not None or scenario["database.path"] is not None:
        raise ScenarioError("the baseline runs on a synthetic instance: leave database.spec and database.path unset")
    layer_rows = scaled_layer_rows(dim, scenario["baseline.layers"])
    query, keys, fixes, weights = synthetic_instance(n, dim, layer_rows, seed=scenario["database.synthetic_seed"])
    names = party_names(parties)
    probe = LinkShape(latency_s=scenario["baseline.probe_latency_s"])
    shapes = {(a, b): probe for a in names for b in names if a != b}
    rows = sum(layer_rows)

    def record_trace():
        logger.info("running the MPyC baseline: m = %d, n = %d, d = %d, R = %d", parties, n, dim, rows)
        result = run_baseline(query, keys, fixes, weights, parties=parties, shapes=shapes,
                              timeout_s=scenario["baseline.timeout_s"])
        outputs = {
            "index": result.index,
            "max_abs_error": result.max_abs_error,
            "protocol_seconds": result.run.protocol_seconds(),
            "bytes": result.run.total_bytes,
            "rounds": result.run.rounds,
        }
        return result.run.trace, outputs

    def finish(result: ReplayResult, out_dir: Path) -> dict[str, Any]:
        outputs = result.outputs
        modelled = COMMITTED_TIME_MODEL.predict(n, dim, rows)
        measured = {
            "matched_index": outputs["index"],
            "max_abs_error_vs_plaintext": outputs["max_abs_error"],
            "wall_seconds": outputs["protocol_seconds"],
            "bytes": outputs["bytes"],
            "rounds": outputs["rounds"],
            "probe_latency_s": scenario["baseline.probe_latency_s"],
            "simulated_seconds": result.sim_seconds,
            "model_seconds_at_this_size": modelled,
            "model_bytes_at_this_size": COMMITTED_BYTE_MODEL.predict(n, dim, rows),
            "note": "wall_seconds includes the probe latency on every link; the committed model was "
                    "fitted to unshaped runs",
        }
        return {
            "baseline": {
                "size": {"n": n, "d": dim, "layers": scenario["baseline.layers"], "rows": rows},
                "measured": measured,
                "cost_model": {
                    "source": "committed coefficients fitted by python -m benchmarks.bench_baseline",
                    "time": _model_fields(COMMITTED_TIME_MODEL, "s"),
                    "bytes": _model_fields(COMMITTED_BYTE_MODEL, "B"),
                },
                "extrapolation_target": {"d": SD14_DIM, "layers": len(SD14_LAYER_ROWS), "rows": sum(SD14_LAYER_ROWS)},
                "extrapolation": extrapolation(),
                "note": "the published baseline used another MPC framework and two parties; the model is an "
                        "estimate far outside the measured sizes and ignores memory",
            }
        }

    report = {"security": security, "parties": names, "threshold_t": threshold_for(parties)}
    variant = f"baseline: generic MPC (MPyC, m = {parties}), honest majority"
    return Session(variant=variant, report=report, finish=finish, record_trace=record_trace)


register_workload(Workload("baseline", prepare))
