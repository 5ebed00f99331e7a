"""A physics audit of a potential on a set of structures: every check, its error and its bound."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Optional

import numpy as np
import torch
from ase import Atoms

from ..data import atoms_to_graph
from .equivariance import model_equivariance_errors, permutation_errors, relative_error
from .physics import (
    cutoff_crossing,
    equivalent_cell_invariance,
    finite_difference_forces,
    finite_difference_stress,
    nve_step_scaling,
    supercell_extensivity,
    wrap_invariance,
)

__all__ = ["AuditRow", "audit", "format_audit", "TOLERANCES"]

# Bounds on relative errors that a correct model meets and a real bug (a wrong sign, a missing
# image, a non-equivariant path) exceeds by orders of magnitude. Keyed by the evaluation dtype.
TOLERANCES = {
    torch.float64: {"symmetry": 1e-10, "finite_difference": 1e-6, "cutoff_energy": 1e-9, "cutoff_force": 1e-6},
    torch.float32: {"symmetry": 1e-4, "finite_difference": 1e-6, "cutoff_energy": 1e-9, "cutoff_force": 1e-6},
}


@dataclass
class AuditRow:
    structure: str
    check: str
    error: float
    bound: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error) and self.error <= self.bound)


def audit(
    model,
    structures: Iterable[Atoms],
    *,
    n_trials: int = 4,
    seed: int = 0,
    finite_differences: bool = True,
    molecular_dynamics: bool = True,
    float64_model=None,
) -> list[AuditRow]:
    """Run every physics check of :mod:`equiformer_lite.testing` on ``model`` and ``structures``.

    Symmetry checks run in the model's dtype; finite-difference, cutoff and molecular-dynamics
    checks on a float64 copy (in float32 they measure rounding, not the model). The NVE check runs
    on the first open structure: 20 fs at 0.2 and 0.1 fs, whose energy spreads must differ by
    Verlet's factor 4 (error ``|ratio / 4 - 1|``, bound 0.25). A model that declares itself not
    ``rotation_invariant`` skips the rotation checks; one not ``local`` (attention over the whole
    structure) skips the cutoff, supercell and equivalent-cell checks. ``float64_model`` replaces that
    copy for a model that cannot rebuild itself in float64 (an exported float32 artefact).
    """
    model = model.eval()
    tol = TOLERANCES[model.dtype]
    model64 = (float64_model if float64_model is not None else model.with_dtype(torch.float64)).eval()
    tol64 = TOLERANCES[torch.float64]
    parity = bool(getattr(model, "config", {}).get("parity", True))
    rotations = bool(getattr(model, "rotation_invariant", True))
    local = bool(getattr(model, "local", True))
    rows: list[AuditRow] = []
    structures = list(structures)
    for index, atoms in enumerate(structures):
        name = f"{index}:{atoms.get_chemical_formula()}{' (periodic)' if atoms.pbc.all() else ''}"
        graph = atoms_to_graph(atoms, model.graph_cutoff, dtype=model.dtype, with_labels=False)
        if rotations:
            eq = model_equivariance_errors(model, graph, n_trials=n_trials, reflections=parity, seed=seed)
            rows += [AuditRow(name, f"rotation{'+reflection' if parity else ''} {k}", v, tol["symmetry"]) for k, v in eq.items()]
        perm = permutation_errors(model, graph, seed=seed)
        rows += [AuditRow(name, f"permutation {k}", v, tol["symmetry"]) for k, v in perm.items()]
        if atoms.pbc.all():
            checks = [("wrap atoms", wrap_invariance(model, atoms, seed=seed))]
            if local:
                checks += [("equivalent cell", equivalent_cell_invariance(model, atoms)),
                           ("2x2x2 supercell", supercell_extensivity(model, atoms))]
            for check, errors in checks:
                rows += [AuditRow(name, f"{check} {k}", v, tol["symmetry"]) for k, v in errors.items()]
        if finite_differences:
            analytic, numeric = finite_difference_forces(model64, atoms)
            rows.append(AuditRow(name, "forces vs finite differences", relative_error(torch.from_numpy(numeric), torch.from_numpy(analytic)), tol64["finite_difference"]))
            if atoms.pbc.all():
                analytic, numeric = finite_difference_stress(model64, atoms)
                rows.append(AuditRow(name, "stress vs finite differences", relative_error(torch.from_numpy(numeric), torch.from_numpy(analytic)), tol64["finite_difference"]))
    if molecular_dynamics:
        molecule = next((a for a in structures if not a.pbc.any()), None)
        if molecule is not None:
            nve = nve_step_scaling(model64, molecule)
            name = f"NVE {molecule.get_chemical_formula()}"
            rows.append(AuditRow(name, f"Verlet dt^2 scaling |ratio/4-1| (ratio {nve['ratio']:.2f})", abs(nve["ratio"] / 4 - 1), 0.25))
    if local:
        species = list(model.species)
        jumps = cutoff_crossing(model64, [species[0]] * 3)
        rows.append(AuditRow("cutoff", "energy jump at r_c (eV)", jumps["energy_jump"], tol64["cutoff_energy"]))
        rows.append(AuditRow("cutoff", "force jump at r_c (eV/Å)", jumps["force_jump"], tol64["cutoff_force"]))
    return rows


def format_audit(rows: list[AuditRow], title: Optional[str] = None) -> str:
    """A plain-text table of audit rows."""
    width = max(len(r.structure) for r in rows)
    check_width = max(len(r.check) for r in rows)
    lines = [title] if title else []
    lines.append(f"{'structure':<{width}}  {'check':<{check_width}}  {'error':>10}  {'bound':>8}  result")
    for r in rows:
        lines.append(f"{r.structure:<{width}}  {r.check:<{check_width}}  {r.error:10.2e}  {r.bound:8.2g}  {'pass' if r.passed else 'FAIL'}")
    failed = sum(not r.passed for r in rows)
    lines.append(f"{len(rows) - failed} passed, {failed} failed")
    return "\n".join(lines)


def rows_as_dicts(rows: list[AuditRow]) -> list[dict]:
    return [{**asdict(r), "passed": r.passed} for r in rows]
