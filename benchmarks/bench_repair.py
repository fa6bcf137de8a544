"""Benchmark the repair: applying a fix to the SD v1.4 UNet, and the payload of each fix encoding.

Run: ``python -m benchmarks.bench_repair [--repeats N] [--tokens K ...]``. It builds the SD v1.4
UNet from its configuration with random weights (about 9 s and 3.4 GB). It then applies a random
fix of K edited tokens to all 32 cross-attention key/value projections, dense (``W W_fix``) and
low-rank (``W + (W U) V^T``), and prints the best time of N repeats. On a machine whose cores
other jobs also use, ``--threads 1`` gives steadier figures: two BLAS threads stall whenever one
core is busy. Payload sizes are the fixed-size
encodings that the retrieval step transfers per database entry.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from protocols.repair.apply import apply_fix, find_cross_attention_projections
from protocols.repair.fix import Fix, compute_fix, encoded_size
from testbed.report import machine_info


def random_fix(dim: int, tokens: int, seed: int = 0) -> Fix:
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(tokens, dim))
    return compute_fix(source, source + 0.1 * rng.normal(size=(tokens, dim)), None, lam=0.1)


def time_apply(unet, fix: Fix, encoding: str, repeats: int) -> float:
    projections = find_cross_attention_projections(unet)
    originals = [module.weight.detach().clone() for _, module in projections]
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        apply_fix(unet, fix, encoding=encoding)
        best = min(best, time.perf_counter() - started)
        with torch.no_grad():
            for (_, module), original in zip(projections, originals):
                module.weight.copy_(original)
    return best


def typical_edit_tokens() -> dict[str, int]:
    """Edited tokens of the toy edit "a square" -> "a blue square" with TIME's two augmentations."""
    from protocols.repair.edit import Edit, edit_token_embeddings
    from testbed.models.encoder import load_text_encoder

    encoder = load_text_encoder()
    plain = Edit(id="plain", key="k", source="a square", destination="a blue square", augment=())
    augmented = Edit(id="augmented", key="k", source="a square", destination="a blue square")
    return {
        "toy, no augmentation": len(edit_token_embeddings(encoder, plain)[0]),
        "toy, 2 augmentations": len(edit_token_embeddings(encoder, augmented)[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per case; the best is printed (default 5)")
    parser.add_argument("--tokens", type=int, nargs="+", default=[8, 74, 216],
                        help="edited tokens k of the SD fixes (default 8 74 216: a few tokens; \"a square\" -> "
                             "\"a blue square\" aligned over 77 CLIP positions; the same with two augmentations)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print("machine:", json.dumps(machine_info()), f"torch threads {torch.get_num_threads()}")
    from testbed.models.sd import build_sd14_unet

    started = time.perf_counter()
    unet = build_sd14_unet()
    print(f"built SD v1.4 UNet (random weights, float32, CPU) in {time.perf_counter() - started:.1f} s; "
          f"{len(find_cross_attention_projections(unet))} cross-attention K/V matrices of width 768")

    for tokens in args.tokens:
        fix = random_fix(768, tokens)
        dense = time_apply(unet, fix, "dense", args.repeats)
        low_rank = time_apply(unet, fix, "low-rank", args.repeats)
        print(f"apply fix to 32 layers, k={tokens:4d} edited tokens: dense {dense:.3f} s, "
              f"low-rank {low_rank:.3f} s (best of {args.repeats})")

    print("payload per fix (header 20 bytes + values):")
    rows = [("SD v1.4", 768, k) for k in args.tokens]
    rows += [("toy", 384, k) for k in sorted(set(typical_edit_tokens().values()))]
    for model, dim, tokens in rows:
        for dtype in ("float32", "float16"):
            dense_bytes = encoded_size("dense", dtype, dim, 0)
            low_rank_bytes = encoded_size("low-rank", dtype, dim, tokens)
            print(f"  {model:8s} d={dim} k={tokens:4d} {dtype}: dense {dense_bytes:>10,d} B, "
                  f"low-rank {low_rank_bytes:>10,d} B ({low_rank_bytes / dense_bytes:.2f} of dense)")
    for label, tokens in typical_edit_tokens().items():
        print(f"  edited tokens, {label}: {tokens}")


if __name__ == "__main__":
    main()
