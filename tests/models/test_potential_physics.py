"""The physics suite every potential passes: symmetry, forces, stress, smoothness, batching, errors.

Each test runs for every model kind in ``SMALL_MODELS`` (``SE3Potential`` and ``GATv2Potential``);
model-specific checks live in ``test_<model>.py``.
"""

import copy

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

from equiformer_lite import atoms_to_batch, atoms_to_graph, keys, load_model, save_model
from equiformer_lite.testing import (
    cutoff_crossing,
    equivalent_cell_invariance,
    evaluate,
    finite_difference_forces,
    finite_difference_stress,
    model_equivariance_errors,
    permutation_errors,
    relative_error,
    supercell_extensivity,
    wrap_invariance,
)
from tests.conftest import (
    CUTOFF,
    SMALL_MODELS,
    diamond,
    energy_conditioning,
    eq_bound,
    ethanol,
    small_potential,
    water_box,
)

KINDS = list(SMALL_MODELS)

# Architectural variants whose smoothness and forces are checked separately.
VARIANTS = {
    "se3": {
        "default": {},
        "thesis (norm, linear SI, no square)": dict(nonlinearity="norm", self_interaction="linear", tensor_square=False),
        "attentive-SI": dict(self_interaction="attentive"),
        "silu-attention": dict(attention="silu", avg_num_neighbors=5.0),
        "l=2-messages+sh3": dict(lmax=1, message_lmax=2, sh_lmax=3),
        "correlation-3+layer-readouts+norm": dict(correlation=3, layer_readouts=True, nonlinearity="norm"),
        "shared-product-weights": dict(species_products=False),
        "sender-only-messages": dict(pair_messages=False),
        "node-mixing": dict(message_mixing="node"),
        "node-mixing+silu+sender-only": dict(message_mixing="node", attention="silu", avg_num_neighbors=5.0,
                                             pair_messages=False),
        "receiver-runs": dict(chunk_edges=20),  # each layer attends runs of <= 20 edges, recomputed in the backward
    },
    "gatv2": {
        "skip": {},
        "gru": dict(update="gru"),
        "bessel": dict(edge_features="bessel"),
        "leaky-relu+no-LN": dict(attention_activation="leaky_relu", layer_norm=False),
        "angular": dict(angular_lmax=2, avg_num_neighbors=4.0),  # three-body density invariants in every layer
        "angular-narrow": dict(angular_lmax=3, angular_channels=3),  # a density narrower than the features
        "angular-c3": dict(angular_lmax=2, angular_correlation=3),  # and the four-body bispectrum
        "angular+distance": dict(angular_lmax=1, edge_features="distance"),  # raw distances: u alone makes it smooth
    },
}
KIND_VARIANTS = [(kind, variant) for kind in KINDS for variant in VARIANTS[kind]]


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


def test_outputs_and_dtypes(kind, dtype):
    model = small_potential(kind, dtype)
    out = model(atoms_to_batch([ethanol(), molecule("H2O")], CUTOFF, dtype=dtype))
    assert out[keys.ENERGY].shape == (2,) and out[keys.ENERGY].dtype == dtype
    assert out[keys.ATOMIC_ENERGIES].shape == (12,)
    assert out[keys.FORCES].shape == (12, 3)
    assert keys.STRESS not in out  # molecules: no stress
    periodic = model(atoms_to_graph(water_box(), CUTOFF, dtype=dtype))
    assert periodic[keys.STRESS].shape == (1, 3, 3)
    for value in (*out.values(), *periodic.values()):
        assert torch.isfinite(value).all()


