"""Neighbour lists for open and periodic structures, by vesin's cell list.

`vesin <https://github.com/Luthaf/vesin>`_ finds every pair within the cutoff in linear time,
for open, fully and partly periodic cells (triclinic, small or skewed cells where an atom meets
several images of the same neighbour, or its own image). No neighbour is ever dropped: the search
is never capped. ``benchmarks/bench_neighborlist.py`` measures it against the image-replicating
radius search this package used before (the same pairs and shifts, 2-8x faster on periodic cells) and ASE's.
"""

from __future__ import annotations

import numpy as np
import torch
from vesin import NeighborList

__all__ = ["neighbor_list", "edge_vectors"]


def neighbor_list(
    positions: np.ndarray,
    cutoff: float,
    cell: np.ndarray | None = None,
    pbc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""All directed pairs (j -> i) closer than ``cutoff``, with their integer cell shifts.

    Parameters
    ----------
    positions : ``[N, 3]`` Cartesian positions, Å. Atoms outside the cell are allowed.
    cutoff : radius of the neighbourhood, Å.
    cell : ``[3, 3]`` lattice vectors as rows, Å. Needed when any ``pbc`` is True (the vectors
        of non-periodic directions may be zero).
    pbc : ``[3]`` bools.

    Returns
    -------
    edge_index : ``[2, E]`` int64, rows (sender j, receiver i), in vesin's order (deterministic:
        the same structure always gives the same graph).
    cell_shift : ``[E, 3]`` int64 shift S such that
        :math:`\mathbf r_{ij} = \mathbf r_j - \mathbf r_i + S \cdot \mathrm{cell}`.
        Self-pairs are excluded, except a periodic self-image at a non-zero shift.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
    if pbc.any() and cell is None:
        raise ValueError("a periodic structure needs its cell")
    box = np.ascontiguousarray(cell, dtype=np.float64) if pbc.any() else np.zeros((3, 3))
    receiver, sender, shift = NeighborList(cutoff=float(cutoff), full_list=True).compute(
        positions, box, pbc.tolist() if pbc.any() else False, quantities="ijS"
    )
    return np.stack([sender, receiver]).astype(np.int64, copy=False), shift.astype(np.int64, copy=False)


def edge_vectors(
    pos: torch.Tensor, edge_index: torch.Tensor, shift: torch.Tensor, cell: torch.Tensor, batch: torch.Tensor
) -> torch.Tensor:
    r"""``[E, 3]`` vectors :math:`r_j - r_i + S_{ij} \cdot C` from receiver i to sender j (Å): the one
    definition of an edge's geometry, used by the models, the graph builder and the statistics.

    ``pos [N, 3]``, ``edge_index [2, E]`` (sender, receiver), ``shift [E, 3]`` integer cell shifts
    (in the dtype of ``pos``), ``cell [B, 3, 3]`` (rows are lattice vectors), ``batch [N]``
    structure index. Pure tensor code (no checks).
    """
    sender, receiver = edge_index[0], edge_index[1]
    return pos[sender] - pos[receiver] + torch.einsum("ei,eij->ej", shift, cell[batch[receiver]])  # [E, 3]
