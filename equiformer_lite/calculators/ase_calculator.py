"""ASE calculator for any `equiformer_lite` potential."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Union

import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ..data import DEFAULT_MIN_DISTANCE, atoms_to_graph, keys
from ..models import AtomisticPotential, load_model

if TYPE_CHECKING:
    from ..models.exported import ExportedPotential

__all__ = ["EquiformerCalculator"]


class EquiformerCalculator(Calculator):
    """ASE calculator: energy, per-atom energies, conservative forces and (periodic) stress.

    Parameters
    ----------
    model : a potential, an :class:`~equiformer_lite.export.ExportedPotential`, or the path of a
        file written by :func:`~equiformer_lite.save_model` or ``equiformer-lite export`` (``.pt2``).
    device : where to evaluate (``"cpu"``, ``"cuda"``).
    dtype : evaluation dtype; the model is rebuilt in it with the same weights (default: the model's).
    min_distance : pairs closer than this (Å) raise ``ValueError`` (overlapping atoms).
    compile : run the model through ``torch.compile`` (:class:`~equiformer_lite.models.CompiledPotential`):
        the first call compiles (tens of seconds to minutes), later ones are faster; sizes are
        symbolic, so MD does not recompile. Not for an exported ``.pt2`` (compiled already).

    >>> from ase.build import molecule
    >>> from equiformer_lite import EquiformerCalculator, SE3Potential
    >>> atoms = molecule("H2O")
    >>> atoms.calc = EquiformerCalculator(SE3Potential(["H", "O"], cutoff=4.0, channels=8, num_layers=1))
    >>> atoms.get_forces().shape
    (3, 3)
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: Union[AtomisticPotential, "ExportedPotential", str, os.PathLike],
        *,
        device: Union[str, torch.device] = "cpu",
        dtype: Optional[torch.dtype] = None,
        min_distance: float = DEFAULT_MIN_DISTANCE,
        compile: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        self.device = torch.device(device)
        if dtype is not None and dtype != model.dtype:
            model = model.with_dtype(dtype)
        self.model = model.to(self.device).eval()
        if compile:
            if not isinstance(self.model, AtomisticPotential):
                raise ValueError(f"compile=True needs a model, not {type(self.model).__name__} (an export is compiled already)")
            from ..models.compiled import CompiledPotential

            self.model = CompiledPotential(self.model)
        self.min_distance = float(min_distance)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        periodic = bool(self.atoms.pbc.all())
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("stress needs a fully periodic cell (pbc all True)")
        graph = atoms_to_graph(
            self.atoms,
            self.model.graph_cutoff,
            dtype=torch.float64,  # the model centres the positions in float64, then casts (validate_inputs)
            with_labels=False,
            min_distance=self.min_distance,
        ).to(self.device)
        out = self.model(graph, compute_forces=True, compute_stress=periodic)
        energy = out[keys.ENERGY].detach().cpu().double()
        self.results = {
            "energy": float(energy[0]),
            "free_energy": float(energy[0]),
            "energies": out[keys.ATOMIC_ENERGIES].detach().cpu().double().numpy(),
            "forces": out[keys.FORCES].detach().cpu().double().numpy(),
        }
        if periodic:
            stress = out[keys.STRESS][0].detach().cpu().double().numpy()
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
