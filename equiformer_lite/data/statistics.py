r"""Data-set statistics for a potential's readout: reference energies E0, scale, shift, neighbours.

A model predicts :math:`E = \sum_i (\sigma \hat e_i + \mu + E^0_{Z_i})` (see
:class:`~equiformer_lite.nn.readout.ScaleShiftEnergies`). The E0s carry most of the total energy
(often > 99 %); fitting them first leaves the network a residual of order the scale σ.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch_geometric.data import Data

from . import keys
from .neighborlist import edge_vectors
from .species import check_elements, species_table

__all__ = ["fit_atomic_energies", "compute_statistics", "DatasetStatistics"]


def _composition(dataset: Sequence[Data], species: Sequence[str]) -> np.ndarray:
    """``[n_structures, n_species]`` counts of each element in each structure."""
    if len(dataset) == 0:
        raise ValueError("the data set is empty")
    table = species_table(species).numpy()  # [119] Z -> column
    counts = np.zeros((len(dataset), len(species)), dtype=np.int64)
    for g, graph in enumerate(dataset):
        check_elements(graph[keys.ATOMIC_NUMBERS], species, f"structure {g}")
        counts[g] = np.bincount(table[graph[keys.ATOMIC_NUMBERS].numpy()], minlength=len(species))
    return counts


def _energies(dataset: Sequence[Data]) -> np.ndarray:
    """``[n_structures]`` total energies, eV."""
    missing = [g for g, graph in enumerate(dataset) if keys.ENERGY not in graph]
    if missing:
        raise ValueError(f"structures {missing[:10]} have no energy label ({len(missing)} of {len(dataset)})")
    return np.array([float(graph[keys.ENERGY]) for graph in dataset], dtype=np.float64)


def fit_atomic_energies(dataset: Sequence[Data], species: Sequence[str]) -> dict[str, float]:
    r"""Per-element reference energies E0 (eV) by least squares on composition.

    Solves :math:`\min_{E^0} \lVert C E^0 - E \rVert^2`, with ``C [n_structures, n_species]``
    the element counts and ``E [n_structures]`` the total energies (eV).

    When ``C`` has rank below the number of species the E0s are not unique: a single molecule's
    MD (every structure has the same composition), compositions that always come in fixed
    ratios (water clusters: H = 2 O), or a species absent from the data. Then the minimum-norm
    least-squares solution is returned with a warning. Only the determined combinations are
    meaningful; in particular for a fixed composition :math:`c`, :math:`c \cdot E^0` equals the
    mean energy, since the mean is in the column space of ``C``. An absent species gets 0.

    Parameters
    ----------
    dataset : graphs with ``atomic_numbers`` and ``energy`` (e.g. an :class:`AtomicDataset`).
    species : element symbols; every element in the data must be listed.

    Returns
    -------
    dict symbol -> E0 in eV, in ``species`` order.
    """
    counts = _composition(dataset, species).astype(np.float64)  # [G, S]
    energies = _energies(dataset)  # [G]
    e0, _, rank, _ = np.linalg.lstsq(counts, energies, rcond=None)  # minimum-norm when rank-deficient
    if rank < len(species):
        absent = [s for s, n in zip(species, counts.sum(axis=0)) if n == 0]
        warnings.warn(
            f"the composition matrix has rank {rank} < {len(species)} species"
            + (f" (absent from the data: {absent})" if absent else "")
            + ": the atomic reference energies are not unique (e.g. a single molecule's MD, where only "
            "their sum over the molecule is determined). Using the minimum-norm least-squares "
            "solution (for a single composition its sum over that composition is the mean energy); "
            "pass known E0s instead if you have them.",
            UserWarning,
            stacklevel=2,
        )
    return {s: float(v) for s, v in zip(species, e0)}


@dataclass(frozen=True)
class DatasetStatistics:
    r"""Summary of a training set for setting up a model.

    Attributes
    ----------
    num_structures, num_atoms : structures, and atoms summed over them.
    element_counts : symbol -> number of atoms of that element, in ``species`` order.
    energy_per_atom_mean, energy_per_atom_std : mean and (population) std over structures of
        the residual per atom :math:`r_g / N_g`, :math:`r_g = E_g - \sum_{i \in g} E^0_{Z_i}`,
        eV/atom; None without energies.
    energy_shift_per_atom : the constant per-atom energy μ that best fits the residuals,
        :math:`\arg\min_\mu \sum_g (r_g - N_g \mu)^2 = \sum_g N_g r_g / \sum_g N_g^2`, eV/atom;
        0 (to round-off) for least-squares E0s. None without energies.
    atomic_energy_mean, atomic_energy_std : mean and (population) std over all atoms of the
        per-atom energy labels minus their E0, :math:`\epsilon_i - E^0_{Z_i}`, eV; None unless
        every structure has per-atom energies.
    forces_rms : :math:`\sqrt{\langle F_{i\alpha}^2 \rangle}` over all atoms and Cartesian
        components, eV/Å (= RMS force norm / √3); None without forces.
    has_energy, has_forces : whether every structure has that label.
    has_stress : whether any structure has a stress label (padded ones, of weight 0, excluded).
    avg_num_neighbors : directed edges per atom within the cutoff, for message normalisation.
    cutoff : radius the neighbours were counted at, Å.
    """

    num_structures: int
    num_atoms: int
    element_counts: dict[str, int]
    energy_per_atom_mean: Optional[float]
    energy_per_atom_std: Optional[float]
    energy_shift_per_atom: Optional[float]
    atomic_energy_mean: Optional[float]
    atomic_energy_std: Optional[float]
    forces_rms: Optional[float]
    has_energy: bool
    has_forces: bool
    has_stress: bool
    avg_num_neighbors: float
    cutoff: float

    @property
    def suggested_scale(self) -> float:
        """Per-atom energy scale σ, eV: the force RMS when forces are present (the scale sets the
        size of the forces the network starts from), else the std of the residual energy per
        atom; 1.0 (with a warning) if that is zero too."""
        if self.forces_rms is not None and self.forces_rms > 0:
            return float(self.forces_rms)
        if self.energy_per_atom_std is not None and self.energy_per_atom_std > 0:
            return float(self.energy_per_atom_std)
        warnings.warn("neither forces nor energy residuals vary: using scale 1.0", UserWarning, stacklevel=2)
        return 1.0

    @property
    def suggested_shift(self) -> float:
        r"""Per-atom energy shift μ, eV: :attr:`energy_shift_per_atom`, 0 without energies.

        This is 0 when the E0s were fitted by :func:`fit_atomic_energies`. A constant μ per atom
        adds :math:`N\mu = \sum_s n_s \mu` to a structure, exactly as adding μ to every E0: it
        is redundant with the E0s, and least-squares E0s already absorb the best such constant
        (summing their normal equations :math:`C^T r = 0` over species gives
        :math:`\sum_g N_g r_g = 0`). Adding the mean residual per atom on top would count it
        twice. With E0s from elsewhere it is the best constant on top of them.
        """
        return 0.0 if self.energy_shift_per_atom is None else float(self.energy_shift_per_atom)

    def suggested_scale_shift(self, per_atom_labels: bool = False) -> tuple[float, float]:
        """``(scale, shift)`` in eV for :class:`~equiformer_lite.nn.readout.ScaleShiftEnergies`.

        ``per_atom_labels=True`` (a model trained on per-atom energies, not forces): the std and
        mean of the per-atom labels minus E0, the spread the outputs must span. The force RMS would
        be the wrong unit there (13.4 against a per-atom spread of 0.5 on the A2I paper's 2D LJ).
        Falls back to the default choice when the data carry no per-atom energies.
        """
        if per_atom_labels and self.atomic_energy_std:
            return float(self.atomic_energy_std), float(self.atomic_energy_mean)
        return self.suggested_scale, self.suggested_shift


def _edge_lengths(graph: Data) -> torch.Tensor:
    pos = graph[keys.POSITIONS]
    batch = torch.zeros(pos.shape[0], dtype=torch.long)
    vec = edge_vectors(pos, graph[keys.EDGE_INDEX], graph[keys.EDGE_CELL_SHIFT].to(pos.dtype), graph[keys.CELL].reshape(-1, 3, 3), batch)
    return vec.norm(dim=1)  # [E]


def _has_stress(graph: Data) -> bool:
    if keys.STRESS not in graph:
        return False
    return keys.STRESS_WEIGHT not in graph or bool(graph[keys.STRESS_WEIGHT].item() > 0)


def _least_squares_shift(residual: np.ndarray, n_atoms: np.ndarray, energies: np.ndarray) -> float:
    """argmin_mu sum_g (r_g - N_g mu)^2 for total residuals r_g [G] (eV) and atom counts N_g [G]."""
    shift = float(np.sum(n_atoms * residual) / np.sum(n_atoms**2))
    # Least-squares E0s make this 0 up to the round-off of the fit, relative to the energies.
    tolerance = 1e-10 * float(np.max(np.abs(energies) / n_atoms))
    return 0.0 if abs(shift) <= tolerance else shift


def compute_statistics(
    dataset: Sequence[Data],
    species: Sequence[str],
    atomic_energies: Optional[Union[Mapping[str, float], Sequence[float]]] = None,
    *,
    cutoff: Optional[float] = None,
) -> DatasetStatistics:
    """Statistics of a data set of graphs (e.g. an :class:`AtomicDataset`).

    Parameters
    ----------
    dataset : graphs from :func:`~equiformer_lite.data.atoms_to_graph`.
    species : element symbols; every element in the data must be listed.
    atomic_energies : E0s in eV, by symbol or in ``species`` order (e.g. from
        :func:`fit_atomic_energies`); None means zero.
    cutoff : count neighbours within this radius (Å), at most the graphs' cutoff; default the
        graphs' cutoff. Use the model's cutoff if it is smaller.

    >>> from ase.build import molecule
    >>> from equiformer_lite.data import AtomicDataset
    >>> water = molecule("H2O")
    >>> water.info["energy"] = -14.0
    >>> stats = compute_statistics(AtomicDataset.from_structures([water], 3.0), ["H", "O"])
    >>> stats.num_atoms, stats.avg_num_neighbors
    (3, 2.0)
    """
    counts = _composition(dataset, species)  # [G, S]
    e0 = np.zeros(len(species))
    if isinstance(atomic_energies, Mapping):
        missing = [s for s in species if s not in atomic_energies]
        if missing:
            raise ValueError(f"atomic_energies has no value for {missing}")
        e0 = np.array([float(atomic_energies[s]) for s in species])
    elif atomic_energies is not None:
        e0 = np.asarray(atomic_energies, dtype=np.float64)
        if e0.shape != (len(species),):
            raise ValueError(
                f"atomic_energies must have one value per species ({len(species)}), got shape {e0.shape}"
            )

    graph_cutoff = float(dataset[0][keys.GRAPH_CUTOFF])
    if cutoff is not None and not 0 < cutoff <= graph_cutoff:
        raise ValueError(
            f"cutoff ({cutoff} Å) must lie in (0, {graph_cutoff}], the cutoff the graphs were built with"
        )
    n_atoms = counts.sum(axis=1)  # [G]

    has = {label: [label in graph for graph in dataset] for label in (keys.ENERGY, keys.FORCES, keys.ATOMIC_ENERGIES)}
    for label, present in has.items():
        if any(present) and not all(present):
            raise ValueError(f"{label} is present in {sum(present)} of {len(present)} structures: all or none")
    mean = std = shift = rms = atomic_mean = atomic_std = None
    if all(has[keys.ENERGY]):
        energies = _energies(dataset)  # [G]
        residual = (energies - counts @ e0) / n_atoms  # [G] eV/atom
        mean, std = float(residual.mean()), float(residual.std())
        shift = _least_squares_shift(residual * n_atoms, n_atoms, energies)
    if all(has[keys.ATOMIC_ENERGIES]):
        labels = np.concatenate([graph[keys.ATOMIC_ENERGIES].double().numpy() for graph in dataset])  # [N_total]
        numbers = np.concatenate([graph[keys.ATOMIC_NUMBERS].numpy() for graph in dataset])  # [N_total]
        residual_atoms = labels - np.asarray(e0)[species_table(species).numpy()[numbers]]
        atomic_mean, atomic_std = float(residual_atoms.mean()), float(residual_atoms.std())
    if all(has[keys.FORCES]):
        forces = torch.cat([graph[keys.FORCES] for graph in dataset])  # [N_total, 3]
        rms = float(forces.square().mean().sqrt())

    n_edges = 0
    for graph in dataset:
        if cutoff is None:
            n_edges += graph[keys.EDGE_INDEX].shape[1]
        else:
            n_edges += int((_edge_lengths(graph) < cutoff).sum())
    return DatasetStatistics(
        num_structures=len(dataset),
        num_atoms=int(n_atoms.sum()),
        element_counts={s: int(n) for s, n in zip(species, counts.sum(axis=0))},
        energy_per_atom_mean=mean,
        energy_per_atom_std=std,
        energy_shift_per_atom=shift,
        atomic_energy_mean=atomic_mean,
        atomic_energy_std=atomic_std,
        forces_rms=rms,
        has_energy=all(has[keys.ENERGY]),
        has_forces=all(has[keys.FORCES]),
        has_stress=any(_has_stress(graph) for graph in dataset),
        avg_num_neighbors=n_edges / float(n_atoms.sum()),
        cutoff=float(cutoff) if cutoff is not None else graph_cutoff,
    )
