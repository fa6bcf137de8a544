"""The ``sure`` workload: set up the SP's model and the MRI's database, run SURE, report.

Set-up happens before the protocol and is not timed. The SP loads its UNet and text encoder and
computes its matching key from the flagged prompt. The MRI builds (or loads) its repair database
and encodes every entry once.

After a successful run the SP's repaired UNet is written to ``OUT/model``, inside the run's
atomically written output folder and never over the input model. The report compares the run
with the plaintext reference: the fixed-point argmax computed in the clear, and the same fix
applied without cryptography.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protocols.matching.fixed_point import FixedPointParams, float_match, reference_match
from protocols.repair.apply import cross_attention_width, find_cross_attention_projections
from protocols.repair.database import RepairDatabase
from protocols.repair.errors import RepairError
from protocols.repair.fix import DENSE, LOW_RANK, Fix
from protocols.sure.payloads import PayloadStore
from protocols.sure.protocol import FixFormat, SpOutput, sure_mri, sure_sp
from testbed.errors import ScenarioError
from testbed.runtime import RunResult
from testbed.scenario import Key, Scenario, register_section
from testbed.workloads import Session, Workload, register_workload

logger = logging.getLogger(__name__)

MODEL_KINDS = ("toy", "sd-v1.4-random", "local")

register_section(
    "model",
    {
        "kind": Key("str", "toy", "the SP's model: the committed toy UNet, SD v1.4 built from its config "
                    "with random weights, or a local diffusers checkpoint", choices=MODEL_KINDS),
        "path": Key("path", None, "model folder: a diffusers checkpoint for kind = local (with unet/ and "
                    "text_encoder/), or another toy UNet folder"),
        "device": Key("str", "auto", "device for the repair: auto (CUDA when available), cpu or cuda",
                      choices=("auto", "cpu", "cuda")),
    },
)
register_section(
    "database",
    {
        "spec": Key("path", None, "edit-spec file (TOML or JSON) the MRI builds its database from"),
        "path": Key("path", None, "a database folder written by RepairDatabase.save (instead of spec)"),
        "entries": Key("int", 0, "pad the database with synthetic entries to this many (0: no padding)",
                       minimum=0),
        "encoding": Key("str", LOW_RANK, "fix encoding on the wire", choices=(DENSE, LOW_RANK)),
        "dtype": Key("str", "float32", "fix dtype on the wire", choices=("float32", "float16")),
        "rank": Key("int", 8, "rank of synthetic low-rank fixes when the database has no real entries",
                    minimum=1),
        "key_dim": Key("int", 768, "key width of a database with no real entries", minimum=1),
        "synthetic_seed": Key("int", 0, "seed of the synthetic entries (not secret)", minimum=0),
        "cache_dir": Key("str", "runs/cache", "folder for the encoded-entry cache, relative to the working directory"),
    },
)
register_section(
    "sure",
    {
        "flagged_prompt": Key("str", "", "the prompt whose image the user flagged"),
        "feedback": Key("str", "", "the user's description of what is wrong, appended to the prompt to "
                        "form the matching key text"),
        "query_entry": Key("int", -1, "use this database entry's key as the SP's query instead of the "
                           "prompt (for databases without a text encoder; -1: use the prompt)", minimum=-1),
        "threshold": Key("float", None, "least inner product that counts as a match (unset: always match)",
                         minimum=-1, maximum=1),
        "save_model": Key("bool", True, "write the repaired UNet to OUT/model"),
        "malicious_ot": Key("bool", False, "use the maliciously secure OT (base OT and KOS) in retrieval"),
        "sps": Key("int", 1, "number of SPs served by the MRI at once; SP i is party sp-i and talks to the "
                   "MRI's session mri-i (with one SP: parties sp and mri)", minimum=1),
    },
)
register_section(
    "utility",
    {
        "enabled": Key("bool", True, "measure efficacy, generality and specificity (toy model only)"),
        "seeds": Key("int", 32, "seeds per prompt", minimum=1),
        "steps": Key("int", 20, "DDIM sampling steps", minimum=1),
        "guidance": Key("float", 3.0, "classifier-free guidance scale", minimum=0),
    },
)


def _device(scenario: Scenario) -> torch.device:
    wanted = scenario["model.device"]
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ScenarioError("invalid model.device = 'cuda': no CUDA device is available; use auto or cpu")
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(wanted)


def load_sp_model(scenario: Scenario):
    """Return the SP's UNet and its text encoder (``None`` for SD built with random weights)."""
    device = _device(scenario)
    kind = scenario["model.kind"]
    path = scenario["model.path"]
    if kind == "toy":
        from testbed.models.encoder import load_text_encoder
        from testbed.models.toy import load_toy_model

        return load_toy_model(path, device=device).unet, load_text_encoder()
    if kind == "sd-v1.4-random":
        from testbed.models.sd import build_sd14_unet

        return build_sd14_unet(device=device, seed=scenario["scenario.seed"]), None
    if path is None:
        raise ScenarioError("missing model.path: kind = local needs the folder of a diffusers checkpoint")
    from testbed.models.sd import load_sd_text_encoder, load_sd_unet

    unet = load_sd_unet(path, device=device)
    encoder = load_sd_text_encoder(path) if (Path(path) / "text_encoder").is_dir() else None
    return unet, encoder


