"""The offline MiniLM encoder: token embeddings, matching keys and prompt checks."""

import numpy as np
import pytest

from testbed.models.encoder import PromptError, find_minilm_path, load_text_encoder


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder()


def test_model_folder_ships_with_package():
    path = find_minilm_path()

    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_prompt_tokens_and_width(encoder):
    encoded = encoder.encode(["a blue square", "a square"])

    assert encoded.tokens[0] == ("[CLS]", "a", "blue", "square", "[SEP]")
    assert encoded.lengths == (5, 4)
    assert tuple(encoded.hidden.shape) == (2, encoder.max_length, 384)


def test_padding_positions_depend_on_prompt(encoder):
    hidden = encoder.encode(["a square", "a blue square"]).hidden

    assert not np.allclose(hidden[0, -1].numpy(), hidden[1, -1].numpy(), atol=1e-3)


def test_keys_are_unit_norm_and_discriminate(encoder):
    blue = encoder.embed_key("a square should be blue")
    green = encoder.embed_key("a square should be green")
    again = encoder.embed_key("a square should be blue")

    assert blue.shape == (384,)
    assert abs(np.linalg.norm(blue) - 1.0) <= 1e-12
    assert np.allclose(blue, again)
    assert blue @ again > blue @ green


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_rejected(encoder, prompt):
    with pytest.raises(PromptError, match="empty prompt"):
        encoder.encode([prompt])
    with pytest.raises(PromptError, match="empty prompt"):
        encoder.embed_key(prompt)


def test_long_prompt_rejected(encoder):
    with pytest.raises(PromptError, match="padded length 16"):
        encoder.encode(["a " + "very " * 20 + "blue square"])


def test_empty_prompt_allowed_for_guidance(encoder):
    encoded = encoder.encode([""], allow_empty=True)

    assert encoded.tokens[0] == ("[CLS]", "[SEP]")
