"""The plaintext ``repair`` command: outputs, report fields and rejected inputs."""

import json

import pytest

from testbed.cli import main
from testbed.models.toy import TOY_MODEL_DIR


def run_repair(tmp_path, *extra):
    out = tmp_path / "out"
    argv = ["repair", "--model", "toy", "--source", "a square", "--destination", "a blue square",
            "--seeds", "2", "--steps", "4", "--out", str(out), *extra]
    return main(argv), out


def test_repair_writes_model_grid_and_report(tmp_path):
    status, out = run_repair(tmp_path)

    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["repair"]["layers_repaired"] == 14
    assert report["repair"]["max_abs_error_vs_plaintext"] <= 1e-5
    assert report["repair"]["model_out"] == str(out / "model")
    assert set(report["utility"]) >= {"efficacy", "generality", "specificity"}
    assert report["utility"]["seeds"] == 2
    assert report["fix"]["edited_tokens"] > 0
    assert report["fix"]["payload_bytes"] == (out / "fix.bin").stat().st_size
    assert (out / "model" / "config.json").is_file()
    assert (out / "model" / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_repaired_model_loads_and_differs(tmp_path):
    import torch

    from protocols.repair.apply import find_cross_attention_projections
    from testbed.models.toy import load_toy_model

    status, out = run_repair(tmp_path, "--no-eval", "--encoding", "dense")
    assert status == 0
    original = find_cross_attention_projections(load_toy_model().unet)
    repaired = find_cross_attention_projections(load_toy_model(out / "model").unet)
    assert len(repaired) == 14
    assert not torch.allclose(original[0][1].weight, repaired[0][1].weight)
    assert json.loads((out / "report.json").read_text())["utility"] is None


@pytest.mark.parametrize(
    ("source", "destination", "message"),
    [
        ("", "a blue square", "empty prompt"),
        ("a square", "a blue circle", "last word"),
        ("a square", "a " + "very " * 20 + "blue square", "padded length"),
    ],
)
def test_bad_prompts_fail_and_write_nothing(tmp_path, capsys, source, destination, message):
    out = tmp_path / "out"
    status = main(["repair", "--source", source, "--destination", destination, "--out", str(out), "--no-eval"])

    assert status == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_singular_system_fails_and_writes_nothing(tmp_path, capsys):
    status, out = run_repair(tmp_path, "--lambda", "0", "--no-preserve", "--no-augment", "--no-eval")

    assert status == 1
    assert "singular" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_output_over_model_rejected(tmp_path, capsys):
    status = main(["repair", "--source", "a square", "--destination", "a blue square",
                   "--out", str(TOY_MODEL_DIR), "--no-eval"])

    assert status == 1
    assert "is not empty" in capsys.readouterr().err


def test_output_inside_model_rejected(tmp_path, capsys):
    checkpoint = tmp_path / "model"
    checkpoint.mkdir()
    status = main(["repair", "--checkpoint", str(checkpoint), "--source", "a square",
                   "--destination", "a blue square", "--out", str(checkpoint / "out"), "--no-eval"])

    assert status == 1
    assert "overlaps the input model" in capsys.readouterr().err


def test_help_documents_units(capsys):
    with pytest.raises(SystemExit):
        main(["repair", "--help"])
    text = capsys.readouterr().out
    for option in ("--lambda", "--seeds", "--steps", "--guidance", "--encoding", "--dtype", "--out"):
        assert option in text
    assert "dimensionless" in text
