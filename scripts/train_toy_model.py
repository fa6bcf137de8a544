"""Train the toy coloured-shapes UNet and write it to models/toy.

Run from the repository root (the committed weights came from exactly this command):

    nice -n 10 .venv/bin/python scripts/train_toy_model.py --steps 3000 --seed 0 --out models/toy

The script precomputes the MiniLM token embeddings of every prompt of the world and draws fresh
images each step. It trains with the DDPM noise-prediction loss and replaces 10 % of the prompts by
the empty prompt so that classifier-free guidance works. It keeps an exponential moving average of
the weights and saves that average (float16) with its loss curve (CSV and PNG).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps (default 3000)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, images and noise (default 0)")
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay per step (default 0.999)")
    parser.add_argument("--max-minutes", type=float, default=28.0,
                        help="stop early after this many minutes of wall time (default 28)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads; 1 avoids thread contention on a shared machine (default 1)")
    parser.add_argument("--out", type=Path, default=Path("models/toy"), help="output folder (default models/toy)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from diffusers import DDPMScheduler

    from testbed.models import toy
    from testbed.models.encoder import load_text_encoder

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    encoder = load_text_encoder()
    prompts = toy.all_prompts()
    encoded = encoder.encode(prompts, allow_empty=True).hidden
    index = {prompt: i for i, prompt in enumerate(prompts)}

    unet = toy.build_toy_unet().train()
    ema = toy.build_toy_unet().eval()
    ema.load_state_dict(unet.state_dict())
    for parameter in ema.parameters():
        parameter.requires_grad_(False)
    scheduler = DDPMScheduler(**toy.toy_scheduler_config())
    optimiser = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = 100

    def learning_rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, learning_rate)

    history: list[tuple[int, float, float]] = []
    started = time.monotonic()
    for step in range(args.steps):
        examples = [toy.sample_example(rng) for _ in range(args.batch_size)]
        images = torch.tensor(np.stack([image for image, _ in examples]), dtype=torch.float32)
        images = images.permute(0, 3, 1, 2) * 2 - 1
        rows = [index[prompt] if rng.random() >= 0.1 else index[""] for _, prompt in examples]
        context = encoded[rows]

        noise = torch.randn_like(images)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,))
        noisy = scheduler.add_noise(images, noise, timesteps)
        prediction = unet(noisy, timesteps, encoder_hidden_states=context).sample
        loss = torch.nn.functional.mse_loss(prediction, noise)

        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimiser.step()
        lr_schedule.step()
        with torch.no_grad():
            for target, source in zip(ema.parameters(), unet.parameters()):
                target.lerp_(source, 1 - args.ema)

        elapsed = time.monotonic() - started
        history.append((step, loss.item(), elapsed))
        if step % 25 == 0:
            print(f"step {step} loss {loss.item():.4f} elapsed {elapsed:.0f} s", flush=True)
        if elapsed > args.max_minutes * 60:
            print(f"stopping after {step + 1} steps: --max-minutes {args.max_minutes} reached", flush=True)
            break

    save(ema, history, args)
    return 0


def save(ema, history: list[tuple[int, float, float]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from testbed.models import toy

    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    # float16 halves the committed file (about 4 MB); loading converts back to float32.
    ema.to(torch.float16).save_pretrained(str(staging), safe_serialization=True)
    toy.save_config(staging, {
        "training": {
            "command": "nice -n 10 .venv/bin/python scripts/train_toy_model.py " + " ".join(sys.argv[1:]),
            "steps_done": len(history), "batch_size": args.batch_size, "lr": args.lr,
            "seed": args.seed, "ema": args.ema, "wall_seconds": round(history[-1][2], 1),
            "torch": torch.__version__,
        },
    })
    with open(staging / "loss.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "elapsed_s"])
        writer.writerows((step, f"{loss:.6f}", f"{elapsed:.2f}") for step, loss, elapsed in history)
    steps = np.array([row[0] for row in history])
    losses = np.array([row[1] for row in history])
    window = min(50, len(losses))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(steps, losses, alpha=0.3, label="loss per step")
    axis.plot(steps[window - 1:], smooth, label=f"mean of {window} steps")
    axis.set_xlabel("step")
    axis.set_ylabel("noise-prediction MSE")
    axis.set_yscale("log")
    axis.legend()
    figure.tight_layout()
    figure.savefig(staging / "loss.png", dpi=100)
    if out.exists():
        for item in out.iterdir():
            if not (staging / item.name).exists():
                os.replace(item, staging / item.name)
        backup = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
        os.replace(out, backup / out.name)
        os.replace(staging, out)
        shutil.rmtree(backup)
    else:
        os.replace(staging, out)
    os.chmod(out, 0o755)
    for item in out.iterdir():
        os.chmod(item, 0o644)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
