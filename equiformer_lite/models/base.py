"""Shared machinery of every potential: species, edge geometry, energy -> forces and stress."""

from __future__ import annotations

import bisect
import copy
import inspect
from dataclasses import dataclass, replace
from typing import Any, Mapping, NamedTuple, Optional, Sequence, Union

import torch
from torch import nn
from torch_geometric.utils import scatter

from ..data import keys
from ..data.graph import DEFAULT_MIN_DISTANCE
from ..data.neighborlist import edge_vectors
from ..data.species import parse_species, species_index, species_table
from ..nn.readout import ScaleShiftEnergies
from ..utils import default_dtype, parse_dtype

__all__ = ["AtomisticPotential", "AtomReadout", "ModelInputs", "edge_vectors", "stress_requested", "validate_inputs"]


_GRAPH_FIELDS = (keys.ATOMIC_NUMBERS, keys.EDGE_INDEX, keys.EDGE_CELL_SHIFT, keys.CELL, keys.PBC)


def _field(data: Any, key: str) -> Optional[torch.Tensor]:
    return data[key] if key in data else None


@dataclass
class ModelInputs:
    """A validated graph or batch: what a potential's :meth:`~AtomisticPotential.forward` reads.

    Made by :meth:`AtomisticPotential.prepare_inputs`, which checks everything data-dependent
    once (elements, finiteness, the neighbour list's cutoff, zero-length edges); the tensors are in
    the model's dtype and the Python fields describe the batch, so the forward that reads them is
    pure tensor code (no host sync, nothing for ``torch.compile`` to break on).
    """

    pos: torch.Tensor  # [N, 3] Å
    species: torch.Tensor  # [N] species index
    edge_index: torch.Tensor  # [2, E] (sender j, receiver i)
    shift: torch.Tensor  # [E, 3] integer cell shifts
    cell: torch.Tensor  # [B, 3, 3] rows are lattice vectors, Å
    pbc: torch.Tensor  # [B, 3] bool
    batch: torch.Tensor  # [N] structure index
    num_graphs: int  # B
    any_periodic: bool  # some structure has pbc all True (the default for computing stress)
    max_atoms: int  # atoms of the largest structure (the padded size of dense models)
    # Runs of receivers (first edge, first atom) that a model attends one at a time, edges
    # sorted by receiver (:func:`receiver_chunks`); empty: all edges at once.
    receiver_chunks: tuple = ()


