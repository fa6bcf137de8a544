"""Benchmark two-party matching: cost per database size, and the fixed-point argmax error.

Run: ``python -m benchmarks.bench_matching``. Prints, for each database size ``n`` (width ``d``):

* compute seconds per party and their sum, measured in memory after one small warm-up run (the
  parties run one after the other in one process, so the sum is about the wall time of the run);
* payload bytes each way (the OT stack's share shown apart) and rounds;
* simulated seconds on the ``loopback``, ``lan-10g`` and ``wan-100m`` profiles, from replaying
  the recorded trace (``testbed.replay``) with the measured compute times;
* the goal: a third of the published two-party matching time (whole run minus repair).

Then it measures how often the encoded argmax differs from the float argmax on synthetic
clustered databases and on MiniLM sentence embeddings of templated failure descriptions, and
checks that every difference is a near tie (gap at most twice the error bound).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from protocols.matching import protocol
from protocols.matching.fixed_point import FixedPointParams, encode_keys, encode_query, encoded_scores, float_match
from testbed.network import Network, profile
from testbed.replay import replay
from testbed.report import machine_info
from testbed.runners.memory import run_in_memory
from testbed.trace import Trace

# Published two-party matching times (whole run minus repair, semi-honest), in seconds.
PUBLISHED_MATCHING_S = {500: 2.82 - 0.54, 1000: 5.60 - 1.05, 1500: 8.60 - 1.53, 2000: 11.09 - 2.05, 2500: 15.24 - 2.59, 3000: 16.83 - 3.09}
PROFILES = ("loopback", "lan-10g", "wan-100m")


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_cost(n: int, d: int, params: FixedPointParams, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    keys = unit_rows(rng, n, d)
    noisy = keys[n // 3] + rng.normal(scale=0.5 / np.sqrt(d), size=d)
    query = noisy / np.linalg.norm(noisy)

    started = time.perf_counter()
    result = run_in_memory(
        {
            "sp": protocol.matching_sp("mri", query, n, params=params),
            "mri": protocol.matching_mri("sp", keys, 0.1, params=params),
        },
        keep_payloads=False,
    )
    wall = time.perf_counter() - started
    expected = float_match(query, keys, 0.1)

    transcript = result.transcript
    ot_bytes = transcript.bytes_by_direction(protocol.PHASE_OT)
    simulated = {}
    trace = Trace(result.trace)
    for name in PROFILES:
        setting = profile(name)
        network = Network.full_mesh(["sp", "mri"], setting.link, overhead_bytes=setting.overhead_bytes)
        simulated[name] = replay(trace, network, record_transcript=False).sim_seconds
    return {
        "n": n,
        "correct": result.outputs["sp"] == expected,
        "compute": result.compute_seconds,
        "phase_compute": result.phase_compute_seconds,
        "wall": wall,
        "bytes": transcript.bytes_by_direction(),
        "ot_bytes": ot_bytes,
        "rounds": transcript.rounds(),
        "ot_rounds": transcript.rounds(protocol.PHASE_OT),
        "simulated": simulated,
    }


def print_cost_table(rows: list[dict]) -> None:
    print()
    print(
        "| n | SP compute (s) | MRI compute (s) | sum (s) | goal (s) | MRI→SP MB (OT) | SP→MRI MB (OT) | rounds (OT) "
        "| loopback (s) | lan-10g (s) | wan-100m (s) | output ok |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        total = row["compute"]["sp"] + row["compute"]["mri"]
        goal = PUBLISHED_MATCHING_S.get(row["n"], float("nan")) / 3
        down = row["bytes"].get("mri->sp", 0) / 1e6
        up = row["bytes"].get("sp->mri", 0) / 1e6
        ot_down = row["ot_bytes"].get("mri->sp", 0) / 1e6
        ot_up = row["ot_bytes"].get("sp->mri", 0) / 1e6
        sim = row["simulated"]
        print(
            f"| {row['n']} | {row['compute']['sp']:.3f} | {row['compute']['mri']:.3f} | {total:.3f} | {goal:.3f} "
            f"| {down:.2f} ({ot_down:.2f}) | {up:.2f} ({ot_up:.2f}) | {row['rounds']} ({row['ot_rounds']}) "
            f"| {sim['loopback']:.3f} | {sim['lan-10g']:.3f} | {sim['wan-100m']:.3f} | {row['correct']} |"
        )
    print()
    print("compute seconds per phase (SP / MRI):")
    for row in rows:
        phases = row["phase_compute"]
        names = [p for p in (protocol.PHASE_OT, protocol.PHASE_PRODUCTS, protocol.PHASE_ARGMAX)]
        parts = ", ".join(f"{p} {phases['sp'].get(p, 0):.3f} / {phases['mri'].get(p, 0):.3f}" for p in names)
        print(f"  n={row['n']}: {parts}")


def argmax_disagreements(queries: np.ndarray, keys: np.ndarray, params: FixedPointParams) -> dict:
    """Count queries whose encoded argmax differs from the float argmax, and check each is a near tie."""
    k_hat = encode_keys(keys, params)
    exact = queries @ keys.T
    bound = params.error_bound
    differ = 0
    at_risk = 0
    worst_gap = 0.0
    for row, query in enumerate(queries):
        scores = encoded_scores(encode_query(query, params), k_hat)
        encoded = int(np.argmax(scores))
        plain = int(np.argmax(exact[row]))
        top_two = np.sort(exact[row])[-2:] if keys.shape[0] > 1 else np.array([0.0, 1.0])
        if top_two[1] - top_two[0] <= 2 * bound:
            at_risk += 1
        if encoded != plain:
            differ += 1
            gap = float(exact[row, plain] - exact[row, encoded])
            worst_gap = max(worst_gap, gap)
            if gap > 2 * bound:
                raise AssertionError(f"encoded argmax differs with gap {gap:.3g} > 2δ = {2 * bound:.3g}")
    return {"queries": len(queries), "differ": differ, "at_risk": at_risk, "worst_gap": worst_gap}


def synthetic_database(rng: np.random.Generator, n: int, d: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys in clusters of ten near-duplicate failure descriptions (similarity about 0.9 within a
    cluster); half the queries are perturbed keys, half are cluster centres, which sit almost
    equally close to every member of their cluster and so produce near ties."""
    clusters = unit_rows(rng, max(1, n // 10), d)
    members = clusters[rng.integers(0, len(clusters), size=n)]
    keys = members + rng.normal(scale=0.3 / np.sqrt(d), size=(n, d))
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    near_keys = keys[rng.integers(0, n, size=queries - queries // 2)]
    near_keys = near_keys + rng.normal(scale=0.3 / np.sqrt(d), size=near_keys.shape)
    centres = clusters[rng.integers(0, len(clusters), size=queries // 2)]
    query_rows = np.concatenate([near_keys, centres])
    return query_rows / np.linalg.norm(query_rows, axis=1, keepdims=True), keys


ADJECTIVES = ["red", "old", "smiling", "tall", "young", "tired", "happy", "small", "angry", "famous"]
SUBJECTS = [
    "doctor", "nurse", "engineer", "teacher", "chef", "pilot", "farmer", "lawyer", "scientist", "artist",
    "firefighter", "programmer", "dancer", "soldier", "banker", "cashier", "janitor", "ceo", "judge", "writer",
]
SCENES = ["in a park", "at work", "on a street", "in a kitchen", "at night", "in the rain", "on a beach", "indoors"]


def embed_sentences(texts: list[str]) -> np.ndarray:
    """Return unit-norm MiniLM sentence embeddings (mean of the real tokens' hidden states), batched."""
    import torch

    from testbed.models.encoder import load_text_encoder

    encoder = load_text_encoder()
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), 256):
            batch = encoder.tokenizer(texts[start : start + 256], padding=True, return_tensors="pt")
            hidden = encoder.model(**batch).last_hidden_state.double()
            mask = batch["attention_mask"].double().unsqueeze(2)
            rows.append(((hidden * mask).sum(dim=1) / mask.sum(dim=1)).numpy())
    vectors = np.concatenate(rows)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def text_database(max_keys: int, queries: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM sentence embeddings of templated failure descriptions and of paraphrased queries."""
    descriptions = [f"a {a} {s} {p}" for a, s, p in itertools.product(ADJECTIVES, SUBJECTS, SCENES)]
    chosen = rng.choice(len(descriptions), size=min(max_keys, len(descriptions)), replace=False)
    keys = embed_sentences([descriptions[i] for i in chosen])
    asked = rng.choice(chosen, size=queries)
    return embed_sentences([f"a photo of {descriptions[i]}" for i in asked]), keys


def print_precision(params_by_dim: dict[int, FixedPointParams], text_keys: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    print()
    print("| database | d | f_q | f_k | δ | queries | top-2 gap ≤ 2δ | argmax differs | largest gap of a difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = []
    for n in (500, 3000):
        d = 768
        queries, keys = synthetic_database(rng, n, d, 300)
        cases.append((f"synthetic clusters, n={n}", queries, keys))
    if text_keys > 0:
        queries, keys = text_database(text_keys, 300, rng)
        cases.append((f"MiniLM descriptions, n={keys.shape[0]}", queries, keys))
    for label, queries, keys in cases:
        d = keys.shape[1]
        for frac_q, frac_k in ((12, 16), (10, 12), (8, 8)):
            params = FixedPointParams(dim=d, query_frac_bits=frac_q, key_frac_bits=frac_k)
            stats = argmax_disagreements(queries, keys, params)
            print(
                f"| {label} | {d} | {frac_q} | {frac_k} | {params.error_bound:.2e} | {stats['queries']} "
                f"| {stats['at_risk']} | {stats['differ']} | {stats['worst_gap']:.2e} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,1000,2000,3000", help="comma-separated database sizes n")
    parser.add_argument("--dim", type=int, default=768, help="key width d")
    parser.add_argument("--query-frac-bits", type=int, default=12, help="fractional bits f_q of the query")
    parser.add_argument("--key-frac-bits", type=int, default=16, help="fractional bits f_k of the keys")
    parser.add_argument("--text-keys", type=int, default=1000, help="MiniLM keys for the precision table (0: skip)")
    parser.add_argument("--skip-cost", action="store_true", help="only print the precision table")
    parser.add_argument("--skip-precision", action="store_true", help="only print the cost table")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic databases (not secret)")
    args = parser.parse_args()

    print("machine:", machine_info())
    params = FixedPointParams(dim=args.dim, query_frac_bits=args.query_frac_bits, key_frac_bits=args.key_frac_bits)
    print(
        f"parameters: d={args.dim}, f_q={params.query_frac_bits}, f_k={params.key_frac_bits}, "
        f"query bits b={params.query_bits}, ring ℓ={params.ring_bits}, error bound δ={params.error_bound:.3e}"
    )
    if not args.skip_cost:
        # One small run first, so imports and one-time setup are not charged to the first size.
        bench_cost(16, args.dim, params, args.seed)
        rows = []
        for n in (int(s) for s in args.sizes.split(",")):
            rows.append(bench_cost(n, args.dim, params, args.seed + n))
            print(f"n={n}: done in {rows[-1]['wall']:.2f} s wall", flush=True)
        print_cost_table(rows)
    if not args.skip_precision:
        print_precision({args.dim: params}, args.text_keys, args.seed)


if __name__ == "__main__":
    main()