@pytest.mark.parametrize("structure", [ethanol, diamond, water_box])
def test_equivariance_of_the_whole_model(kind, dtype, structure):
    model = small_potential(kind, dtype)
    graph = atoms_to_graph(structure(), CUTOFF, dtype=dtype)
    errors = model_equivariance_errors(model, graph, n_trials=6, reflections=True)
    errors[keys.ENERGY] *= energy_conditioning(model, structure())  # relative to the per-atom terms
    print(f"{kind} {structure.__name__} [{dtype}]: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    expected = {keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES} | ({keys.STRESS, keys.VIRIAL} if structure != ethanol else set())
    assert set(errors) == expected
    assert all(v < eq_bound(dtype, k) for k, v in errors.items()), errors


def test_permutation_equivariance(kind, dtype):
    model = small_potential(kind, dtype)
    for structure in (ethanol(), water_box()):
        errors = permutation_errors(model, atoms_to_graph(structure, CUTOFF, dtype=dtype))
        assert all(v < eq_bound(dtype, k) for k, v in errors.items()), errors


@pytest.mark.parametrize("kind, variant", KIND_VARIANTS)
@pytest.mark.parametrize("structure", [ethanol, water_box])
def test_forces_match_finite_differences(kind, variant, structure):
    model = small_potential(kind, torch.float64, **VARIANTS[kind][variant])
    analytic, numeric = finite_difference_forces(model, structure())
    assert np.abs(analytic).max() > 1e-3  # the forces are not trivially zero
    # Five-point differences with h = 1e-4 Å converge as h^4 to ~1e-10 on a smooth model.
    assert relative_error(torch.from_numpy(numeric), torch.from_numpy(analytic)) < 1e-8


@pytest.mark.parametrize("structure", [diamond, water_box])
def test_stress_matches_finite_differences(kind, structure):
    model = small_potential(kind, torch.float64)
    analytic, numeric = finite_difference_stress(model, structure())
    assert np.abs(analytic).max() > 1e-4
    assert relative_error(torch.from_numpy(numeric), torch.from_numpy(analytic)) < 1e-8
    assert np.allclose(analytic, analytic.T, atol=1e-12)


def test_stress_sign_follows_ase_convention(kind):
    """Compressing a cell whose energy rises on compression gives positive pressure (negative stress)."""
    model = small_potential(kind, torch.float64)
    atoms = diamond()
    volumes, energies = [], []
    for s in (1 - 1e-4, 1.0, 1 + 1e-4):
        a = atoms.copy()
        a.set_cell(atoms.cell * s, scale_atoms=True)
        volumes.append(a.get_volume())
        energies.append(float(evaluate(model, a)[keys.ENERGY][0]))
    pressure_fd = -(energies[2] - energies[0]) / (volumes[2] - volumes[0])  # P = -dE/dV
    stress = evaluate(model, atoms)[keys.STRESS][0]
    assert abs(pressure_fd) > 1e-4  # a meaningful comparison, not 0 == 0
    assert -torch.trace(stress).item() / 3 == pytest.approx(pressure_fd, rel=1e-3)  # a sign flip: -100%


@pytest.mark.parametrize("kind, variant", KIND_VARIANTS)
def test_energy_and_forces_are_continuous_across_the_cutoff(kind, variant):
    jumps = cutoff_crossing(small_potential(kind, torch.float64, **VARIANTS[kind][variant]), eps=1e-7)
    print(f"{kind} {variant} cutoff crossing: {jumps}")
    assert jumps["energy_jump"] < 1e-9 and jumps["force_jump"] < 1e-7


def test_batch_equals_single_structures(kind, dtype):
    model = small_potential(kind, dtype)
    for group in ([ethanol(), molecule("H2O")], [water_box(), diamond()]):
        batched = model(atoms_to_batch(group, CUTOFF, dtype=dtype))
        singles = [model(atoms_to_graph(a, CUTOFF, dtype=dtype)) for a in group]
        for key in (keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES, keys.STRESS):
            if key in batched:
                expected = torch.cat([s[key] for s in singles])
                assert torch.allclose(batched[key], expected, rtol=1e-5, atol=1e-6), key


def test_far_apart_fragments_add_up(kind):
    model = small_potential(kind, torch.float64)
    a, b = ethanol(), molecule("H2O")
    b.translate([50.0, 0.0, 0.0])
    both = evaluate(model, a + b)
    ea, eb = evaluate(model, a), evaluate(model, b)
    assert both[keys.ENERGY].item() == pytest.approx(ea[keys.ENERGY].item() + eb[keys.ENERGY].item(), abs=1e-12)
    assert torch.allclose(both[keys.FORCES], torch.cat([ea[keys.FORCES], eb[keys.FORCES]]), atol=1e-12)


def test_isolated_atoms_are_finite_and_independent_of_place(kind):
    """No neighbours: no NaN from the empty softmax, zero forces, the same energy anywhere."""
    model = small_potential(kind, torch.float64)
    here = evaluate(model, Atoms("OH", positions=[[0, 0, 0], [20, 0, 0]]))
    there = evaluate(model, Atoms("HO", positions=[[-7, 3, 1], [9, 9, 9]]))
    assert torch.isfinite(here[keys.ENERGY]).all()
    assert (here[keys.FORCES] == 0).all()
    assert torch.allclose(here[keys.ATOMIC_ENERGIES], there[keys.ATOMIC_ENERGIES].flip(0), atol=1e-14)


@pytest.mark.parametrize("kind, variant", KIND_VARIANTS)
@pytest.mark.parametrize("precision, tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)], ids=["float64", "float32"])
def test_an_atom_without_neighbours_gets_its_e0(kind, variant, precision, tol):
    """E_i = E0 exactly (to round-off) with no neighbour inside r_c, whatever scale and shift are."""
    model = small_potential(kind, precision, **VARIANTS[kind][variant])  # with non-trivial scale and shift
    e0 = {"H": -13.6, "C": -1029.0, "O": -2041.0}
    model.set_atomic_energies(e0)
    alone = Atoms("OCH", positions=[[0, 0, 0], [10, 0, 0], [0, 10, 0]])
    out = evaluate(model, alone)
    assert torch.isfinite(out[keys.ATOMIC_ENERGIES]).all()
    expected = torch.tensor([e0["O"], e0["C"], e0["H"]], dtype=torch.float64)
    assert torch.allclose(out[keys.ATOMIC_ENERGIES].double(), expected, rtol=tol, atol=0)
    assert (out[keys.FORCES] == 0).all()
    # Next to a molecule, a far-away atom still gets exactly its E0; a bonded one does not.
    mixed = evaluate(model, ethanol() + Atoms("O", positions=[[30.0, 0.0, 0.0]]))[keys.ATOMIC_ENERGIES]
    assert mixed[-1].item() == pytest.approx(e0["O"], rel=tol)
    assert abs(mixed[2].item() - e0["O"]) > 1e-3  # ethanol's O feels its neighbours


def test_reference_energies_shift_energy_not_forces(kind):
    model = small_potential(kind, torch.float64)
    atoms = ethanol()
    before = evaluate(model, atoms)
    e0 = {"H": -13.6, "C": -1029.0, "O": -2041.0}
    model.set_atomic_energies(e0)
    after = evaluate(model, atoms)
    expected_shift = sum(e0[s] for s in atoms.get_chemical_symbols())
    assert (after[keys.ENERGY] - before[keys.ENERGY]).item() == pytest.approx(expected_shift, abs=1e-9)
    assert torch.allclose(after[keys.FORCES], before[keys.FORCES], atol=1e-12)
    with pytest.raises(ValueError, match="missing"):
        model.set_atomic_energies({"H": 1.0})
    with pytest.raises(ValueError, match="finite"):
        model.set_atomic_energies([1.0, float("nan"), 2.0])


def test_periodic_consistency(kind, dtype):
    model = small_potential(kind, dtype)
    for atoms in (diamond(), water_box()):
        for check in (wrap_invariance, equivalent_cell_invariance, supercell_extensivity):
            errors = check(model, atoms)
            errors[keys.ENERGY] *= energy_conditioning(model, atoms)  # relative to the per-atom terms
            assert all(v < eq_bound(dtype, k) for k, v in errors.items()), (check.__name__, errors)


def test_forces_work_under_no_grad_and_keep_graph_in_training(kind):
    model = small_potential(kind, torch.float64)
    graph = atoms_to_graph(ethanol(), CUTOFF, dtype=torch.float64)
    with torch.no_grad():
        assert torch.isfinite(model(graph)[keys.FORCES]).all()
    model.train()
    forces = model(graph)[keys.FORCES]
    assert forces.requires_grad  # training on forces needs their graph
    forces.square().sum().backward()
    assert all(p.grad is not None for p in model.layers.parameters() if p.requires_grad)


def test_save_and_load_round_trip(kind, tmp_path):
    model = small_potential(kind, torch.float64)
    model.set_atomic_energies([-1.0, -2.0, -3.0])
    save_model(model, tmp_path / "model.pt")
    loaded = load_model(tmp_path / "model.pt")
    assert type(loaded) is type(model) and loaded.dtype == torch.float64
    graph = atoms_to_graph(water_box(), CUTOFF, dtype=torch.float64)
    a, b = model(graph), loaded(graph)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(tmp_path / "junk.pt")
    # Weights of another layout (an older version's layer names) fail loudly, naming the versions.
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"]["renamed." + name] = payload["state_dict"].pop(name)
    payload["version"] = "0.0.1"
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"do not fit .*saved by equiformer_lite 0\.0\.1"):
        load_model(tmp_path / "old.pt")


def test_with_dtype_keeps_the_weights(kind):
    model = small_potential(kind, torch.float32)
    graph = atoms_to_graph(water_box(), CUTOFF, dtype=torch.float64)
    double = model.with_dtype("float64")
    assert double.dtype == torch.float64
    out32, out64 = model(graph), double(graph)
    # Per-atom energies: the total of the small water box is a sum with cancellations (-0.46 eV
    # from atomic terms of either sign), whose float32 relative error sits near 1e-5 by itself.
    for key in (keys.ATOMIC_ENERGIES, keys.FORCES):
        assert relative_error(out64[key], out32[key].double()) < 1e-5, key


def test_bad_inputs_raise_clear_errors(kind):
    model = small_potential(kind, torch.float64)
    with pytest.raises(ValueError, match=r"element\(s\) \['N'\] not among"):
        evaluate(model, molecule("NH3"))
    graph = atoms_to_graph(ethanol(), CUTOFF, dtype=torch.float64)
    bad = copy.copy(graph)
    bad[keys.POSITIONS] = graph[keys.POSITIONS].clone()
    bad[keys.POSITIONS][0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        model(bad)
    coincident = copy.copy(graph)
    coincident[keys.POSITIONS] = graph[keys.POSITIONS].clone()
    j, i = graph[keys.EDGE_INDEX][:, 0]
    coincident[keys.POSITIONS][j] = coincident[keys.POSITIONS][i]
    with pytest.raises(ValueError, match="coincident atoms"):
        model(coincident)
    with pytest.raises(ValueError, match="smaller than the model"):
        model(atoms_to_graph(ethanol(), CUTOFF - 1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="fully periodic"):
        model(graph, compute_stress=True)
    with pytest.raises(ValueError, match="empty structure"):
        model({keys.POSITIONS: torch.zeros(0, 3)})
    with pytest.raises(ValueError, match=r"lacks the graph fields \['edge_index'"):
        model({k: graph[k] for k in (keys.POSITIONS, keys.ATOMIC_NUMBERS, keys.CELL, keys.PBC, keys.EDGE_CELL_SHIFT)})


def test_plain_dict_input_matches_graph_input(kind):
    model = small_potential(kind, torch.float64)
    graph = atoms_to_graph(water_box(), CUTOFF, dtype=torch.float64)
    as_dict = {key: graph[key] for key in graph.keys()}
    a, b = model(graph), model(as_dict)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_deep_copy_has_the_same_state_and_outputs(kind):
    """``copy.deepcopy`` (used by the trainer's EMA and checkpoints) keeps the state_dict layout,
    dtype, mode and outputs, and shares no tensor with the original."""
    model = small_potential(kind, torch.float64).eval()
    clone = copy.deepcopy(model)
    assert list(clone.state_dict()) == list(model.state_dict())
    assert clone.dtype == model.dtype and not clone.training
    assert torch.equal(evaluate(clone, ethanol())[keys.FORCES], evaluate(model, ethanol())[keys.FORCES])
    with torch.no_grad():
        next(clone.parameters()).add_(1.0)
    assert not torch.equal(next(clone.parameters()), next(model.parameters()))
