"""Stable Diffusion v1.4: its UNet built from the published configuration, or loaded from local files.

No weights are downloaded. :func:`build_sd14_unet` builds the architecture with random weights for
cost measurements: 860 M parameters and 16 cross-attention blocks whose ``to_k`` and ``to_v``
(32 matrices) take the 768-wide CLIP ViT-L/14 token embeddings. :func:`load_sd_unet` and
:func:`load_sd_text_encoder` read a checkpoint in the diffusers folder layout (``unet/``,
``text_encoder/``, ``tokenizer/``) that a user already has on disk.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

SD14_CROSS_ATTENTION_DIM = 768
SD14_MAX_LENGTH = 77


def sd14_unet_config() -> dict:
    """Return the ``UNet2DConditionModel`` configuration of Stable Diffusion v1.4."""
    return {
        "sample_size": 64,
        "in_channels": 4,
        "out_channels": 4,
        "center_input_sample": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "down_block_types": [
            "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D",
        ],
        "up_block_types": [
            "UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
        ],
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "downsample_padding": 1,
        "mid_block_scale_factor": 1,
        "act_fn": "silu",
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "cross_attention_dim": SD14_CROSS_ATTENTION_DIM,
        "attention_head_dim": 8,
    }


def build_sd14_unet(dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", seed: int = 0):
    """Build the SD v1.4 UNet with random weights (about 9 s and 3.4 GB in float32 on a CPU)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**sd14_unet_config()).to(device, dtype).eval()
    logger.info("built SD v1.4 UNet with random weights on %s (%s)", device, dtype)
    return unet


def load_sd_unet(path: Path | str, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Load a UNet from a local diffusers checkpoint (the pipeline folder or its ``unet/``)."""
    from diffusers import UNet2DConditionModel

    folder = Path(path)
    if (folder / "unet" / "config.json").is_file():
        folder = folder / "unet"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no UNet config.json under {path}: give a diffusers checkpoint folder")
    unet = UNet2DConditionModel.from_pretrained(
        str(folder), torch_dtype=dtype, low_cpu_mem_usage=False, local_files_only=True
    )
    return unet.to(device).eval()


class ClipTextEncoder:
    """CLIP text encoder of a local SD checkpoint with the interface of the MiniLM encoder.

    Token embeddings are the last hidden states padded to 77 tokens, as SD feeds its UNet. The
    matching key is the pooled (end-token) output scaled to unit norm.
    """

    name = "clip-vit-large-patch14"
    dim = SD14_CROSS_ATTENTION_DIM
    max_length = SD14_MAX_LENGTH

    def __init__(self, path: Path | str) -> None:
        from transformers import CLIPTextModel, CLIPTokenizer

        folder = Path(path)
        self.tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        self.model = CLIPTextModel.from_pretrained(str(folder / "text_encoder"), local_files_only=True).eval()
        self.dim = self.model.config.hidden_size

    def check_prompt(self, prompt: str) -> None:
        from testbed.models.encoder import PromptError

        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptError(f"empty prompt {prompt!r}: give at least one word")
        count = len(self.tokenizer(prompt)["input_ids"])
        if count > self.max_length:
            raise PromptError(f"prompt {prompt!r} has {count} tokens, more than {self.max_length}: shorten it")

    @torch.no_grad()
    def encode(self, prompts: list[str], allow_empty: bool = False):
        from testbed.models.encoder import EncodedPrompts

        for prompt in prompts:
            if not (allow_empty and prompt == ""):
                self.check_prompt(prompt)
        batch = self.tokenizer(prompts, padding="max_length", max_length=self.max_length,
                               truncation=True, return_tensors="pt")
        hidden = self.model(input_ids=batch["input_ids"]).last_hidden_state
        lengths = tuple(int(n) for n in batch["attention_mask"].sum(dim=1))
        tokens = tuple(
            tuple(self.tokenizer.convert_ids_to_tokens(batch["input_ids"][b, :n].tolist()))
            for b, n in enumerate(lengths)
        )
        return EncodedPrompts(hidden=hidden, input_ids=batch["input_ids"], lengths=lengths, tokens=tokens)

    @torch.no_grad()
    def embed_key(self, text: str) -> np.ndarray:
        self.check_prompt(text)
        batch = self.tokenizer([text], padding="max_length", max_length=self.max_length, return_tensors="pt")
        pooled = self.model(input_ids=batch["input_ids"]).pooler_output[0].double().numpy()
        return pooled / np.linalg.norm(pooled)


def load_sd_text_encoder(path: Path | str) -> ClipTextEncoder:
    """Load the CLIP text encoder and tokenizer of a local SD checkpoint folder."""
    # NOTE: no SD checkpoint is available on the development machine, so this path has not run.
    return ClipTextEncoder(path)
