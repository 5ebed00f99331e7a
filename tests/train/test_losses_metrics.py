"""Losses (MSE, Huber, log-cosh) and metrics, against values computed by hand."""

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from equiformer_lite.data import keys
from equiformer_lite.train import PotentialLoss, log_cosh
from equiformer_lite.train.metrics import MetricAccumulator


def test_log_cosh_is_stable_and_has_both_regimes():
    x = torch.tensor([-3.0, -0.2, 0.0, 0.05, 1.0], dtype=torch.float64)
    alpha = 0.5
    assert torch.allclose(log_cosh(x, alpha), alpha * torch.log(torch.cosh(x / alpha)), atol=1e-14)
    huge = log_cosh(torch.tensor([1e4, -1e4], dtype=torch.float64), 0.1)  # cosh(1e5) overflows
    assert torch.isfinite(huge).all()
    assert torch.allclose(huge, torch.tensor([1e4, 1e4], dtype=torch.float64) - 0.1 * math.log(2), rtol=1e-12)
    small = torch.tensor([1e-3], dtype=torch.float64)
    assert log_cosh(small, 0.1).item() == pytest.approx(small.item() ** 2 / (2 * 0.1), rel=1e-4)


def _batch(stress_weight=None):
    graphs = []
    for b, n in enumerate((2, 3)):
        g = Data(num_nodes=n)
        g[keys.NUM_ATOMS] = torch.tensor([n])
        g[keys.ENERGY] = torch.tensor([float(b)])
        g[keys.FORCES] = torch.zeros(n, 3)
        g[keys.STRESS] = torch.zeros(1, 3, 3)
        g[keys.ATOMIC_ENERGIES] = torch.arange(1.0, n + 1)
        if stress_weight is not None:
            g[keys.STRESS_WEIGHT] = torch.tensor([stress_weight[b]])
        graphs.append(g)
    return Batch.from_data_list(graphs)


def _outputs():
    return {
        keys.ENERGY: torch.tensor([0.4, 1.0 - 0.6]),  # errors 0.4 and -0.6 -> per atom 0.2, -0.2
        keys.FORCES: torch.full((5, 3), 0.1),
        keys.STRESS: torch.stack([torch.full((3, 3), 0.01), torch.full((3, 3), 0.03)]),
        keys.ATOMIC_ENERGIES: torch.tensor([1.5, 2.0, 1.0, 2.0, 4.0]),
    }


def test_weighted_mse_loss_by_hand():
    loss = PotentialLoss("mse", energy_weight=2.0, forces_weight=3.0, stress_weight=4.0)
    total, terms = loss(_outputs(), _batch())
    assert terms[keys.ENERGY] == pytest.approx(0.04)
    assert terms[keys.FORCES] == pytest.approx(0.01)
    assert terms[keys.STRESS] == pytest.approx((0.01**2 + 0.03**2) / 2)
    assert total.item() == pytest.approx(2 * 0.04 + 3 * 0.01 + 4 * 0.0005)


def test_stress_mask_ignores_padded_structures():
    _, terms = PotentialLoss("mse")(_outputs(), _batch(stress_weight=[0.0, 1.0]))
    assert terms[keys.STRESS] == pytest.approx(0.03**2)


def test_loss_validation():
    with pytest.raises(ValueError, match="unknown loss"):
        PotentialLoss("l1")
    with pytest.raises(ValueError, match="forces_weight"):
        PotentialLoss(forces_weight=-1.0)
    batch = _batch()
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        del batch[key]
    with pytest.raises(ValueError, match="none of the labels"):
        PotentialLoss()(_outputs(), batch)


def test_metrics_by_hand_including_a2i_per_atom_metrics():
    acc = MetricAccumulator()
    acc.update(_outputs(), _batch())
    m = acc.compute()
    assert m["energy_mae"] == pytest.approx(0.5) and m["energy_rmse"] == pytest.approx(math.sqrt(0.26))
    assert m["energy_per_atom_mae"] == pytest.approx(0.2)
    assert m["forces_mae"] == pytest.approx(0.1) and m["forces_rmse"] == pytest.approx(0.1)
    assert m["stress_mae"] == pytest.approx(0.02)
    # structure 0: true (1, 2), pred (1.5, 2): sum|d| 0.5, n 2, max 0.5, spread 1.0, magnitude 3
    # structure 1: true (1, 2, 3), pred (1, 2, 4): sum|d| 1, n 3, max 1, spread 2.0, magnitude 6
    assert m["atomic_mae"] == pytest.approx((0.25 + 1 / 3) / 2)
    assert m["atomic_mme"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["atomic_nmae"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["atomic_mape"] == pytest.approx((0.5 / 3 + 1 / 6) / 2)
    # Table I's +-: sample standard deviation of the per-structure values
    assert m["atomic_mae_std"] == pytest.approx(np.std([0.25, 1 / 3], ddof=1))
    assert m["atomic_mme_std"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert m["atomic_nmae_std"] == pytest.approx(0.0, abs=1e-7) and m["atomic_mape_std"] == pytest.approx(0.0, abs=1e-7)