def validate_inputs(
    data: Any, *, dtype: torch.dtype, cutoff: float, z_to_index: torch.Tensor, species: Sequence[str], centre: bool = True
) -> ModelInputs:
    """The checks a graph or batch passes before a potential reads it: the door of every model.

    Unknown elements, non-finite positions, a neighbour list built with a smaller cutoff than the
    model's, an unsorted batch vector and zero-length edges raise ``ValueError`` here, so that a
    forward on the returned :class:`ModelInputs` (tensors in ``dtype``) is pure tensor code.

    ``centre`` (for translation-invariant models): positions relative to each structure's centroid,
    :math:`r_i - \bar r_{b(i)}`, formed in the data's dtype before the cast to ``dtype``. Graphs
    from :func:`~equiformer_lite.data.atoms_to_graph` keep float64 positions, so a float32 model of
    a molecule 1e5 Å from the origin sees its geometry to float32 precision of the bond lengths,
    not of 1e5 Å (energies and forces do not depend on the reference point; neither do the edge
    vectors, and the stress of a periodic cell is unchanged by a translation).
    """
    pos = _field(data, keys.POSITIONS)
    if pos is None or pos.shape[0] == 0:
        raise ValueError("empty structure: no atom positions")
    missing = [k for k in _GRAPH_FIELDS if _field(data, k) is None]
    if missing:
        raise ValueError(f"the input lacks the graph fields {missing}: build it with equiformer_lite.atoms_to_graph")
    if not torch.isfinite(pos).all():
        raise ValueError("positions contain NaN or inf")
    num_nodes = pos.shape[0]
    index = species_index(_field(data, keys.ATOMIC_NUMBERS), z_to_index, species)
    edge_index = _field(data, keys.EDGE_INDEX)
    shift = _field(data, keys.EDGE_CELL_SHIFT).to(dtype)
    cell = _field(data, keys.CELL).to(dtype).reshape(-1, 3, 3)
    pbc = _field(data, keys.PBC).reshape(-1, 3)
    batch = _field(data, keys.BATCH)
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=pos.device)
    num_graphs = cell.shape[0]
    if num_nodes > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("the batch vector must be sorted (atoms of each structure contiguous)")
    if centre:
        pos = pos - _centroids(pos, batch, num_graphs)[batch]  # [N, 3], in the data's dtype
    pos = pos.to(dtype)
    graph_cutoff = _field(data, keys.GRAPH_CUTOFF)
    if graph_cutoff is not None and (graph_cutoff < cutoff - 1e-9).any():
        raise ValueError(
            f"the neighbour list was built with cutoff {graph_cutoff.min().item():.4g} Å, "
            f"smaller than the model's {cutoff} Å"
        )
    if edge_index.shape[1]:
        vectors = edge_vectors(pos, edge_index, shift, cell, batch)  # [E, 3]
        if bool((vectors.abs().amax(dim=1) == 0).any()):
            raise ValueError("coincident atoms: an edge has zero length")
    counts = torch.bincount(batch, minlength=num_graphs)  # [B]
    return ModelInputs(pos, index, edge_index, shift, cell, pbc, batch, num_graphs,
                       any_periodic=bool(pbc.all(dim=1).any()), max_atoms=int(counts.max()))


def receiver_chunks(inputs: ModelInputs, max_edges: int) -> ModelInputs:
    """``inputs`` with its edges split into runs of whole receivers of at most ``max_edges`` edges
    each (a receiver with more edges is a run of its own), ``receiver_chunks = ((first edge, first
    atom), ...)``; the edges are sorted by receiver first where they are not (stable, so each
    receiver's neighbours keep their order; :func:`~equiformer_lite.data.neighbor_list` gives
    them sorted). Unchanged when all edges fit in one run.
    """
    if not isinstance(max_edges, int) or isinstance(max_edges, bool) or max_edges < 1:
        raise ValueError(f"max_edges must be a positive integer, got {max_edges!r}")
    edge_index, shift = inputs.edge_index, inputs.shift
    num_edges, num_nodes = edge_index.shape[1], inputs.pos.shape[0]
    if num_edges <= max_edges:
        return inputs
    receiver = edge_index[1]
    if bool((receiver[1:] < receiver[:-1]).any()):
        order = torch.argsort(receiver, stable=True)  # [E]
        edge_index, shift, receiver = edge_index[:, order], shift[order], receiver[order]
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=receiver.device)
    ptr[1:] = torch.bincount(receiver, minlength=num_nodes).cumsum(0)  # [N + 1] first edge of every atom
    ptr = ptr.tolist()
    chunks, first_node = [], 0
    while first_node < num_nodes:  # greedy: as many whole receivers as fit, at least one
        end = bisect.bisect_right(ptr, ptr[first_node] + max_edges) - 1  # last atom boundary within the budget
        chunks.append((ptr[first_node], first_node))
        first_node = max(end, first_node + 1)
    return replace(inputs, edge_index=edge_index, shift=shift, receiver_chunks=tuple(chunks))


