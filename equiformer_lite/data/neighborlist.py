"""Neighbour lists for open and periodic structures.

Open structures use :func:`torch_cluster.radius_graph`. Periodic structures replicate the
(wrapped) atoms over every lattice image that can hold a neighbour within the cutoff and search
the images with :func:`torch_cluster.radius`, so small or skewed cells, where an atom meets
several images of the same neighbour (or its own image), are handled exactly. No neighbour is
ever dropped: the search is never capped.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch_cluster import radius, radius_graph

__all__ = ["neighbor_list", "images_needed", "edge_vectors"]


def images_needed(cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    r"""Number of lattice images needed along each lattice vector.

    With atoms wrapped into the cell, fractional differences lie in (-1, 1), so an image shift
    :math:`S_k` can hold a neighbour only if :math:`|S_k| \le \lceil r_c / d_k \rceil`, where
    :math:`d_k = 1/\lVert b_k \rVert` is the spacing of the lattice planes normal to the
    reciprocal vector :math:`b_k`.

    Returns ``[3]`` int array (0 along non-periodic directions).
    """
    reciprocal = np.linalg.inv(cell).T  # rows b_k with a_i . b_k = delta_ik
    plane_spacing = 1.0 / np.linalg.norm(reciprocal, axis=1)
    n = np.ceil(cutoff / plane_spacing).astype(np.int64)
    return np.where(pbc, n, 0)


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
    cell : ``[3, 3]`` lattice vectors as rows, Å. Needed when any ``pbc`` is True.
    pbc : ``[3]`` bools.

    Returns
    -------
    edge_index : ``[2, E]`` int64, rows (sender j, receiver i).
    cell_shift : ``[E, 3]`` int64 shift S such that
        :math:`\mathbf r_{ij} = \mathbf r_j - \mathbf r_i + S \cdot \mathrm{cell}`.
        Self-pairs are excluded, except a periodic self-image at a non-zero shift.
    """
    positions = np.asarray(positions, dtype=np.float64)
    pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return _open_neighbor_list(positions, cutoff)
    return _periodic_neighbor_list(positions, cutoff, np.asarray(cell, dtype=np.float64), pbc)


def _open_neighbor_list(positions: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    n = len(positions)
    pos = torch.from_numpy(positions)
    # radius_graph returns (source, target) = (j, i); max_num_neighbors = n - 1 is no cap at all.
    edge_index = radius_graph(pos, r=cutoff, loop=False, max_num_neighbors=max(n - 1, 1))
    edge_index = edge_index.numpy().astype(np.int64)
    return edge_index, np.zeros((edge_index.shape[1], 3), dtype=np.int64)


def _periodic_neighbor_list(
    positions: np.ndarray, cutoff: float, cell: np.ndarray, pbc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_atoms = len(positions)
    frac = positions @ np.linalg.inv(cell)
    # Wrap along periodic directions only; remember the integer offset to undo it afterwards.
    offset = np.where(pbc, np.floor(frac), 0.0)
    wrapped = (frac - offset) @ cell

    n_img = images_needed(cell, pbc, cutoff)
    shifts = np.array(
        list(itertools.product(*(range(-k, k + 1) for k in n_img))), dtype=np.float64
    )  # [S, 3]
    images = (wrapped[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)  # [S * N, 3]

    # radius(x, y) finds, for every query y, the points of x within r: returns (y_idx, x_idx).
    receiver, image = radius(
        torch.from_numpy(images),
        torch.from_numpy(wrapped),
        r=cutoff,
        max_num_neighbors=len(images),
    ).numpy()
    sender = image % n_atoms
    shift = shifts[image // n_atoms]
    keep = ~((sender == receiver) & ~shift.any(axis=1))  # drop the zero-shift self pair
    receiver, sender, shift = receiver[keep], sender[keep], shift[keep]
    # Undo the wrapping: r_j - r_i + S.cell on wrapped positions equals
    # r_j - r_i + (S - off_j + off_i).cell on the positions the caller gave.
    shift = shift - offset[sender] + offset[receiver]
    edge_index = np.stack([sender, receiver]).astype(np.int64)
    return edge_index, np.rint(shift).astype(np.int64)


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