def load_mri_database(scenario: Scenario, encoder) -> RepairDatabase:
    """Build, load or synthesise the MRI's database, padded to ``database.entries``."""
    spec, folder = scenario["database.spec"], scenario["database.path"]
    encoding, dtype = scenario["database.encoding"], scenario["database.dtype"]
    if folder is not None:
        database = RepairDatabase.load(folder)
    elif spec is not None:
        if encoder is None:
            raise ScenarioError(
                "invalid database.spec: building a database needs the model's text encoder, and this model "
                "has none; use database.path or leave database.spec unset for a synthetic database"
            )
        database = _built_database(spec, encoder, encoding, dtype, Path(scenario["database.cache_dir"]))
    else:
        database = RepairDatabase.synthetic(
            max(scenario["database.entries"], 1), key_dim=scenario["database.key_dim"],
            fix_dim=scenario["database.key_dim"], encoding=encoding, dtype=dtype,
            rank=scenario["database.rank"], seed=scenario["database.synthetic_seed"],
        )
    if scenario["database.entries"] > len(database):
        database = database.pad_synthetic(scenario["database.entries"], seed=scenario["database.synthetic_seed"])
    return database


def _built_database(spec: Path, encoder, encoding: str, dtype: str, cache_dir: Path) -> RepairDatabase:
    """Build the database of an edit spec, or load it from the cache of an earlier identical build.

    The cache key covers the spec's bytes, the encoder, the encoding, the dtype and the source of
    the modules that compute fixes, so an edited spec or fix rule is rebuilt. This is the MRI's
    offline step; it is not part of the timed protocol.
    """
    from protocols.repair import edit, fix, spec as spec_module

    digest = hashlib.sha256()
    digest.update(Path(spec).read_bytes())
    for module in (edit, fix, spec_module):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(repr((getattr(encoder, "name", type(encoder).__name__), encoding, dtype)).encode())
    folder = cache_dir / f"database-{digest.hexdigest()[:24]}"
    if (folder / "manifest.json").is_file():
        logger.info("loading the database of %s from the cache %s", spec, folder)
        return RepairDatabase.load(folder)
    database = RepairDatabase.build(spec, encoder, encoding=encoding, dtype=dtype)
    database.save(folder, overwrite=True)
    return database


def matching_query(scenario: Scenario, encoder, database: RepairDatabase) -> tuple[np.ndarray, str]:
    """Return the SP's unit-norm matching key and a description of where it came from."""
    entry = scenario["sure.query_entry"]
    if entry >= 0:
        if entry >= len(database):
            raise ScenarioError(f"invalid sure.query_entry = {entry}: the database has {len(database)} entries")
        return database.key(entry), f"key of database entry {entry}"
    prompt = scenario["sure.flagged_prompt"].strip()
    if not prompt:
        raise ScenarioError("invalid sure.flagged_prompt = '': give the prompt the user flagged, e.g. \"a square\"")
    if encoder is None:
        raise ScenarioError("the model has no text encoder to embed sure.flagged_prompt: set sure.query_entry")
    feedback = scenario["sure.feedback"].strip()
    text = f"{prompt} {feedback}" if feedback else prompt
    return encoder.embed_key(text), text


def _projection_weights(unet) -> dict[str, torch.Tensor]:
    return {name: module.weight.detach().clone() for name, module in find_cross_attention_projections(unet)}


def plaintext_repair(weights: dict[str, torch.Tensor], fix: Fix, encoding: str) -> dict[str, torch.Tensor]:
    """Apply ``fix`` to copies of the projection weights in float64, with no cryptography."""
    repaired = {}
    for name, weight in weights.items():
        w = weight.to(torch.float64)
        if encoding == DENSE:
            repaired[name] = w @ torch.from_numpy(fix.dense(np.float64)).to(w.device)
        else:
            u, v = (torch.from_numpy(f).to(w.device) for f in fix.low_rank(np.float64))
            repaired[name] = w + (w @ u) @ v.T
    return repaired


