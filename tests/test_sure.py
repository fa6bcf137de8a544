"""SURE end to end: matching, retrieval and repair composed, with reports, faults and bad input."""

import json
import os

import numpy as np
import pytest
import torch

from protocols.matching.fixed_point import FixedPointParams, reference_match
from protocols.repair.apply import find_cross_attention_projections
from protocols.repair.database import RepairDatabase
from protocols.repair.errors import FixDecodeError
from protocols.sure.payloads import PayloadStore
from protocols.sure.protocol import FixFormat, sure_mri, sure_sp
from protocols.sure.workload import plaintext_repair
from testbed.cli import main
from testbed.errors import RunFailed
from testbed.models.encoder import load_text_encoder
from testbed.models.toy import build_toy_unet
from testbed.runners.memory import run_in_memory

SPEC = """
[defaults]
lambda = 0.5

[[edit]]
id = "square-blue"
key = "a square should be blue"
source = "a square"
destination = "a blue square"

[[edit]]
id = "circle-red"
key = "a circle should be red"
source = "a circle"
destination = "a red circle"

[[edit]]
id = "cross-green"
key = "a cross should be green"
source = "a cross"
destination = "a green cross"
"""


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder()


@pytest.fixture(scope="module")
def database(encoder, tmp_path_factory):
    spec = tmp_path_factory.mktemp("spec") / "edits.toml"
    spec.write_text(SPEC)
    return RepairDatabase.build(spec, encoder, encoding="low-rank").pad_synthetic(40, seed=3)


@pytest.fixture(scope="module")
def world(tmp_path_factory, database):
    """A scenario folder with a small edit spec and a toy UNet with fresh weights."""
    root = tmp_path_factory.mktemp("world")
    (root / "edits.toml").write_text(SPEC)
    torch.manual_seed(0)
    build_toy_unet().save_pretrained(str(root / "toy-unet"))
    return root


