"""The coordinate-loss family: hand-worked values and gradients, masks, numerics, unit invariance."""

from __future__ import annotations

import math

import pytest
import torch

from wingface.codec import PointCodec
from wingface.losses import (
    LOSSES,
    L1Loss,
    SmoothL1Loss,
    SoftWingLoss,
    WingLoss,
    create_loss,
    l1_loss,
    l2_loss,
    smooth_l1_loss,
    soft_wing_loss,
    wing_loss,
)

ALL = sorted(LOSSES)


def value_and_grad(fn, x: float) -> tuple[float, float]:
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = fn(t)
    (g,) = torch.autograd.grad(y, t)
    return y.item(), g.item()


# (function, error in px, value, gradient), worked out by hand.
HAND = [
    (l2_loss, 3.0, 4.5, 3.0),
    (l2_loss, -2.0, 2.0, -2.0),
    (l1_loss, -3.0, 3.0, -1.0),
    (lambda x: smooth_l1_loss(x, beta=2.0), 1.0, 0.25, 0.5),
    (lambda x: smooth_l1_loss(x, beta=2.0), -3.0, 2.0, -1.0),
    # Wing w=10, eps=2: 10 ln(1 + 2/2); gradient w / (eps + |x|) = 10/4.
    (wing_loss, 2.0, 10 * math.log(2), 2.5),
    (wing_loss, -2.0, 10 * math.log(2), -2.5),
    # |x| >= w: |x| - C, C = 10 - 10 ln 6.
    (wing_loss, 15.0, 15 - (10 - 10 * math.log(6)), 1.0),
    (lambda x: wing_loss(x, w=4.0, eps=1.0), 1.0, 4 * math.log(2), 2.0),
    # Soft Wing w1=2, w2=20, eps=0.5: linear below w1.
    (soft_wing_loss, 1.0, 1.0, 1.0),
    # 20 ln(1 + 9) + 2 - 20 ln 5 = 20 ln 2 + 2; gradient 20 / (0.5 + 4.5).
    (soft_wing_loss, 4.5, 20 * math.log(2) + 2, 4.0),
    (soft_wing_loss, -4.5, 20 * math.log(2) + 2, -4.0),
]


