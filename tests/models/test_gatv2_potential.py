"""`GATv2Potential`-specific checks; the shared physics suite is in `test_potential_physics.py`."""

import pytest
import torch
from ase import Atoms
from torch_geometric.utils import scatter

from equiformer_lite import GATv2Potential, atoms_to_graph, build_model, keys
from equiformer_lite.models import gatv2_potential
from equiformer_lite.nn import GATv2Layer
from equiformer_lite.testing import cutoff_crossing, evaluate, model_equivariance_errors, permutation_errors
from tests.conftest import CUTOFF, eq_bound, ethanol, small_gatv2, water_box

E0 = {"H": -13.6, "C": -1029.0, "O": -2041.0}


def test_attention_weights_are_distributions_over_each_atoms_neighbours():
    model = small_gatv2(torch.float64, num_heads=2, num_layers=3)
    graph = atoms_to_graph(water_box(), CUTOFF, dtype=torch.float64)
    edge_index, attention, _ = model.attention_weights(graph)
    assert torch.equal(edge_index, graph[keys.EDGE_INDEX])
    assert len(attention) == 3
    for alpha in attention:
        assert alpha.shape == (edge_index.shape[1], 2)
        assert (alpha >= 0).all() and (alpha <= 1).all()
        sums = scatter(alpha, edge_index[1], 0, dim_size=graph.num_nodes, reduce="sum")
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-13)
    assert attention[0].std() > 1e-3  # not uniform: the weights depend on the atoms


def test_cutoff_check_fails_without_the_envelope_in_the_softmax(monkeypatch):
    """With a plain softmax (u left out of the normalisation), the same check sees a jump."""

    class PlainSoftmaxLayer(GATv2Layer):
        def edge_update(self, x_j, x_i, edge_features, envelope, index, ptr, dim_size):
            return super().edge_update(x_j, x_i, edge_features, torch.ones_like(envelope), index, ptr, dim_size)

    monkeypatch.setattr(gatv2_potential, "GATv2Layer", PlainSoftmaxLayer)
    jumps = cutoff_crossing(small_gatv2(torch.float64), eps=1e-7)
    assert jumps["energy_jump"] > 1e-4


def test_built_by_name_with_bessel_or_raw_distance_features():
    model = build_model("gatv2", species=["H", "O"], cutoff=3.0, channels=8, num_heads=1, num_layers=1, num_basis=5)
    assert isinstance(model, GATv2Potential) and model.layers[0].lin_edge.in_features == 5  # Bessel by default
    raw = build_model("gatv2", species=["H", "O"], cutoff=3.0, channels=8, num_heads=1, edge_features="distance")
    assert raw.layers[0].lin_edge.in_features == 1
    assert model.config["readout_widths"] == [64, 32, 16, 16]  # plain lists: the config is YAML-safe


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=10, num_heads=4), r"channels \(10\) must be divisible by the number of heads \(4\)"),
        (dict(num_layers=0), "num_layers must be a positive integer"),
        (dict(edge_features="inverse"), "unknown edge_features 'inverse'"),
        (dict(update="lstm"), "unknown update 'lstm'"),
        (dict(readout_widths=[16, 0]), "readout widths must be positive integers"),
        (dict(cutoff=0.0), "cutoff must be a positive number"),
        (dict(species=["H", "Xx"]), "unknown element symbol"),
        (dict(angular_lmax=-1), "angular_lmax must be a non-negative integer, got -1"),
        (dict(angular_lmax=2, avg_num_neighbors=0.0), "avg_num_neighbors must be positive, got 0.0"),
        (dict(angular_lmax=2, angular_channels=0), "angular_channels must be a positive integer or None, got 0"),
        (dict(angular_lmax=2, angular_correlation=1), "angular_correlation must be 2 or 3, got 1"),
    ],
)
def test_constructor_validation(kwargs, message):
    species = kwargs.pop("species", ["H", "O"])
    with pytest.raises(ValueError, match=message):
        GATv2Potential(species, **kwargs)


def test_checkpoints_from_before_the_shared_radial_embedding_load():
    """The Bessel frequencies moved from ``basis.`` to ``radial.basis.``; old state dicts still load."""
    for edge_features in ("bessel", "distance"):
        model = small_gatv2(torch.float64, edge_features=edge_features)
        state = model.state_dict()
        frequencies = state.pop("radial.basis.frequencies")
        if edge_features == "bessel":
            state["basis.frequencies"] = frequencies
        fresh = small_gatv2(torch.float64, seed=1, edge_features=edge_features)
        fresh.load_state_dict(state)
        graph = atoms_to_graph(ethanol(), CUTOFF, dtype=torch.float64, with_labels=False)
        assert torch.equal(fresh(graph)[keys.ENERGY], model(graph)[keys.ENERGY])


@pytest.mark.parametrize("correlation", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_angular_model_is_equivariant(dtype, correlation):
    """With the three-body density invariants (and the four-body bispectrum): energies invariant and
    forces/stress equivariant under rotations with and without inversion, translations and permutations."""
    model = small_gatv2(dtype, angular_lmax=3, angular_channels=5, angular_correlation=correlation, avg_num_neighbors=4.0)
    assert model.layers[0].density.irreps_out.dim == 5 * (4 if correlation == 2 else 4 + 8)
    for structure in (ethanol(), water_box()):
        graph = atoms_to_graph(structure, CUTOFF, dtype=dtype)
        errors = model_equivariance_errors(model, graph, n_trials=4, reflections=True)
        errors.update({f"permutation {k}": v for k, v in permutation_errors(model, graph).items()})
        assert all(v < eq_bound(dtype, k.removeprefix("permutation ")) for k, v in errors.items()), errors


def test_angular_invariants_change_the_model_and_save_with_it(tmp_path):
    from equiformer_lite import load_model, save_model

    plain = small_gatv2(torch.float64)
    angular = small_gatv2(torch.float64, angular_lmax=2, avg_num_neighbors=4.0)
    assert angular.config["angular_lmax"] == 2 and angular.layers[0].density.avg_num_neighbors == 4.0
    graph = atoms_to_graph(ethanol(), CUTOFF, dtype=torch.float64, with_labels=False)
    assert (angular(graph)[keys.FORCES] - plain(graph)[keys.FORCES]).abs().max() > 1e-3
    save_model(angular, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert torch.equal(loaded(graph)[keys.FORCES], angular(graph)[keys.FORCES])
