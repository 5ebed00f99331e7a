"""A2IPotential (the A2I Transformer): what holds exactly, what does not (rotations), and that it learns.

The model reads raw coordinates, so it is deliberately absent from the shared rotation-invariance
suite (``SMALL_MODELS``); its exact symmetries are permutations and, with position encoding,
lattice translations (wrapping). The rotation error of an untrained model is measured and printed.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.io import write
from torch_geometric.data import Batch

from equiformer_lite import A2IPotential, EquiformerCalculator, atoms_to_batch, atoms_to_graph, build_model, keys, load_model, save_model
from equiformer_lite.data import DEFAULT_MIN_DISTANCE
from equiformer_lite.data.synthetic import generate
from equiformer_lite.testing import (
    evaluate,
    finite_difference_forces,
    finite_difference_stress,
    model_equivariance_errors,
    permutation_errors,
    relative_error,
    wrap_invariance,
)
from equiformer_lite.train import PotentialLoss

torch.set_num_threads(1)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SPECIES = ["Ar", "Ne"]


def small_a2i(dtype=torch.float64, seed=0, **overrides) -> A2IPotential:
    """Two blocks of width 8: every code path, milliseconds per call."""
    torch.manual_seed(seed)
    config = dict(num_blocks=2, channels=8, num_heads=2, atomic_energies=[-0.5, -0.2])
    config.update(overrides)
    species = config.pop("species", SPECIES)
    model = A2IPotential(species, dtype=dtype, **config)
    model.scale_shift.scale.fill_(1.7)
    model.scale_shift.shift.fill_(-0.3)
    return model.eval()


def _spread_points(n, size, rng, min_distance=0.9):
    points = []
    while len(points) < n:
        p = rng.uniform(0, size, 3)
        if all(np.linalg.norm(p - q) > min_distance for q in points):
            points.append(p)
    return np.array(points)


def cluster(n=6, seed=0) -> Atoms:
    """An open cluster of Ar and Ne, no symmetry."""
    rng = np.random.default_rng(seed)
    return Atoms(["Ar", "Ne"] * (n // 2) + ["Ar"] * (n % 2), positions=_spread_points(n, 3.0, rng))


def triclinic_box() -> Atoms:
    """Eight atoms in a skewed, fully periodic cell, one of them outside it."""
    rng = np.random.default_rng(1)
    cell = np.array([[4.0, 0.0, 0.0], [0.7, 3.8, 0.0], [0.4, 0.5, 4.2]])
    atoms = Atoms(["Ar", "Ne"] * 4, positions=rng.uniform(0, 1, (8, 3)) @ cell, cell=cell, pbc=True)
    atoms.positions[0] += cell[1] * 1.3  # outside the cell
    return atoms


def plane_box(n=10) -> Atoms:
    """A 2D periodic system as the synthetic data have it: z = 0, pbc (T, T, F), in-plane skew."""
    rng = np.random.default_rng(2)
    cell = np.array([[5.0, 0.0, 0.0], [1.0, 4.5, 0.0], [0.0, 0.0, 5.0]])
    frac = rng.uniform(0, 1, (n, 3))
    frac[:, 2] = 0.0
    return Atoms(["Ar", "Ne"] * (n // 2), positions=frac @ cell, cell=cell, pbc=[True, True, False])


def graph(model, atoms):
    return atoms_to_graph(atoms, model.graph_cutoff, dtype=model.dtype, with_labels=False)


# --- exact symmetries -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_permutation_equivariance_is_exact(dtype, bound):
    for model, atoms in (
        (small_a2i(dtype), cluster()),
        (small_a2i(dtype), triclinic_box()),
        (small_a2i(dtype, spatial_dims=2, species_encoding="embedding"), plane_box()),
    ):
        errors = permutation_errors(model, graph(model, atoms))
        print(f"A2I permutation errors [{dtype}, {atoms.pbc.tolist()}]: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
        assert {keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES} <= set(errors)
        assert all(v < bound for v in errors.values()), errors


@pytest.mark.parametrize("make, dims", [(triclinic_box, 3), (plane_box, 2)])
def test_wrapping_by_lattice_vectors_changes_nothing_with_position_encoding(make, dims):
    model = small_a2i(spatial_dims=dims)
    errors = wrap_invariance(model, make(), seed=3)
    print(f"A2I wrap errors (PE, {dims}D): " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    assert all(v < 1e-12 for v in errors.values()), errors
    # A translation that is not a lattice vector is *not* a symmetry of the model (learned only).
    atoms = make()
    moved = atoms.copy()
    moved.positions += [0.37, -0.21, 0.0]
    shift_error = relative_error(evaluate(model, atoms)[keys.ATOMIC_ENERGIES], evaluate(model, moved)[keys.ATOMIC_ENERGIES])
    print(f"A2I per-atom energy change under a non-lattice translation (untrained, {dims}D): {shift_error:.2e}")
    assert shift_error > 1e-6


def test_rotation_error_is_large_by_design_and_reported():
    """Raw coordinates are not rotation-invariant: the paper's model only *learns* approximate
    invariance (its Fig. 3f). Rotating atoms and cell together is exact with position encoding,
    because fractional coordinates and lattice lengths do not change."""
    model = small_a2i(atomic_energies=[0.0, 0.0])
    model.scale_shift.shift.fill_(0.0)
    open_errors = model_equivariance_errors(model, graph(model, cluster()), n_trials=4, reflections=True)
    print("A2I rotation errors, untrained, open cluster: " + ", ".join(f"{k} {v:.2e}" for k, v in open_errors.items()))
    assert open_errors[keys.ATOMIC_ENERGIES] > 1e-2 and open_errors[keys.FORCES] > 1e-1
    box_errors = model_equivariance_errors(model, graph(model, triclinic_box()), n_trials=4, reflections=True, translations=False)
    print("A2I errors rotating atoms and cell together (PE): " + ", ".join(f"{k} {v:.1e}" for k, v in box_errors.items()))
    assert all(v < 1e-11 for v in box_errors.values()), box_errors


# --- forces and stress -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, overrides",
    [
        (cluster, {}),
        (triclinic_box, {}),
        (plane_box, dict(spatial_dims=2)),
        (triclinic_box, dict(position_encoding=False, species_encoding="embedding")),
        (cluster, dict(layer_norm=True)),
    ],
    ids=["open", "triclinic-PE", "2D-PE", "triclinic-noPE-embedding", "open-layernorm"],
)
def test_forces_match_five_point_finite_differences(make, overrides):
    model = small_a2i(**overrides)
    autograd, numeric = finite_difference_forces(model, make())
    error = relative_error(torch.from_numpy(numeric), torch.from_numpy(autograd))
    print(f"A2I forces vs finite differences {overrides}: {error:.1e}")
    assert error < 1e-7


@pytest.mark.parametrize("overrides", [{}, dict(position_encoding=False)], ids=["PE", "noPE"])
def test_stress_matches_finite_differences(overrides):
    model = small_a2i(**overrides)
    autograd, numeric = finite_difference_stress(model, triclinic_box())
    error = relative_error(torch.from_numpy(numeric), torch.from_numpy(autograd))
    print(f"A2I stress vs finite differences {overrides}: {error:.1e} (|stress| {np.abs(numeric).max():.2e})")
    assert np.abs(numeric).max() > 1e-6 and error < 1e-7


# --- batching, attention, lone atoms --------------------------------------------------------------------


def test_a_batch_of_different_sizes_equals_each_structure_alone():
    model = small_a2i()
    lone = Atoms("Ar", positions=[[0.3, 0.2, 0.1]])
    dimer = Atoms("ArNe", positions=[[0.0, 0.0, 0.0], [1.1, 0.2, -0.3]])
    structures = [cluster(), triclinic_box(), lone, dimer]
    together = model(atoms_to_batch(structures, model.graph_cutoff, dtype=torch.float64, with_labels=False))
    start = 0
    for b, atoms in enumerate(structures):
        alone = evaluate(model, atoms)
        n = len(atoms)
        rows = slice(start, start + n)
        assert torch.allclose(together[keys.ENERGY][b], alone[keys.ENERGY][0], atol=1e-12, rtol=0)
        assert torch.allclose(together[keys.ATOMIC_ENERGIES][rows], alone[keys.ATOMIC_ENERGIES], atol=1e-12, rtol=0)
        assert torch.allclose(together[keys.FORCES][rows], alone[keys.FORCES], atol=1e-12, rtol=0)
        if atoms.pbc.all():
            assert torch.allclose(together[keys.STRESS][b], alone[keys.STRESS][0], atol=1e-12, rtol=0)
        start += n
    assert all(torch.isfinite(v).all() for v in together.values())
    # The lone atom: every key is masked (its own), the attention output is zero, nothing is NaN.
    model.train()  # training differentiates the forces again (create_graph): still finite
    out = model(atoms_to_graph(lone, model.graph_cutoff, dtype=torch.float64, with_labels=False))
    out[keys.FORCES].square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_attention_weights_have_a_zero_diagonal_and_rows_summing_to_one():
    model = small_a2i(num_blocks=3)
    lone = Atoms("Ne", positions=[[0.0, 0.0, 0.0]])
    structures = [cluster(5), lone, triclinic_box()]
    attention = model.attention_weights(atoms_to_batch(structures, model.graph_cutoff, dtype=torch.float64, with_labels=False))
    n_pairs = sum(len(a) * (len(a) - 1) for a in structures)
    assert attention.edge_index.shape == (2, n_pairs) and len(attention.weights) == 3
    assert all(w.shape == (n_pairs, 2) for w in attention.weights)
    for block in range(3):
        for s, atoms in enumerate(structures):
            w = attention.dense(block, s)
            n = len(atoms)
            assert w.shape == (2, n, n)
            assert torch.diagonal(w, dim1=-2, dim2=-1).abs().max() == 0
            expected = torch.zeros(2, n, dtype=w.dtype) if n == 1 else torch.ones(2, n, dtype=w.dtype)
            assert torch.allclose(w.sum(-1), expected, atol=1e-14)
            assert (w >= 0).all()


# --- inputs: species, position encoding, 2D ----------------------------------------------------------


def test_species_extra_dimension_and_embedding():
    species = ["Ar", "Ne", "Kr"]
    atoms = Atoms(["Kr", "Ar", "Ne", "Ar"], positions=[[0, 0, 0], [1.2, 0, 0], [0, 1.3, 0], [0.9, 1.1, 0.8]])
    extra = small_a2i(species=species, atomic_energies=None)
    g = graph(extra, atoms)
    inputs = extra.prepare_inputs(g)
    features = extra.input_features(inputs, inputs.pos, inputs.cell)
    assert extra.input_dim == 2 * 3 + 1 and extra.embedding is None  # (x1, x2) per direction, + species
    assert features[:, -1].tolist() == [2.0, 0.0, 1.0, 0.0]  # the species index, 0..S-1
    embedded = small_a2i(species=species, atomic_energies=None, species_encoding="embedding")
    assert embedded.input_dim == 6 and embedded.embedding.weight.shape == (3, 8)
    swapped = atoms.copy()
    swapped.symbols[[1, 2]] = ["Ne", "Ar"]  # same positions, two atoms change element
    for model in (extra, embedded):
        before, after = evaluate(model, atoms), evaluate(model, swapped)
        assert relative_error(before[keys.ATOMIC_ENERGIES], after[keys.ATOMIC_ENERGIES]) > 1e-4
    with pytest.raises(ValueError, match=r"not among the model's species"):
        evaluate(extra, Atoms("Xe", positions=[[0, 0, 0]]))


def test_position_encoding_is_eq14_and_the_no_pe_baseline_is_raw_coordinates():
    atoms = plane_box()
    atoms.set_cell(np.diag([5.0, 4.5, 5.0]), scale_atoms=False)  # rectangular: eq. 14 literally
    atoms.positions[2, :2] += [5.0, -9.0]  # outside the box
    pe = small_a2i(spatial_dims=2)
    inputs = pe.prepare_inputs(graph(pe, atoms))
    features = pe.input_features(inputs, inputs.pos, inputs.cell)  # [N, 2 + 2 + 1]
    x, y = inputs.pos[:, 0], inputs.pos[:, 1]
    expected = torch.stack(
        [2.5 * torch.cos(2 * np.pi * x / 5.0), 2.5 * torch.sin(2 * np.pi * x / 5.0),
         2.25 * torch.cos(2 * np.pi * y / 4.5), 2.25 * torch.sin(2 * np.pi * y / 4.5)], dim=1,
    )  # fmt: skip
    assert torch.allclose(features[:, :4], expected, atol=1e-13)
    # A fixed-boundary ("open") direction keeps its raw coordinate: (x, 0).
    open_xz = atoms.copy()
    open_xz.pbc = [False, True, False]
    inputs = pe.prepare_inputs(graph(pe, open_xz))
    features = pe.input_features(inputs, inputs.pos, inputs.cell)
    assert torch.allclose(features[:, 0], inputs.pos[:, 0], atol=1e-13) and features[:, 1].abs().max() == 0
    # No PE: the raw coordinates, so wrapping an atom by a lattice vector changes the energies.
    raw = small_a2i(spatial_dims=2, position_encoding=False)
    inputs = raw.prepare_inputs(graph(raw, atoms))
    assert raw.input_dim == 3 and torch.equal(raw.input_features(inputs, inputs.pos, inputs.cell)[:, :2], inputs.pos[:, :2])
    no_pe = wrap_invariance(raw, plane_box(), seed=3)[keys.ATOMIC_ENERGIES]
    with_pe = wrap_invariance(pe, plane_box(), seed=3)[keys.ATOMIC_ENERGIES]
    print(f"A2I per-atom energy change on wrapping: no PE {no_pe:.2e}, PE {with_pe:.1e}")
    assert no_pe > 1e-3 and with_pe < 1e-12


def test_two_dimensional_model_ignores_z():
    model = small_a2i(spatial_dims=2)
    atoms = plane_box()
    lifted = atoms.copy()
    lifted.positions[3, 2] += 0.7
    before, after = evaluate(model, atoms), evaluate(model, lifted)
    for key in (keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES):
        assert torch.equal(before[key], after[key]), key
    assert before[keys.FORCES][:, 2].abs().max() == 0
    tilted = atoms.copy()
    tilted.set_cell([[5.0, 0.0, 0.3], [1.0, 4.5, 0.0], [0.0, 0.0, 5.0]], scale_atoms=False)
    with pytest.raises(ValueError, match="in-plane lattice vectors"):
        evaluate(model, tilted)


def test_layer_norm_option_changes_the_model_and_keeps_permutation_exact():
    plain, normed = small_a2i(), small_a2i(layer_norm=True)
    assert all(block.norm_attention is not None for block in normed.encoder.blocks)
    assert all(block.norm_attention is None for block in plain.encoder.blocks)
    g = graph(plain, cluster())
    assert relative_error(plain(g)[keys.ENERGY], normed(g)[keys.ENERGY]) > 1e-6
    assert max(permutation_errors(normed, g).values()) < 1e-13


# --- persistence and validation -----------------------------------------------------------------------


def test_save_load_round_trip_and_registry(tmp_path):
    model = small_a2i(spatial_dims=2, species_encoding="embedding", layer_norm=True, ff_hidden=12, activation="tanh")
    yaml.safe_dump(model.config)  # YAML-safe: lists, not tuples
    assert model.config["species"] == SPECIES and model.config["atomic_energies"] == [-0.5, -0.2]
    save_model(model, tmp_path / "a2i.pt")
    loaded = load_model(tmp_path / "a2i.pt")
    assert isinstance(loaded, A2IPotential) and loaded.config == model.config
    g = graph(model, plane_box())
    for key, value in model(g).items():
        assert torch.equal(value, loaded(g)[key]), key
    single = model.with_dtype("float32")
    assert single.dtype == torch.float32
    assert relative_error(model(g)[keys.ENERGY], single(g)[keys.ENERGY]) < 1e-5
    assert isinstance(build_model("a2i", species=["Ar"], num_blocks=1, channels=4, num_heads=1), A2IPotential)



def test_a2i_reads_no_edges_and_takes_no_cutoff(tmp_path):
    """Global attention needs no neighbour list: no cutoff, graphs at the overlap radius only, and
    overlapping atoms still rejected where the graph is built."""
    model = small_a2i()
    assert model.cutoff is None and not model.needs_edges
    assert model.graph_cutoff == A2IPotential.graph_cutoff_of({"num_blocks": 2}) == DEFAULT_MIN_DISTANCE
    assert graph(model, cluster()).edge_index.shape[1] == 0
    atoms = cluster()
    atoms.positions[1] = atoms.positions[0] + [0.05, 0.0, 0.0]
    with pytest.raises(ValueError, match="overlapping atoms"):
        EquiformerCalculator(model).get_potential_energy(atoms)
    # A file saved while A2I still took a placeholder cutoff loads as before.
    save_model(model, tmp_path / "a2i.pt")
    payload = torch.load(tmp_path / "a2i.pt", weights_only=True)
    payload["config"]["cutoff"] = 1.0
    torch.save(payload, tmp_path / "old.pt")
    old = load_model(tmp_path / "old.pt")
    assert old.cutoff is None and torch.equal(old(graph(old, cluster()))[keys.ENERGY], model(graph(model, cluster()))[keys.ENERGY])

@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=10, num_heads=4), r"channels \(10\) must be divisible by the number of heads \(4\)"),
        (dict(num_blocks=0), "num_blocks must be a positive integer, got 0"),
        (dict(channels=2.5), "channels must be a positive integer, got 2.5"),
        (dict(species_encoding="one_hot"), "unknown species_encoding 'one_hot'"),
        (dict(spatial_dims=1), "spatial_dims must be 2 or 3, got 1"),
        (dict(position_encoding="yes"), "position_encoding must be True or False, got 'yes'"),
        (dict(activation="gelu"), "unknown activation 'gelu'"),
        (dict(ff_hidden=0), "ff_hidden must be a positive integer or None, got 0"),
        (dict(dtype="float16"), "dtype must be 'float32' or 'float64'"),
    ],
)
def test_constructor_validation_names_the_bad_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        A2IPotential(["Ar"], **kwargs)


# --- learning -------------------------------------------------------------------------------------------


def test_a_few_adam_steps_reduce_the_per_atom_energy_loss():
    """Per-atom energies of the paper's 2D periodic LJ system (16 snapshots, N = 128)."""
    frames = generate("lj_2d_periodic_n128", 16, seed=0)
    labels = np.concatenate([a.arrays["energies"] for a in frames])
    torch.manual_seed(0)
    model = A2IPotential(["Ar"], num_blocks=3, channels=16, num_heads=4, spatial_dims=2, dtype="float32",
                         scale=float(labels.std()), atomic_energies=[float(labels.mean())])  # fmt: skip
    graphs = [atoms_to_graph(a, model.graph_cutoff, dtype=torch.float32) for a in frames]
    everything = Batch.from_data_list(graphs)
    loss_fn = PotentialLoss("mse", energy_weight=0.0, forces_weight=0.0, stress_weight=0.0, atomic_energies_weight=1.0)

    def per_atom_loss() -> float:
        model.eval()
        return loss_fn(model(everything, compute_forces=False), everything)[1][keys.ATOMIC_ENERGIES]

    initial = per_atom_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(40):
        batch = Batch.from_data_list([graphs[i] for i in rng.choice(len(graphs), 4, replace=False)])
        loss, _ = loss_fn(model(batch, compute_forces=False), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = per_atom_loss()
    print(f"A2I per-atom MSE: initial {initial:.4f}, after 40 Adam steps {final:.4f}, label variance {labels.var():.4f}")
    assert final < 0.5 * initial


def test_the_config_trains_one_epoch_through_the_cli(tmp_path):
    from equiformer_lite.cli import main

    frames = generate("lj_2d_periodic_n128", 10, seed=1, num_atoms=32, equilibration_steps=200, sample_interval=20)
    write(tmp_path / "lj.extxyz", frames)
    raw = yaml.safe_load((CONFIGS / "a2i_lj2d_periodic.yaml").read_text())
    assert raw["model"]["type"] == "a2i" and raw["training"]["atomic_energies_weight"] > 0
    raw["data"].update(path=str(tmp_path / "lj.extxyz"), cache_dir=str(tmp_path / "cache"))
    raw["training"].update(progress=False)
    raw["output_dir"] = str(tmp_path / "run")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--epochs", "1"]) == 0
    model = load_model(tmp_path / "run" / "model.pt")
    assert isinstance(model, A2IPotential) and len(model.encoder.blocks) == 8 and model.config["spatial_dims"] == 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["atomic_mae"]) and np.isfinite(metrics["test"]["atomic_nmae"])
