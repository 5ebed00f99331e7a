"""A potential loaded from an exported artefact: no model classes, the same calls as a model."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, Callable, Optional, Union

import torch

from ..data import keys
from ..data.species import species_table
from .base import ModelInputs, stress_requested, validate_inputs

__all__ = ["ExportedPotential", "is_exported", "METADATA_KEY"]

METADATA_KEY = "equiformer_lite"  # the artefact's metadata entry (a JSON string)
EXPORT_FORMAT = 1

Runner = Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


def is_exported(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is an AOTInductor package (a ``.pt2`` zip archive) rather than a ``save_model`` file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("archive_format") for name in archive.namelist()) and any(
                "aotinductor" in name for name in archive.namelist()
            )
    except (zipfile.BadZipFile, OSError):
        return False


class ExportedPotential:
    r"""A potential compiled ahead of time (``equiformer-lite export``), run without Python model code.

    The artefact computes, for one structure, ``(energy [1], atomic_energies [N], forces [N, 3],
    virial [3, 3])`` from ``(positions [N, 3], species index [N], edge_index [2, E], cell shifts
    [E, 3], cell [3, 3], pbc [3])``; this class validates inputs exactly as the models do
    (:func:`~equiformer_lite.models.base.validate_inputs`), evaluates the structures of a batch one
    at a time and returns what :meth:`AtomisticPotential.forward` returns (``stress`` =
    :math:`-W / V` for periodic structures, zero for open ones).

    Attributes read from the artefact's metadata: ``model_type``, ``species``, ``cutoff`` (Å; None
    for a model without edges), ``graph_cutoff`` (the neighbour-list radius, Å), ``dtype``, ``config`` (the model's constructor arguments), ``units``, ``version``.
    """

    def __init__(self, runner: Runner, metadata: dict[str, Any], *, source: str = "") -> None:
        if metadata.get("format") != EXPORT_FORMAT:
            raise ValueError(f"{source or 'artefact'}: export format {metadata.get('format')!r}, this version reads {EXPORT_FORMAT}")
        self._runner = runner
        self.metadata = metadata
        self.source = source
        self.model_type: str = metadata["model_type"]
        self.species: list[str] = list(metadata["species"])
        self.cutoff = None if metadata["cutoff"] is None else float(metadata["cutoff"])
        self.graph_cutoff = float(metadata.get("graph_cutoff", metadata["cutoff"]))
        self.dtype: torch.dtype = getattr(torch, metadata["dtype"])
        self.config: dict[str, Any] = dict(metadata["config"])
        self.units: dict[str, str] = dict(metadata.get("units", {}))
        self.version: str = metadata.get("version", "unknown")
        self.device = torch.device(metadata.get("device", "cpu"))
        self.rotation_invariant = bool(metadata.get("rotation_invariant", True))
        self.local = bool(metadata.get("local", True))
        # Artefacts from before this key: only the coordinate-reading A2I was not invariant.
        self.translation_invariant = bool(metadata.get("translation_invariant", self.rotation_invariant))
        self.z_to_index = species_table(self.species)
        self.training = False

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "ExportedPotential":
        """Load an artefact written by :func:`~equiformer_lite.export.export_model`."""
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        if not is_exported(path):
            raise ValueError(f"{path} is not an exported potential (an AOTInductor .pt2 package)")
        package = torch._inductor.aoti_load_package(path)
        raw = package.get_metadata().get(METADATA_KEY)
        if raw is None:
            raise ValueError(f"{path} is an AOTInductor package without equiformer_lite metadata: not written by export")
        return cls(package, json.loads(raw), source=path)

    # --- the model interface ----------------------------------------------------------------------
    def eval(self) -> "ExportedPotential":
        return self

    def train(self, mode: bool = True) -> "ExportedPotential":
        if mode:
            raise ValueError("an exported potential is for inference: train the model it was exported from")
        return self

    def to(self, device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None) -> "ExportedPotential":
        if device is not None and torch.device(device).type != self.device.type:
            raise ValueError(f"{self.source}: exported for {self.device.type}, cannot run on {torch.device(device).type}; export it there")
        if dtype is not None and dtype != self.dtype:
            return self.with_dtype(dtype)
        return self

    def with_dtype(self, dtype: Union[str, torch.dtype]) -> "ExportedPotential":
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if dtype != self.dtype:
            raise ValueError(
                f"{self.source}: an exported potential has one dtype ({str(self.dtype).removeprefix('torch.')}); "
                f"export the model again with --dtype {str(dtype).removeprefix('torch.')}"
            )
        return self

    def prepare_inputs(self, data: Any) -> ModelInputs:
        return validate_inputs(data, dtype=self.dtype, cutoff=self.graph_cutoff, z_to_index=self.z_to_index,
                               species=self.species, centre=self.translation_invariant)

    def __call__(self, data: Any, *, compute_forces: bool = True, compute_stress: Optional[bool] = None) -> dict[str, torch.Tensor]:
        inputs = data if isinstance(data, ModelInputs) else self.prepare_inputs(data)
        compute_stress = stress_requested(inputs, compute_stress)
        energies, atomic, forces, virials = [], [], [], []
        counts = torch.bincount(inputs.batch, minlength=inputs.num_graphs).tolist()
        edge_graph = inputs.batch[inputs.edge_index[1]]  # [E] structure of each edge
        first_atom = 0
        for b, n in enumerate(counts):
            edges = edge_graph == b
            e, a, f, w = self._runner(
                inputs.pos[first_atom : first_atom + n].contiguous(),
                inputs.species[first_atom : first_atom + n].contiguous(),
                (inputs.edge_index[:, edges] - first_atom).contiguous(),
                inputs.shift[edges].contiguous(),
                inputs.cell[b].contiguous(),
                inputs.pbc[b].contiguous(),
            )
            energies.append(e.reshape(1))
            atomic.append(a)
            forces.append(f)
            virials.append(w)
            first_atom += n
        out = {keys.ENERGY: torch.cat(energies), keys.ATOMIC_ENERGIES: torch.cat(atomic)}
        if compute_forces:
            out[keys.FORCES] = torch.cat(forces)
        if compute_stress:
            virial = torch.stack(virials)  # [B, 3, 3]
            volume = torch.linalg.det(inputs.cell).abs().clamp_min(torch.finfo(self.dtype).tiny)  # [B]
            periodic = inputs.pbc.all(dim=1)  # [B]
            stress = -virial / volume[:, None, None]
            out[keys.VIRIAL] = virial
            out[keys.STRESS] = torch.where(periodic[:, None, None], stress, torch.zeros_like(stress))
        return out

    def __repr__(self) -> str:
        return (f"ExportedPotential({self.model_type}, species={self.species}, cutoff={self.cutoff}, "
                f"dtype={str(self.dtype).removeprefix('torch.')}, source={self.source!r})")
