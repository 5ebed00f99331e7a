"""What stops a simulation: non-finite results, a runaway temperature, atoms that collide."""

from __future__ import annotations

from typing import Optional

import numpy as np
from ase import Atoms

from ..data.neighborlist import neighbor_list

__all__ = ["BondWatch", "check_state"]


def check_state(atoms: Atoms, *, max_temperature_K: float, min_distance: float, max_force_std: Optional[float] = None) -> Optional[str]:
    """Why the simulation cannot go on from ``atoms`` (its calculator's latest results), or None.

    Checked: energy, forces and (when computed) stress finite; the kinetic temperature finite and
    at most ``max_temperature_K``; no two atoms (or periodic images) closer than ``min_distance`` Å;
    with a committee calculator (``forces_std_max`` in its results), its force spread at most
    ``max_force_std`` eV/Å.
    """
    results = atoms.calc.results if atoms.calc is not None else {}
    for key in ("energy", "forces", "stress"):
        if key in results and not np.isfinite(results[key]).all():
            return f"the {key} is not finite (NaN or inf)"
    spread = results.get("forces_std_max")
    if max_force_std is not None and spread is not None and spread > max_force_std:
        return (f"the committee's force uncertainty {spread:.3g} eV/Å is above md.max_force_std = {max_force_std} eV/Å "
                f"(the structure is outside what the models agree on)")
    velocities = atoms.get_velocities()
    if not np.isfinite(velocities).all():
        return "the velocities are not finite (NaN or inf)"
    temperature = atoms.get_temperature()
    if temperature > max_temperature_K:
        return f"the temperature {temperature:.0f} K is above the limit {max_temperature_K:.0f} K (md.max_temperature_K)"
    if min_distance > 0 and len(atoms) > 1:
        periodic = atoms.pbc.any()
        edges, _ = neighbor_list(atoms.get_positions(), min_distance, atoms.cell.array if periodic else None, atoms.pbc)
        if edges.shape[1]:
            i, j = int(edges[1, 0]), int(edges[0, 0])
            distance = atoms.get_distance(i, j, mic=periodic)
            return (f"atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are {distance:.4f} Å apart, "
                    f"closer than md.min_distance = {min_distance} Å")
    return None


class BondWatch:
    """The bonds of a starting structure (pairs closer than the sum of ASE's covalent radii times
    ``mult``) and their starting lengths; :meth:`check` names the first bond stretched by more
    than ``stretch`` Å (Fu et al. 2022 call such a simulation unstable)."""

    def __init__(self, atoms: Atoms, stretch: float, mult: float = 1.2) -> None:
        from ase.neighborlist import natural_cutoffs, neighbor_list as ase_neighbor_list

        i, j, d = ase_neighbor_list("ijd", atoms, natural_cutoffs(atoms, mult=mult))
        keep = i < j
        self.i, self.j, self.start = i[keep], j[keep], d[keep]
        self.stretch = float(stretch)

    def check(self, atoms: Atoms) -> Optional[str]:
        if not len(self.i):
            return None
        lengths = self._lengths(atoms)
        over = np.flatnonzero(lengths > self.start + self.stretch)
        if not len(over):
            return None
        k = over[0]
        i, j = int(self.i[k]), int(self.j[k])
        return (f"the bond {atoms[i].symbol}{i}-{atoms[j].symbol}{j} is {lengths[k]:.3f} Å, {lengths[k] - self.start[k]:.3f} Å "
                f"longer than at the start (md.max_bond_stretch = {self.stretch} Å)")

    def _lengths(self, atoms: Atoms) -> np.ndarray:
        """``[bonds]`` current lengths (minimum image in a periodic cell)."""
        from ase.geometry import find_mic

        vectors = atoms.positions[self.j] - atoms.positions[self.i]  # [bonds, 3]
        if atoms.pbc.any():
            vectors, _ = find_mic(vectors, atoms.cell, atoms.pbc)
        return np.linalg.norm(vectors, axis=1)
