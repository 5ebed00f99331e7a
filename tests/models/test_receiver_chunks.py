"""Runs of receivers (``SE3Potential(chunk_edges=...)``): the plan made at the door, and the model
attending one run at a time computes the same energies, forces, stress and training gradients."""

from dataclasses import replace

import pytest
import torch
from ase import Atoms

from equiformer_lite import atoms_to_batch, atoms_to_graph, keys
from equiformer_lite.models.base import receiver_chunks
from equiformer_lite.testing import model_equivariance_errors, no_host_sync
from tests.conftest import CUTOFF, diamond, energy_conditioning, eq_bound, ethanol, small_potential, water_box


def _batch():
    """Two periodic cells, a molecule and a lone atom (a receiver with no edges) in one batch."""
    return atoms_to_batch([water_box(), ethanol(), Atoms("O", positions=[[0, 0, 0]]), diamond()], CUTOFF,
                          dtype=torch.float64)


def test_neighbour_lists_come_sorted_by_receiver():
    receiver = atoms_to_graph(water_box(), CUTOFF).edge_index[1]
    assert bool((receiver[1:] >= receiver[:-1]).all())


@pytest.mark.parametrize("max_edges", [1, 7, 30, 200])
def test_runs_hold_whole_receivers_within_the_limit(max_edges):
    model = small_potential("se3", chunk_edges=None)
    inputs = model.prepare_inputs(_batch())
    chunked = receiver_chunks(inputs, max_edges)
    starts = [c[0] for c in chunked.receiver_chunks] + [inputs.edge_index.shape[1]]
    first_atoms = [c[1] for c in chunked.receiver_chunks] + [inputs.pos.shape[0]]
    assert starts[0] == 0 and first_atoms[0] == 0
    receiver = chunked.edge_index[1]
    per_atom = torch.bincount(receiver, minlength=inputs.pos.shape[0])
    for (e0, e1), (n0, n1) in zip(zip(starts, starts[1:]), zip(first_atoms, first_atoms[1:])):
        assert n1 > n0
        assert bool(((receiver[e0:e1] >= n0) & (receiver[e0:e1] < n1)).all())  # whole receivers only
        assert e1 - e0 == int(per_atom[n0:n1].sum())
        assert e1 - e0 <= max_edges or n1 - n0 == 1  # one receiver with more edges is a run of its own
    if inputs.edge_index.shape[1] <= max_edges:
        assert chunked is inputs


def test_unsorted_edges_are_sorted_with_their_shifts():
    model = small_potential("se3", chunk_edges=None)
    inputs = model.prepare_inputs(_batch())
    order = torch.randperm(inputs.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = replace(inputs, edge_index=inputs.edge_index[:, order], shift=inputs.shift[order])
    chunked = receiver_chunks(shuffled, 25)
    assert bool((chunked.edge_index[1][1:] >= chunked.edge_index[1][:-1]).all())
    edges = lambda ei, sh: sorted(map(tuple, torch.cat([ei.T, sh.long()], dim=1).tolist()))  # noqa: E731
    assert edges(chunked.edge_index, chunked.shift) == edges(inputs.edge_index, inputs.shift)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "100"])
def test_bad_chunk_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="chunk_edges"):
        small_potential("se3", chunk_edges=bad)
    with pytest.raises(ValueError, match="max_edges"):
        receiver_chunks(small_potential("se3").prepare_inputs(_batch()), bad)


@pytest.mark.parametrize("overrides", [{}, dict(message_mixing="node", pair_messages=False)], ids=["edge", "node"])
def test_runs_give_the_same_results(overrides):
    whole = small_potential("se3", chunk_edges=None, **overrides)
    runs = small_potential("se3", chunk_edges=40, **overrides)
    runs.load_state_dict(whole.state_dict())
    batch = _batch()
    assert len(runs.prepare_inputs(batch).receiver_chunks) > 3
    reference, out = whole(batch), runs(batch)
    for key in (keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES, keys.STRESS):
        torch.testing.assert_close(out[key], reference[key], rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # energies alone, nothing recomputed
        torch.testing.assert_close(runs(batch, compute_forces=False)[keys.ENERGY], reference[keys.ENERGY],
                                   rtol=1e-12, atol=1e-12)


def test_training_gradients_through_the_runs():
    """A force loss differentiates through the recomputed runs a second time."""
    whole = small_potential("se3", chunk_edges=None).train()
    runs = small_potential("se3", chunk_edges=40).train()
    runs.load_state_dict(whole.state_dict())
    batch = _batch()
    for model in (whole, runs):
        out = model(batch)
        (out[keys.ENERGY].square().sum() + out[keys.FORCES].square().sum()).backward()
    for (name, a), b in zip(whole.named_parameters(), runs.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12, msg=name)


def test_runs_read_no_tensor_value_in_forward():
    model = small_potential("se3", chunk_edges=40).train()
    inputs = model.prepare_inputs(_batch())
    assert inputs.receiver_chunks
    with no_host_sync():
        model(inputs)[keys.FORCES].square().sum().backward()


def test_runs_are_equivariant(dtype):
    """Rotations with reflections and translations of a periodic box attended in runs of <= 15 edges."""
    model = small_potential("se3", dtype, chunk_edges=15)
    graph = atoms_to_graph(water_box(), CUTOFF, dtype=dtype)
    assert len(model.prepare_inputs(graph).receiver_chunks) > 3
    errors = model_equivariance_errors(model, graph, n_trials=4, reflections=True)
    errors[keys.ENERGY] *= energy_conditioning(model, water_box())  # relative to the per-atom terms
    assert {keys.FORCES, keys.STRESS} <= set(errors)
    assert all(v < eq_bound(dtype, k) for k, v in errors.items()), errors