def _centroids(pos: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """``[B, 3]`` mean position of each structure's atoms (``pos [N, 3]``, ``batch [N]``)."""
    sums = pos.new_zeros(num_graphs, 3).index_add_(0, batch, pos.detach())  # [B, 3]
    counts = torch.bincount(batch, minlength=num_graphs).clamp(min=1).to(pos.dtype)  # [B]
    return sums / counts[:, None]


class AtomReadout(NamedTuple):
    """What a model's :meth:`~AtomisticPotential.raw_energies` returns; the base class's energy
    head turns it into per-atom energies."""

    raw: torch.Tensor  # [N] raw per-atom readout, before scale, shift and E0
    # A local model's readout of a lone atom of every species [S] and the smooth coordination
    # numbers [N] (the envelope sums), so that an atom without neighbours gets exactly its E0.
    isolated: Optional[torch.Tensor] = None
    coordination: Optional[torch.Tensor] = None
    extras: Optional[dict] = None  # further per-atom outputs, e.g. {"direct_forces": [N, 3]}


def _check_cutoff(cutoff: Any) -> float:
    """A local model's cutoff: a positive number of Å (``ValueError`` naming the value otherwise)."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
        raise ValueError(f"cutoff must be a positive number of Å, got {cutoff!r}")
    return float(cutoff)


def stress_requested(inputs: ModelInputs, compute_stress: Optional[bool]) -> bool:
    """Whether to compute the stress: by default when some structure is fully periodic;
    ``True`` needs one (``ValueError`` otherwise)."""
    if compute_stress is None:
        return inputs.any_periodic
    if compute_stress and not inputs.any_periodic:
        raise ValueError("stress needs at least one fully periodic structure (pbc all True)")
    return bool(compute_stress)


class AtomisticPotential(nn.Module):
    r"""Base class of the package's potentials.

    A subclass builds its modules in ``_build`` and implements one hook, :meth:`raw_energies`
    (its raw per-atom readout from validated inputs); this class owns the energy head
    (:attr:`scale_shift`: scale, shift, E0s) that turns the readout into per-atom energies
    :math:`E_i`, and turns those into the total energy :math:`E = \sum_i E_i`, conservative
    forces :math:`F = -\partial E / \partial r` and, for periodic cells, the stress
    :math:`\sigma = \frac{1}{V} \partial E / \partial \varepsilon` under a symmetric strain
    :math:`\varepsilon` applied to positions and cell (ASE's sign convention).
    """

    model_type: str = ""
    # What the physics audit may demand of the model: invariance of the energy under rotations
    # (and reflections, with parity), and locality (a sum of terms within the cutoff: smooth at the
    # cutoff, extensive over supercells, blind to the choice of cell).
    rotation_invariant: bool = True
    local: bool = True
    # Invariance under translations: the inputs are then taken relative to each structure's
    # centroid (in the precision of the data, before the cast to the model's dtype), so that a
    # float32 model sees the same relative geometry wherever the structure sits.
    translation_invariant: bool = True
    # The energy head: a trained per-element shift on top of the data's (see ScaleShiftEnergies).
    learned_species_shift: bool = True
    # Whether the model reads the neighbour list's edges. A model without edges (global attention
    # on coordinates) has no cutoff; the data pipeline then builds its graph at the overlap radius
    # only, so that overlapping atoms are still rejected (see :attr:`graph_cutoff`).
    needs_edges: bool = True

    def __init__(self, species: Sequence[Union[str, int]], cutoff: Optional[float]) -> None:
        super().__init__()
        if self.needs_edges:
            _check_cutoff(cutoff)
        elif cutoff is not None:
            raise ValueError(f"{type(self).__name__} reads no neighbour list and takes no cutoff, got {cutoff!r}")
        self.species = parse_species(species)
        self.cutoff: Optional[float] = None if cutoff is None else float(cutoff)
        self.register_buffer("z_to_index", species_table(self.species), persistent=False)
        self.config: dict[str, Any] = {}

    @property
    def graph_cutoff(self) -> float:
        """The radius (Å) of the neighbour list the data pipeline builds for this model: its
        cutoff, or for a model without edges :data:`~equiformer_lite.data.DEFAULT_MIN_DISTANCE`
        (the list then holds only overlapping pairs, which graph building rejects)."""
        return self.cutoff if self.needs_edges else DEFAULT_MIN_DISTANCE

    @classmethod
    def graph_cutoff_of(cls, config: Mapping[str, Any]) -> float:
        """:attr:`graph_cutoff` of the model a config would build, before building it (a training
        run builds its graphs first: the model's statistics come from them)."""
        if not cls.needs_edges:
            return DEFAULT_MIN_DISTANCE
        return _check_cutoff(config.get("cutoff", inspect.signature(cls).parameters["cutoff"].default))

    def _build_from_config(self, config: dict[str, Any]) -> None:
        """Finish a subclass constructor: make ``config`` (its ``locals()``) YAML-safe and complete
        (dtype as a string, species as symbols, E0s as a dict or list), keep it as ``self.config``,
        build the modules with ``self._build(config)`` in the model's dtype, then set the E0s.

        The model is *built* in its dtype so that constants computed at construction (e3nn's
        Clebsch-Gordan coefficients) carry that dtype's full precision.
        """
        dtype = parse_dtype(config.get("dtype"))
        atomic_energies = config.get("atomic_energies")
        config.update(dtype=str(dtype).removeprefix("torch."), species=list(self.species))
        if isinstance(atomic_energies, Mapping):
            config["atomic_energies"] = dict(atomic_energies)
        elif atomic_energies is not None:
            config["atomic_energies"] = list(atomic_energies)
        self.config = config
        with default_dtype(dtype):
            self._build(config)
            self.scale_shift = ScaleShiftEnergies(
                self.num_species, scale=config["scale"], shift=config["shift"], learned_species_shift=self.learned_species_shift
            )
        if atomic_energies is not None:
            self.set_atomic_energies(atomic_energies)

    # --- to be provided by subclasses -------------------------------------------------------------
    def _build(self, config: dict[str, Any]) -> None:
        """Create the modules from ``config`` (called by :meth:`_build_from_config`; the energy
        head, :attr:`scale_shift`, is made by the base class after it)."""
        raise NotImplementedError

    def raw_energies(self, inputs: "ModelInputs", positions: torch.Tensor, cell: torch.Tensor) -> "AtomReadout":
        """The model's one hook: its raw per-atom readout from validated inputs, positions ``[N, 3]``
        and cells ``[B, 3, 3]`` (both strained when the stress is computed, so they carry the graph
        to differentiate). An edge-based model forms its edges with :func:`edge_vectors` from these
        two tensors; the energy head (:meth:`atomic_energies`) is the base class's."""
        raise NotImplementedError

    # --- the energy head ----------------------------------------------------------------------------
    def atomic_energies(
        self, inputs: "ModelInputs", positions: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""Per-atom energies ``[N]`` (eV) and any extra per-atom outputs: the readout of
        :meth:`raw_energies` through the energy head :attr:`scale_shift` (scale, shift and E0s).

        With the lone-atom readouts of a local model (``AtomReadout.isolated``) the head is
        :meth:`~equiformer_lite.nn.ScaleShiftEnergies.relative_to_isolated`, so an atom with no
        neighbour gets exactly its E0; otherwise :math:`\sigma \hat e_i + \mu + E^0_{Z_i}`.
        """
        readout = self.raw_energies(inputs, positions, cell)
        if readout.isolated is None:
            energies = self.scale_shift(readout.raw, inputs.species)
        else:
            energies = self.scale_shift.relative_to_isolated(readout.raw, readout.isolated, readout.coordination, inputs.species)
        return energies, dict(readout.extras or {})

    # --- public API -------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return next(p for p in self.parameters() if p.is_floating_point()).dtype

    @property
    def num_species(self) -> int:
        return len(self.species)

    def species_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """``[N]`` atomic numbers -> ``[N]`` species index; unknown elements raise ``ValueError``."""
        return species_index(atomic_numbers, self.z_to_index, self.species)

    def set_atomic_energies(self, energies: Union[Mapping[str, float], Sequence[float]]) -> None:
        """Set the per-element reference energies E0 (eV), by symbol or in ``species`` order."""
        ref = self.scale_shift.reference_energies
        if isinstance(energies, Mapping):
            unknown = set(energies) - set(self.species)
            missing = set(self.species) - set(energies)
            if unknown or missing:
                raise ValueError(f"atomic energies: unknown elements {sorted(unknown)}, missing {sorted(missing)}")
            values = [float(energies[s]) for s in self.species]
        else:
            values = [float(e) for e in energies]
            if len(values) != len(self.species):
                raise ValueError(f"got {len(values)} atomic energies for {len(self.species)} species")
        tensor = torch.tensor(values, dtype=ref.dtype, device=ref.device)
        if not torch.isfinite(tensor).all():
            raise ValueError(f"atomic energies must be finite, got {values}")
        ref.copy_(tensor)

    def with_dtype(self, dtype: Union[str, torch.dtype]) -> "AtomisticPotential":
        """The same model rebuilt in ``dtype`` (``"float32"``/``"float64"``) with the same weights.

        Unlike ``.to(dtype)``, e3nn's constants are recomputed in the new dtype, so a float64
        copy of a float32 model is equivariant to float64 precision.
        """
        if not self.config:
            raise ValueError(f"{type(self).__name__} has no config to rebuild from")
        rebuilt = type(self)(**{**self.config, "dtype": dtype})
        rebuilt.load_state_dict(self.state_dict())
        return rebuilt.to(next(self.parameters()).device).train(self.training)

    def for_inference(self) -> "AtomisticPotential":
        """A copy of the model for evaluation (what the ASE calculator and the TorchSim interface
        run): eval mode, and parameters that do not require grad. Forces and stress still come by
        autograd through the positions and the strain, but the forward no longer keeps the
        activations that only weight gradients need (the input of every linear map, on every
        edge): a force evaluation of a 3,000-atom water box takes 20-27 % less memory
        (benchmarks/README.md). This model is left as it is.
        """
        clone = copy.deepcopy(self).eval()
        return clone.requires_grad_(False)

    def __deepcopy__(self, memo: dict) -> "AtomisticPotential":
        """A copy rebuilt from the config, with this model's weights, dtype, device and mode.

        Python's default deep copy round-trips e3nn's compiled (TorchScript) tensor products
        through ``torch.jit.save``/``load``, which turns their large constants into extra buffers
        (seen at 64 channels): the copy's ``state_dict`` then no longer matches the model's, which
        breaks the EMA copy of the weights and any checkpoint written from a copy.
        """
        if not self.config:
            raise TypeError(f"{type(self).__name__} has no config to rebuild a copy from")
        first = next(self.parameters())
        clone = type(self)(**copy.deepcopy(self.config, memo)).to(device=first.device, dtype=first.dtype)
        clone.load_state_dict(self.state_dict())
        for theirs, ours in zip(clone.parameters(), self.parameters()):
            theirs.requires_grad_(ours.requires_grad)
        memo[id(self)] = clone
        return clone.train(self.training)

    def prepare_inputs(self, data: Any) -> "ModelInputs":
        """Validated model inputs of a graph/batch (see :func:`validate_inputs`), in the model's dtype;
        then the model's own checks (:meth:`check_inputs`)."""
        inputs = validate_inputs(data, dtype=self.dtype, cutoff=self.graph_cutoff, z_to_index=self.z_to_index,
                                 species=self.species, centre=self.translation_invariant)
        self.check_inputs(inputs)
        return inputs

    def check_inputs(self, inputs: "ModelInputs") -> None:
        """Model-specific checks of validated inputs (called by :meth:`prepare_inputs`); the default
        has none."""

    def forward(
        self, data: Any, *, compute_forces: bool = True, compute_stress: Optional[bool] = None
    ) -> dict[str, torch.Tensor]:
        """Energies, forces and stress of a graph or batch of graphs.

        Parameters
        ----------
        data : :class:`ModelInputs` from :meth:`prepare_inputs` (then this is pure tensor code,
            which ``torch.compile`` and ``torch.export`` trace whole), or a graph it accepts: a
            :class:`torch_geometric.data.Data`/``Batch`` from :func:`atoms_to_graph`, or a dict
            with the same keys (validated first).
        compute_forces : forces by autograd (conservative).
        compute_stress : ``None`` computes the stress when any structure is fully periodic
            (rows of open structures in the batch are zero); ``True`` requires one.

        Returns
        -------
        dict with ``energy [B]``, ``atomic_energies [N]``, ``forces [N, 3]``, ``stress [B, 3, 3]``,
        ``virial [B, 3, 3]`` (as computed), and ``direct_forces [N, 3]`` for a direct force head.
        """
        inputs = data if isinstance(data, ModelInputs) else self.prepare_inputs(data)
        compute_stress = stress_requested(inputs, compute_stress)
        return self.compute(inputs, compute_forces=compute_forces, compute_stress=compute_stress)

    def compute(
        self, inputs: ModelInputs, *, compute_forces: bool, compute_stress: bool, strain: Optional[torch.Tensor] = None
    ) -> dict[str, torch.Tensor]:
        """The outputs of :meth:`forward` from validated inputs, every choice made: pure tensor code
        (what ``torch.compile`` and ``torch.export`` trace). With ``compute_stress`` the strain
        derivative (``virial``) is computed for every structure and ``stress`` is zero for open ones.

        The tensors differentiated for forces and stress are the positions (made to require grad
        here unless they do) and ``strain`` (``[B, 3, 3]`` zeros that require grad; made here if
        not given). A compiled caller passes both in, requiring grad, since a compiled graph may
        not return results that depend on a tensor made to require grad inside it.
        """
        pos, cell, pbc, batch, num_graphs = inputs.pos, inputs.cell, inputs.pbc, inputs.batch, inputs.num_graphs

        with torch.enable_grad():
            if compute_forces and not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            strained = pos
            if compute_stress:
                if strain is None:
                    strain = pos.new_zeros(num_graphs, 3, 3).requires_grad_(True)
                sym = 0.5 * (strain + strain.transpose(1, 2))  # [B, 3, 3]
                strained = pos + torch.einsum("ni,nij->nj", pos, sym[batch])  # [N, 3]
                cell = cell + torch.bmm(cell, sym)  # [B, 3, 3]
            atomic, extras = self.atomic_energies(inputs, strained, cell)  # [N]
            energy = scatter(atomic, batch, dim=0, dim_size=num_graphs, reduce="sum")  # [B]
            out = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: atomic, **extras}

            wrt = ([pos] if compute_forces else []) + ([strain] if compute_stress else [])
            if wrt:
                grads = torch.autograd.grad(energy.sum(), wrt, create_graph=self.training)
                if compute_forces:
                    out[keys.FORCES] = -grads[0]  # [N, 3]
                if compute_stress:
                    # Stress is defined for periodic structures only; rows of open ones are zero.
                    periodic = pbc.all(dim=1)  # [B]
                    volume = torch.linalg.det(cell).abs().clamp_min(torch.finfo(cell.dtype).tiny)  # [B]
                    out[keys.VIRIAL] = -grads[-1]  # [B, 3, 3]
                    stress = grads[-1] / volume[:, None, None]  # [B, 3, 3]
                    out[keys.STRESS] = torch.where(periodic[:, None, None], stress, torch.zeros_like(stress))
            if wrt and not self.training:
                # Inference: the gradients above consumed the graph (no create_graph), so the
                # outputs leave without it (what torch.compile needs); in training they keep it.
                out = {key: value.detach() for key, value in out.items()}
        return out
