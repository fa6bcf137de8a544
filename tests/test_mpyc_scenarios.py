"""The mpyc-3party and baseline scenarios run through the CLI and write the usual report."""

from __future__ import annotations

import gzip
import json

import pytest

from protocols.baseline.baseline import scaled_layer_rows
from protocols.baseline.workload import PUBLISHED_SURE_S
from testbed.cli import main
from testbed.scenario import load

SMALL_DATABASE = ["--set", "database.entries=40", "--set", "database.key_dim=32", "--set", "mpyc.query_entry=17"]


def _report(out):
    return json.loads((out / "report.json").read_text())


def test_scenarios_load_with_their_workloads():
    mpyc = load("mpyc-3party")
    assert mpyc["scenario.workload"] == "mpyc-matching"
    assert mpyc["mpyc.parties"] == 3
    assert mpyc["network.profile"] == "lan-10g"
    assert mpyc["mpyc.probe_latency_s"] == 0.01
    baseline = load("baseline")
    assert baseline["scenario.workload"] == "baseline"
    assert baseline["baseline.parties"] == 3
    assert baseline["baseline.probe_latency_s"] == 0.01


def test_mpyc_3party_small_run_matches_reference(tmp_path, capsys):
    out = tmp_path / "mpyc"
    code = main(["run", "mpyc-3party", "--out", str(out), *SMALL_DATABASE])
    assert code == 0, capsys.readouterr().err
    for name in ("report.json", "report.md", "transcript.jsonl"):
        assert (out / name).stat().st_size > 0
    with gzip.open(out / "trace.json.gz", "rt") as handle:
        assert set(json.load(handle)["parties"]) == {"sp", "mri", "helper1"}

    report = _report(out)
    assert report["status"] == "ok"
    assert report["variant"] == "mpyc-3party, honest majority"
    assert report["security"] == "semi-honest, honest majority"
    assert report["threshold_t"] == 1
    assert report["match"]["index"] == 17
    assert report["match"]["plaintext_index"] == 17
    assert report["match"]["correct"] is True
    assert report["database"]["entries"] == 40
    assert report["database"]["key_dim"] == 32
    assert report["total"]["sim_seconds"] > 0
    assert report["total"]["bytes"] > 0
    assert "matching" in report["phases"]


def test_mpyc_two_parties_rejected_with_bound(tmp_path, capsys):
    out = tmp_path / "two"
    code = main(["run", "mpyc-3party", "--out", str(out), *SMALL_DATABASE, "--set", "mpyc.parties=2"])
    assert code == 1
    error = capsys.readouterr().err
    assert "t < m/2" in error
    assert "threshold t = 0" in error
    assert "mpyc.allow_insecure_two_party" in error
    assert not out.exists()


def test_mpyc_two_parties_insecure_control_labelled(tmp_path, capsys):
    out = tmp_path / "insecure"
    code = main([
        "run", "mpyc-3party", "--out", str(out), *SMALL_DATABASE,
        "--set", "mpyc.parties=2", "--set", "mpyc.allow_insecure_two_party=true",
    ])
    assert code == 0, capsys.readouterr().err
    report = _report(out)
    assert "INSECURE" in report["variant"]
    assert report["variant"].startswith("mpyc-2party")
    assert report["threshold_t"] == 0
    assert report["match"]["correct"] is True


def test_baseline_small_run_reports_extrapolation(tmp_path, capsys):
    out = tmp_path / "baseline"
    code = main([
        "run", "baseline", "--out", str(out),
        "--set", "database.entries=16", "--set", "database.key_dim=8", "--set", "baseline.layers=4",
    ])
    assert code == 0, capsys.readouterr().err
    report = _report(out)
    assert report["status"] == "ok"
    baseline = report["baseline"]
    assert baseline["size"] == {"n": 16, "d": 8, "layers": 4, "rows": sum(scaled_layer_rows(8, 4))}
    assert baseline["measured"]["max_abs_error_vs_plaintext"] < 1e-3
    assert baseline["cost_model"]["source"].startswith("committed coefficients")

    table = baseline["extrapolation"]
    assert [row["n"] for row in table] == [500, 1000, 1500, 2000, 2500, 3000]
    first = table[0]
    assert first["published_baseline_hours"] == 167.0
    assert first["published_sure_seconds"] == 2.82
    assert first["sure_speedup_published"] == pytest.approx(167 * 3600 / 2.82)
    assert first["sure_speedup_over_model"] == pytest.approx(first["model_hours"] * 3600 / 2.82)
    assert table[-1]["published_sure_seconds"] == PUBLISHED_SURE_S[3000] == 16.83
    assert all(row["model_hours"] > 1 for row in table)


def test_baseline_rejects_empty_database(tmp_path, capsys):
    code = main(["run", "baseline", "--out", str(tmp_path / "x"), "--set", "database.entries=0"])
    assert code == 1
    assert "database.entries" in capsys.readouterr().err

