"""`SE3Potential`: an SE(3)-Transformer interatomic potential built from e3nn parts."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import torch
from e3nn import o3
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.utils import scatter

from ..data import keys
from ..nn import (
    AtomicEnergyReadout,
    DirectForceHead,
    EdgeSphericalHarmonics,
    RadialEmbedding,
    SE3AttentionLayer,
    SpeciesEmbedding,
    hidden_irreps,
    species_one_hot,
)
from .attention_weights import AttentionWeights
from .base import AtomisticPotential, AtomReadout, ModelInputs, edge_vectors, receiver_chunks

__all__ = ["SE3Potential"]


class SE3Potential(AtomisticPotential):
    r"""Equivariant attention potential (SE(3)-Transformer on e3nn irreps).

    Species are embedded as scalars; every edge gets Bessel radial features times a smooth
    polynomial envelope and real spherical harmonics up to ``lmax``; ``num_layers``
    :class:`~equiformer_lite.nn.SE3AttentionLayer` s exchange equivariant messages; the invariant
    channels of the last layer give per-atom energies
    :math:`E_i = E^0_{Z_i} + \sigma (\hat e_i - \hat e^{\rm iso}_{Z_i}) + (\mu + \delta_{Z_i}) (1 - e^{-n_i})`,
    summed to the total energy, where :math:`\hat e^{\rm iso}_Z` is the readout of a lone atom,
    :math:`\delta_Z` a learned per-element shift and :math:`n_i` the smooth coordination number, so
    an atom with no neighbour gets exactly its E0
    (:meth:`~equiformer_lite.nn.ScaleShiftEnergies.relative_to_isolated`). Forces are
    :math:`-\partial E/\partial r` (conservative) and stress the strain derivative.

    Parameters
    ----------
    species : elements the model knows, as symbols or atomic numbers.
    cutoff : neighbour cutoff :math:`r_c`, Å.
    lmax : highest degree of the hidden features and spherical harmonics (default 2).
    sh_lmax : highest degree of the edge spherical harmonics, if higher than ``lmax`` (as MACE's
        ``max_ell`` above its ``max_L``): more angular information in the messages at the same width.
    message_lmax : highest degree of the values and aggregated messages, if higher than ``lmax``;
        the extra degrees reach the node features through the tensor square (needs
        ``tensor_square=True``). The harmonics then go up to at least this degree.
    channels : channels per degree; must be divisible by ``num_heads``. The defaults (16 channels,
        radial MLPs 2 × 32) make a fast model, the size the MD benchmarks time; the molecule recipe
        (``configs/se3_molecule.yaml``: 32 channels, radial MLPs 3 × 64, trained at lr 0.02) is the
        one measured against MACE's accuracy (``benchmarks/README.md``).
    num_heads : attention heads.
    num_layers : attention layers.
    num_basis : Bessel radial functions.
    radial_hidden, radial_layers : width and depth of the radial MLPs.
    envelope_p : exponent of the polynomial cutoff envelope.
    parity : O(3) (True, mirror images share an energy) or SO(3) only (False).
    nonlinearity : ``"gate"`` (default) or ``"norm"`` (thesis eq. 2.9).
    self_interaction : ``"species"`` (default: a linear map per element, NequIP's
        self-connection), ``"linear"`` or ``"attentive"`` (thesis eqs. 2.6-2.7).
    activation : scalar activation (``"silu"``, ``"relu"``, ``"tanh"``).
    attention : ``"softmax"`` (envelope-weighted softmax over neighbours) or ``"silu"``
        (unnormalised weights divided by ``avg_num_neighbors``, which keeps the neighbour count;
        see :class:`~equiformer_lite.nn.SE3AttentionLayer`).
    avg_num_neighbors : average neighbours per atom of the training data (set by the trainer
        from the data statistics); the divisor of the ``"silu"`` sums.
    tensor_square : add a channel-wise tensor square of the aggregated messages in every layer
        (three-body terms, :class:`~equiformer_lite.nn.product.NodeTensorSquare`).
    correlation : with ``tensor_square``, 3 adds the channel-wise cube (four-body terms).
    species_products : with ``tensor_square``, mix the tensor powers by a linear map per element
        (as MACE's product weights depend on the element); default True (ignored without
        ``tensor_square``).
    pair_messages : build every edge's message from both of its atoms (Equiformer's
        :math:`W_{src} f_j + W_{dst} f_i`) instead of the sender alone (default True; see
        :class:`~equiformer_lite.nn.SE3AttentionLayer`).
    message_mixing : ``"edge"`` (default: keys and values mixed on every edge) or ``"node"``
        (keys from the invariant paths, the value map applied per atom after the sum: fewer
        operations per edge; see :class:`~equiformer_lite.nn.SE3AttentionLayer`).
    readout_hidden : width of the energy readout.
    layer_readouts : add a linear energy readout of every layer but the last (as MACE sums the
        readouts of all its layers), a short path from every layer to the energy.
    direct_forces : add a non-conservative l=1 force head (output ``direct_forces``).
    recompute_layers : keep only each attention layer's inputs for the backward pass and
        recompute the layer there (activation checkpointing, ``torch.utils.checkpoint``). Forces
        at inference then hold one layer's per-edge intermediates at a time instead of every
        layer's (for large systems; it costs one more forward pass of the layers). Training
        works through it, with a smaller saving: a force loss keeps the recomputed backward for
        its second derivative. The results are the same (bit for bit on CPU, where the layers
        are deterministic); the weights and the saved model do not change. Eager only:
        ``torch.compile`` and ``equiformer-lite export`` trace the layers as usual. On inputs
        split into runs of receivers (``chunk_edges``) the runs are recomputed instead.
    chunk_edges : on inputs with more edges than this (default 16,384; ``None``: never), each
        layer attends runs of whole receivers with at most this many edges one at a time, and when
        gradients are recorded keeps only each run's inputs for the backward and computes the run
        again there (``torch.utils.checkpoint``). The same function (to rounding: a float64 force
        changes by ~1e-16), with far less memory and faster on large systems, whose per-edge
        tensors no longer fit in the cache: water, 5 Å, float32, 2 CPU threads, at 3,000 atoms
        about 190 instead of 960 KiB and 1.2 instead of 1.55 ms per atom, at 9,408 atoms 135
        instead of 865 KiB and 1.4 instead of 2.9 ms (``benchmarks/README.md``). Molecules and
        batches below the limit run as before. Eager only: ``torch.compile`` and ``equiformer-lite
        export`` trace all edges at once.
    scale, shift : per-atom energy scale and shift (eV), set from data statistics.
    atomic_energies : per-element reference energies E0 (eV), a dict by symbol or a list.
    dtype : ``"float32"`` or ``"float64"`` (default: torch's default dtype). The model is *built*
        in this dtype, so e3nn's Clebsch-Gordan constants carry its full precision; a float32
        model converted with ``.double()`` computes in float64 with float32-rounded constants
        (equivariance errors near 1e-9 instead of 1e-15).

    >>> from ase.build import molecule
    >>> from equiformer_lite.data import atoms_to_graph
    >>> model = SE3Potential(species=["H", "C", "O"], cutoff=4.0, channels=8, num_layers=1)
    >>> out = model(atoms_to_graph(molecule("CH3OH"), cutoff=4.0))
    >>> out["forces"].shape
    torch.Size([6, 3])
    """

    model_type = "se3"

    def __init__(
        self,
        species: Sequence[Union[str, int]],
        cutoff: float = 5.0,
        *,
        lmax: int = 2,
        sh_lmax: Optional[int] = None,
        message_lmax: Optional[int] = None,
        channels: int = 16,
        num_heads: int = 4,
        num_layers: int = 3,
        num_basis: int = 8,
        radial_hidden: int = 32,
        radial_layers: int = 2,
        envelope_p: int = 6,
        parity: bool = True,
        nonlinearity: str = "gate",
        self_interaction: str = "species",
        activation: str = "silu",
        attention: str = "softmax",
        avg_num_neighbors: float = 1.0,
        tensor_square: bool = True,
        correlation: int = 2,
        species_products: bool = True,
        pair_messages: bool = True,
        message_mixing: str = "edge",
        readout_hidden: int = 16,
        layer_readouts: bool = False,
        direct_forces: bool = False,
        recompute_layers: bool = False,
        chunk_edges: Optional[int] = 16384,
        scale: float = 1.0,
        shift: float = 0.0,
        atomic_energies: Optional[Union[Mapping[str, float], Sequence[float]]] = None,
        dtype: Optional[Union[str, torch.dtype]] = None,
    ) -> None:
        config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__(species, cutoff)
        for name, value, low in (
            ("lmax", lmax, 0),
            ("channels", channels, 1),
            ("num_heads", num_heads, 1),
            ("num_layers", num_layers, 1),
            ("num_basis", num_basis, 1),
            ("radial_hidden", radial_hidden, 1),
            ("radial_layers", radial_layers, 0),
            ("readout_hidden", readout_hidden, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by the number of heads ({num_heads})")
        for name, value in (("sh_lmax", sh_lmax), ("message_lmax", message_lmax)):
            if value is not None and (not isinstance(value, int) or value < lmax):
                raise ValueError(f"{name} must be an integer >= lmax ({lmax}), got {value!r}")
        if chunk_edges is not None and (isinstance(chunk_edges, bool) or not isinstance(chunk_edges, int) or chunk_edges < 1):
            raise ValueError(f"chunk_edges must be a positive integer or None, got {chunk_edges!r}")
        if not isinstance(recompute_layers, bool):
            raise ValueError(f"recompute_layers must be True or False, got {recompute_layers!r}")
        if direct_forces and lmax < 1:
            raise ValueError(f"direct_forces needs lmax >= 1 (vector features), got lmax={lmax}")
        self._build_from_config(config)

    def _build(self, config: dict) -> None:
        lmax, channels, parity = config["lmax"], config["channels"], config["parity"]
        num_basis = config["num_basis"]
        self.irreps_hidden = hidden_irreps(channels, lmax, parity)
        message_lmax = lmax if config["message_lmax"] is None else config["message_lmax"]
        sh_lmax = max(message_lmax, lmax if config["sh_lmax"] is None else config["sh_lmax"])
        irreps_message = hidden_irreps(channels, message_lmax, parity)
        self.spherical_harmonics = EdgeSphericalHarmonics(sh_lmax, parity=parity)
        self.radial = RadialEmbedding(self.cutoff, num_basis, envelope_p=config["envelope_p"])
        self.embedding = SpeciesEmbedding(self.num_species, channels)
        irreps_in = self.embedding.irreps_out
        layers = []
        for _ in range(config["num_layers"]):
            layers.append(
                SE3AttentionLayer(
                    irreps_in,
                    self.spherical_harmonics.irreps_out,
                    self.irreps_hidden,
                    num_basis,
                    num_heads=config["num_heads"],
                    radial_hidden=config["radial_hidden"],
                    radial_layers=config["radial_layers"],
                    nonlinearity=config["nonlinearity"],
                    self_interaction=config["self_interaction"],
                    activation=config["activation"],
                    attention=config["attention"],
                    avg_num_neighbors=config["avg_num_neighbors"],
                    num_species=self.num_species,
                    tensor_square=config["tensor_square"],
                    irreps_message=irreps_message,
                    correlation=config["correlation"],
                    species_products=config["species_products"] and config["tensor_square"],
                    pair_messages=config["pair_messages"],
                    message_mixing=config["message_mixing"],
                )
            )
            irreps_in = self.irreps_hidden
        self.layers = nn.ModuleList(layers)
        self.readout = AtomicEnergyReadout(self.irreps_hidden, config["readout_hidden"])
        self.layer_readouts = (
            nn.ModuleList(o3.Linear(self.irreps_hidden, "0e") for _ in layers[:-1]) if config["layer_readouts"] else None
        )
        self.direct_force_head = DirectForceHead(self.irreps_hidden) if config["direct_forces"] else None
        self.recompute_layers = bool(config["recompute_layers"])
        self.chunk_edges = config["chunk_edges"]

    def prepare_inputs(self, data: Any) -> ModelInputs:
        """As the base class, and with more than ``chunk_edges`` edges their runs of whole receivers
        (:func:`~equiformer_lite.models.base.receiver_chunks`), which the layers attend one at a time."""
        inputs = super().prepare_inputs(data)
        return inputs if self.chunk_edges is None else receiver_chunks(inputs, self.chunk_edges)

    def stages(self, species: torch.Tensor, vectors: torch.Tensor, edge_index: torch.Tensor,
               chunks: tuple = ()) -> dict[str, torch.Tensor]:
        """The output of every stage of the network on atoms ``species [N]`` joined by edges
        ``vectors [E, 3]`` (non-zero), ``edge_index [2, E]``, in order: ``"spherical harmonics"
        [E, (sh_lmax+1)^2]``, ``"radial features" [E, num_basis]``, ``"envelope" [E]``,
        ``"species embedding" [N, channels]``, ``"attention layer k" [N, irreps_hidden]`` for
        k = 1..num_layers, and ``"raw energies" [N]`` (the last layer's readout plus, with
        ``layer_readouts``, the earlier layers' linear readouts), before the energy head.
        ``chunks``: the runs of receivers of :attr:`ModelInputs.receiver_chunks` (``chunk_edges``).
        :meth:`raw_energies` runs it; the layer-by-layer equivariance check reads it.
        """
        sh = self.spherical_harmonics(vectors)  # [E, (sh_lmax+1)^2]
        radial, envelope = self.radial(vectors.norm(dim=-1))  # [E, num_basis], [E]
        x = self.embedding(species)  # [N, channels x 0e]
        out = {"spherical harmonics": sh, "radial features": radial, "envelope": envelope, "species embedding": x}
        one_hot = species_one_hot(species, self.num_species, x.dtype)  # [N, num_species]
        raw = x.new_zeros(x.shape[0])
        for t, layer in enumerate(self.layers):
            if chunks:  # runs of receivers, each recomputed in the backward (SE3AttentionLayer)
                x = layer(x, sh, radial, envelope, edge_index, one_hot, chunks)
            elif self.recompute_layers and torch.is_grad_enabled() and not torch.compiler.is_compiling():
                # Saves the layer's inputs only; the backward runs the layer again (twice-
                # differentiable, so training with force losses works through it). Not when
                # compiling or exporting: inductor cannot recompute several regions of a graph
                # that holds its own backward, and decides itself what it keeps.
                x = checkpoint(layer, x, sh, radial, envelope, edge_index, one_hot, use_reentrant=False)
            else:
                x = layer(x, sh, radial, envelope, edge_index, one_hot)  # [N, irreps_hidden]
            out[f"attention layer {t + 1}"] = x
            if self.layer_readouts is not None and t < len(self.layers) - 1:
                raw = raw + self.layer_readouts[t](x).squeeze(-1)
        out["raw energies"] = raw + self.readout(x)  # [N]
        return out

    def raw_energies(self, inputs: ModelInputs, positions: torch.Tensor, cell: torch.Tensor) -> AtomReadout:
        vectors = edge_vectors(positions, inputs.edge_index, inputs.shift, cell, inputs.batch)  # [E, 3]
        # One pass over the atoms and, appended, one lone atom of every species (no edges reach
        # those): their readouts are the reference that makes an atom with no neighbour get E0.
        species, edge_index = inputs.species, inputs.edge_index
        num_atoms = species.shape[0]
        lone = torch.arange(self.num_species, device=species.device)  # [S]
        # (Traced whole when compiling or exporting: a plan of Python numbers would be baked in.)
        chunks = () if torch.compiler.is_compiling() else inputs.receiver_chunks
        stages = self.stages(torch.cat([species, lone]), vectors, edge_index, chunks)
        raw = stages["raw energies"]  # [N+S]
        coordination = scatter(stages["envelope"], edge_index[1], dim=0, dim_size=num_atoms, reduce="sum")  # [N]
        extras = {}
        if self.direct_force_head is not None:
            last = stages[f"attention layer {len(self.layers)}"][:num_atoms]  # [N, irreps_hidden]
            extras[keys.DIRECT_FORCES] = self.direct_force_head(last)  # [N, 3], non-conservative
        return AtomReadout(raw[:num_atoms], raw[num_atoms:], coordination, extras)

    @torch.no_grad()
    def attention_weights(self, data: Any) -> AttentionWeights:
        """The attention of every layer on a graph or batch (:class:`AttentionWeights`: the
        graph's edges and per layer ``[E, num_heads]``). With the softmax attention the weights of
        each receiver's neighbours sum to one per head (before the envelope scales the messages)."""
        inputs = self.prepare_inputs(data)
        vectors = edge_vectors(inputs.pos, inputs.edge_index, inputs.shift, inputs.cell, inputs.batch)  # [E, 3]
        stages = self.stages(inputs.species, vectors, inputs.edge_index)
        layer_inputs = [stages["species embedding"]] + [stages[f"attention layer {k}"] for k in range(1, len(self.layers))]
        edge_stages = (stages["spherical harmonics"], stages["radial features"], stages["envelope"])
        weights = [layer.attend(x, *edge_stages, inputs.edge_index)[0] for layer, x in zip(self.layers, layer_inputs)]  # [E, H] each
        return AttentionWeights(inputs.edge_index, weights, inputs.batch)