def prepare(scenario: Scenario) -> Session:
    """Set up both parties of a SURE run from the scenario."""
    unet, encoder = load_sp_model(scenario)
    database = load_mri_database(scenario, encoder)
    width = cross_attention_width(unet)
    if database.fix_dim != width:
        raise RepairError(
            f"database fix width {database.fix_dim} does not match the model's cross-attention width {width}: "
            f"build the database with the model's text encoder"
        )
    query, query_text = matching_query(scenario, encoder, database)
    if query.shape != (database.key_dim,):
        raise RepairError(
            f"matching key width {query.shape[0]} does not match the database key width {database.key_dim}"
        )
    params = FixedPointParams(dim=database.key_dim)
    threshold = scenario["sure.threshold"]
    keys = database.keys.astype(np.float64)
    payloads = PayloadStore(database, Path(scenario["database.cache_dir"]))
    original = _projection_weights(unet)
    before = copy.deepcopy(unet) if _utility_requested(scenario) else None
    fix_format = FixFormat(database.fix_dim, database.encoding, database.dtype, database.rank or None)
    malicious_ot = scenario["sure.malicious_ot"]

    pairs = party_pairs(scenario["sure.sps"])
    unets = [unet] + [copy.deepcopy(unet) for _ in pairs[1:]]
    parties = {}
    for (sp, mri), sp_unet in zip(pairs, unets):
        parties[sp] = sure_sp(mri, query, len(database), fix_format, sp_unet, params=params, malicious_ot=malicious_ot)
        parties[mri] = sure_mri(sp, keys, payloads, threshold, params=params, malicious_ot=malicious_ot)
    expected = reference_match(query, keys, threshold, params)
    pre_report = {
        "database": database.summary(),
        "query": {"text": query_text, "threshold": threshold},
    }

    def finish(result: RunResult, out_dir: Path) -> dict[str, Any]:
        report: dict[str, Any] = {}
        if len(pairs) > 1:
            report["sps"] = {
                sp: _match_fields(result.outputs[sp], expected, query, keys, threshold, database)
                for sp, _ in pairs
            }

        output: SpOutput = result.outputs[pairs[0][0]]
        report["match"] = _match_fields(output, expected, query, keys, threshold, database)
        if output.index is None:
            report["repair"] = {"layers_repaired": 0, "max_abs_error_vs_plaintext": None, "model_out": None,
                                "note": "no match: no fix was applied and no model was written"}
            return report

        reference = plaintext_repair(original, database.fix(output.index), database.encoding)
        error = max(
            float((module.weight.detach().to(torch.float64) - reference[name]).abs().max())
            for name, module in find_cross_attention_projections(unet)
        )
        model_out = None
        if scenario["sure.save_model"]:
            unet.save_pretrained(str(out_dir / "model"))
            model_out = "model"
        report["repair"] = {
            "layers_repaired": output.layers_repaired,
            "max_abs_error_vs_plaintext": error,
            "model_out": model_out,
            "entry": database.entries[output.index].id,
        }
        if before is not None:
            report["utility"] = _utility(scenario, before, unet, encoder, database, output.index, out_dir)
        return report

    variant = "semi-honest" if not malicious_ot else "semi-honest matching, malicious OT"
    return Session(parties=parties, variant=variant, report=pre_report, finish=finish)


def party_pairs(count: int) -> list[tuple[str, str]]:
    """Return the (SP, MRI session) party names of a run with ``count`` SPs."""
    if count == 1:
        return [("sp", "mri")]
    return [(f"sp-{i}", f"mri-{i}") for i in range(1, count + 1)]


def _match_fields(output: SpOutput, expected, query, keys, threshold, database) -> dict[str, Any]:
    scores = keys @ query
    return {
        "index": output.index,
        "plaintext_index": expected,
        "float_index": float_match(query, keys, threshold),
        "correct": output.index == expected,
        "entry": None if output.index is None else database.entries[output.index].id,
        "similarity": None if output.index is None else float(scores[output.index]),
    }


def _utility_requested(scenario: Scenario) -> bool:
    return scenario["utility.enabled"] and scenario["model.kind"] == "toy"


def _utility(scenario, before, after, encoder, database, index, out_dir: Path) -> dict[str, Any]:
    from testbed.models.utility import evaluate, save_grid, toy_evaluation_prompts, utility_as_dict

    entry = database.entries[index]
    if entry.synthetic:
        return {"note": f"entry {entry.id} is synthetic: no prompts to evaluate"}
    prompts = toy_evaluation_prompts(entry.source, entry.destination)
    seeds = list(range(scenario["utility.seeds"]))
    utility, images = evaluate(
        before, after, encoder, prompts, seeds, steps=scenario["utility.steps"], guidance=scenario["utility.guidance"]
    )
    everything = prompts.edited + prompts.related + prompts.unrelated
    save_grid(out_dir / "grid.png", images, everything)
    fields = utility_as_dict(utility)
    fields["grid"] = "grid.png"
    fields["prompts"] = {"edited": prompts.edited, "related": prompts.related, "unrelated": prompts.unrelated,
                         "target_colour": prompts.target_colour}
    return fields


register_workload(Workload("sure", prepare))
