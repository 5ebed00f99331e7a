"""The envelope-weighted softmax: normalisation, lone and absent neighbours, smooth entry."""

import torch

from equiformer_lite.nn import envelope_softmax


def test_weights_sum_to_one_per_receiver_and_head():
    torch.manual_seed(0)
    receiver = torch.tensor([0, 0, 0, 1, 1, 2])
    logits = torch.randn(6, 3, dtype=torch.float64) * 10
    envelope = torch.rand(6, dtype=torch.float64) * 0.9 + 0.1
    alpha = envelope_softmax(logits, envelope, receiver, num_nodes=4)
    sums = torch.zeros(4, 3, dtype=torch.float64).index_add_(0, receiver, alpha)
    assert torch.allclose(sums[:3], torch.ones(3, 3, dtype=torch.float64))
    assert (sums[3] == 0).all()  # atom 3 has no neighbours: nothing, not NaN


def test_lone_neighbour_gets_weight_one_whatever_the_envelope():
    alpha = envelope_softmax(torch.tensor([[3.0]]), torch.tensor([1e-6]), torch.tensor([0]), 1)
    assert alpha.item() == 1.0


def test_neighbours_at_the_cutoff_give_zeros_not_nan():
    alpha = envelope_softmax(torch.zeros(2, 2), torch.zeros(2), torch.tensor([0, 0]), 1)
    assert torch.isfinite(alpha).all() and (alpha == 0).all()


def test_vanishing_envelope_removes_a_neighbour_continuously():
    logits = torch.tensor([[0.3], [-1.2], [2.0]], dtype=torch.float64)
    receiver = torch.zeros(3, dtype=torch.long)
    without = envelope_softmax(logits[:2], torch.ones(2, dtype=torch.float64), receiver[:2], 1)
    for u in (1e-3, 1e-6, 1e-9):
        alpha = envelope_softmax(logits, torch.tensor([1.0, 1.0, u], dtype=torch.float64), receiver, 1)
        # The entering neighbour's weight and the change of the others are both O(u).
        assert alpha[2].item() < 10 * u
        assert (alpha[:2] - without).abs().max() < 10 * u


def test_large_logits_do_not_overflow():
    logits = torch.tensor([[1000.0], [999.0]])
    alpha = envelope_softmax(logits, torch.ones(2), torch.zeros(2, dtype=torch.long), 1)
    assert torch.isfinite(alpha).all()
    assert torch.allclose(alpha.squeeze(), torch.softmax(logits.squeeze(), 0))
