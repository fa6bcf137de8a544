"""Utility of a repair on the toy world: efficacy, generality and specificity, and an image grid.

Every generated image is classified by a deterministic hue classifier. The pixels whose HSV
saturation exceeds 0.4 and value exceeds 0.3 form the shape. Their saturation-weighted circular mean
hue picks the nearest palette colour, and an image with fewer than 3 such pixels has no colour.

* efficacy: fraction of (edited prompt, seed) images after the repair that show the target colour;
* generality: the same fraction over related prompts that were not part of the fix;
* specificity: fraction of (unrelated prompt, seed) images whose colour is the same before and
  after the repair.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from testbed.models import toy

logger = logging.getLogger(__name__)

MIN_SATURATION = 0.4
MIN_VALUE = 0.3
MIN_PIXELS = 3


def classify_colour(image: np.ndarray) -> str | None:
    """Return the palette colour of the shape in ``image`` (H x W x 3, in [0, 1]), or None."""
    rgb = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    high = rgb.max(axis=-1)
    low = rgb.min(axis=-1)
    chroma = high - low
    saturation = np.where(high > 0, chroma / np.maximum(high, 1e-12), 0.0)
    foreground = (saturation > MIN_SATURATION) & (high > MIN_VALUE)
    if foreground.sum() < MIN_PIXELS:
        return None
    r, g, b = (rgb[..., channel][foreground] for channel in range(3))
    peak, span = high[foreground], chroma[foreground]
    hue = np.where(
        peak == r, ((g - b) / span) % 6,
        np.where(peak == g, (b - r) / span + 2, (r - g) / span + 4),
    ) * 60.0
    weights = saturation[foreground]
    angle = np.deg2rad(hue)
    mean = np.rad2deg(np.arctan2((weights * np.sin(angle)).sum(), (weights * np.cos(angle)).sum())) % 360
    distances = {name: abs((mean - centre + 180) % 360 - 180) for name, centre in toy.PALETTE.items()}
    return min(distances, key=distances.get)


@dataclass(frozen=True)
class EvaluationPrompts:
    """The prompts and target colour that measure one repair."""

    edited: tuple[str, ...]
    related: tuple[str, ...]
    unrelated: tuple[str, ...]
    target_colour: str


@dataclass(frozen=True)
class Utility:
    """Measured utility of a repair; each fraction is over prompts x seeds."""

    efficacy: float
    generality: float
    specificity: float
    seeds: int
    efficacy_before: float
    generality_before: float


def toy_evaluation_prompts(source: str, destination: str) -> EvaluationPrompts:
    """Derive the evaluation prompts of a toy-world edit such as "a square" -> "a blue square".

    The shape is the source's last word and the target colour the palette colour named in the
    destination. Related prompts rephrase the source with templates that are not TIME
    augmentations; unrelated prompts name the other shapes without a colour.
    """
    words = source.lower().split()
    shape = words[-1] if words else ""
    colours = [word for word in destination.lower().split() if word in toy.PALETTE]
    if shape not in toy.SHAPES or len(colours) != 1:
        raise ValueError(
            f"cannot derive toy evaluation prompts from {source!r} -> {destination!r}: the source must "
            f"end with a shape ({', '.join(toy.SHAPES)}) and the destination name one colour "
            f"({', '.join(toy.PALETTE)})"
        )
    related = (f"a small {shape}", f"a big {shape}", f"a {shape} on white", f"a picture of a {shape}")
    unrelated = tuple(f"a {other}" for other in toy.SHAPES if other != shape)
    return EvaluationPrompts(edited=(source,), related=related, unrelated=unrelated, target_colour=colours[0])


def generate(unet, encoder, prompts: tuple[str, ...], seeds: list[int], steps: int, guidance: float) -> np.ndarray:
    """Generate one image per (prompt, seed); returns (len(prompts), len(seeds), H, W, 3)."""
    encoded = encoder.encode(list(prompts)).hidden
    uncond = encoder.encode([""], allow_empty=True).hidden
    cond = encoded.repeat_interleave(len(seeds), dim=0)
    images = toy.sample(unet, cond, uncond, seeds * len(prompts), steps=steps, guidance=guidance)
    return images.reshape(len(prompts), len(seeds), *images.shape[1:])


def _fraction(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def evaluate(
    before,
    after,
    encoder,
    prompts: EvaluationPrompts,
    seeds: list[int],
    steps: int = 20,
    guidance: float = 3.0,
) -> tuple[Utility, dict[str, np.ndarray]]:
    """Measure the utility of the repair that turned UNet ``before`` into ``after``.

    Returns the figures and the generated images keyed ``before`` and ``after``, each of shape
    (prompts, seeds, H, W, 3) with the prompts in the order edited, related, unrelated.
    """
    if len(seeds) < 1:
        raise ValueError("no seeds: give at least one")
    everything = prompts.edited + prompts.related + prompts.unrelated
    images = {
        "before": generate(before, encoder, everything, seeds, steps, guidance),
        "after": generate(after, encoder, everything, seeds, steps, guidance),
    }
    labels = {
        stage: [[classify_colour(image) for image in row] for row in batch]
        for stage, batch in images.items()
    }
    n_edited, n_related = len(prompts.edited), len(prompts.related)
    target = prompts.target_colour

    def share(stage: str, rows: range) -> float:
        return _fraction(label == target for row in rows for label in labels[stage][row])

    edited_rows = range(0, n_edited)
    related_rows = range(n_edited, n_edited + n_related)
    unrelated_rows = range(n_edited + n_related, len(everything))
    specificity = _fraction(
        labels["before"][row][column] == labels["after"][row][column]
        for row in unrelated_rows for column in range(len(seeds))
    )
    utility = Utility(
        efficacy=share("after", edited_rows),
        generality=share("after", related_rows),
        specificity=specificity,
        seeds=len(seeds),
        efficacy_before=share("before", edited_rows),
        generality_before=share("before", related_rows),
    )
    logger.info("utility %s", asdict(utility))
    return utility, images


def save_grid(path: Path, images: dict[str, np.ndarray], prompts: tuple[str, ...], columns: int = 8) -> None:
    """Write a PNG with one row per prompt: ``columns`` seeds before, then the same seeds after."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(columns, images["before"].shape[1])
    figure, axes = plt.subplots(
        len(prompts), 2 * columns, figsize=(2 * columns * 0.7, len(prompts) * 0.8), squeeze=False
    )
    for row, prompt in enumerate(prompts):
        for column in range(2 * columns):
            stage = "before" if column < columns else "after"
            axis = axes[row][column]
            axis.imshow(images[stage][row, column % columns], interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
            if column == 0:
                axis.set_ylabel(prompt, rotation=0, ha="right", va="center", fontsize=7)
            if row == 0 and column in (0, columns):
                axis.set_title(stage, fontsize=8, loc="left")
    figure.tight_layout(pad=0.2)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def utility_as_dict(utility: Utility) -> dict:
    """Return ``utility`` as the JSON-ready ``utility`` object of a report."""
    return asdict(utility)


__all__ = [
    "EvaluationPrompts", "Utility", "classify_colour", "evaluate", "generate", "save_grid",
    "toy_evaluation_prompts", "utility_as_dict",
]
