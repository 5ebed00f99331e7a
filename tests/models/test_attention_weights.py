"""Every model returns its attention in one form (AttentionWeights), and the weights mean what they say."""

import pytest
import torch
from ase import Atoms
from ase.build import molecule
from torch_geometric.utils import scatter

from equiformer_lite.data import atoms_to_batch, keys
from equiformer_lite.models import A2IPotential, AttentionWeights
from tests.conftest import CUTOFF, small_gatv2, small_model, water_box


def _a2i():
    torch.manual_seed(0)
    return A2IPotential(["H", "C", "O"], num_blocks=2, channels=8, num_heads=2, dtype=torch.float64).eval()


MODELS = {"se3": small_model, "gatv2": small_gatv2, "a2i": lambda: _a2i()}


@pytest.mark.parametrize("kind", list(MODELS))
def test_one_form_for_every_model(kind):
    model = MODELS[kind]()
    structures = [molecule("CH3CH2OH"), Atoms("O", positions=[[0.0, 0.0, 0.0]]), molecule("H2O")]
    batch = atoms_to_batch(structures, model.graph_cutoff, dtype=torch.float64, with_labels=False)
    attention = model.attention_weights(batch)
    assert isinstance(attention, AttentionWeights)
    assert torch.equal(attention.batch, batch[keys.BATCH])
    num_edges = attention.edge_index.shape[1]
    assert len(attention.weights) == len(model.layers if kind != "a2i" else model.encoder.blocks)
    receivers = attention.edge_index[1]
    # Pairs stay inside a structure, and every weight is a probability over the receiver's pairs.
    assert torch.equal(attention.batch[attention.edge_index[0]], attention.batch[receivers])
    for w in attention.weights:
        assert w.shape == (num_edges, 2) and (w >= 0).all() and (w <= 1).all()
        sums = scatter(w, receivers, 0, dim_size=batch.num_nodes, reduce="sum")  # [N, H]
        has_pairs = torch.bincount(receivers, minlength=batch.num_nodes) > 0
        assert torch.allclose(sums[has_pairs], torch.ones_like(sums[has_pairs]), atol=1e-12)
        assert (sums[~has_pairs] == 0).all()  # the lone O atom attends to nothing
    # The dense matrix of one structure: rows are attending atoms and sum to one.
    dense = attention.dense(len(attention.weights) - 1, 2)  # water
    assert dense.shape == (2, 3, 3)
    assert torch.allclose(dense.sum(-1), torch.ones(2, 3, dtype=dense.dtype), atol=1e-12)
    with pytest.raises(ValueError, match="structure 7 is not in the batch"):
        attention.dense(0, 7)


def test_local_models_attend_over_the_neighbour_list_and_dense_sums_periodic_images():
    model = small_model()
    box = water_box()
    batch = atoms_to_batch([box], CUTOFF, dtype=torch.float64, with_labels=False)
    attention = model.attention_weights(batch)
    assert torch.equal(attention.edge_index, batch[keys.EDGE_INDEX])
    dense = attention.dense(0, 0)  # [H, n, n]: images of the same pair add up
    assert torch.allclose(dense.sum(-1), torch.ones(2, len(box), dtype=dense.dtype), atol=1e-12)
    assert attention.weights[0].std() > 1e-4  # not uniform: the weights depend on the geometry
