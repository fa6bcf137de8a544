"""The toy text-to-image world: coloured shapes, its small conditional UNet, and a DDIM sampler.

Every shape has an implicit colour: a prompt that names no colour ("a square", "a small square")
always shows the shape in its default colour (squares are red), while a prompt that names one
("a blue square") shows that colour. This is the kind of implicit assumption that TIME (Orgad,
Kawar and Belinkov, ICCV 2023) edits. Images are rendered at 64 x 64, box-filtered down to 16 x 16
and scaled to [-1, 1]; the model is trained and sampled at 16 x 16.

The UNet is a diffusers ``UNet2DConditionModel`` conditioned on the padded MiniLM token embeddings
(cross-attention width 384). The top level (16 x 16) has no attention, the two lower levels and
the mid block do, which gives 7 cross-attention blocks and 14 key/value projections.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

IMAGE_SIZE = 16
RENDER_SIZE = 64

# Hue in degrees of each colour of the world. The hue classifier picks the nearest one.
PALETTE: dict[str, float] = {
    "red": 0.0,
    "yellow": 60.0,
    "green": 120.0,
    "cyan": 180.0,
    "blue": 240.0,
    "purple": 285.0,
}
SHAPES = ("square", "circle", "triangle", "diamond", "cross")
DEFAULT_COLOUR: dict[str, str] = {
    "square": "red",
    "circle": "green",
    "triangle": "yellow",
    "diamond": "purple",
    "cross": "cyan",
}

# Prompt templates; "{colour}" is either empty or a colour name followed by a space.
TEMPLATES = (
    "a {colour}{shape}",
    "a small {colour}{shape}",
    "a big {colour}{shape}",
    "a {colour}{shape} on white",
    "a photo of a {colour}{shape}",
    "an image of a {colour}{shape}",
    "a picture of a {colour}{shape}",
)
SIZE_RANGES = {"small": (0.13, 0.17), "medium": (0.21, 0.27), "big": (0.32, 0.37)}
TOY_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "toy"


def prompt_for(template: str, shape: str, colour: str | None) -> str:
    """Fill ``template`` with ``shape`` and, when given, ``colour``."""
    return template.format(colour="" if colour is None else f"{colour} ", shape=shape)


def all_prompts() -> list[str]:
    """List every prompt of the training distribution, and the empty prompt of classifier-free guidance."""
    prompts = [""]
    for template in TEMPLATES:
        for shape in SHAPES:
            prompts.append(prompt_for(template, shape, None))
            for colour in PALETTE:
                prompts.append(prompt_for(template, shape, colour))
    return prompts


def hsv_to_rgb(hue_degrees: float, saturation: float, value: float) -> np.ndarray:
    """Convert one HSV colour (hue in degrees, the rest in [0, 1]) to RGB in [0, 1]."""
    h = (hue_degrees % 360.0) / 60.0
    c = value * saturation
    x = c * (1 - abs(h % 2 - 1))
    sector = int(h) % 6
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][sector]
    return np.array(rgb) + (value - c)


def shape_mask(shape: str, half_size: float, cx: float, cy: float, size: int = RENDER_SIZE) -> np.ndarray:
    """Return a boolean ``size`` x ``size`` mask of ``shape`` (coordinates are fractions of the image)."""
    coords = (np.arange(size) + 0.5) / size
    x = coords[None, :] - cx
    y = coords[:, None] - cy
    s = half_size
    if shape == "square":
        return (np.abs(x) <= s) & (np.abs(y) <= s)
    if shape == "circle":
        return x * x + y * y <= s * s
    if shape == "triangle":
        # Apex at the top; image rows grow downwards.
        return (y >= -s) & (y <= s) & (np.abs(x) <= (y + s) / 2)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= s * 1.25
    if shape == "cross":
        arm = s / 3
        return ((np.abs(x) <= arm) & (np.abs(y) <= s)) | ((np.abs(y) <= arm) & (np.abs(x) <= s))
    raise ValueError(f"unknown shape {shape!r}: use one of {', '.join(SHAPES)}")


def render(shape: str, colour: str, size_name: str, rng: np.random.Generator) -> np.ndarray:
    """Render one image, shape (IMAGE_SIZE, IMAGE_SIZE, 3) in [0, 1], on a white background."""
    low, high = SIZE_RANGES[size_name]
    half = rng.uniform(low, high)
    margin = half + 0.04
    cx, cy = rng.uniform(margin, 1 - margin, size=2)
    mask = shape_mask(shape, half, cx, cy)
    hue = PALETTE[colour] + rng.uniform(-8.0, 8.0)
    rgb = hsv_to_rgb(hue, rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0))
    image = np.ones((RENDER_SIZE, RENDER_SIZE, 3))
    image[mask] = rgb
    factor = RENDER_SIZE // IMAGE_SIZE
    return image.reshape(IMAGE_SIZE, factor, IMAGE_SIZE, factor, 3).mean(axis=(1, 3))


def sample_example(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Draw one (image, prompt) pair of the training distribution.

    Half the prompts name a colour drawn uniformly from the palette; the others name none and the
    image shows the shape's default colour.
    """
    shape = SHAPES[rng.integers(len(SHAPES))]
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    named = rng.random() < 0.5
    colour = list(PALETTE)[rng.integers(len(PALETTE))] if named else DEFAULT_COLOUR[shape]
    if "small" in template:
        size_name = "small"
    elif "big" in template:
        size_name = "big"
    else:
        size_name = "medium"
    image = render(shape, colour, size_name, rng)
    return image, prompt_for(template, shape, colour if named else None)


