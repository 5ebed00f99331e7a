"""The per-atom energy loss term (A2I's training target): by hand, defaults, errors, config and trainer."""

from pathlib import Path

import pytest
import torch
import yaml
from torch_geometric.data import Batch, Data

from equiformer_lite import A2IPotential, atoms_to_graph
from equiformer_lite.data import keys
from equiformer_lite.data.synthetic import generate
from equiformer_lite.train import PotentialLoss, RunConfig, TrainingConfig, load_config
from equiformer_lite.train.trainer import Trainer

torch.set_num_threads(1)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _batch(with_atomic=True):
    graphs = []
    for b, n in enumerate((2, 3)):
        g = Data(num_nodes=n)
        g[keys.NUM_ATOMS] = torch.tensor([n])
        g[keys.ENERGY] = torch.tensor([float(b)])
        g[keys.FORCES] = torch.zeros(n, 3)
        if with_atomic:
            g[keys.ATOMIC_ENERGIES] = torch.arange(1.0, n + 1)  # [1, 2] and [1, 2, 3]
        graphs.append(g)
    return Batch.from_data_list(graphs)


def _outputs():
    return {
        keys.ENERGY: torch.tensor([0.4, 1.0 - 0.6]),  # per-atom errors 0.2, -0.2
        keys.FORCES: torch.full((5, 3), 0.1),
        keys.ATOMIC_ENERGIES: torch.tensor([1.5, 2.0, 1.0, 2.0, 4.0]),  # errors 0.5, 0, 0, 0, 1
    }


def test_per_atom_term_by_hand_and_its_weight():
    loss = PotentialLoss("mse", energy_weight=2.0, forces_weight=3.0, atomic_energies_weight=5.0)
    total, terms = loss(_outputs(), _batch())
    assert terms[keys.ATOMIC_ENERGIES] == pytest.approx((0.5**2 + 1.0**2) / 5)  # mean over atoms
    assert total.item() == pytest.approx(2 * 0.04 + 3 * 0.01 + 5 * 0.25)
    # The same elementwise loss as the other terms: Huber with delta 0.1 on errors 0.5 and 1.
    _, huber = PotentialLoss("huber", alpha=0.1, atomic_energies_weight=1.0)(_outputs(), _batch())
    assert huber[keys.ATOMIC_ENERGIES] == pytest.approx((0.1 * (0.5 - 0.05) + 0.1 * (1.0 - 0.05)) / 5)


def test_only_per_atom_energies_as_in_the_paper():
    loss = PotentialLoss("mse", energy_weight=0.0, forces_weight=0.0, stress_weight=0.0, atomic_energies_weight=1.0)
    total, terms = loss(_outputs(), _batch())
    assert set(terms) == {keys.ATOMIC_ENERGIES} and total.item() == pytest.approx(0.25)


def test_off_by_default_so_existing_runs_do_not_change():
    assert TrainingConfig().atomic_energies_weight == 0.0
    default, explicit = PotentialLoss("mse"), PotentialLoss("mse", atomic_energies_weight=0.0)
    total, terms = default(_outputs(), _batch())
    assert keys.ATOMIC_ENERGIES not in terms
    assert total.item() == pytest.approx(1 * 0.04 + 10 * 0.01) == explicit(_outputs(), _batch())[0].item()
    assert default(_outputs(), _batch(with_atomic=False))[0].item() == pytest.approx(total.item())


def test_weighted_without_per_atom_labels_is_a_clear_error():
    loss = PotentialLoss("mse", atomic_energies_weight=1.0)
    with pytest.raises(ValueError, match=r"atomic_energies_weight is 1.0 but the batch has no per-atom energy labels"):
        loss(_outputs(), _batch(with_atomic=False))
    with pytest.raises(ValueError, match=r"atomic_energies_weight must be a finite number >= 0, got -1.0"):
        PotentialLoss(atomic_energies_weight=-1.0)
    with pytest.raises(ValueError, match="training.atomic_energies_weight"):
        RunConfig.from_dict({"training": {"atomic_energies_weight": -0.5}})


def test_the_default_config_file_lists_the_new_key_with_its_default():
    raw = yaml.safe_load((CONFIGS / "se3.yaml").read_text())
    assert raw["training"]["atomic_energies_weight"] == 0.0
    assert load_config(CONFIGS / "se3.yaml").to_dict() == RunConfig().to_dict()


def test_the_trainer_passes_the_weight_to_its_loss(tmp_path):
    frames = generate("lj_2d_periodic_n128", 4, seed=0, num_atoms=24, equilibration_steps=100, sample_interval=10)
    torch.manual_seed(0)
    model = A2IPotential(["Ar"], num_blocks=1, channels=8, num_heads=2, spatial_dims=2, dtype="float32")
    graphs = [atoms_to_graph(a, model.graph_cutoff, dtype=torch.float32) for a in frames]
    config = TrainingConfig(epochs=1, batch_size=2, progress=False, atomic_energies_weight=2.5, ema_decay=None)
    trainer = Trainer(model, graphs[:3], graphs[3:], config, tmp_path)
    assert trainer.loss_fn.weights[keys.ATOMIC_ENERGIES] == 2.5
    result = trainer.train_step(Batch.from_data_list(graphs[:2]))
    assert result is not None and result[keys.ATOMIC_ENERGIES] > 0
