"""Losses against values computed by hand."""

from __future__ import annotations

import pytest
import torch

from deepsad.training import (
    deep_sad_loss,
    one_class_loss,
    reconstruction_loss,
    soft_boundary_loss,
    solve_radius,
    squared_distance,
)

DIST_SQ = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64)


def test_squared_distance_by_hand():
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    center = torch.tensor([1.0, 0.0])
    assert squared_distance(z, center).tolist() == [4.0, 1.0]


def test_unlabeled_samples_contribute_their_distance():
    labels = torch.zeros(3, dtype=torch.int64)
    # (1 + 4 + 0.25) / 3
    assert deep_sad_loss(DIST_SQ, labels, eta=1.0, eps=1e-6).item() == pytest.approx(1.75)


def test_labeled_normal_pulls_and_labeled_anomaly_pushes():
    labels = torch.tensor([0, 1, -1])
    # unlabeled 1; labeled normal (4 + 0)^1 = 4; labeled anomaly (0.25 + 0)^-1 = 4 -> mean 3
    assert deep_sad_loss(DIST_SQ, labels, eta=1.0, eps=0.0).item() == pytest.approx(3.0)


def test_eta_weights_only_the_labeled_terms():
    labels = torch.tensor([0, 1, -1])
    # 1 + 2 * 4 + 2 * 4 = 17 -> 17 / 3
    assert deep_sad_loss(DIST_SQ, labels, eta=2.0, eps=0.0).item() == pytest.approx(17 / 3)


def test_eps_is_added_to_labeled_distances_only():
    labels = torch.tensor([0, 1, -1])
    # 1 + (4 + 0.75) + 1 / (0.25 + 0.75) = 6.75 -> 2.25
    assert deep_sad_loss(DIST_SQ, labels, eta=1.0, eps=0.75).item() == pytest.approx(2.25)


def test_labeled_anomaly_at_the_centre_stays_finite():
    loss = deep_sad_loss(torch.tensor([0.0]), torch.tensor([-1]), eta=1.0, eps=1e-6)
    assert loss.item() == pytest.approx(1e6)


def test_deep_sad_without_labels_is_the_one_class_objective():
    labels = torch.zeros(3, dtype=torch.int64)
    assert deep_sad_loss(DIST_SQ, labels, eta=5.0, eps=1e-6) == one_class_loss(DIST_SQ)


def test_gradient_of_labeled_anomaly_points_away_from_centre():
    d = torch.tensor([0.5], requires_grad=True)
    deep_sad_loss(d, torch.tensor([-1]), eta=1.0, eps=0.0).backward()
    assert d.grad.item() == pytest.approx(-1 / 0.25)  # d/dd (1/d) = -1/d^2


def test_soft_boundary_objective_by_hand():
    d = torch.tensor([1.0, 4.0, 9.0, 16.0])
    # R = 2: R^2 = 4; slacks max(0, d - 4) = [0, 0, 5, 12], mean 4.25; / nu 0.5 -> 8.5; + 4
    assert soft_boundary_loss(d, 2.0, nu=0.5).item() == pytest.approx(12.5)
    # R = 0: the objective is the mean distance over nu
    assert soft_boundary_loss(d, 0.0, nu=0.25).item() == pytest.approx(7.5 / 0.25)


def test_radius_update_is_the_one_minus_nu_quantile_of_distances():
    d = torch.tensor([1.0, 4.0, 9.0, 16.0])  # distances 1, 2, 3, 4
    # 0.75 quantile with linear interpolation: 3 + 0.25 * (4 - 3)
    assert solve_radius(d, nu=0.25).item() == pytest.approx(3.25)


def test_solved_radius_minimises_the_soft_boundary_objective():
    torch.manual_seed(0)
    d = torch.rand(200, dtype=torch.float64) * 10
    nu = 0.1
    best = soft_boundary_loss(d, solve_radius(d, nu=nu), nu=nu)
    for radius in torch.linspace(0.0, 3.5, 141):
        assert soft_boundary_loss(d, radius, nu=nu) >= best - 1e-3


def test_solve_radius_leaves_about_nu_outside():
    d = torch.arange(1, 1001, dtype=torch.float64)
    radius = solve_radius(d, nu=0.1)
    assert (d > radius**2).double().mean().item() == pytest.approx(0.1, abs=0.002)


def test_reconstruction_loss_sums_features_and_averages_samples():
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.ones(2, 1, 2, 2)
    recon[1] = 2.0
    # sample 0: 4 * 1 = 4; sample 1: 4 * 4 = 16 -> mean 10
    assert reconstruction_loss(recon, x).item() == pytest.approx(10.0)