def toml_value(value):
    """Format a value as TOML; dicts become inline tables."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_scenario(root, name="run.toml", **sections):
    base = {
        "scenario": {"name": "sure-test", "workload": "sure"},
        "network": {"profile": "lan-10g"},
        "model": {"kind": "toy", "path": "toy-unet"},
        "database": {"spec": "edits.toml", "entries": 40, "synthetic_seed": 3, "cache_dir": str(root / "cache")},
        "sure": {"flagged_prompt": "a square", "feedback": "should be blue"},
        "utility": {"enabled": False},
    }
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    lines = []
    for section, values in base.items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {toml_value(value)}")
    path = root / name
    path.write_text("\n".join(lines) + "\n")
    return path


def run_sure(database, query, unet, threshold=None, intercept=None):
    store_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sure-test-payloads")
    params = FixedPointParams(dim=database.key_dim)
    keys = database.keys.astype(np.float64)
    fix_format = FixFormat(database.fix_dim, database.encoding, database.dtype, database.rank)
    return run_in_memory(
        {
            "sp": sure_sp("mri", query, len(database), fix_format, unet, params=params),
            "mri": sure_mri("sp", keys, PayloadStore(database, store_dir), threshold, params=params),
        },
        intercept=intercept,
    )


def projection_weights(unet):
    return {name: module.weight.detach().clone() for name, module in find_cross_attention_projections(unet)}


def test_sure_repairs_with_matched_fix(encoder, database):
    torch.manual_seed(1)
    unet = build_toy_unet()
    before = projection_weights(unet)
    query = encoder.embed_key("a square should be blue")
    result = run_sure(database, query, unet)
    output = result.outputs["sp"]
    expected = reference_match(query, database.keys.astype(np.float64), None, FixedPointParams(dim=database.key_dim))
    assert output.index == expected
    assert database.entries[output.index].id == "square-blue"
    assert output.layers_repaired == 14
    assert result.outputs["mri"] is None
    reference = plaintext_repair(before, database.fix(output.index), database.encoding)
    for name, module in find_cross_attention_projections(unet):
        error = float((module.weight.detach().double() - reference[name]).abs().max())
        assert error <= 1e-5


def test_sure_phases_and_parties_receive_only_protocol_messages(encoder, database):
    unet = build_toy_unet()
    result = run_sure(database, encoder.embed_key("a circle should be red"), unet)
    phases = {r.phase.split(".")[0] for r in result.transcript}
    assert phases == {"matching", "retrieval"}
    retrieval_to_sp = result.transcript.bytes_by_direction("retrieval")["mri->sp"]
    # Every entry travels masked, once: the receiver-side cost is linear in n x entry size.
    assert retrieval_to_sp >= len(database) * database.entry_size
    assert result.transcript.bytes_by_direction("repair") == {}


def test_mri_view_same_shape_with_or_without_match(encoder, database):
    query = encoder.embed_key("a square that ought to look blue")
    assert float(np.max(database.keys @ query)) < 0.99
    matched = run_sure(database, query, build_toy_unet())
    unmatched = run_sure(database, query, build_toy_unet(), threshold=0.99)
    assert unmatched.outputs["sp"].index is None
    assert unmatched.outputs["sp"].layers_repaired == 0
    lengths = [[len(entry.payload) for entry in r.transcript.view("mri")] for r in (matched, unmatched)]
    assert lengths[0] == lengths[1]


def test_no_match_leaves_model_unchanged(encoder, database):
    unet = build_toy_unet()
    before = projection_weights(unet)
    result = run_sure(database, encoder.embed_key("a square that ought to look blue"), unet, threshold=0.99)
    assert result.outputs["sp"].index is None
    for name, module in find_cross_attention_projections(unet):
        assert torch.equal(module.weight, before[name])


def test_sp_rejects_tampered_fix(encoder, database):
    unet = build_toy_unet()
    before = projection_weights(unet)
    # Each masked entry travels as one message: a 13-byte frame header, then the entry.
    entry_message = database.entry_size + 13

    def zero_entries(src, dst, index, payload):
        if src == "mri" and len(payload) == entry_message:
            return payload[:40] + bytes(len(payload) - 40)
        return payload

    with pytest.raises(RunFailed) as failed:
        run_sure(database, encoder.embed_key("a square should be blue"), unet, intercept=zero_entries)
    assert isinstance(failed.value.failures["sp"], FixDecodeError)
    for name, module in find_cross_attention_projections(unet):
        assert torch.equal(module.weight, before[name])


def test_run_command_writes_report_and_model(world, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(write_scenario(world)), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "ok"
    assert report["match"]["correct"] is True
    assert report["match"]["entry"] == "square-blue"
    assert report["repair"]["layers_repaired"] == 14
    assert report["repair"]["max_abs_error_vs_plaintext"] <= 1e-5
    assert report["database"]["entries"] == 40
    assert set(report["phases"]) >= {"matching", "retrieval", "repair"}
    assert report["total"]["rounds"] >= 7
    assert (out / "model" / "config.json").is_file()
    assert (world / "toy-unet" / "config.json").is_file()
    lines = (out / "transcript.jsonl").read_text().splitlines()
    assert len(lines) == report["total"]["messages"]


def test_stopped_mri_writes_no_model(world, tmp_path):
    out = tmp_path / "out"
    scenario = write_scenario(world, "fault.toml", faults={"stop_party": "mri", "at_s": 0.0001})
    assert main(["run", str(scenario), "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed"
    assert report["stopped_at_s"] == pytest.approx(0.0001, abs=0.05)
    assert "PartyStopped" in report["failures"]["mri"]
    assert "PeerAborted" in report["failures"]["sp"]
    assert not (out / "model").exists()


def test_cut_link_writes_no_model(world, tmp_path):
    out = tmp_path / "out"
    scenario = write_scenario(world, "cut.toml", faults={"cut_link": ["sp", "mri"], "at_s": 0.0005})
    assert main(["run", str(scenario), "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed"
    assert not (out / "model").exists()
    assert "LinkDown" in json.dumps(report["failures"])


@pytest.mark.parametrize(
    "sections, message",
    [
        ({"model": {"path": "no-such-model"}}, "invalid model.path = 'no-such-model'"),
        ({"sure": {"flagged_prompt": "  "}}, "invalid sure.flagged_prompt"),
        ({"database": {"spec": "missing.toml"}}, "invalid database.spec = 'missing.toml'"),
    ],
)
def test_bad_sure_input_exits_cleanly(world, tmp_path, capsys, sections, message):
    out = tmp_path / "out"
    assert main(["run", str(write_scenario(world, "bad.toml", **sections)), "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_database_of_wrong_width_is_rejected(world, tmp_path, capsys):
    folder = tmp_path / "wide-db"
    RepairDatabase.synthetic(10, key_dim=384, fix_dim=768, encoding="low-rank", rank=2).save(folder)
    scenario = write_scenario(world, "wide.toml", database={"path": str(folder), "spec": None, "synthetic_seed": 0})
    text = scenario.read_text().replace('spec = null\n', "")
    scenario.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out)]) == 1
    assert "database fix width 768 does not match the model's cross-attention width 384" in capsys.readouterr().err
    assert not out.exists()


def test_corrupted_database_is_rejected(world, tmp_path, capsys):
    folder = tmp_path / "db"
    RepairDatabase.synthetic(10, key_dim=384, fix_dim=384, encoding="low-rank", rank=2).save(folder)
    fixes = folder / "fixes.safetensors"
    fixes.write_bytes(fixes.read_bytes()[:-7])
    scenario = write_scenario(world, "corrupt.toml", database={"path": str(folder), "spec": None, "synthetic_seed": 0})
    scenario.write_text(scenario.read_text().replace('spec = null\n', ""))
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out)]) == 1
    assert "fixes.safetensors" in capsys.readouterr().err
    assert not out.exists()


def test_many_sps_share_one_mri(world, tmp_path):
    links = [{"a": f"sp-{i}", "b": "router", "profile": "lan-1g"} for i in (1, 2, 3)]
    links.append({"a": "router", "b": "mri-host", "bandwidth_bps": 100e6, "latency_s": 0.02})
    links += [{"a": "mri-host", "b": f"mri-{i}", "profile": "loopback"} for i in (1, 2, 3)]
    scenario = write_scenario(world, "many.toml", sure={"sps": 3, "save_model": False}, topology={"links": links})
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["sps"]) == {"sp-1", "sp-2", "sp-3"}
    assert all(entry["correct"] for entry in report["sps"].values())
    assert report["repair"]["model_out"] is None
