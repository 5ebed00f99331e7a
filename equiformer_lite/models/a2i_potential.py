"""`A2IPotential`: the A2I Transformer (Yu, Ha, Seo, Lee 2021), per-atom energies from raw coordinates."""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from ..nn import SetTransformerEncoder
from ..nn.activations import get_activation
from .attention_weights import AttentionWeights
from .base import AtomisticPotential, AtomReadout, ModelInputs

__all__ = ["A2IPotential", "SPECIES_ENCODINGS"]

SPECIES_ENCODINGS = ("extra_dimension", "embedding")


class A2IPotential(AtomisticPotential):
    r"""The A2I Transformer: a stack of Set Attention Blocks on raw coordinates, per-atom energies out.

    No descriptors and no neighbour list: each atom's input row is its coordinates (position
    encoded in periodic directions) and, for several species, its type; ``num_blocks``
    :class:`~equiformer_lite.nn.SetAttentionBlock` s (self excluded from each atom's attention,
    paper Sec. II.C) let every atom attend to *every other atom of its structure*; a final linear
    layer gives :math:`\hat e_i` and

    .. math:: E_i = \sigma\,\hat e_i + \mu + E^0_{Z_i}, \qquad E = \sum_i E_i,

    forces :math:`-\partial E/\partial r` and stress by autograd (conservative).

    Input row of atom :math:`i` (``spatial_dims`` :math:`D` = 3, or 2 for the paper's 2D systems,
    which then read x, y only: z is ignored):

    * ``position_encoding=True`` (eq. 14), two columns per direction :math:`k`. Periodic direction:
      :math:`(\tfrac{L_k}{2}\cos 2\pi s_k,\ \tfrac{L_k}{2}\sin 2\pi s_k)` with fractional
      coordinates :math:`s = x\,C^{-1}` (rows of :math:`C` are the lattice vectors) and
      :math:`L_k = \lVert a_k\rVert` -- for the paper's rectangular boxes exactly
      :math:`x \to (\tfrac L2 \cos\tfrac{2\pi x}{L}, \tfrac L2 \sin\tfrac{2\pi x}{L})`; for a
      triclinic cell the generalisation along each lattice vector. Non-periodic ("fixed
      boundary") direction: :math:`(u_k, 0)` with the raw coordinate :math:`u_k` (Cartesian for
      an open structure; :math:`s_k L_k`, the coordinate along :math:`a_k`, in a partly
      periodic cell, which is Cartesian for axis-aligned boxes).
    * ``position_encoding=False`` (the paper's no-PE baseline): the Cartesian coordinates as
      given, one column per direction, whatever the boundary.
    * ``species_encoding="extra_dimension"`` (Sec. IV.C, Kob-Andersen: A at 0, B at 1): one more
      column holding the species index :math:`0 \dots S-1`; ``"embedding"``: a learned vector per
      species added to the projected input row (better for many elements).

    Symmetries, honestly: exactly permutation-equivariant (per-atom outputs) and -invariant
    (energy). With position encoding, a periodic direction is invariant to wrapping atoms by
    lattice vectors and to translations along it; rotating atoms *and* cell together leaves
    :math:`s` and :math:`L` unchanged, so it is exact too. Otherwise the model is **not**
    rotation- or translation-invariant (raw coordinates), by design of the paper, nor invariant
    to redescribing the same lattice by another cell, nor extensive (global attention: a
    supercell is a different input). Its training learns these approximately (paper Figs. 3f, 4f).

    Parameters
    ----------
    species : elements the model knows, as symbols or atomic numbers (the synthetic LJ data use Ar).
        There is no cutoff: attention spans all atoms of a structure, and the model reads no
        neighbour list (``needs_edges = False``). The data pipeline builds its graphs at
        :attr:`graph_cutoff` (the overlap radius), which only rejects overlapping atoms.
    num_blocks : Set Attention Blocks (paper: 8).
    channels : hidden width :math:`d_v` (paper: 32); divisible by ``num_heads``.
    num_heads : attention heads :math:`h` (paper: 4).
    position_encoding : eq. 14 in periodic directions (see above).
    species_encoding : ``"extra_dimension"`` or ``"embedding"``.
    spatial_dims : 3, or 2 for systems in the xy plane (in-plane lattice vectors must have no z).
    layer_norm : Set Transformer layer norms in every block (the paper: off).
    ff_hidden : hidden width of each block's row-wise feed-forward (default ``channels``).
    activation : of the feed-forward, ``"silu"`` (smooth, default), ``"tanh"`` or ``"relu"``
        (kinks: discontinuous forces).
    scale, shift : per-atom energy scale :math:`\sigma` and shift :math:`\mu`.
    atomic_energies : per-element E0s, a dict by symbol or a list in ``species`` order.
    dtype : ``"float32"`` or ``"float64"`` (default: torch's default dtype).

    >>> from ase import Atoms
    >>> from equiformer_lite.data import atoms_to_graph
    >>> model = A2IPotential(["Ar"], num_blocks=2, channels=8, num_heads=2, spatial_dims=2)
    >>> box = Atoms("Ar3", positions=[[0, 0, 0], [1.1, 0, 0], [0, 1.2, 0]], cell=[4, 4, 4], pbc=[1, 1, 0])
    >>> model(atoms_to_graph(box, model.graph_cutoff))["forces"].shape
    torch.Size([3, 3])
    """

    model_type = "a2i"
    rotation_invariant = False  # raw coordinates, by the paper's design
    translation_invariant = False  # open directions read absolute coordinates
    local = False  # every atom attends to every other atom of its structure
    learned_species_shift = False  # the energy head: scale, shift and E0s only
    needs_edges = False  # no cutoff, no neighbour list

    def __init__(
        self,
        species: Sequence[Union[str, int]],
        *,
        num_blocks: int = 8,
        channels: int = 32,
        num_heads: int = 4,
        position_encoding: bool = True,
        species_encoding: str = "extra_dimension",
        spatial_dims: int = 3,
        layer_norm: bool = False,
        ff_hidden: Optional[int] = None,
        activation: str = "silu",
        scale: float = 1.0,
        shift: float = 0.0,
        atomic_energies: Optional[Union[Mapping[str, float], Sequence[float]]] = None,
        dtype: Optional[Union[str, torch.dtype]] = None,
    ) -> None:
        config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__(species, cutoff=None)
        for name, value in (("num_blocks", num_blocks), ("channels", channels), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if ff_hidden is not None and (isinstance(ff_hidden, bool) or not isinstance(ff_hidden, int) or ff_hidden < 1):
            raise ValueError(f"ff_hidden must be a positive integer or None, got {ff_hidden!r}")
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by the number of heads ({num_heads})")
        if species_encoding not in SPECIES_ENCODINGS:
            raise ValueError(f"unknown species_encoding '{species_encoding}', choose one of {list(SPECIES_ENCODINGS)}")
        if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        get_activation(activation)  # raises for an unknown name, listing the choices
        for name, value in (("position_encoding", position_encoding), ("layer_norm", layer_norm)):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be True or False, got {value!r}")
        self._build_from_config(config)

    @property
    def input_dim(self) -> int:
        """Columns of an atom's input row: 2 (encoded) or 1 per direction, plus the species column."""
        c = self.config
        return c["spatial_dims"] * (2 if c["position_encoding"] else 1) + (c["species_encoding"] == "extra_dimension")

    def _build(self, config: dict) -> None:
        channels = config["channels"]
        self.input = nn.Linear(self.input_dim, channels)
        self.embedding = nn.Embedding(self.num_species, channels) if config["species_encoding"] == "embedding" else None
        self.encoder = SetTransformerEncoder(
            channels,
            config["num_blocks"],
            config["num_heads"],
            layer_norm=config["layer_norm"],
            ff_hidden=config["ff_hidden"],
            activation=config["activation"],
        )
        self.output = nn.Linear(channels, 1)

    # --- inputs -----------------------------------------------------------------------------------
    def input_features(self, inputs: ModelInputs, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """``[N, input_dim]`` input rows from positions ``[N, 3]`` and cells ``[B, 3, 3]`` (see the class doc).

        Everything is computed from these two tensors, so the strain the base class applies to
        both reaches the energy through the box lengths (stress), while fractional coordinates
        are strain-invariant.
        """
        dims = self.config["spatial_dims"]
        batch = inputs.batch
        xyz = positions[:, :dims]  # [N, D]
        if self.config["position_encoding"]:
            pbc = inputs.pbc[:, :dims].to(torch.bool)  # [B, D]
            lattice = self._lattice(cell, pbc)  # [B, D, D]
            fractional = torch.einsum("ni,nij->nj", xyz, torch.linalg.inv(lattice)[batch])  # [N, D] s = x C^-1
            lengths = lattice.norm(dim=-1)[batch]  # [N, D] L_k = |a_k|
            angle = 2 * math.pi * fractional
            periodic = pbc[batch]  # [N, D]
            first = torch.where(periodic, 0.5 * lengths * torch.cos(angle), fractional * lengths)  # [N, D]
            second = torch.where(periodic, 0.5 * lengths * torch.sin(angle), torch.zeros_like(angle))  # [N, D]
            columns = torch.stack([first, second], dim=-1).flatten(1)  # [N, 2D]: (x1, x2) per direction
        else:
            columns = xyz  # [N, D] the raw coordinates, the paper's no-PE baseline
        if self.config["species_encoding"] == "extra_dimension":
            columns = torch.cat([columns, inputs.species.to(columns.dtype)[:, None]], dim=1)  # species at 0..S-1
        return columns

    def _lattice(self, cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
        """``[B, D, D]`` lattice vectors in the model's D dimensions; the identity for open structures
        (their cell may be zero), so that fractional coordinate times length is the raw coordinate."""
        dims = self.config["spatial_dims"]
        any_periodic = pbc.any(dim=1)  # [B]
        eye = torch.eye(dims, dtype=cell.dtype, device=cell.device).expand(cell.shape[0], dims, dims)
        return torch.where(any_periodic[:, None, None], cell[:, :dims, :dims], eye)

    def check_inputs(self, inputs: ModelInputs) -> None:
        """A 2D model needs the in-plane lattice vectors a, b of periodic structures to lie in the plane."""
        if self.config["spatial_dims"] == 2:
            any_periodic = inputs.pbc[:, :2].any(dim=1)  # [B]
            out_of_plane = inputs.cell[:, :2, 2].abs().amax(dim=1) > 0  # [B]
            if bool((out_of_plane & any_periodic).any()):
                raise ValueError(
                    "spatial_dims=2 needs in-plane lattice vectors a, b (zero z components) in periodic "
                    f"structures, got cell[:2] = {inputs.cell[(out_of_plane & any_periodic)][0, :2].tolist()}"
                )

    # --- the model --------------------------------------------------------------------------------
    def _hidden(self, inputs: ModelInputs, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        h = self.input(self.input_features(inputs, positions, cell))  # [N, channels]
        if self.embedding is not None:
            h = h + self.embedding(inputs.species)
        return h

    def raw_energies(self, inputs: ModelInputs, positions: torch.Tensor, cell: torch.Tensor) -> AtomReadout:
        h = self.encoder(self._hidden(inputs, positions, cell), inputs.batch, inputs.num_graphs, inputs.max_atoms)  # [N, channels]
        return AtomReadout(self.output(h).squeeze(-1))  # [N]; not local: no lone-atom reference

    @torch.no_grad()
    def attention_weights(self, data: Any) -> AttentionWeights:
        """The attention of every block on a graph or batch (:class:`AttentionWeights`; the paper's
        Fig. 2c is ``.dense(block, structure)``): the pairs are every ordered pair i != j of atoms
        of a structure (no self-attention), and each atom's weights sum to one per head (a lone
        atom attends to nothing).
        """
        inputs = self.prepare_inputs(data)
        h = self._hidden(inputs, inputs.pos, inputs.cell)
        per_block = self.encoder.attention_weights(h, inputs.batch, inputs.num_graphs, inputs.max_atoms)  # [B][H, n, n]
        counts = torch.bincount(inputs.batch, minlength=inputs.num_graphs).tolist()
        starts = [0] + list(itertools.accumulate(counts))[:-1]
        pairs = []  # per structure: (receiver i, sender j) local indices, i != j
        for n in counts:
            local = torch.arange(n, device=inputs.batch.device)
            i, j = torch.meshgrid(local, local, indexing="ij")
            off = i != j
            pairs.append((i[off], j[off]))
        edge_index = torch.cat([torch.stack([j + start, i + start]) for (i, j), start in zip(pairs, starts)], dim=1)  # [2, E] (sender j, receiver i)
        weights = [torch.cat([w[:, i, j].T for w, (i, j) in zip(block, pairs)]) for block in per_block]  # [E, H] each
        return AttentionWeights(edge_index, weights, inputs.batch)
