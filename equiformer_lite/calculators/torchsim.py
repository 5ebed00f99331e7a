"""A TorchSim model interface: many independent systems integrated in one batched model call.

``torch-sim-atomistic`` (``pip install torch-sim-atomistic``) runs MD, relaxations and other
workflows on a batch of systems at once; :class:`TorchSimModel` gives it any of our potentials::

    import torch_sim as ts
    from equiformer_lite.calculators.torchsim import TorchSimModel

    model = TorchSimModel("model.pt")
    final = ts.integrate(system=[atoms_1, atoms_2, ...], model=model, integrator=ts.nvt_langevin,
                         n_steps=1000, temperature=300.0, timestep=0.0005)  # ps, units metal

Each call builds every system's neighbour list (vesin, on the host) and evaluates the batch in
one forward with forces (and stress for periodic systems), in the model's dtype.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import numpy as np
import torch

from ..data import keys
from ..data.neighborlist import neighbor_list
from ..models import AtomisticPotential, load_model

try:
    import torch_sim as ts
    from torch_sim.models.interface import ModelInterface
except ImportError as err:  # an optional dependency
    raise ImportError("TorchSimModel needs torch-sim-atomistic: pip install torch-sim-atomistic") from err

__all__ = ["TorchSimModel"]


class TorchSimModel(ModelInterface):
    """Any potential (or model file) as a TorchSim ``ModelInterface``.

    Returns ``energy [n_systems]`` (eV), ``forces [n_atoms, 3]`` (eV/Å) and, when
    ``compute_stress`` and the systems are periodic, ``stress [n_systems, 3, 3]`` (eV/Å³, positive
    in tension, as ASE and MACE's TorchSim interface).
    """

    def __init__(self, model: Union[str, os.PathLike, Any], *, device: Union[str, torch.device] = "cpu",
                 dtype: Optional[Union[str, torch.dtype]] = None, compute_stress: bool = True) -> None:
        super().__init__()
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        if dtype is not None and dtype != model.dtype:
            model = model.with_dtype(dtype)
        if isinstance(model, AtomisticPotential):
            model = model.for_inference()  # a copy whose parameters need no gradient
        self.model = model.to(device).eval()
        self._device = torch.device(device)
        self._dtype = self.model.dtype
        self._compute_forces = True
        self._compute_stress = bool(compute_stress)
        self._memory_scales_with = "n_atoms_x_density"

    def forward(self, state: Any, **kwargs) -> dict[str, torch.Tensor]:
        if isinstance(state, dict):
            state = ts.SimState(**state, masses=torch.ones_like(state["positions"][:, 0]))
        positions = state.positions  # [N, 3]
        cells = state.row_vector_cell  # [B, 3, 3], rows are lattice vectors
        num_systems = cells.shape[0]
        system_idx = state.system_idx if state.system_idx is not None else torch.zeros(len(positions), dtype=torch.long)
        pbc = torch.as_tensor(state.pbc, dtype=torch.bool).reshape(-1)
        pbc = (pbc.expand(3) if pbc.numel() == 1 else pbc[:3]).cpu()
        periodic = bool(pbc.any())
        cutoff = float(self.model.graph_cutoff)
        counts = torch.bincount(system_idx, minlength=num_systems)  # [B]
        host = positions.detach().to("cpu", torch.float64).numpy()
        host_cells = cells.detach().to("cpu", torch.float64).numpy()
        edges, shifts, start = [], [], 0
        for b, count in enumerate(counts.tolist()):
            edge_index, shift = neighbor_list(host[start:start + count], cutoff, host_cells[b] if periodic else None, pbc.numpy())
            edges.append(edge_index + start)
            shifts.append(shift)
            start += count
        graph = {
            keys.POSITIONS: positions,
            keys.ATOMIC_NUMBERS: state.atomic_numbers,
            keys.CELL: cells if periodic else torch.zeros_like(cells),
            keys.PBC: pbc.expand(num_systems, 3).to(positions.device),
            keys.EDGE_INDEX: torch.from_numpy(np.concatenate(edges, axis=1)).to(positions.device),
            keys.EDGE_CELL_SHIFT: torch.from_numpy(np.concatenate(shifts, axis=0)).to(positions.device, positions.dtype),
            keys.GRAPH_CUTOFF: torch.full((num_systems,), cutoff, dtype=positions.dtype, device=positions.device),
            keys.BATCH: system_idx,
            keys.NUM_ATOMS: counts.to(positions.device),
        }
        with_stress = self._compute_stress and bool(pbc.all())
        out = self.model(graph, compute_forces=True, compute_stress=with_stress)
        results = {"energy": out[keys.ENERGY].detach(), "forces": out[keys.FORCES].detach()}
        if with_stress:
            results["stress"] = out[keys.STRESS].detach()
        return results
