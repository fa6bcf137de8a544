"""Applying fixes to diffusers UNets: layer discovery, dense and low-rank repair, rejected inputs."""

import numpy as np
import pytest
import torch

from protocols.repair.apply import apply_fix, cross_attention_width, find_cross_attention_projections
from protocols.repair.errors import FixWidthError, NonFiniteError
from protocols.repair.fix import Fix, compute_fix
from testbed.models.toy import build_toy_unet


def weights(unet):
    return [module.weight.detach().clone() for _, module in find_cross_attention_projections(unet)]


def random_fix(dim, tokens=4, seed=0, lam=0.5):
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(tokens, dim))
    return compute_fix(source, source + rng.normal(size=(tokens, dim)), rng.normal(size=(6, dim)), lam)


@pytest.fixture(scope="module")
def toy_unet():
    torch.manual_seed(0)
    return build_toy_unet()


def test_toy_unet_has_fourteen_projections(toy_unet):
    projections = find_cross_attention_projections(toy_unet)

    assert len(projections) == 14
    assert {module.in_features for _, module in projections} == {384}
    assert all(name.endswith(("attn2.to_k", "attn2.to_v")) for name, _ in projections)
    assert cross_attention_width(toy_unet) == 384


@pytest.mark.parametrize("encoding", ["dense", "low-rank"])
def test_apply_matches_closed_form_float64(toy_unet, encoding):
    unet = build_toy_unet().double()
    unet.load_state_dict(toy_unet.state_dict())
    original = weights(unet)
    fix = random_fix(384)

    assert apply_fix(unet, fix, encoding=encoding) == 14
    dense = torch.from_numpy(fix.dense(np.float64))
    for before, after in zip(original, weights(unet)):
        expected = before @ dense
        assert ((after - expected).abs().max() / expected.abs().max()).item() <= 1e-10


def test_low_rank_equals_dense_float32(toy_unet):
    fix = random_fix(384, seed=1)
    dense_unet = build_toy_unet()
    dense_unet.load_state_dict(toy_unet.state_dict())
    low_rank_unet = build_toy_unet()
    low_rank_unet.load_state_dict(toy_unet.state_dict())
    original = weights(toy_unet)

    apply_fix(dense_unet, fix, encoding="dense")
    apply_fix(low_rank_unet, fix, encoding="low-rank")
    for before, dense, low_rank in zip(original, weights(dense_unet), weights(low_rank_unet)):
        expected = before.double() @ torch.from_numpy(fix.dense(np.float64))
        scale = expected.abs().max().item()
        assert (dense.double() - expected).abs().max().item() / scale <= 1e-5
        assert (low_rank.double() - expected).abs().max().item() / scale <= 1e-5


def test_decoded_dense_fix_applies_dense(toy_unet):
    fix = random_fix(384, seed=2)
    decoded = Fix.from_bytes(fix.to_bytes("dense", "float32"))
    unet = build_toy_unet()
    unet.load_state_dict(toy_unet.state_dict())

    assert apply_fix(unet, decoded) == 14
    first_before = weights(toy_unet)[0].double()
    first_after = weights(unet)[0].double()
    expected = first_before @ torch.from_numpy(fix.dense(np.float64))
    assert (first_after - expected).abs().max().item() / expected.abs().max().item() <= 1e-5


def test_wrong_width_rejected_naming_both(toy_unet):
    unet = build_toy_unet()
    unet.load_state_dict(toy_unet.state_dict())
    original = weights(unet)

    with pytest.raises(FixWidthError, match="fix width 768 .* width 384"):
        apply_fix(unet, random_fix(768))
    for before, after in zip(original, weights(unet)):
        assert torch.equal(before, after)


def test_nan_weight_rejected_and_model_unchanged(toy_unet):
    unet = build_toy_unet()
    unet.load_state_dict(toy_unet.state_dict())
    name, module = find_cross_attention_projections(unet)[5]
    with torch.no_grad():
        module.weight[0, 0] = float("nan")
    original = weights(unet)

    with pytest.raises(NonFiniteError, match=name.replace(".", r"\.")):
        apply_fix(unet, random_fix(384))
    for before, after in zip(original, weights(unet)):
        assert torch.equal(before.nan_to_num(), after.nan_to_num())


def test_nan_fix_rejected(toy_unet):
    unet = build_toy_unet()
    unet.load_state_dict(toy_unet.state_dict())
    matrix = np.eye(384)
    matrix[3, 4] = np.inf

    with pytest.raises(NonFiniteError):
        apply_fix(unet, Fix(dim=384, matrix=matrix))


def test_float16_model_repaired_in_float32(toy_unet):
    unet = build_toy_unet()
    unet.load_state_dict(toy_unet.state_dict())
    unet = unet.half()
    fix = random_fix(384, seed=3)
    original = weights(unet)

    apply_fix(unet, fix)
    after = weights(unet)
    assert after[0].dtype == torch.float16
    expected = original[0].double() @ torch.from_numpy(fix.dense(np.float64))
    assert (after[0].double() - expected).abs().max().item() / expected.abs().max().item() <= 2e-3


@pytest.mark.slow
def test_sd14_unet_has_thirty_two_projections():
    from testbed.models.sd import build_sd14_unet

    unet = build_sd14_unet()
    projections = find_cross_attention_projections(unet)
    assert len(projections) == 32
    assert {module.in_features for _, module in projections} == {768}
    assert sum(p.numel() for p in unet.parameters()) > 850_000_000

    fix = random_fix(768, tokens=8)
    first_before = projections[0][1].weight.detach().clone().double()
    assert apply_fix(unet, fix) == 32
    expected = first_before @ torch.from_numpy(fix.dense(np.float64))
    first_after = projections[0][1].weight.detach().double()
    assert (first_after - expected).abs().max().item() / expected.abs().max().item() <= 1e-5
    with pytest.raises(FixWidthError, match="fix width 384 .* width 768"):
        apply_fix(unet, random_fix(384))


def test_real_embeddings_match_closed_form(toy_unet):
    from protocols.repair.edit import Edit, edit_token_embeddings
    from testbed.models.encoder import load_text_encoder

    edit = Edit(id="x", key="k", source="a square", destination="a blue square",
                preserve=("a circle", "a triangle"), lam=0.5)
    source, destination, preserve = edit_token_embeddings(load_text_encoder(), edit)
    fix = compute_fix(source, destination, preserve, edit.lam)
    unet = build_toy_unet().double()
    unet.load_state_dict(toy_unet.state_dict())
    original = weights(unet)

    apply_fix(unet, fix)
    left = edit.lam * np.eye(384) + destination.T @ source + preserve.T @ preserve
    right = edit.lam * np.eye(384) + source.T @ source + preserve.T @ preserve
    direct = torch.from_numpy(left @ np.linalg.inv(right))
    for before, after in zip(original, weights(unet)):
        expected = before @ direct
        assert ((after - expected).abs().max() / expected.abs().max()).item() <= 1e-10
