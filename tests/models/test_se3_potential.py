"""`SE3Potential`-specific checks; the shared physics suite is in `test_potential_physics.py`."""

import copy

import pytest
import torch

from equiformer_lite import SE3Potential, atoms_to_graph, keys
from equiformer_lite.nn import attention as attention_module
from equiformer_lite.testing import cutoff_crossing, evaluate, model_equivariance_errors, relative_error, transform_graph
from tests.conftest import CUTOFF, EQ_TOL, ethanol, small_model, water_box


@pytest.mark.parametrize(
    "options",
    [dict(nonlinearity="gate"), dict(self_interaction="attentive"), dict(lmax=1), dict(lmax=3, num_layers=1), dict(num_heads=4, channels=8)],
    ids=["gate", "attentive-SI", "lmax1", "lmax3", "4heads"],
)
def test_equivariance_of_model_variants(options):
    model = small_model(torch.float64, **options)
    errors = model_equivariance_errors(model, atoms_to_graph(water_box(), CUTOFF, dtype=torch.float64))
    assert max(errors.values()) < EQ_TOL[torch.float64], errors


def test_parity_switch():
    """parity=True: a mirror image has the same energy. parity=False: SO(3) only, mirror images differ."""
    atoms = ethanol()
    mirror = atoms.copy()
    mirror.positions[:, 0] *= -1
    on = small_model(torch.float64, parity=True)
    off = small_model(torch.float64, parity=False)
    assert relative_error(evaluate(on, atoms)[keys.ENERGY], evaluate(on, mirror)[keys.ENERGY]) < 1e-12
    graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64)
    assert max(model_equivariance_errors(off, graph, reflections=False).values()) < 1e-11
    # The rotation-only model tells the mirror image apart (a chiral-aware energy): its mirror
    # difference (6.5e-7 relative, measured) is far above the ~1e-15 of the parity-on model.
    e, e_mirror = evaluate(off, atoms)[keys.ENERGY], evaluate(off, mirror)[keys.ENERGY]
    assert relative_error(e, e_mirror) > 1e-9


def test_cutoff_check_fails_for_a_plain_softmax(monkeypatch):
    """Without the envelope in the normalisation, the same check sees an O(1) jump."""

    envelope_softmax = attention_module.envelope_softmax

    def plain_softmax(logits, envelope, receiver, num_nodes):
        return envelope_softmax(logits, torch.ones_like(envelope), receiver, num_nodes)

    monkeypatch.setattr(attention_module, "envelope_softmax", plain_softmax)
    jumps = cutoff_crossing(small_model(torch.float64), eps=1e-7)
    assert jumps["energy_jump"] > 1e-4


def test_direct_force_head_is_labelled_and_equivariant():
    model = small_model(torch.float64, direct_forces=True)
    graph = atoms_to_graph(ethanol(), CUTOFF, dtype=torch.float64)
    out = model(graph)
    assert out[keys.DIRECT_FORCES].shape == out[keys.FORCES].shape
    assert not torch.allclose(out[keys.DIRECT_FORCES], out[keys.FORCES])  # not the conservative forces
    assert model_equivariance_errors(model, graph)[keys.DIRECT_FORCES] < 1e-11


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=10, num_heads=4), r"channels \(10\) must be divisible by the number of heads \(4\)"),
        (dict(lmax=-1), "lmax must be an integer >= 0"),
        (dict(num_layers=0), "num_layers must be an integer >= 1"),
        (dict(cutoff=-2.0), "cutoff must be a positive number"),
        (dict(nonlinearity="relu"), "unknown nonlinearity"),
        (dict(activation="gelu"), "unknown activation"),
        (dict(species=["H", "H"]), "lists an element twice"),
        (dict(species=["Hx"]), "unknown element symbol"),
        (dict(species=[]), "non-empty list"),
        (dict(direct_forces=True, lmax=0), "direct_forces needs lmax >= 1"),
        (dict(recompute_layers="yes"), "recompute_layers must be True or False, got 'yes'"),
    ],
)
def test_constructor_validation(kwargs, message):
    species = kwargs.pop("species", ["H", "O"])
    with pytest.raises(ValueError, match=message):
        SE3Potential(species, **kwargs)


def test_suite_catches_a_non_equivariant_model():
    """A model with an energy term in absolute coordinates fails the rotation check by far."""

    class Broken(SE3Potential):
        def forward(self, data, **kwargs):
            out = super().forward(data, compute_forces=False)
            out[keys.ENERGY] = out[keys.ENERGY] + 0.1 * data[keys.POSITIONS][:, 0].sum()
            return out

    torch.manual_seed(0)
    model = Broken(["H", "C", "O"], cutoff=CUTOFF, channels=8, num_heads=2, num_layers=1).double()
    graph = atoms_to_graph(ethanol(), CUTOFF, dtype=torch.float64)
    assert model_equivariance_errors(model, graph)[keys.ENERGY] > 1e-3
    # ...and a rotated graph really is a rotated structure (the harness itself is sound).
    rot = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(transform_graph(graph, rot)[keys.POSITIONS], graph[keys.POSITIONS] @ rot.T)

def _saved_bytes(model, graph) -> int:
    """Bytes of the activations autograd keeps for the backward of one inference energy (the
    weights and constants it also keeps are not counted; with ``recompute_layers`` the checkpoints keep the
    layers' inputs themselves, outside these hooks)."""
    weights = {p.untyped_storage().data_ptr() for p in [*model.parameters(), *model.buffers()]}
    saved = []

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.eval()(graph, compute_forces=False, compute_stress=False)[keys.ENERGY].sum()
    return sum(saved)


@pytest.mark.parametrize("message_mixing", ["edge", "node"])
def test_recompute_layers_gives_the_same_results_and_keeps_less(message_mixing):
    """Recomputing the layers in the backward changes neither the outputs nor the gradients of
    a force loss (the training path, a double backward), and for inference autograd keeps a
    small part of the activations (measured: 2-3 % of them on this box)."""
    graph = atoms_to_graph(water_box(), CUTOFF, dtype=torch.float64)
    plain = small_model(torch.float64, message_mixing=message_mixing).train()
    recomputed = small_model(torch.float64, message_mixing=message_mixing, recompute_layers=True).train()
    recomputed.load_state_dict(plain.state_dict())
    outputs, grads = [], []
    for model in (plain, recomputed):
        out = model(graph, compute_stress=True)
        loss = out[keys.ENERGY].sum() + (out[keys.FORCES] ** 2).sum() + out[keys.STRESS].square().sum()
        grads.append(torch.autograd.grad(loss, list(model.parameters()), allow_unused=True))
        outputs.append(out)
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        assert torch.equal(outputs[0][key], outputs[1][key]), key
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a, b)
    assert _saved_bytes(recomputed, graph) < 0.1 * _saved_bytes(plain, graph)


def test_deep_copy_of_a_wide_model_keeps_its_buffers():
    """At 64 channels a default deep copy of e3nn's compiled products added buffers
    (``..._tensor_constant0``) and the trainer's EMA update failed on the first step."""
    model = SE3Potential(species=["H", "C", "O"], cutoff=CUTOFF, channels=64, num_layers=1)
    clone = copy.deepcopy(model)
    assert [n for n, _ in clone.named_buffers()] == [n for n, _ in model.named_buffers()]
    assert list(clone.state_dict()) == list(model.state_dict())
