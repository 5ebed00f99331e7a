"""Physics checks any potential must pass whatever its weights: conservative forces, stress,
smoothness at the cutoff, periodic consistency and extensivity."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from ase import Atoms

from ..calculators import EquiformerCalculator
from ..data import atoms_to_graph, keys
from .equivariance import relative_error

__all__ = [
    "evaluate",
    "finite_difference_forces",
    "finite_difference_stress",
    "cutoff_crossing",
    "wrap_invariance",
    "equivalent_cell_invariance",
    "supercell_extensivity",
    "nve_energy_spread",
    "nve_step_scaling",
]


def evaluate(model, atoms: Atoms, **kwargs) -> dict[str, torch.Tensor]:
    """Model outputs for one structure, with the graph built at the model's cutoff and dtype."""
    graph = atoms_to_graph(atoms, model.graph_cutoff, dtype=model.dtype, with_labels=False)
    return {k: v.detach() for k, v in model(graph, **kwargs).items()}


def _energy(model, atoms: Atoms) -> float:
    return float(evaluate(model, atoms, compute_forces=False, compute_stress=False)[keys.ENERGY][0])


_STENCIL = ((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0))  # f'(0) = sum(w f(k h)) / 12h + O(h^4)


def _derivative(energy_at, delta: float) -> float:
    """Five-point central difference of ``energy_at(step)`` at step 0."""
    return sum(w * energy_at(k * delta) for k, w in _STENCIL) / (12 * delta)


