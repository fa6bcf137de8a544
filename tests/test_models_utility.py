"""Utility evaluation: the hue classifier, evaluation prompts and the image grid."""

import numpy as np
import pytest

from testbed.models import toy
from testbed.models.utility import classify_colour, evaluate, save_grid, toy_evaluation_prompts


@pytest.mark.parametrize("colour", list(toy.PALETTE))
def test_classifier_names_palette_hues(colour):
    image = np.ones((16, 16, 3))
    image[4:10, 4:10] = toy.hsv_to_rgb(toy.PALETTE[colour] + 10, 0.9, 0.9)

    assert classify_colour(image) == colour


def test_classifier_ignores_background_and_grey():
    image = np.ones((16, 16, 3))
    assert classify_colour(image) is None
    image[2:12, 2:12] = 0.5
    assert classify_colour(image) is None
    image[0, 0] = [1.0, 0.0, 0.0]
    image[0, 1] = [1.0, 0.0, 0.0]
    assert classify_colour(image) is None
    image[0, 2] = [1.0, 0.0, 0.0]
    assert classify_colour(image) == "red"


def test_red_wraps_around_hue_circle():
    image = np.ones((16, 16, 3))
    image[:4, :4] = toy.hsv_to_rgb(355, 0.9, 0.9)
    image[4:8, :4] = toy.hsv_to_rgb(5, 0.9, 0.9)

    assert classify_colour(image) == "red"


def test_evaluation_prompts_from_toy_edit():
    prompts = toy_evaluation_prompts("a square", "a blue square")

    assert prompts.target_colour == "blue"
    assert prompts.edited == ("a square",)
    assert "a small square" in prompts.related
    assert "a circle" in prompts.unrelated
    assert all("square" not in prompt for prompt in prompts.unrelated)
    with pytest.raises(ValueError, match="must end with a shape"):
        toy_evaluation_prompts("a dog", "a blue dog")
    with pytest.raises(ValueError, match="one colour"):
        toy_evaluation_prompts("a square", "a big square")


def test_unchanged_model_is_fully_specific(tmp_path):
    from testbed.models.encoder import load_text_encoder

    model = toy.load_toy_model()
    prompts = toy_evaluation_prompts("a square", "a blue square")
    utility, images = evaluate(model.unet, model.unet, load_text_encoder(), prompts, [0, 1], steps=4)

    assert utility.specificity == 1.0
    assert utility.efficacy == utility.efficacy_before
    assert utility.generality == utility.generality_before
    assert images["before"].shape == (1 + len(prompts.related) + len(prompts.unrelated), 2, 16, 16, 3)
    save_grid(tmp_path / "grid.png", images, prompts.edited + prompts.related + prompts.unrelated)
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_square_repair_meets_utility_targets():
    import copy

    from protocols.repair.apply import apply_fix
    from protocols.repair.edit import Edit, fix_for_edit
    from testbed.models.encoder import load_text_encoder

    encoder = load_text_encoder()
    before = toy.load_toy_model().unet
    prompts = toy_evaluation_prompts("a square", "a blue square")
    edit = Edit(id="square-blue", key="k", source="a square", destination="a blue square",
                preserve=prompts.unrelated)
    after = copy.deepcopy(before)
    apply_fix(after, fix_for_edit(encoder, edit))

    utility, _ = evaluate(before, after, encoder, prompts, list(range(32)), steps=10)
    assert utility.efficacy_before == 0.0
    assert utility.efficacy >= 0.8
    assert utility.generality >= 0.6
    assert utility.specificity >= 0.9
