"""ASE calculator for any `equiformer_lite` potential."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from ..data import DEFAULT_MIN_DISTANCE, SkinNeighborList, atoms_to_graph, keys
from ..models import AtomisticPotential, load_model

if TYPE_CHECKING:
    from ..models.exported import ExportedPotential

__all__ = ["EquiformerCalculator"]


class EquiformerCalculator(Calculator):
    """ASE calculator: energy, per-atom energies, conservative forces and (periodic) stress.

    Parameters
    ----------
    model : a potential, an :class:`~equiformer_lite.export.ExportedPotential`, or the path of a
        file written by :func:`~equiformer_lite.save_model` or ``equiformer-lite export`` (``.pt2``);
        or a list of these: a **committee**. Its results are the members' means, and the spread
        of the members is the uncertainty: ``energy_std`` (eV), ``forces_std`` ``[N, 3]``,
        ``forces_std_max`` (the largest per-atom norm of the force standard deviation, eV/Å, what
        an MD run thresholds), ``stress_std``, and the members' own values ``energy_comm [M]``,
        ``forces_comm [M, N, 3]``, ``stress_comm [M, 6]`` (as MACE's committee calculator names them).
        Standard deviations are over members (ddof 0). A model object is evaluated as its
        :meth:`~equiformer_lite.models.AtomisticPotential.for_inference` copy (frozen weights, less
        memory); the object passed in is not changed, and later changes to it do not reach the calculator.
    device : where to evaluate (``"cpu"``, ``"cuda"``).
    dtype : evaluation dtype; the model is rebuilt in it with the same weights (default: the model's).
    min_distance : pairs closer than this (Å) raise ``ValueError`` (overlapping atoms).
    compile : run the model through ``torch.compile`` (:class:`~equiformer_lite.models.CompiledPotential`):
        the first call compiles (tens of seconds to minutes), later ones are faster; sizes are
        symbolic, so MD does not recompile. Not for an exported ``.pt2`` (compiled already).
    skin : neighbour-list skin, Å (:class:`~equiformer_lite.data.SkinNeighborList`). With
        ``skin > 0`` the pair search runs at cutoff + skin and is reused over calls until an atom
        has moved more than ``skin / 2`` (or the cell, periodicity or atom count changed); every
        call still evaluates exactly the pairs within the cutoff. ``0`` (default): a fresh search
        per call. MD (``equiformer-lite md``) uses a skin.

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
        model: Union[AtomisticPotential, "ExportedPotential", str, os.PathLike, Sequence],
        *,
        device: Union[str, torch.device] = "cpu",
        dtype: Optional[torch.dtype] = None,
        min_distance: float = DEFAULT_MIN_DISTANCE,
        compile: bool = False,
        skin: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.device = torch.device(device)
        members = list(model) if isinstance(model, (list, tuple)) else [model]
        if not members:
            raise ValueError("a committee needs at least one model, got an empty list")
        self.models = [self._prepare(m, dtype, compile) for m in members]
        self.model = self.models[0]
        self.graph_cutoff = max(float(m.graph_cutoff) for m in self.models)
        self.min_distance = float(min_distance)
        self.neighbors = SkinNeighborList(self.graph_cutoff, skin)  # [2, E] pairs, reused while exact

    def _prepare(self, model, dtype, compile: bool):
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        if dtype is not None and dtype != model.dtype:
            model = model.with_dtype(dtype)
        if isinstance(model, AtomisticPotential):
            model = model.for_inference()  # a copy: the caller's model is not changed
        model = model.to(self.device).eval()
        if compile:
            if not isinstance(model, AtomisticPotential):
                raise ValueError(f"compile=True needs a model, not {type(model).__name__} (an export is compiled already)")
            from ..models.compiled import CompiledPotential

            model = CompiledPotential(model)
        return model

    @property
    def is_committee(self) -> bool:
        return len(self.models) > 1

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        periodic = bool(self.atoms.pbc.all())
        if "stress" in properties and not periodic:
            raise PropertyNotImplementedError("stress needs a fully periodic cell (pbc all True)")
        graph = atoms_to_graph(
            self.atoms,
            self.graph_cutoff,
            dtype=torch.float64,  # the model centres the positions in float64, then casts (validate_inputs)
            with_labels=False,
            min_distance=self.min_distance,
            neighbors=self.neighbors,
        ).to(self.device)
        members = [self._evaluate(model, graph, periodic) for model in self.models]
        self.results = {key: np.mean([m[key] for m in members], axis=0) for key in members[0]}
        self.results["energy"] = self.results["free_energy"] = float(self.results["energy"])
        if self.is_committee:
            for key in ("energy", "forces", "stress"):
                if key in members[0]:
                    stack = np.stack([m[key] for m in members])  # [M, ...]
                    self.results[f"{key}_comm"] = stack
                    self.results[f"{key}_std"] = stack.std(axis=0)
            self.results["energy_std"] = float(self.results["energy_std"])
            self.results["forces_std_max"] = float(np.linalg.norm(self.results["forces_std"], axis=1).max())

    @staticmethod
    def _evaluate(model, graph, periodic: bool) -> dict:
        out = model(graph, compute_forces=True, compute_stress=periodic)
        result = {
            "energy": out[keys.ENERGY].detach().cpu().double().numpy()[0],
            "energies": out[keys.ATOMIC_ENERGIES].detach().cpu().double().numpy(),
            "forces": out[keys.FORCES].detach().cpu().double().numpy(),
        }
        if periodic:
            result["stress"] = full_3x3_to_voigt_6_stress(out[keys.STRESS][0].detach().cpu().double().numpy())
        return result
