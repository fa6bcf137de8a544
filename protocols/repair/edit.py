"""Edits stated as prompts: augmentation, token alignment and the TIME/UCE fix they define."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from protocols.repair.errors import RepairError
from protocols.repair.fix import DEFAULT_AUGMENTATIONS, Fix, align_tokens, compute_fix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Edit:
    """One repair: make ``source`` look like ``destination`` while ``preserve`` stays as it is.

    ``key`` is the text whose embedding is the database key that describes the failure.
    ``augment`` lists templates such as ``"a photo of {}"`` that are applied to both prompts, as
    TIME augments its edits. ``align`` is the token alignment mode of :func:`align_tokens`.
    ``preserve_unconditional`` also preserves the empty prompt, which classifier-free guidance
    samples with, so that the guidance baseline of every prompt stays as it was.
    """

    id: str
    key: str
    source: str
    destination: str
    preserve: tuple[str, ...] = ()
    lam: float = 0.01
    augment: tuple[str, ...] = DEFAULT_AUGMENTATIONS
    align: str = "insert"
    preserve_unconditional: bool = True

    def prompt_pairs(self) -> list[tuple[str, str]]:
        """Return the (source, destination) pair and its augmented rephrasings."""
        pairs = [(self.source, self.destination)]
        for template in self.augment:
            if template.count("{}") != 1:
                raise RepairError(f"augmentation template {template!r} must contain exactly one '{{}}'")
            pairs.append((template.format(self.source), template.format(self.destination)))
        return pairs


def edit_token_embeddings(encoder, edit: Edit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the aligned (source, destination) token rows and the preservation rows of ``edit``.

    Every padded position of each preservation prompt (and of the empty prompt, unless
    ``preserve_unconditional`` is off) is preserved, because the UNet attends to all of them. Rows are float64 of the encoder's width.
    """
    for prompt in (edit.source, edit.destination, *edit.preserve):
        encoder.check_prompt(prompt)
    pairs = edit.prompt_pairs()
    encoded = encoder.encode([prompt for pair in pairs for prompt in pair])
    hidden = encoded.hidden.double().numpy()
    sources, destinations = [], []
    for n in range(len(pairs)):
        source_index, destination_index = align_tokens(
            encoded.tokens[2 * n], encoded.tokens[2 * n + 1], encoder.max_length, edit.align
        )
        sources.append(hidden[2 * n, source_index])
        destinations.append(hidden[2 * n + 1, destination_index])
    preserve_prompts = list(edit.preserve) + ([""] if edit.preserve_unconditional else [])
    if preserve_prompts:
        preserved = encoder.encode(preserve_prompts, allow_empty=True).hidden.double().numpy()
        preserve = preserved.reshape(-1, preserved.shape[-1])
    else:
        preserve = np.zeros((0, hidden.shape[-1]))
    return np.concatenate(sources), np.concatenate(destinations), preserve


def fix_for_edit(encoder, edit: Edit) -> Fix:
    """Compute the fix of ``edit`` with ``encoder`` (TIME, or UCE when it preserves prompts)."""
    source, destination, preserve = edit_token_embeddings(encoder, edit)
    fix = compute_fix(source, destination, preserve if len(preserve) else None, edit.lam)
    logger.info("edit %s: %d edited and %d preserved tokens", edit.id, fix.edited_tokens, fix.preserved_tokens)
    return fix