def finite_difference_forces(model, atoms: Atoms, *, delta: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Autograd forces and five-point central differences of the energy, :math:`-\\partial E/\\partial r`.

    Use a float64 model: the truncation error is :math:`O(h^4)`, the rounding error
    :math:`O(\\epsilon E / h)`. Returns ``(autograd [N, 3], finite-difference [N, 3])``.
    """
    autograd = evaluate(model, atoms, compute_stress=False)[keys.FORCES].double().numpy()
    numeric = np.zeros_like(autograd)

    def energy_at(i: int, d: int, step: float) -> float:
        displaced = atoms.copy()
        displaced.positions[i, d] += step
        return _energy(model, displaced)

    for i in range(len(atoms)):
        for d in range(3):
            numeric[i, d] = -_derivative(lambda step: energy_at(i, d, step), delta)
    return autograd, numeric


def finite_difference_stress(model, atoms: Atoms, *, delta: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Autograd stress and :math:`\\frac{1}{V} \\partial E / \\partial \\varepsilon_{ab}` by five-point
    differences of a symmetric strain applied to cell and positions. Returns two ``[3, 3]`` arrays."""
    autograd = evaluate(model, atoms, compute_stress=True)[keys.STRESS][0].double().numpy()
    volume = atoms.get_volume()

    def energy_at(a: int, b: int, step: float) -> float:
        strain = np.zeros((3, 3))
        strain[a, b] += step / 2
        strain[b, a] += step / 2
        deformation = np.eye(3) + strain
        deformed = atoms.copy()
        deformed.set_cell(atoms.cell.array @ deformation, scale_atoms=False)
        deformed.positions = atoms.positions @ deformation
        return _energy(model, deformed)

    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(a, 3):
            numeric[a, b] = numeric[b, a] = _derivative(lambda step: energy_at(a, b, step), delta) / volume
    return autograd, numeric


def cutoff_crossing(
    model, symbols: Sequence[str] = ("H", "H", "H"), *, eps: float = 1e-7, inner: float = 0.6
) -> dict[str, float]:
    """Energy and force jumps as a neighbour crosses the cutoff.

    Atom 0 at the origin keeps atom 1 at ``inner * r_c``; atom 2 sits at ``r_c - eps`` and then
    ``r_c + eps`` from atom 0 (and farther from atom 1). A potential that is smooth at the cutoff
    gives jumps of order ``eps`` (energy) and ``eps`` times the force curvature (forces); a plain
    softmax over neighbours jumps by O(1).

    Returns ``{"energy_jump": |dE| (eV), "force_jump": max |dF| (eV/Å)}``.
    """
    rc = model.cutoff
    direction = np.array([-0.48, 0.6, 0.64])  # unit vector away from atom 1
    direction /= np.linalg.norm(direction)
    results = []
    for r in (rc - eps, rc + eps):
        positions = [[0.0, 0.0, 0.0], [inner * rc, 0.0, 0.0], (r * direction).tolist()]
        out = evaluate(model, Atoms(list(symbols), positions=positions), compute_stress=False)
        results.append(out)
    return {
        "energy_jump": abs(float(results[0][keys.ENERGY][0] - results[1][keys.ENERGY][0])),
        "force_jump": float((results[0][keys.FORCES] - results[1][keys.FORCES]).abs().max()),
    }


def nve_energy_spread(
    model, atoms: Atoms, *, timestep_fs: float, duration_fs: float = 20.0, temperature_K: float = 300.0, seed: int = 0
) -> float:
    """Spread (max - min, eV) of the total energy in velocity-Verlet NVE dynamics with the model."""
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = EquiformerCalculator(model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    dyn = VelocityVerlet(atoms, timestep=timestep_fs * units.fs)
    energies = [atoms.get_total_energy()]
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    dyn.run(int(round(duration_fs / timestep_fs)))
    return float(np.ptp(energies))


def nve_step_scaling(model, atoms: Atoms, *, timestep_fs: float = 0.2, duration_fs: float = 20.0) -> dict[str, float]:
    """Energy conservation the way molecular dynamics sees it.

    Velocity Verlet's energy error is :math:`O(\\Delta t^2)` on a smooth potential, so halving the
    step divides the spread of the total energy by 4. A kink or jump anywhere the trajectory goes
    (not only at the cutoff) breaks the ratio. Returns the spreads at ``dt`` and ``dt/2`` (eV) and
    their ``ratio``.
    """
    coarse = nve_energy_spread(model, atoms, timestep_fs=timestep_fs, duration_fs=duration_fs)
    fine = nve_energy_spread(model, atoms, timestep_fs=timestep_fs / 2, duration_fs=duration_fs)
    return {"spread_dt": coarse, "spread_half_dt": fine, "ratio": coarse / fine if fine > 0 else float("inf")}


def wrap_invariance(model, atoms: Atoms, *, seed: int = 0) -> dict[str, float]:
    """Relative change of the outputs when every atom moves by a random lattice vector."""
    rng = np.random.default_rng(seed)
    moved = atoms.copy()
    moved.positions += rng.integers(-2, 3, size=(len(atoms), 3)) * atoms.pbc @ atoms.cell.array
    return _compare(evaluate(model, atoms), evaluate(model, moved))


def equivalent_cell_invariance(model, atoms: Atoms) -> dict[str, float]:
    """Relative change of the outputs for the same lattice described by another cell
    (rows combined by a unimodular integer matrix)."""
    if not atoms.pbc.all():
        raise ValueError("equivalent_cell_invariance needs a fully periodic structure")
    unimodular = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]])  # det = 1
    other = atoms.copy()
    other.set_cell(unimodular @ atoms.cell.array, scale_atoms=False)
    return _compare(evaluate(model, atoms), evaluate(model, other))


def supercell_extensivity(model, atoms: Atoms, repeat: Sequence[int] = (2, 2, 2)) -> dict[str, float]:
    """Errors of the supercell against the primitive cell: energy ratio vs the number of copies,
    per-atom energies and forces tiled, stress unchanged."""
    if not atoms.pbc.all():
        raise ValueError("supercell_extensivity needs a fully periodic structure")
    copies = int(np.prod(repeat))
    small, big = evaluate(model, atoms), evaluate(model, atoms * tuple(repeat))
    n = len(atoms)
    return {
        keys.ENERGY: relative_error(copies * small[keys.ENERGY], big[keys.ENERGY]),
        keys.ATOMIC_ENERGIES: relative_error(small[keys.ATOMIC_ENERGIES].repeat(copies), big[keys.ATOMIC_ENERGIES]),
        keys.FORCES: relative_error(small[keys.FORCES].repeat(copies, 1), big[keys.FORCES].reshape(copies * n, 3)),
        keys.STRESS: relative_error(small[keys.STRESS], big[keys.STRESS]),
    }


def _compare(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: relative_error(v, other[k]) for k, v in reference.items()}
