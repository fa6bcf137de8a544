"""The command line: run, replay and sweep write their documented outputs."""

import csv
import json

import pytest

from testbed.cli import main


def test_run_calibration_matches_closed_form(tmp_path, capsys):
    out = tmp_path / "cal"
    assert main(["run", "calibration", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["calibration"]["analytic_seconds"] == pytest.approx(0.820000136, rel=1e-12)
    assert report["total"]["sim_seconds"] == pytest.approx(0.820000136, rel=1e-12)
    assert report["total"]["bytes"] == 100_000_001
    assert report["total"]["rounds"] == 2
    for key in ("scenario", "variant", "seed", "network", "phases", "total"):
        assert key in report
    assert report["phases"]["transfer"]["bytes"] == {"a->b": 100_000_000, "b->a": 1}
    lines = (out / "transcript.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert set(first) >= {"phase", "src", "dst", "bytes", "sim_send_s", "sim_recv_s", "digest"}
    assert (out / "report.md").read_text().startswith("# Run report: calibration")


def test_replay_command_reports_other_network(tmp_path, capsys):
    out = tmp_path / "cal"
    assert main(["run", "calibration", "--out", str(out)]) == 0
    replay_out = tmp_path / "replay"
    code = main([
        "replay", str(out / "trace.json.gz"), "--scenario", "calibration",
        "--set", "network.latency_s=0.02", "--out", str(replay_out),
    ])
    assert code == 0
    report = json.loads((replay_out / "report.json").read_text())
    assert report["total"]["sim_seconds"] == pytest.approx(0.820000136 + 0.02, rel=1e-12)


def test_sweep_writes_csv_and_plot(tmp_path):
    out = tmp_path / "sweep"
    code = main([
        "sweep", "pingpong", "--set", "pingpong.exchanges=20", "--set", "network.jitter_s=0",
        "--grid", "network.latency_s=0.001,0.01", "--grid", "network.bandwidth_bps=1e6,1e9",
        "--out", str(out), "--no-progress",
    ])
    assert code == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 4
    assert {row["mode"] for row in rows} == {"replay"}
    by_latency = {(row["network.latency_s"], row["network.bandwidth_bps"]): float(row["sim_seconds"]) for row in rows}
    # 40 messages on the critical path: 9 ms more latency each.
    assert by_latency[("0.01", "1000000000.0")] - by_latency[("0.001", "1000000000.0")] == pytest.approx(0.36, rel=1e-6)
    assert (out / "sweep.png").stat().st_size > 0
    assert (out / "sweep-bytes.png").stat().st_size > 0


def test_sweep_over_workload_key_runs_live(tmp_path):
    out = tmp_path / "sweep"
    assert main(["sweep", "pingpong", "--grid", "pingpong.exchanges=1,3", "--out", str(out), "--no-progress"]) == 0
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert [row["mode"] for row in rows] == ["live", "live"]
    assert [int(row["messages"]) for row in rows] == [2, 6]


def test_bad_input_exits_with_message(tmp_path, capsys):
    assert main(["run", "calibration", "--set", "network.bandwidth_bps=0", "--out", str(tmp_path / "x")]) == 1
    assert "network.bandwidth_bps" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_fault_run_writes_failed_report(tmp_path, capsys):
    out = tmp_path / "fault"
    code = main([
        "run", "pingpong", "--set", "faults.stop_party=\"pong\"", "--set", "faults.at_s=0.1",
        "--set", "network.jitter_s=0", "--out", str(out),
    ])
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed"
    assert report["stopped_at_s"] == pytest.approx(0.1, abs=1e-3)
    assert "PartyStopped" in report["failures"]["pong"]
    assert "PeerAborted" in report["failures"]["ping"]
