"""Edit specs and the repair database: parsing, building, storage, validation and synthetic padding."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from protocols.repair.database import RepairDatabase
from protocols.repair.edit import Edit, fix_for_edit
from protocols.repair.errors import AlignmentError, DatabaseError, EditSpecError, RepairError, SingularSystemError
from protocols.repair.fix import Fix
from protocols.repair.spec import load_spec, parse_spec
from testbed.models.encoder import load_text_encoder

SPEC = """
[defaults]
lambda = 0.5

[[edit]]
id = "square-blue"
key = "a square should be blue"
source = "a square"
destination = "a blue square"
preserve = ["a circle", "a triangle"]

[[edit]]
id = "circle-red"
key = "a circle should be red"
source = "a circle"
destination = "a red circle"
lambda = 1.0
augment = []
"""


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder()


@pytest.fixture(scope="module")
def database(encoder, tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "edits.toml"
    path.write_text(SPEC)
    return RepairDatabase.build(path, encoder)


def write_spec(tmp_path, text, name="edits.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_spec_parses_defaults_and_overrides(tmp_path):
    edits = load_spec(write_spec(tmp_path, SPEC))

    assert [edit.id for edit in edits] == ["square-blue", "circle-red"]
    assert edits[0].lam == 0.5
    assert edits[0].preserve == ("a circle", "a triangle")
    assert edits[0].augment == ("a photo of {}", "an image of {}")
    assert edits[1].lam == 1.0
    assert edits[1].augment == ()


def test_json_spec_equals_toml(tmp_path):
    document = {"edit": [{"id": "a", "key": "k", "source": "a square", "destination": "a blue square"}]}
    edits = load_spec(write_spec(tmp_path, json.dumps(document), "edits.json"))

    assert edits[0].destination == "a blue square"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a square"\n', "missing fields.*destination"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a square"\ndestination = "a blue square"\nlamda = 1\n', "unknown fields.*lamda"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = ""\ndestination = "a blue square"\n', "'source' must be a non-empty string"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a"\ndestination = "b"\nlambda = -1\n', "lambda.*>= 0"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a"\ndestination = "b"\nlambda = "x"\n', "lambda"),
        ('[[edit]]\nid = "a b"\nkey = "k"\nsource = "a"\ndestination = "b"\n', "id 'a b'"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a"\ndestination = "b"\npreserve = "a circle"\n', "list of strings"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a"\ndestination = "b"\naugment = ["a photo of"]\n', "exactly one"),
        ('[[edit]]\nid = "a"\nkey = "k"\nsource = "a"\ndestination = "b"\n[[edit]]\nid = "a"\nkey = "k"\nsource = "a"\ndestination = "b"\n', "duplicate id 'a'"),
        ('[defaults]\nlambda = 1\n', "no edits"),
        ('[[edit]\nid = "a"', "not valid TOML"),
        ('edits = []\n', "unknown top-level"),
    ],
)
def test_malformed_spec_rejected(tmp_path, text, message):
    with pytest.raises(EditSpecError, match=message):
        load_spec(write_spec(tmp_path, text))


def test_spec_must_be_toml_or_json(tmp_path):
    with pytest.raises(EditSpecError, match=".toml or .json"):
        load_spec(write_spec(tmp_path, SPEC, "edits.yaml"))
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "missing.toml")


def test_database_keys_and_entries(database, encoder):
    assert len(database) == 2
    assert database.key_dim == 384
    assert database.fix_dim == 384
    assert np.allclose(np.linalg.norm(database.keys, axis=1), 1.0, atol=1e-6)
    assert np.allclose(database.key(0), encoder.embed_key("a square should be blue"), atol=1e-6)
    sizes = {len(database.entry_bytes(index)) for index in range(len(database))}
    assert sizes == {database.entry_size}


def test_database_fix_equals_direct_computation(database, encoder):
    edit = Edit(id="x", key="k", source="a square", destination="a blue square",
                preserve=("a circle", "a triangle"), lam=0.5)
    direct = fix_for_edit(encoder, edit)
    stored = Fix.from_bytes(database.entry_bytes(0), dim=384, encoding="low-rank", dtype="float32")

    assert np.abs(stored.dense(np.float64) - direct.dense(np.float64)).max() <= 1e-5
    assert database.entries[0].edited_tokens == direct.edited_tokens
    assert database.rank == max(entry.edited_tokens for entry in database.entries)


def test_database_save_load_round_trip(database, tmp_path):
    folder = database.save(tmp_path / "db")
    loaded = RepairDatabase.load(folder)

    assert loaded.entries == database.entries
    assert np.array_equal(loaded.keys, database.keys)
    for index in range(len(database)):
        assert loaded.entry_bytes(index) == database.entry_bytes(index)
    assert sorted(p.name for p in folder.iterdir()) == ["fixes.safetensors", "keys.safetensors", "manifest.json"]


def test_database_save_refuses_existing_folder(database, tmp_path):
    folder = database.save(tmp_path / "db")
    with pytest.raises(DatabaseError, match="exists"):
        database.save(folder)


def test_pad_synthetic_marks_and_regenerates(database, tmp_path):
    padded = database.pad_synthetic(40, seed=7)

    assert len(padded) == 40
    assert padded.real_count == 2
    assert [entry.synthetic for entry in padded.entries] == [False] * 2 + [True] * 38
    assert {len(padded.entry_bytes(index)) for index in range(40)} == {database.entry_size}
    assert padded.entry_bytes(0) == database.entry_bytes(0)
    loaded = RepairDatabase.load(padded.save(tmp_path / "padded"))
    assert loaded.entry_bytes(39) == padded.entry_bytes(39)
    manifest = json.loads((tmp_path / "padded" / "manifest.json").read_text())
    assert manifest["synthetic"] == {"count": 38, "seed": 7}
    with pytest.raises(RepairError, match="down to"):
        padded.pad_synthetic(10)


def test_dense_float16_database(tmp_path, encoder):
    path = write_spec(tmp_path, SPEC)
    dense = RepairDatabase.build(path, encoder, encoding="dense", dtype="float16")

    assert dense.entry_size == 20 + 384 * 384 * 2
    fix = Fix.from_bytes(dense.entry_bytes(1), dim=384, encoding="dense", dtype="float16")
    assert fix.matrix.shape == (384, 384)


def test_load_rejects_tampered_tensors(database, tmp_path):
    folder = database.save(tmp_path / "db")
    arrays = load_file(str(folder / "fixes.safetensors"))
    arrays["u"][0, 0, 0] = np.nan
    save_file(arrays, str(folder / "fixes.safetensors"))

    with pytest.raises(DatabaseError, match="SHA-256"):
        RepairDatabase.load(folder)


def test_load_rejects_nan_and_duplicate_ids(database, tmp_path):
    arrays = {name: array.copy() for name, array in database.arrays.items()}
    arrays["v"][1, 2, 3] = np.inf
    with pytest.raises(DatabaseError, match="NaN or infinity"):
        RepairDatabase(database.keys, arrays, database.entries, encoder="x", fix_dim=384,
                       encoding="low-rank", dtype="float32", rank=database.rank)

    folder = database.save(tmp_path / "db")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["entries"][1]["id"] = manifest["entries"][0]["id"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatabaseError, match="duplicate entry id 'square-blue'"):
        RepairDatabase.load(folder)


def test_load_rejects_wrong_shapes_and_missing_files(database, tmp_path):
    folder = database.save(tmp_path / "db")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["rank"] = database.rank + 1
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatabaseError, match="shape"):
        RepairDatabase.load(folder)

    (folder / "keys.safetensors").unlink()
    with pytest.raises(DatabaseError, match="missing keys.safetensors"):
        RepairDatabase.load(folder)
    with pytest.raises(DatabaseError, match="no manifest"):
        RepairDatabase.load(tmp_path)


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        ('source = "a square"\ndestination = "a blue circle"', AlignmentError, "last word"),
        ('source = "a square"\ndestination = "a blue square"\npreserve = [" "]', EditSpecError, "non-empty string"),
        ('source = "a square"\ndestination = "a ' + "very " * 20 + 'blue square"', ValueError, "padded length"),
        ('source = "a square"\ndestination = "a blue square"\nlambda = 0.0\naugment = []', SingularSystemError, "singular"),
    ],
)
def test_build_rejects_bad_edits_and_writes_nothing(tmp_path, encoder, edit, error, message):
    path = write_spec(tmp_path, f'[[edit]]\nid = "bad"\nkey = "k"\n{edit}\n')

    with pytest.raises(error, match=message):
        RepairDatabase.build(path, encoder)
    assert [p.name for p in tmp_path.iterdir()] == ["edits.toml"]


def test_toy_spec_builds_at_least_twenty_fixes(encoder):
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "data" / "edits" / "toy.toml"
    database = RepairDatabase.build(spec, encoder)

    assert len(database) >= 20
    assert len({entry.id for entry in database.entries}) == len(database)
    similarities = database.keys @ database.keys.T
    assert np.array_equal(np.argmax(similarities, axis=1), np.arange(len(database)))
