"""The SE(3)-Transformer layer: equivariant multi-head attention over neighbours."""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.utils import scatter

from .dense import DenseLinear, matmul, weights_of
from .irreps_tools import check_divisible, head_dot, irreps_layout, product_paths, scale_heads, split_irreps
from .nonlinearity import NormNonlinearity, build_gate
from .product import NodeTensorSquare
from .self_interaction import build_self_interaction
from .softmax import envelope_softmax

__all__ = ["SE3AttentionLayer", "EdgeTensorProduct"]


class EdgeTensorProduct(nn.Module):
    r"""Clebsch-Gordan product of a neighbour's features with the edge's spherical harmonics,
    weighted per edge by a radial MLP (thesis eqs. 2.1-2.2):

    .. math:: m_{ij} = \sum_{k, J} \psi^{k \to l}_J(r_{ij})\; \big(f_j^{k} \otimes Y^{J}(\hat r_{ij})\big)^{l}

    Each (input irrep, harmonic, output irrep) path keeps the channels of its input ("uvu", as in
    NequIP); channel mixing is left to the linear layers that follow, a factorisation of the
    SE(3)-Transformer's full per-path radial matrices that costs far fewer per-edge weights.
    The radial MLP has no biases, so its weights vanish with the enveloped radial features at the
    cutoff.

    Shapes: ``[E, irreps_in.dim]``, ``[E, irreps_sh.dim]``, ``[E, num_basis]`` -> ``[E, irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_sh, irreps_target, num_basis: int, *, radial_hidden: int, radial_layers: int):
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        mid, instructions = product_paths(self.irreps_in, self.irreps_sh, {ir for _, ir in o3.Irreps(irreps_target)}, "uvu")
        mid, perm, _ = o3.Irreps(mid).sort()
        instructions = [(i, j, perm[k], mode, train) for i, j, k, mode, train in instructions]
        self.irreps_out = mid
        self.tp = o3.TensorProduct(
            self.irreps_in, self.irreps_sh, mid, instructions, shared_weights=False, internal_weights=False
        )
        self.radial = FullyConnectedNet(
            [num_basis] + [radial_hidden] * radial_layers + [self.tp.weight_numel], nn.functional.silu
        )

    def forward(self, x_sender: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor) -> torch.Tensor:
        return self.tp(x_sender, sh, self.radial(radial))  # [E, irreps_out.dim]

    def mixing_plan(self, linear: o3.Linear) -> "MixingPlan":
        r"""Prepare :meth:`mixed` for ``linear`` (which reads ``irreps_out.simplify()``, the sorted
        paths, one block per degree): the tensor-product paths grouped by (feature block, output
        block), and per group the constants that :meth:`mixed` reads, registered on this module as
        non-persistent buffers (``_mix_*``; saved models do not change):

        * ``_mix_coupling_b [irreps_sh.dim, K_b (2l_1+1)]`` per feature block :math:`b` that some
          group reads: the paths' :math:`\alpha_p C^{p}_{ijk}` (path weight times Clebsch-Gordan
          coefficient) of every group :math:`g` of that block, in the order :math:`(j; g, k, p, i)`
          (:math:`K_b = \sum_g (2l_3+1) P_g`), so that one product with the harmonics gives the
          coupling matrices of all the block's groups, laid out so that the products after it
          need no transposed copy;
        * ``_mix_rows``, ``_mix_scales``: where each group's mixing matrix
          :math:`[P_g \cdot \text{mul}, \sum \text{mul}_\text{out}]` (the blocks of every linear
          output that reads the group, side by side) lies in ``linear.weight``, and the linear's
          path weight of every entry;
        * ``_mix_radial_order``: the radial MLP's columns (one per path and channel, in e3nn's
          instruction order) reordered group by group (:meth:`_radial_in_group_order`).
        """
        simple = self.irreps_out.simplify()
        if o3.Irreps(linear.irreps_in) != simple:
            raise ValueError(f"the mixing linear must read {simple}, got {linear.irreps_in}")
        # Block and channel offset of every (sorted) path output inside the simplified irreps.
        where, block, offset = [], -1, 0
        for k, (mul, ir) in enumerate(self.irreps_out):
            if k == 0 or ir != self.irreps_out[k - 1].ir:
                block, offset = block + 1, 0
            where.append((block, offset))
            offset += mul
        # The linear's instructions that read each block, side by side: (i_out, flat offset, shape, weight).
        reads: dict[int, list] = {}
        flat = 0
        for ins in linear.instructions:
            reads.setdefault(ins.i_in, []).append((ins.i_out, flat, ins.path_shape, float(ins.path_weight)))
            flat += ins.path_shape[0] * ins.path_shape[1]
        sh_starts = [s.start for s in self.irreps_sh.slices()]

        groups: dict[tuple[int, int], list] = {}  # (feature block, output block) -> [(instruction index, ins)]
        for n, ins in enumerate(self.tp.instructions):
            mul = self.irreps_in[ins.i_in1].mul
            if ins.connection_mode != "uvu" or tuple(ins.path_shape) != (mul, 1):
                raise ValueError(f"mixed() needs 'uvu' paths on single harmonics, got {ins}")
            groups.setdefault((ins.i_in1, where[ins.i_out][0]), []).append((n, ins))

        rows, scales, radial_order, planned, couplings = [], [], [], [], {}
        weight_starts = [0]
        for ins in self.tp.instructions:
            weight_starts.append(weight_starts[-1] + ins.path_shape[0])
        for (i_in, block), members in sorted(groups.items()):
            l1 = self.irreps_in[i_in].ir.l
            l3 = self.irreps_out[members[0][1].i_out].ir.l
            dim_in, dim_out, mul = 2 * l1 + 1, 2 * l3 + 1, self.irreps_in[i_in].mul
            coupling = torch.zeros(self.irreps_sh.dim, dim_out, len(members), dim_in, dtype=torch.float64)  # (j, k, p, i)
            for p, (n, ins) in enumerate(members):
                l2 = self.irreps_sh[ins.i_in2].ir.l
                w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)  # [2l1+1, 2l2+1, 2l3+1]
                coupling[sh_starts[ins.i_in2] : sh_starts[ins.i_in2] + 2 * l2 + 1, :, p] = ins.path_weight * w3j.permute(1, 2, 0)
                radial_order.append(torch.arange(weight_starts[n], weight_starts[n + 1]))
            group_reads, group_rows, group_scales = [], [], []
            for i_out, flat, (mul_in, mul_out), weight in reads.get(block, []):
                path_rows = torch.tensor([where[ins.i_out][1] for _, ins in members])  # [P] first row of each path
                entries = flat + ((path_rows[:, None, None] + torch.arange(mul)[None, :, None]) * mul_out
                                  + torch.arange(mul_out)[None, None, :])  # [P, mul, mul_out]
                group_rows.append(entries.reshape(len(members) * mul, mul_out))
                group_scales.append(torch.full(group_rows[-1].shape, weight, dtype=torch.float64))
                group_reads.append((i_out, mul_out))
            if group_reads:  # the group's matrix [P * mul, sum of mul_out], the reads side by side
                rows.append(torch.cat(group_rows, dim=1).reshape(-1))
                scales.append(torch.cat(group_scales, dim=1).reshape(-1))
                couplings.setdefault(i_in, []).append((len(planned), coupling.reshape(self.irreps_sh.dim, -1, dim_in)))
            planned.append(MixedGroup(i_in, len(members), dim_in, dim_out, mul, tuple(group_reads)))

        if not rows:
            raise ValueError(f"the mixing linear reads none of the tensor-product paths: {linear}")
        # One coupling product per feature block for all its groups. (A batched product per group
        # whose output had one row (l_3 = 0, one path) made a backward that inductor compiles into
        # a reduction over the channels parallelised inside each edge, one thread fork-join per
        # edge: ~1,200 per force evaluation of the default SE3Potential on aspirin, 14 % of the
        # exported model's time.)
        blocks = []
        for n, (i_in, members) in enumerate(sorted(couplings.items())):
            stacked = torch.cat([c for _, c in members], dim=1)  # [sh, K_b, 2l1+1]
            self.register_buffer(f"_mix_coupling_{n}", stacked.reshape(self.irreps_sh.dim, -1).to(torch.get_default_dtype()),
                                 persistent=False)
            blocks.append(MixedBlock(i_in, stacked.shape[2], tuple(g for g, _ in members),
                                     tuple(c.shape[1] for _, c in members)))
        self.register_buffer("_mix_rows", torch.cat(rows), persistent=False)
        self.register_buffer("_mix_scales", torch.cat(scales).to(torch.get_default_dtype()), persistent=False)
        order = torch.cat(radial_order)
        self.register_buffer("_mix_radial_order", order, persistent=False)
        identity = bool((order == torch.arange(order.numel())).all())
        return MixingPlan(tuple(planned), tuple(blocks), identity, irreps_layout(self.irreps_in), irreps_layout(linear.irreps_out))

    def _radial_in_group_order(self, radial: torch.Tensor) -> torch.Tensor:
        """``self.radial(radial)`` with its columns in :meth:`mixed`'s group order
        (``_mix_radial_order``), permuting the columns of the last layer's weight rather than the
        per-edge output: the backward of a gather of ``[E, weight_numel]`` columns is an
        ``index_add`` that compiled code does with atomic adds. The last layer is e3nn's own,
        called with the permuted weight (one column per output; an element-wise activation, if
        there were one, would commute with the permutation).

        Shapes: ``[E, num_basis]`` -> ``[E, weight_numel]``.
        """
        *hidden, last = self.radial
        x = radial
        for layer in hidden:
            x = layer(x)  # [E, radial_hidden]
        weight = last.weight.index_select(1, self._mix_radial_order)  # [radial_hidden, weight_numel]
        return torch.func.functional_call(last, {"weight": weight}, (x,))

    def _mixing_matrices(self, linear: o3.Linear, plan: "MixingPlan") -> list[torch.Tensor]:
        """The mixing matrix ``[P_g * mul, sum of mul_out]`` of every group that some output block
        reads (those blocks' weights side by side): rows of ``linear.weight`` times their path weights."""
        shapes = [(g.num_paths * g.mul, sum(mul_out for _, mul_out in g.reads)) for g in plan.groups if g.reads]
        flat = torch.split(linear.weight[self._mix_rows] * self._mix_scales, [rows * cols for rows, cols in shapes])
        return [w.view(shape) for w, shape in zip(flat, shapes)]

    def mixed(self, x_edge: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor, linear: o3.Linear,
              plan: "MixingPlan") -> list[torch.Tensor]:
        r"""``linear(self(x_edge, sh, radial))``, the same function without forming the
        tensor-product messages ``[E, irreps_out.dim]``, the widest per-edge tensor of the layer
        (from 1,152 to 3,000 atoms that made a force evaluation 1.2-2.3x faster and 20 % smaller,
        benchmarks/README.md).

        The paths that share their feature block :math:`l_1` and their output block :math:`l_3`
        form a group :math:`g` of :math:`P_g` paths, computed together:

        .. math::
            c_{e,(p,k),i} &= \sum_j Y_{e,j}\, \alpha_p C^{p}_{ijk}, \qquad
            y_{e,p,k,u} = R_{e,p,u} \sum_i c_{e,(p,k),i}\, x_{e,i,u}, \\
            \mathrm{out}^{b}_{e,k,w} &= \sum_{g \to b} \sum_{p,u} y_{e,p,k,u}\, \beta_{b} W^{b}_{(p,u),w}

        (:math:`Y` the harmonics, :math:`R` the radial weights, :math:`W^b` the rows of the
        linear's weight block that read path :math:`p`, :math:`\beta_b` its path weight). Per
        feature block: one matrix product gives the coupling matrices of all its groups and one
        batched product applies them; per group: one product with the radial weights and one
        matrix product for all the output blocks that read the group (keys and values side by
        side). About a third of the operations of a loop over paths, which at 21 atoms is what
        the step costs.

        Shapes: ``[E, irreps_in.dim]``, ``[E, irreps_sh.dim]``, ``[E, num_basis]`` -> one block
        ``[E, mul * (2l+1)]`` per entry of ``linear.irreps_out`` (their concatenation is the linear's output).
        """
        num_edges = x_edge.shape[0]
        weights = self.radial(radial) if plan.radial_in_order else self._radial_in_group_order(radial)  # [E, weight_numel]
        weights = torch.split(weights, [g.num_paths * g.mul for g in plan.groups], dim=-1)  # [E, P_g * mul]
        mixing = iter(weights_of(self, linear.weight, lambda: self._mixing_matrices(linear, plan)))
        x_blocks = [b.reshape(num_edges, mul, dim).transpose(1, 2)
                    for b, (mul, dim) in zip(split_irreps(x_edge, plan.in_layout), plan.in_layout)]  # [E, 2l1+1, mul]
        coupled: list = [None] * len(plan.groups)  # per group read: [E, (2l3+1)*P, mul]
        for n, block in enumerate(plan.blocks):
            c = matmul(sh, getattr(self, f"_mix_coupling_{n}")).view(num_edges, sum(block.sizes), block.dim_in)  # [E, K_b, 2l1+1]
            # (A batched product with one inner element is an outer product: broadcast it, MKL's
            # batched GEMM is several times slower on it.)
            x_block = x_blocks[block.i_in]
            y = c * x_block if block.dim_in == 1 else torch.bmm(c, x_block)  # [E, K_b, mul]
            for g, part in zip(block.groups, torch.split(y, block.sizes, dim=1)):
                coupled[g] = part
        outputs: list = [None] * len(plan.out_layout)
        for g, weight, y in zip(plan.groups, weights, coupled):
            if y is None:  # no output block reads these paths
                continue
            y = y.view(num_edges, g.dim_out, g.num_paths, g.mul) * weight.reshape(num_edges, 1, g.num_paths, g.mul)
            y = y.view(num_edges * g.dim_out, g.num_paths * g.mul)  # [E*(2l3+1), P*mul], no copy
            # One product for every output block that reads the group, split (not sliced: the
            # backward of a slice fills a zero tensor as large as the product, a split's is one cat).
            widths = [mul_out for _, mul_out in g.reads]
            joint = torch.mm(y, next(mixing)).view(num_edges, g.dim_out, sum(widths))  # [E, 2l3+1, sum mul_out]
            blocks = torch.split(joint, widths, dim=-1) if len(widths) > 1 else (joint,)
            for (i_out, _), block in zip(g.reads, blocks):
                outputs[i_out] = block if outputs[i_out] is None else outputs[i_out] + block
        return [x_edge.new_zeros(num_edges, mul * dim) if total is None else total.transpose(1, 2).reshape(num_edges, mul * dim)
                for total, (mul, dim) in zip(outputs, plan.out_layout)]  # [E, mul * (2l+1)] per output block


class MixedGroup(NamedTuple):
    """The tensor-product paths of :meth:`EdgeTensorProduct.mixed` that share their feature block
    and their output block (plain numbers only, so a forward that reads it traces and compiles)."""

    i_in: int  # block of the features
    num_paths: int  # P_g
    dim_in: int  # 2 l1 + 1
    dim_out: int  # 2 l3 + 1
    mul: int  # channels of the features (and of every path)
    reads: tuple  # (i_out, mul_out) of every linear output block that reads the group's block


class MixedBlock(NamedTuple):
    """A feature block of :meth:`EdgeTensorProduct.mixed` and the groups that read it, whose
    coupling matrices one product with the harmonics gives (buffer ``_mix_coupling_<n>``)."""

    i_in: int  # block of the features
    dim_in: int  # 2 l1 + 1
    groups: tuple  # indices into MixingPlan.groups
    sizes: tuple  # (2 l3 + 1) P_g of each of those groups


class MixingPlan(NamedTuple):
    """What :meth:`EdgeTensorProduct.mixed` needs, fixed when the layer is built: the groups of
    paths, the feature blocks with the groups that read them, whether the radial columns are in
    group order already, and the block layouts of the features and of the linear's output."""

    groups: tuple
    blocks: tuple
    radial_in_order: bool
    in_layout: tuple
    out_layout: tuple


class SE3AttentionLayer(nn.Module):
    r"""One SE(3)-Transformer layer (thesis eqs. 2.3-2.9) with a residual connection.

    .. math::
        q_i &= W_Q f_i, \qquad k_{ij} = W_K\, m_{ij}, \qquad v_{ij} = W_V\, m_{ij}, \\
        s^h_{ij} &= q_i^{h\top} k^h_{ij} / \sqrt{d_h}, \qquad
        \alpha^h_{ij} = \frac{u(r_{ij}) e^{s^h_{ij}}}{\sum_k u(r_{ik}) e^{s^h_{ik}}}, \\
        f'_i &= \sigma\Big(W_O \bigoplus_h \sum_j \alpha^h_{ij}\, u(r_{ij})\, v^h_{ij} + \mathrm{SI}(f_i)\Big),
        \qquad f^{out}_i = f_i + f'_i \ \text{(when the irreps match)}

    where :math:`m_{ij}` is the :class:`EdgeTensorProduct` of the sender's features with the edge's
    spherical harmonics (so keys and values carry the geometry, eq. 2.4), the logits are invariant
    dot products per head, :math:`u` is the cutoff envelope (inside the normalisation, see
    :func:`~equiformer_lite.nn.softmax.envelope_softmax`, and on the messages), SI is the linear or
    attentive self-interaction and :math:`\sigma` the norm nonlinearity or the gate.

    ``attention="silu"`` replaces the softmax by an unnormalised weight per edge and head, as
    TorchMD-Net's equivariant transformer does:
    :math:`\alpha^h_{ij} = \mathrm{SiLU}(s^h_{ij}) / \bar n`, with :math:`\bar n` the average number of
    neighbours of the training data. A softmax makes the weights of each atom sum to one, so the
    aggregated message cannot tell two neighbours from ten alike; the unnormalised sum keeps the
    neighbour count (the body-order information that MACE and NequIP sums carry). The envelope on
    the messages alone keeps it smooth at the cutoff.

    ``self_interaction="species"`` makes the self-interaction species-dependent (NequIP's
    self-connection): an e3nn tensor product of the features with the one-hot species, so each
    element has its own channel mixing; the layer then takes ``node_attrs`` (the one-hot species,
    ``num_species`` wide) in :meth:`forward`.

    Parameters
    ----------
    irreps_in : node features in.
    irreps_sh : edge spherical harmonics.
    irreps_out : node features out.
    num_basis : number of radial features.
    num_heads : attention heads; every multiplicity of ``irreps_out`` must be divisible by it.
    radial_hidden, radial_layers : the radial MLP.
    nonlinearity : ``"norm"`` (eq. 2.9) or ``"gate"``.
    self_interaction : ``"linear"``, ``"species"`` (linear per element) or ``"attentive"`` (eqs. 2.6-2.7).
    activation : scalar activation of the nonlinearity.
    attention : ``"softmax"`` (envelope-weighted softmax, the default) or ``"silu"`` (see above).
    avg_num_neighbors : :math:`\bar n`, the divisor of the unnormalised ``"silu"`` sum.
    num_species : number of elements (the width of ``node_attrs``), for ``self_interaction="species"``.
    tensor_square : add the :class:`~equiformer_lite.nn.product.NodeTensorSquare` of the
        aggregated messages to the update (three-body terms in every layer).
    irreps_message : irreps of the values and aggregated messages (default ``irreps_out``). With
        higher degrees than ``irreps_out`` (as MACE's messages reach ``max_ell`` above ``max_L``),
        the extra degrees reach the node features through the tensor square, which needs
        ``tensor_square=True``.
    correlation : order of the tensor powers of the messages with ``tensor_square`` (2: pairs of
        neighbours, 3: pairs and triples).
    species_products : with ``tensor_square``, mix the tensor powers with a linear map per element
        of the receiving atom (MACE's per-element product weights); needs ``num_species``.
    pair_messages : build the edge tensor product from both ends of the edge,
        :math:`W_{src} f_j + W_{dst} f_i` instead of :math:`f_j` (Equiformer's message input), so
        keys and values depend on the pair of atoms and not on the sender alone.
    message_mixing : where the channels of the tensor-product messages are mixed.
        ``"edge"`` (default): keys and values are linear maps of :math:`m_{ij}` on every edge, as
        above. ``"node"``: the keys come from the invariant (0e) paths of :math:`m_{ij}` alone
        (the queries are then scalars too), each head weighs its share of the channels of
        :math:`m_{ij}` itself, and the value map is applied once per atom after the sum,
        :math:`f'_i = \sigma(W_O W_V \bigoplus_h \sum_j \alpha^h_{ij} u(r_{ij})\, m^h_{ij} + \dots)`
        (MACE's order: the linear after the aggregation). A linear map commutes with the sum, so
        this moves the per-edge channel mixing, the largest cost of the layer, onto the atoms;
        what it gives up is value mixing per head and keys from the non-scalar paths.

    Shapes: ``x [N, irreps_in.dim]``, ``sh [E, irreps_sh.dim]``, ``radial [E, num_basis]``,
    ``envelope [E]``, ``edge_index [2, E]`` (sender, receiver), ``node_attrs [N, num_species]``
    -> ``[N, irreps_out.dim]``.
    """

    def __init__(
        self,
        irreps_in,
        irreps_sh,
        irreps_out,
        num_basis: int,
        *,
        num_heads: int = 4,
        radial_hidden: int = 32,
        radial_layers: int = 2,
        nonlinearity: str = "norm",
        self_interaction: str = "linear",
        activation: str = "silu",
        attention: str = "softmax",
        avg_num_neighbors: float = 1.0,
        num_species: int = 0,
        tensor_square: bool = False,
        irreps_message=None,
        correlation: int = 2,
        species_products: bool = False,
        pair_messages: bool = False,
        message_mixing: str = "edge",
    ) -> None:
        super().__init__()
        if attention not in ("softmax", "silu"):
            raise ValueError(f"unknown attention '{attention}', choose 'softmax' or 'silu'")
        if message_mixing not in ("edge", "node"):
            raise ValueError(f"unknown message_mixing '{message_mixing}', choose 'edge' or 'node'")
        if not avg_num_neighbors > 0:
            raise ValueError(f"avg_num_neighbors must be positive, got {avg_num_neighbors!r}")
        if self_interaction == "species" and num_species < 1:
            raise ValueError(f"self_interaction='species' needs num_species >= 1, got {num_species!r}")
        if species_products and not (tensor_square and num_species >= 1):
            raise ValueError("species_products needs tensor_square=True and num_species >= 1, got "
                             f"tensor_square={tensor_square!r}, num_species={num_species!r}")
        self.attention = attention
        self.message_mixing = message_mixing
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_sh = o3.Irreps(irreps_sh)
        self.irreps_out = o3.Irreps(irreps_out)
        if num_heads < 1:
            raise ValueError(f"num_heads must be at least 1, got {num_heads}")
        self.num_heads = int(num_heads)
        check_divisible(self.irreps_out, num_heads, "irreps_out")

        # Queries can only carry the degrees the node already has (the first layer: scalars).
        # With node mixing the keys are scalars (the invariant paths), so the queries are too.
        in_types = {ir for _, ir in self.irreps_in} if message_mixing == "edge" else {o3.Irrep("0e")}
        self.irreps_qk = o3.Irreps([(mul, ir) for mul, ir in self.irreps_out if ir in in_types])
        if not self.irreps_qk:
            raise ValueError(f"irreps_in {self.irreps_in} and irreps_out {self.irreps_out} share no irrep for attention")
        self.irreps_value = self.irreps_out if irreps_message is None else o3.Irreps(irreps_message)
        check_divisible(self.irreps_value, num_heads, "irreps_message")
        if not tensor_square and {ir for _, ir in self.irreps_value} - {ir for _, ir in self.irreps_out}:
            raise ValueError(f"irreps_message {self.irreps_value} has degrees that irreps_out {self.irreps_out} lacks: "
                             "they reach the nodes only through tensor_square=True")
        self.head_dim = self.irreps_qk.dim // num_heads
        self._qk_layout = irreps_layout(self.irreps_qk)

        self.edge_tp = EdgeTensorProduct(
            self.irreps_in,
            self.irreps_sh,
            self.irreps_value,
            num_basis,
            radial_hidden=radial_hidden,
            radial_layers=radial_layers,
        )
        self.query = DenseLinear(self.irreps_in, self.irreps_qk)
        self.pair_messages = bool(pair_messages)
        if self.pair_messages:
            self.source = DenseLinear(self.irreps_in, self.irreps_in)
            self.destination = DenseLinear(self.irreps_in, self.irreps_in)
        # The tensor product's sorted paths of one degree are contiguous, so ``simplify`` keeps
        # the layout and the linear maps read one block per degree.
        irreps_mid = self.edge_tp.irreps_out.simplify()
        if message_mixing == "edge":
            # Keys and values in one linear map of the edge features: the same maps as two
            # linears over every path, with fewer slices per edge.
            self.key_value = o3.Linear(irreps_mid, self.irreps_qk + self.irreps_value)
            self._mixing = self.edge_tp.mixing_plan(self.key_value)
            self._num_key_blocks = len(self.irreps_qk)
            self._message_layout = irreps_layout(self.irreps_value)
        else:
            if irreps_mid[0].ir != o3.Irrep("0e"):
                raise ValueError(f"message_mixing='node' needs invariant (0e) tensor-product paths, got {irreps_mid}")
            check_divisible(irreps_mid, num_heads, "the tensor-product messages")
            self._num_scalar_paths = irreps_mid[:1].dim
            self.key = DenseLinear(irreps_mid[:1], self.irreps_qk)  # from the 0e paths only
            self.value = DenseLinear(irreps_mid, self.irreps_value)  # applied per atom, after the sum
            self._message_layout = irreps_layout(irreps_mid)

        if nonlinearity == "norm":
            self.nonlinearity = NormNonlinearity(self.irreps_out, activation=activation)
        elif nonlinearity == "gate":
            self.nonlinearity = build_gate(self.irreps_out, activation=activation)
        else:
            raise ValueError(f"unknown nonlinearity '{nonlinearity}', choose 'norm' or 'gate'")
        irreps_pre = self.nonlinearity.irreps_in
        self.output = DenseLinear(self.irreps_value, irreps_pre)
        self.tensor_square = (
            NodeTensorSquare(self.irreps_value, irreps_pre, correlation=correlation,
                             num_species=num_species if species_products else 0)
            if tensor_square
            else None
        )
        self.species_self_interaction = self_interaction == "species"
        self.self_interaction = build_self_interaction(self_interaction, self.irreps_in, irreps_pre, num_species=num_species)
        self.residual = self.irreps_in == self.irreps_out

    def attend(
        self, x: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor, envelope: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention weights ``[E, num_heads]`` of every edge (for the softmax: a distribution
        over each receiver's neighbours) and the messages they weigh: the values ``[E,
        irreps_value]`` with edge mixing, the tensor-product messages ``[E, irreps_mid]`` with node
        mixing."""
        senders = self.source(x) if self.pair_messages else x  # [N, irreps_in]
        return self._attend(senders, x, sh, radial, envelope, edge_index[0], edge_index[1])

    def _attend(self, senders: torch.Tensor, receivers: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor,
                envelope: torch.Tensor, sender: torch.Tensor, receiver: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`attend` on edges from ``senders [N_s, irreps_in]`` (the node features, or their
        ``source`` map with pair messages) to ``receivers [N_r, irreps_in]`` (``sender``/``receiver``
        index them), so that a run of receivers with all their edges is attended on its own."""
        if self.pair_messages:
            x_edge = senders[sender] + self.destination(receivers)[receiver]  # [E, irreps_in]
        else:
            x_edge = senders[sender]  # [E, irreps_in]
        q = self.query(receivers)  # [N_r, irreps_qk]
        if self.message_mixing == "edge":
            # key_value(edge_tp(...)) without the [E, irreps_mid] messages (EdgeTensorProduct.mixed).
            blocks = self.edge_tp.mixed(x_edge, sh, radial, self.key_value, self._mixing)
            k = torch.cat(blocks[: self._num_key_blocks], dim=-1)  # [E, irreps_qk]
            v = torch.cat(blocks[self._num_key_blocks :], dim=-1)  # [E, irreps_value]
        else:
            m = self.edge_tp(x_edge, sh, radial)  # [E, irreps_mid]
            k, v = self.key(m[:, : self._num_scalar_paths]), m  # [E, qk] from the 0e paths, [E, irreps_mid]
        logits = head_dot(q[receiver], k, self._qk_layout, self.num_heads) / math.sqrt(self.head_dim)  # [E, H]
        if self.attention == "softmax":
            alpha = envelope_softmax(logits, envelope, receiver, receivers.shape[0])  # [E, H]
        else:
            alpha = nn.functional.silu(logits) / self.avg_num_neighbors  # [E, H]
        return alpha, v

    def _aggregate(self, senders: torch.Tensor, receivers: torch.Tensor, sh: torch.Tensor, radial: torch.Tensor,
                   envelope: torch.Tensor, sender: torch.Tensor, receiver: torch.Tensor) -> torch.Tensor:
        """The attention-weighted sum of the messages at each receiver, ``[N_r, dim]`` (values with
        edge mixing, tensor-product messages with node mixing); arguments as :meth:`_attend`."""
        alpha, v = self._attend(senders, receivers, sh, radial, envelope, sender, receiver)  # [E, H], [E, dim]
        # The envelope also multiplies the message: a lone neighbour has alpha = 1 whatever u is.
        messages = scale_heads(v, alpha * envelope.unsqueeze(-1), self._message_layout, self.num_heads)  # [E, dim]
        return scatter(messages, receiver, dim=0, dim_size=receivers.shape[0], reduce="sum")  # [N_r, dim]

    def forward(
        self,
        x: torch.Tensor,
        sh: torch.Tensor,
        radial: torch.Tensor,
        envelope: torch.Tensor,
        edge_index: torch.Tensor,
        node_attrs: Optional[torch.Tensor] = None,
        chunks: tuple = (),
    ) -> torch.Tensor:
        """``chunks``: runs of whole receivers ``((first edge, first node), ...)``, edges sorted by
        receiver (``ModelInputs.receiver_chunks``), each attended on its own; when gradients are
        recorded, a run keeps only its inputs and is computed again in the backward, so that the
        per-edge intermediates of one run live at a time. The result does not depend on them."""
        senders = self.source(x) if self.pair_messages else x  # [N, irreps_in]
        if not chunks:
            aggregated = self._aggregate(senders, x, sh, radial, envelope, edge_index[0], edge_index[1])
        else:
            aggregated = torch.cat(list(_receiver_chunks(self._aggregate, chunks, senders, x, sh, radial, envelope, edge_index)))
        if self.message_mixing == "node":
            aggregated = self.value(aggregated)  # [N, irreps_value]
        pre = self.output(aggregated)  # [N, irreps_pre]
        if self.tensor_square is not None:
            pre = pre + self.tensor_square(aggregated, node_attrs)
        si = self.self_interaction(x, node_attrs) if self.species_self_interaction else self.self_interaction(x)
        update = self.nonlinearity(pre + si)  # [N, irreps_out]
        return x + update if self.residual else update

    def extra_repr(self) -> str:
        return (f"irreps_in={self.irreps_in}, irreps_out={self.irreps_out}, num_heads={self.num_heads}, "
                f"attention={self.attention}, pair_messages={self.pair_messages}, message_mixing={self.message_mixing}")


def _receiver_chunks(aggregate, chunks: tuple, senders: torch.Tensor, x: torch.Tensor, sh: torch.Tensor,
                     radial: torch.Tensor, envelope: torch.Tensor, edge_index: torch.Tensor):
    """``aggregate`` on each run of receivers with all their edges (edges sorted by receiver),
    recomputed in the backward when gradients are recorded; yields ``[N_c, dim]`` per chunk."""
    edge_starts = [c[0] for c in chunks] + [edge_index.shape[1]]
    node_starts = [c[1] for c in chunks] + [x.shape[0]]
    edge_sizes = [b - a for a, b in zip(edge_starts[:-1], edge_starts[1:])]
    node_sizes = [b - a for a, b in zip(node_starts[:-1], node_starts[1:])]
    pieces = zip(x.split(node_sizes), sh.split(edge_sizes), radial.split(edge_sizes), envelope.split(edge_sizes),
                 edge_index.split(edge_sizes, dim=1), node_starts)
    recompute = torch.is_grad_enabled() and not torch.compiler.is_compiling()
    for receivers, sh_c, radial_c, envelope_c, index_c, first_node in pieces:
        args = (senders, receivers, sh_c, radial_c, envelope_c, index_c[0], index_c[1] - first_node)
        yield checkpoint(aggregate, *args, use_reentrant=False) if recompute else aggregate(*args)