@pytest.mark.parametrize("fn, x, value, grad", HAND)
def test_hand_worked_values_and_gradients(fn, x, value, grad):
    v, g = value_and_grad(fn, x)
    assert v == pytest.approx(value, rel=1e-12)
    assert g == pytest.approx(grad, rel=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_zero_error_gives_zero_value_and_finite_zero_gradient(name):
    v, g = value_and_grad(create_loss(name).elementwise, 0.0)
    assert v == 0.0 and g == 0.0


@pytest.mark.parametrize("fn, knot", [(wing_loss, 10.0), (soft_wing_loss, 2.0)])
def test_value_is_continuous_at_the_knot(fn, knot):
    x = torch.tensor([knot - 1e-9, knot, knot + 1e-9], dtype=torch.float64)
    y = fn(x)
    assert torch.allclose(y, y[1].expand(3), atol=1e-7)
    assert torch.allclose(fn(-x), y)


def test_wing_gradient_falls_in_the_log_branch_and_is_one_outside():
    x = torch.linspace(0.01, 9.99, 200, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(wing_loss(x).sum(), x)
    assert torch.all(g[1:] < g[:-1]), "curvature: gradient magnitude must fall as |x| grows inside (0, w)"
    assert torch.allclose(g, 10 / (2 + x.detach()))
    out = torch.tensor([10.0, 12.0, 50.0, -10.0, -300.0], dtype=torch.float64, requires_grad=True)
    (g_out,) = torch.autograd.grad(wing_loss(out).sum(), out)
    assert torch.equal(g_out.abs(), torch.ones(5, dtype=torch.float64))


def test_module_sums_xy_and_averages_points():
    pred = torch.tensor([[[3.0, -4.0], [1.0, 0.0]]])
    target = torch.zeros(1, 2, 2)
    assert L1Loss()(pred, target).item() == pytest.approx((7 + 1) / 2)
    # pixels_per_unit scales the error before the function: L1 scales linearly.
    assert L1Loss(pixels_per_unit=4.0)(pred, target).item() == pytest.approx(16.0)


def test_mask_drops_points_from_value_denominator_and_gradient():
    pred = torch.tensor([[[3.0, -4.0], [1.0, 0.0]], [[2.0, 2.0], [0.0, 5.0]]], requires_grad=True)
    target = torch.zeros(2, 2, 2)
    target[0, 1] = float("nan")  # a missing annotation behind a mask must not leak NaN
    visible = torch.tensor([[True, False], [True, True]])
    loss = L1Loss()(pred, target, visible)
    assert loss.item() == pytest.approx((7 + 4 + 5) / 3)
    loss.backward()
    assert torch.all(pred.grad[0, 1] == 0)
    assert torch.all(torch.isfinite(pred.grad))
    float_mask = L1Loss()(pred.detach(), target, visible.float())
    assert float_mask.item() == pytest.approx(loss.item())


def test_masked_points_do_not_change_the_value():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 5, 2, generator=gen) * 8
    target = torch.randn(3, 5, 2, generator=gen) * 8
    visible = torch.rand(3, 5, generator=gen) > 0.4
    loss = WingLoss()
    moved = pred.clone()
    moved[~visible] += 1000.0
    assert loss(pred, target, visible).item() == pytest.approx(loss(moved, target, visible).item())
    keep = visible.reshape(-1)
    flat = loss(pred.reshape(1, -1, 2)[:, keep], target.reshape(1, -1, 2)[:, keep])
    assert loss(pred, target, visible).item() == pytest.approx(flat.item())


@pytest.mark.parametrize("name", ALL)
def test_all_masked_batch_returns_zero_with_gradient(name):
    pred = torch.randn(2, 4, 2, requires_grad=True)
    loss = create_loss(name)(pred, torch.zeros(2, 4, 2), torch.zeros(2, 4, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize("name", ALL)
def test_huge_errors_stay_finite(name):
    pred = torch.tensor([[[1e4, -1e4], [0.0, 3.0]]], requires_grad=True)
    loss = create_loss(name)(pred, torch.zeros(1, 2, 2))
    loss.backward()
    assert torch.isfinite(loss) and torch.all(torch.isfinite(pred.grad))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ALL)
def test_half_precision_inputs_are_upcast(name, dtype):
    gen = torch.Generator().manual_seed(1)
    pred32 = torch.randn(4, 6, 2, generator=gen) * 0.3
    target32 = torch.randn(4, 6, 2, generator=gen) * 0.3
    pred, target = pred32.to(dtype).requires_grad_(), target32.to(dtype)
    loss_fn = create_loss(name, pixels_per_unit=32.0)
    loss = loss_fn(pred, target)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    reference = loss_fn(pred.detach().float(), target.float())
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    loss.backward()
    assert pred.grad.dtype == dtype and torch.all(torch.isfinite(pred.grad))
    big = loss_fn(torch.full((1, 1, 2), 300.0, dtype=dtype), torch.zeros(1, 1, 2, dtype=dtype))
    assert torch.isfinite(big)  # 300 units * 32 = 9600 px


@pytest.mark.parametrize("name", ALL)
def test_loss_and_pixel_gradient_do_not_depend_on_output_unit(name):
    """pixel, [0, 1] and [-1, 1] outputs with matching pixels_per_unit train identically."""
    gen = torch.Generator().manual_seed(2)
    size = 64
    target_px = torch.rand(3, 7, 2, generator=gen, dtype=torch.float64) * (size - 1)
    # errors from sub-pixel to ~25 px so every branch of every loss is used
    scale = torch.logspace(-1, 1.4, 7, dtype=torch.float64)[:, None]
    pred_px0 = target_px + torch.randn(3, 7, 2, generator=gen, dtype=torch.float64) * scale
    visible = torch.rand(3, 7, generator=gen) > 0.2
    results = []
    for unit in ("pixel", "unit", "signed"):
        codec = PointCodec(size, unit)
        pred_px = pred_px0.clone().requires_grad_()
        loss = create_loss(name, pixels_per_unit=codec.pixels_per_unit)(
            codec.encode(pred_px), codec.encode(target_px), visible
        )
        (grad,) = torch.autograd.grad(loss, pred_px)
        results.append((loss.item(), grad))
    for value, grad in results[1:]:
        assert value == pytest.approx(results[0][0], rel=1e-9)
        assert torch.allclose(grad, results[0][1], rtol=1e-9, atol=1e-12)


def test_ignoring_the_unit_is_the_mmpose_trap():
    """Wing with w=10 on [0, 1] targets and no pixels_per_unit never leaves its log branch."""
    pred, target = torch.tensor([[[0.9, 0.1]]]), torch.tensor([[[0.1, 0.9]]])  # 51 px apart at S=64
    trapped = WingLoss()(pred, target)
    right = WingLoss(pixels_per_unit=64.0)(pred, target)
    assert trapped.item() == pytest.approx(2 * 10 * math.log1p(0.8 / 2), rel=1e-6)
    assert right.item() == pytest.approx(2 * (0.8 * 64 - (10 - 10 * math.log(6))), rel=1e-6)


@pytest.mark.parametrize(
    "name, params",
    [
        ("wing", {"w": 0}), ("wing", {"eps": -1}), ("wing", {"w": float("nan")}),
        ("soft_wing", {"w1": 20.0, "w2": 20.0}), ("soft_wing", {"w1": 30.0}), ("soft_wing", {"eps": 0}),
        ("smooth_l1", {"beta": 0}),
    ],
)
def test_invalid_parameters_raise_value_error(name, params):
    with pytest.raises(ValueError):
        create_loss(name, **params)


def test_invalid_pixels_per_unit_and_types():
    with pytest.raises(ValueError, match="pixels_per_unit"):
        WingLoss(pixels_per_unit=0)
    with pytest.raises(TypeError, match="'w'"):
        WingLoss(w="ten")
    with pytest.raises(TypeError):
        WingLoss(10.0)  # parameters are keyword-only


def test_factory_names_typos_and_unknown_parameters():
    assert isinstance(create_loss("soft_wing", w1=1.0), SoftWingLoss)
    assert isinstance(create_loss("smooth_l1", beta=0.5), SmoothL1Loss)
    with pytest.raises(ValueError, match="did you mean 'wing'"):
        create_loss("wnig")
    with pytest.raises(ValueError, match="omega"):
        create_loss("wing", omega=10)
    with pytest.raises(ValueError, match="beta"):
        create_loss("l1", beta=1.0)


@pytest.mark.parametrize("name", ALL)
def test_config_rebuilds_the_loss(name):
    loss = create_loss(name, pixels_per_unit=32.0)
    again = create_loss(**loss.config)
    assert type(again) is type(loss) and again.config == loss.config


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\[N, L, 2\]"):
        L1Loss()(torch.zeros(2, 3, 2), torch.zeros(2, 4, 2))
    with pytest.raises(ValueError, match="visible"):
        L1Loss()(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), torch.ones(3, 2, dtype=torch.bool))
