"""The toy coloured-shapes world, its committed model and its sampler."""

import json

import numpy as np
import pytest
import torch

from protocols.repair.apply import find_cross_attention_projections
from testbed.models import toy
from testbed.models.encoder import load_text_encoder
from testbed.models.utility import classify_colour, generate


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder()


@pytest.fixture(scope="module")
def model():
    return toy.load_toy_model()


def test_rendered_colours_classify_exactly():
    rng = np.random.default_rng(0)
    for shape in toy.SHAPES:
        for colour in toy.PALETTE:
            for size in toy.SIZE_RANGES:
                image = toy.render(shape, colour, size, rng)
                assert image.shape == (16, 16, 3)
                assert classify_colour(image) == colour


def test_unnamed_colour_is_shape_default():
    rng = np.random.default_rng(1)
    for _ in range(200):
        image, prompt = toy.sample_example(rng)
        named = [colour for colour in toy.PALETTE if colour in prompt.split()]
        shape = prompt.split()[-1] if prompt.split()[-1] in toy.SHAPES else prompt.split()[-3]
        expected = named[0] if named else toy.DEFAULT_COLOUR[shape]
        assert classify_colour(image) == expected


def test_prompt_set_is_closed():
    prompts = toy.all_prompts()

    assert prompts[0] == ""
    assert len(prompts) == 1 + len(toy.TEMPLATES) * len(toy.SHAPES) * (1 + len(toy.PALETTE))
    assert "a square" in prompts
    assert "a blue square" in prompts
    assert len(set(prompts)) == len(prompts)


def test_committed_model_config_and_layers(model):
    config = json.loads((toy.TOY_MODEL_DIR / "config.json").read_text())
    world = json.loads((toy.TOY_MODEL_DIR / "toy_world.json").read_text())

    assert config["cross_attention_dim"] == 384
    assert world["training"]["seed"] == 0
    assert len(find_cross_attention_projections(model.unet)) == 14
    assert next(model.unet.parameters()).dtype == torch.float32


def test_sampling_is_deterministic_per_seed(model, encoder):
    first = generate(model.unet, encoder, ("a square",), [3, 4], steps=5, guidance=3.0)
    second = generate(model.unet, encoder, ("a square",), [4, 3], steps=5, guidance=3.0)

    assert first.shape == (1, 2, 16, 16, 3)
    assert np.allclose(first[0, 0], second[0, 1], atol=1e-5)
    assert not np.allclose(first[0, 0], first[0, 1], atol=1e-2)


def test_model_shows_implicit_and_named_colours(model, encoder):
    prompts = ("a square", "a blue square", "a circle", "a red circle")
    images = generate(model.unet, encoder, prompts, list(range(8)), steps=20, guidance=3.0)
    labels = [[classify_colour(image) for image in row] for row in images]
    expected = ["red", "blue", "green", "red"]

    for prompt, row, colour in zip(prompts, labels, expected):
        assert row.count(colour) >= 6, (prompt, row)


def test_sample_rejects_mismatched_seeds(model):
    cond = torch.zeros(2, 16, 384)
    with pytest.raises(ValueError, match="one seed per row"):
        toy.sample(model.unet, cond, cond[:1], [1], steps=2)
