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

__all__ = ["neighbor_list", "edge_vectors", "SkinNeighborList"]


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
    edge_index : ``[2, E]`` int64, rows (sender j, receiver i), sorted by receiver, each
        receiver's neighbours in vesin's order (deterministic: the same structure always gives the
        same graph).
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
    order = np.argsort(receiver, kind="stable")  # grouped by receiver (the runs SE3Potential attends one at a time)
    return np.stack([sender[order], receiver[order]]).astype(np.int64, copy=False), shift[order].astype(np.int64, copy=False)


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


class SkinNeighborList:
    r"""A neighbour list with a skin (a Verlet list), reused over MD steps while it is still exact.

    The candidate pairs are searched at ``cutoff + skin``; each call keeps those closer than
    ``cutoff`` at the current positions. The candidates hold every pair within ``cutoff`` as long
    as no atom has moved more than ``skin / 2`` since the search (two atoms then closed in by at
    most ``skin``), so the search is redone only when one has, or when the number of atoms, the
    periodicity or the cell changed (NPT rebuilds every step). The pairs returned are those of
    :func:`neighbor_list` at ``cutoff``, up to their order.

    >>> import numpy as np
    >>> nl = SkinNeighborList(cutoff=2.0, skin=0.5)
    >>> pos = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [4.0, 0.0, 0.0]])
    >>> nl(pos)[0].shape, nl(pos + 0.1)[0].shape, nl.builds
    ((2, 2), (2, 2), 1)
    """

    def __init__(self, cutoff: float, skin: float) -> None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
            raise ValueError(f"cutoff must be a positive number of Å, got {cutoff!r}")
        if isinstance(skin, bool) or not isinstance(skin, (int, float)) or not skin >= 0 or not np.isfinite(skin):
            raise ValueError(f"skin must be a finite number of Å >= 0, got {skin!r}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.builds = 0  # number of searches so far
        self._reference: tuple | None = None  # positions [N, 3], cell [3, 3], pbc [3] of the last search
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None  # candidates: edge_index [2, E'], shift [E', 3]

    def _stale(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> bool:
        if self._reference is None:
            return True
        ref_pos, ref_cell, ref_pbc = self._reference
        if ref_pos.shape != positions.shape or not np.array_equal(ref_pbc, pbc) or not np.array_equal(ref_cell, cell):
            return True
        moved = np.einsum("ij,ij->i", positions - ref_pos, positions - ref_pos).max(initial=0.0)  # squared, Å^2
        return not moved <= (0.5 * self.skin) ** 2  # also when a position is NaN

    def __call__(
        self, positions: np.ndarray, cell: np.ndarray | None = None, pbc: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(edge_index [2, E], cell_shift [E, 3])`` at ``cutoff``, as :func:`neighbor_list` returns them."""
        positions = np.ascontiguousarray(positions, dtype=np.float64)
        pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
        box = np.zeros((3, 3)) if not pbc.any() else np.asarray(cell, dtype=np.float64)
        if self.skin == 0.0:
            self.builds += 1
            return neighbor_list(positions, self.cutoff, box if pbc.any() else None, pbc)
        if self._stale(positions, box, pbc):
            self._pairs = neighbor_list(positions, self.cutoff + self.skin, box if pbc.any() else None, pbc)
            self._reference = (positions.copy(), box.copy(), pbc.copy())
            self.builds += 1
        edge_index, shift = self._pairs
        vectors = positions[edge_index[0]] - positions[edge_index[1]] + shift @ box  # [E', 3]
        keep = np.einsum("ij,ij->i", vectors, vectors) < self.cutoff**2  # [E']
        return edge_index[:, keep], shift[keep]
