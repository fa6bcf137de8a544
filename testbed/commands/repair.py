"""``python -m testbed repair``: the plaintext reference repair, with no cryptography.

It computes the TIME/UCE fix of one edit, applies it to every cross-attention key and value
projection of the model, saves the repaired model, and on the toy model measures efficacy,
generality and specificity and draws a before/after image grid. Everything goes to a sibling
temporary folder first and is renamed to ``--out`` at the end, so a failed run writes nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    """Add the ``repair`` subcommand."""
    parser = subparsers.add_parser(
        "repair",
        help="repair a model's implicit assumption in plaintext (TIME/UCE)",
        description=(
            "Compute the TIME fix (UCE with --preserve) that makes SOURCE generate like DESTINATION, "
            "apply W <- W W_fix to every cross-attention key/value projection, save the repaired model "
            "under OUT/model and write OUT/report.json; on the toy model also measure utility and "
            "write OUT/grid.png."
        ),
    )
    parser.add_argument("--model", choices=("toy", "sd"), default="toy",
                        help="toy: the committed coloured-shapes model; sd: a local Stable Diffusion "
                             "checkpoint given by --checkpoint (default toy)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="model folder (diffusers layout); default for toy: models/toy")

    parser.add_argument("--source", required=True, help='prompt whose implicit assumption is wrong, e.g. "a square"')
    parser.add_argument("--destination", required=True, help='prompt that shows the wanted result, e.g. "a blue square"')
    parser.add_argument("--preserve", action="append", default=None, metavar="PROMPT",
                        help="prompt to keep unchanged (UCE preservation; repeatable). Default on the "
                             "toy model: the other shapes without a colour; elsewhere none")
    parser.add_argument("--no-preserve", action="store_true", help="use no preservation prompts (plain TIME)")
    parser.add_argument("--lambda", dest="lam", type=float, default=0.01,
                        help="weight of ||W' - W||_F^2 in the fix, dimensionless, >= 0 (default 0.01)")
    parser.add_argument("--augment", action="append", default=None, metavar="TEMPLATE",
                        help='prompt augmentation template with one "{}" (repeatable; default '
                             '"a photo of {}" and "an image of {}")')
    parser.add_argument("--no-augment", action="store_true", help="fit the fix on the prompt pair only")
    parser.add_argument("--align", choices=("time", "insert", "all"), default="insert",
                        help="token alignment: time edits the subject token onwards (TIME's rule); "
                             "insert also maps the destination's inserted words onto free padding "
                             "positions; all also pairs the words before the subject (default insert)")
    parser.add_argument("--no-preserve-unconditional", action="store_true",
                        help="do not preserve the empty prompt that classifier-free guidance uses")

    parser.add_argument("--encoding", choices=("dense", "low-rank"), default="low-rank",
                        help="fix encoding applied to the model (default low-rank)")
    parser.add_argument("--dtype", choices=("float16", "float32", "float64"), default="float32",
                        help="dtype of the encoded fix (default float32)")

    parser.add_argument("--seeds", type=int, default=32, help="sampling seeds per evaluation prompt (default 32)")
    parser.add_argument("--steps", type=int, default=20, help="DDIM sampling steps (default 20)")
    parser.add_argument("--guidance", type=float, default=3.0,
                        help="classifier-free guidance scale, dimensionless (default 3.0)")
    parser.add_argument("--related", action="append", default=None, metavar="PROMPT",
                        help="generality prompt (repeatable; default derived from the toy source)")
    parser.add_argument("--unrelated", action="append", default=None, metavar="PROMPT",
                        help="specificity prompt (repeatable; default: the other toy shapes)")
    parser.add_argument("--no-eval", action="store_true", help="skip the utility evaluation and the image grid")

    parser.add_argument("--device", default=None, help="torch device (default cuda when available, else cpu)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder; must not exist or be empty, and must not be the model folder")
    parser.set_defaults(func=run)


def _check_output(out: Path, model_path: Path | None) -> Path:
    out = out.resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output folder {out} exists and is not empty: choose a new --out")
    if model_path is not None:
        model_path = model_path.resolve()
        if out == model_path or model_path in out.parents or out in model_path.parents:
            raise ValueError(f"--out {out} overlaps the input model {model_path}: the input is never overwritten")
    return out


def _load(args, device: str):
    from testbed.models.encoder import load_text_encoder

    if args.model == "toy":
        from testbed.models.toy import TOY_MODEL_DIR, load_toy_model

        path = args.checkpoint or TOY_MODEL_DIR
        return load_toy_model(path, device=device).unet, load_text_encoder(), Path(path)
    if args.checkpoint is None:
        raise ValueError("--model sd needs --checkpoint DIR, a local Stable Diffusion folder (nothing is downloaded)")
    from testbed.models.sd import load_sd_text_encoder, load_sd_unet

    return load_sd_unet(args.checkpoint, device=device), load_sd_text_encoder(args.checkpoint), args.checkpoint


def _edit(args):
    from protocols.repair.edit import Edit
    from protocols.repair.fix import DEFAULT_AUGMENTATIONS

    if args.no_preserve:
        preserve: tuple[str, ...] = ()
    elif args.preserve is not None:
        preserve = tuple(args.preserve)
    elif args.model == "toy":
        from testbed.models.toy import SHAPES

        words = args.source.lower().split()
        preserve = tuple(f"a {shape}" for shape in SHAPES if not words or shape != words[-1])
    else:
        preserve = ()
    augment = () if args.no_augment else tuple(args.augment or DEFAULT_AUGMENTATIONS)
    return Edit(id="cli", key=args.destination, source=args.source, destination=args.destination,
                preserve=preserve, lam=args.lam, augment=augment, align=args.align,
                preserve_unconditional=not args.no_preserve_unconditional)


def _max_abs_error(before, after, fix) -> float:
    from protocols.repair.apply import find_cross_attention_projections

    dense = torch.from_numpy(fix.dense(np.float64))
    error = 0.0
    pairs = zip(find_cross_attention_projections(before), find_cross_attention_projections(after))
    for (_, original), (_, repaired) in pairs:
        plaintext = original.weight.detach().double().cpu() @ dense
        difference = (repaired.weight.detach().double().cpu() - plaintext).abs().max().item()
        error = max(error, difference)
    return error


def run(args: argparse.Namespace) -> int:
    from protocols.repair.apply import apply_fix
    from protocols.repair.edit import fix_for_edit
    from protocols.repair.fix import DENSE, LOW_RANK, Fix

    for name in ("seeds", "steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} {getattr(args, name)} is invalid: use an integer >= 1")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model_path = args.checkpoint
    if model_path is None and args.model == "toy":
        from testbed.models.toy import TOY_MODEL_DIR

        model_path = TOY_MODEL_DIR
    out = _check_output(args.out, model_path)
    timings = {}

    started = time.perf_counter()
    before, encoder, model_path = _load(args, device)
    timings["load_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    edit = _edit(args)
    fix = fix_for_edit(encoder, edit)
    payload = fix.to_bytes(args.encoding, args.dtype)
    applied = Fix.from_bytes(payload, dim=fix.dim, encoding=args.encoding, dtype=args.dtype)
    timings["fix_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    after = copy.deepcopy(before)
    layers = apply_fix(after, applied, encoding=args.encoding)
    timings["apply_seconds"] = time.perf_counter() - started
    error = _max_abs_error(before, after, fix)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        report = {
            "command": "repair",
            "model": {"name": args.model, "path": str(model_path), "device": device},
            "edit": {"source": edit.source, "destination": edit.destination, "preserve": list(edit.preserve),
                     "preserve_unconditional": edit.preserve_unconditional, "lambda": edit.lam,
                     "augment": list(edit.augment), "align": edit.align},
            "fix": {"dim": fix.dim, "edited_tokens": fix.edited_tokens, "preserved_tokens": fix.preserved_tokens,
                    "encoding": args.encoding, "dtype": args.dtype, "payload_bytes": len(payload),
                    "dense_bytes": len(fix.to_bytes(DENSE, args.dtype)),
                    "low_rank_bytes": len(fix.to_bytes(LOW_RANK, args.dtype))},
            "repair": {"layers_repaired": layers, "max_abs_error_vs_plaintext": error,
                       "model_out": str(out / "model")},
            "utility": None,
        }
        after.save_pretrained(str(staging / "model"), safe_serialization=True)
        (staging / "fix.bin").write_bytes(payload)

        if args.model == "toy" and not args.no_eval:
            started = time.perf_counter()
            report["utility"] = _evaluate(args, before, after, encoder, staging)
            timings["evaluate_seconds"] = time.perf_counter() - started
        report["timings"] = {name: round(value, 3) for name, value in timings.items()}
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        os.chmod(staging, 0o755)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    print(f"repaired {layers} cross-attention projections; max |error| vs plaintext {error:.3g}")
    if report["utility"] is not None:
        utility = report["utility"]
        print(f"efficacy {utility['efficacy']:.3f}  generality {utility['generality']:.3f}  "
              f"specificity {utility['specificity']:.3f}  ({utility['seeds']} seeds)")
    print(f"wrote {out}/report.json and {out}/model")
    return 0


def _evaluate(args, before, after, encoder, staging: Path) -> dict:
    from testbed.models.utility import (
        EvaluationPrompts, evaluate, save_grid, toy_evaluation_prompts, utility_as_dict,
    )

    prompts = toy_evaluation_prompts(args.source, args.destination)
    if args.related is not None or args.unrelated is not None:
        prompts = EvaluationPrompts(
            edited=prompts.edited,
            related=tuple(args.related) if args.related is not None else prompts.related,
            unrelated=tuple(args.unrelated) if args.unrelated is not None else prompts.unrelated,
            target_colour=prompts.target_colour,
        )
    seeds = list(range(args.seeds))
    utility, images = evaluate(before, after, encoder, prompts, seeds, steps=args.steps, guidance=args.guidance)
    everything = prompts.edited + prompts.related + prompts.unrelated
    save_grid(staging / "grid.png", images, everything)
    result = utility_as_dict(utility)
    result.update({
        "target_colour": prompts.target_colour, "edited_prompts": list(prompts.edited),
        "related_prompts": list(prompts.related), "unrelated_prompts": list(prompts.unrelated),
        "steps": args.steps, "guidance": args.guidance,
    })
    return result