def toy_unet_config() -> dict:
    """Return the ``UNet2DConditionModel`` configuration of the toy model."""
    return {
        "sample_size": IMAGE_SIZE,
        "in_channels": 3,
        "out_channels": 3,
        "layers_per_block": 1,
        "block_out_channels": [32, 64, 64],
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "cross_attention_dim": 384,
        "attention_head_dim": 8,
        "norm_num_groups": 16,
    }


def toy_scheduler_config() -> dict:
    """Return the noise schedule shared by training (DDPM) and sampling (DDIM)."""
    return {
        "num_train_timesteps": 1000,
        "beta_schedule": "squaredcos_cap_v2",
        "prediction_type": "epsilon",
        "clip_sample": True,
    }


def build_toy_unet():
    """Build the toy UNet with freshly initialised weights."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**toy_unet_config())


@dataclass
class ToyModel:
    """The toy UNet and the folder it was loaded from."""

    unet: object
    path: Path


def load_toy_model(path: Path | str | None = None, device: str | torch.device = "cpu") -> ToyModel:
    """Load the committed toy UNet (``config.json`` + ``diffusion_pytorch_model.safetensors``)."""
    from diffusers import UNet2DConditionModel

    folder = Path(path) if path is not None else TOY_MODEL_DIR
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"toy model folder {folder} has no config.json: train it with scripts/train_toy_model.py")
    unet = UNet2DConditionModel.from_pretrained(
        str(folder), torch_dtype=torch.float32, low_cpu_mem_usage=False, local_files_only=True
    )
    unet = unet.to(device).eval()
    logger.info("loaded toy UNet from %s", folder)
    return ToyModel(unet=unet, path=folder)


@torch.no_grad()
def sample(
    unet,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    seeds: list[int],
    steps: int = 20,
    guidance: float = 3.0,
    batch_size: int = 256,
) -> np.ndarray:
    """Sample one image per row of ``cond`` with DDIM and classifier-free guidance.

    ``cond`` has shape (n, length, 384) and ``uncond`` (1, length, 384). Row ``i`` starts from the
    Gaussian noise of ``seeds[i]``, so the same seed and prompt give the same image. Returns an
    array of shape (n, IMAGE_SIZE, IMAGE_SIZE, 3) in [0, 1].
    """
    from diffusers import DDIMScheduler

    if cond.shape[0] != len(seeds):
        raise ValueError(f"{cond.shape[0]} conditioning rows but {len(seeds)} seeds: give one seed per row")
    device = next(unet.parameters()).device
    dtype = next(unet.parameters()).dtype
    scheduler = DDIMScheduler(**toy_scheduler_config())
    scheduler.set_timesteps(steps)
    outputs = []
    for start in range(0, len(seeds), batch_size):
        chunk = seeds[start:start + batch_size]
        noise = [
            torch.randn(3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(seed))
            for seed in chunk
        ]
        x = torch.stack(noise).to(device, dtype)
        c = cond[start:start + batch_size].to(device, dtype)
        u = uncond.to(device, dtype).expand(len(chunk), -1, -1)
        context = torch.cat([u, c])
        for t in scheduler.timesteps:
            eps = unet(torch.cat([x, x]), t, encoder_hidden_states=context).sample
            eps_uncond, eps_cond = eps.chunk(2)
            eps = eps_uncond + guidance * (eps_cond - eps_uncond)
            x = scheduler.step(eps, t, x).prev_sample
        outputs.append(((x.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(outputs)


def save_config(folder: Path, extra: dict) -> None:
    """Write the sampler settings beside the UNet weights as ``toy_world.json``."""
    payload = {"scheduler": toy_scheduler_config(), "image_size": IMAGE_SIZE, **extra}
    (folder / "toy_world.json").write_text(json.dumps(payload, indent=2) + "\n")
