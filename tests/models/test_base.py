"""The base class's contract: the graph radius a model asks of the data pipeline, and the
frozen copy that calculators evaluate."""

import pytest
import torch
from ase.build import bulk

from equiformer_lite import A2IPotential, GATv2Potential, SE3Potential
from equiformer_lite.data import DEFAULT_MIN_DISTANCE, atoms_to_graph


@pytest.mark.parametrize("model_class", [SE3Potential, GATv2Potential])
def test_a_local_model_builds_its_graphs_at_its_cutoff(model_class):
    assert model_class.graph_cutoff_of({"cutoff": 3.5}) == 3.5
    default = model_class.graph_cutoff_of({})  # the constructor's default, not a second copy of it
    assert default == model_class(["H"]).cutoff == model_class(["H"]).graph_cutoff
    for bad in (0.0, -1.0, "5", True):
        with pytest.raises(ValueError, match="cutoff must be a positive number of Å"):
            model_class.graph_cutoff_of({"cutoff": bad})
        with pytest.raises(ValueError, match="cutoff must be a positive number"):
            model_class(["H"], cutoff=bad)


def test_a_model_without_edges_builds_its_graphs_at_the_overlap_radius():
    assert A2IPotential.graph_cutoff_of({}) == DEFAULT_MIN_DISTANCE
    assert A2IPotential.graph_cutoff_of({"cutoff": 7.0}) == DEFAULT_MIN_DISTANCE  # the model itself refuses it


@pytest.mark.parametrize("model_class", [SE3Potential, GATv2Potential, A2IPotential])
def test_the_inference_copy_computes_the_same_with_frozen_weights(model_class):
    """``for_inference``: what the calculator runs. Same energies, forces and stress; parameters
    that need no gradient; and the model it came from untouched (still training, still trainable)."""
    torch.manual_seed(0)
    model = model_class(["Si"], dtype="float64") if model_class is A2IPotential else model_class(["Si"], cutoff=3.0, dtype="float64")
    model.train()
    frozen = model.for_inference()
    assert not frozen.training and model.training
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in frozen.parameters())
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    graph = atoms_to_graph(atoms, model.graph_cutoff, dtype=torch.float64, with_labels=False)
    ours, theirs = model.eval()(graph), frozen(graph)
    for key in ("energy", "forces", "stress"):
        assert torch.equal(ours[key], theirs[key]), key
    assert ours["forces"].abs().max() > 0


def test_the_inference_copy_sees_new_weights():
    """Its kept weight matrices (``nn.dense.weights_of``) follow ``load_state_dict``: after loading
    another model's weights it computes what that model computes, on the first call and after."""
    torch.manual_seed(0)
    first = SE3Potential(["Si"], cutoff=3.0, dtype="float64")
    second = SE3Potential(["Si"], cutoff=3.0, dtype="float64")
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    graph = atoms_to_graph(atoms, first.graph_cutoff, dtype=torch.float64, with_labels=False)
    frozen = first.for_inference()
    before = frozen(graph)["forces"]
    assert torch.equal(frozen(graph)["forces"], before)  # the kept matrices, second call
    frozen.load_state_dict(second.state_dict())
    for _ in range(2):
        assert torch.equal(frozen(graph)["forces"], second.eval()(graph)["forces"])
    assert not torch.allclose(before, second(graph)["forces"])
