"""e3nn's node-level maps in a few whole-tensor operations: the same functions with the same
weights, instead of one small operation per irrep block and path.

e3nn evaluates a :class:`~e3nn.o3.Linear` or :class:`~e3nn.o3.TensorProduct` block by block: a
slice, a reshape, an einsum and a concatenation for every path. On the atoms of one molecule
those operations are tiny, so their count, not their arithmetic, sets the cost: in a 21-atom
force evaluation of the default ``SE3Potential`` the forward passes of the node maps alone made
about 2,400 of its 6,300 operations (forward and backward; counted 2026-12-07). The classes here subclass e3nn's, keep
its parameters (``weight``, same layout, so saved models load unchanged) and its metadata
(``instructions``, ``irreps_in``/``irreps_out``), and replace ``forward``:

* :class:`DenseLinear`: one matrix product per irrep type, the channels of every input block of
  that type in, the weights of every instruction between blocks of that type assembled into one
  matrix (e3nn's arithmetic, no zero blocks);
* :class:`DenseSpeciesLinear`: e3nn's product of the features with scalars (the one-hot
  species, a linear map per element) the same way, the scalars weighting the per-element outputs;
* :class:`DenseChannelwiseProduct`: a ``"uuu"`` tensor product (each channel with itself) as
  one outer product per channel and one matrix product with every path's Clebsch-Gordan
  coefficients.

The matrices are assembled from ``weight`` on every call (an ``index_add`` of the weights into
their places), so training, ``torch.compile`` and ``torch.export`` see plain tensor code; a
copy for inference, whose weights need no gradient, keeps them (:func:`weights_of`). The
constants are computed in float64 and stored in the dtype the module is built in, as
non-persistent buffers. ``tests/nn/test_dense.py`` checks every class against e3nn's own forward
to float64 precision, with first and second derivatives.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from e3nn import o3

__all__ = ["DenseLinear", "DenseSpeciesLinear", "DenseChannelwiseProduct", "matmul", "weights_of"]


class _DegreeWiseMap:
    r"""The plan of an e3nn map that is linear in ``x`` and connects input blocks to output blocks
    of the same irrep (``Linear``; a product with scalars), evaluated one irrep type at a time:
    all channels of type :math:`t` in, as ``[N * (2l+1), U_in]``, times one weight matrix
    ``[U_in, S * U_out]`` assembled from the e3nn weights, out as ``[N * (2l+1), S * U_out]``.
    That is e3nn's arithmetic (no zero blocks) in one product per irrep type instead of one
    einsum per instruction.

    ``entries`` yields ``(i_in, i_out, flat, mul_in, num_scalars, mul_out, coefficient)`` per
    instruction: its weights ``[mul_in, num_scalars, mul_out]`` start at ``flat`` in the module's
    ``weight`` and carry ``coefficient`` (path weight times the Clebsch-Gordan factor).
    """

    @staticmethod
    def build(module: torch.nn.Module, irreps_in: o3.Irreps, irreps_out: o3.Irreps, entries, num_scalars: int) -> tuple:
        types = []  # irrep types in order of their first output block that some input reaches
        for _, ir in irreps_out:
            if ir not in types and any(ir == ir_in for _, ir_in in irreps_in):
                types.append(ir)
        in_starts, out_starts = _starts(irreps_in), _starts(irreps_out)
        # Channel offsets of every block inside its type's stacked channels.
        def channel_offsets(irreps):
            offsets, seen = [], {}
            for mul, ir in irreps:
                offsets.append(seen.get(ir, 0))
                seen[ir] = seen.get(ir, 0) + mul
            return offsets, seen
        in_offsets, in_totals = channel_offsets(irreps_in)
        out_offsets, out_totals = channel_offsets(irreps_out)

        in_index, layout, weight_starts, flat_weights = [], [], {}, 0
        for ir in types:
            u_in, u_out = in_totals[ir], out_totals[ir]
            index = np.empty((ir.dim, u_in), dtype=np.int64)  # (m, u) order
            for k, (mul, ir_k) in enumerate(irreps_in):
                if ir_k == ir:
                    u = np.arange(mul)
                    index[:, in_offsets[k] + u] = in_starts[k] + u[None, :] * ir.dim + np.arange(ir.dim)[:, None]
            in_index.append(index.ravel())
            layout.append((ir.dim, u_in, u_out))
            weight_starts[ir] = flat_weights
            flat_weights += u_in * num_scalars * u_out

        positions, sources, coefficients = [], [], []
        for i_in, i_out, flat, mul_in, mul_s, mul_out, coefficient in entries:
            ir = irreps_in[i_in].ir
            _, u_in, u_out = layout[types.index(ir)]
            u, s, w = np.meshgrid(np.arange(mul_in), np.arange(mul_s), np.arange(mul_out), indexing="ij")
            rows, cols = in_offsets[i_in] + u, s * u_out + out_offsets[i_out] + w
            positions.append((weight_starts[ir] + rows * (num_scalars * u_out) + cols).ravel())
            sources.append((flat + (u * mul_s + s) * mul_out + w).ravel())
            coefficients.append(np.full(u.size, coefficient))

        # Where every e3nn output element lies in the concatenated (type, m, w) outputs; a block
        # no input reaches reads the extra zero column at the end.
        type_starts = np.cumsum([0] + [dim * u_out for dim, _, u_out in layout])
        out_index = np.full(irreps_out.dim, type_starts[-1], dtype=np.int64)
        for k, (mul, ir) in enumerate(irreps_out):
            if ir in types:
                t = types.index(ir)
                w, m = np.meshgrid(np.arange(mul), np.arange(ir.dim), indexing="ij")
                u_out = layout[t][2]
                out_index[out_starts[k] + w * ir.dim + m] = type_starts[t] + m * u_out + out_offsets[k] + w
        cat = lambda parts, dtype: torch.as_tensor(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)
        module.register_buffer("_in_index", cat(in_index, torch.long), persistent=False)
        module.register_buffer("_positions", cat(positions, torch.long), persistent=False)
        module.register_buffer("_sources", cat(sources, torch.long), persistent=False)
        module.register_buffer("_coefficients", cat(coefficients, torch.get_default_dtype()), persistent=False)
        module.register_buffer("_out_index", torch.as_tensor(out_index), persistent=False)
        return tuple(layout), int(flat_weights), bool((out_index == type_starts[-1]).any())

    @staticmethod
    def matrices(module: torch.nn.Module, num_scalars: int) -> tuple:
        """The weight matrix ``[U_in, S * U_out]`` of every irrep type, assembled from ``module.weight``."""
        values = module.weight[module._sources] * module._coefficients  # [nnz]
        weights = values.new_zeros(module._num_weights).index_add(0, module._positions, values)
        weights = torch.split(weights, [u_in * num_scalars * u_out for _, u_in, u_out in module._layout])
        return tuple(w.view(u_in, num_scalars * u_out) for w, (_, u_in, u_out) in zip(weights, module._layout))

    @staticmethod
    def apply(module: torch.nn.Module, x: torch.Tensor, scalars: Optional[torch.Tensor]) -> torch.Tensor:
        """``x [..., dim_in]`` (and ``scalars [..., S]``) -> ``[..., dim_out]``."""
        batch = x.shape[:-1]
        rows = math.prod(batch)  # explicit sizes: reshape(-1, ...) is ambiguous for zero rows
        x = x.reshape(rows, x.shape[-1])
        num_scalars = 1 if scalars is None else scalars.shape[-1]
        weights = weights_of(module, module.weight, lambda: _DegreeWiseMap.matrices(module, num_scalars))
        inputs = torch.split(x.index_select(1, module._in_index), [dim * u_in for dim, u_in, _ in module._layout], dim=1)
        outputs = []
        for (dim, u_in, u_out), xs, w in zip(module._layout, inputs, weights):
            y = matmul(xs.reshape(rows * dim, u_in), w)  # [B * (2l+1), S * U_out]
            if scalars is not None:
                y = (y.reshape(rows, dim, num_scalars, u_out) * scalars[:, None, :, None]).sum(2)  # [B, 2l+1, U_out]
            outputs.append(y.reshape(rows, dim * u_out))
        if module._has_zero_blocks:
            outputs.append(x.new_zeros(x.shape[0], 1))
        out = torch.cat(outputs, dim=1).index_select(1, module._out_index)  # [B, dim_out]
        return out.reshape(*batch, out.shape[-1])


def weights_of(module: torch.nn.Module, weight: torch.Tensor, build):
    """``build()``, the matrices a map assembles from its ``weight`` on every call, kept on
    ``module`` while ``weight`` needs no gradient (a model copied for inference,
    :meth:`~equiformer_lite.models.base.AtomisticPotential.for_inference`) and has not changed
    since (same storage and version: ``load_state_dict`` or any in-place change rebuilds them).
    A trainable weight, ``torch.compile`` and ``torch.export`` always get ``build()``, so
    gradients and traced graphs are as without the cache. In a 21-atom force evaluation this
    saves about a hundred of its ~3,000 operations.
    """
    if weight.requires_grad or torch.compiler.is_compiling():
        return build()
    key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
    cached = module.__dict__.get("_frozen_weights")
    if cached is None or cached[0] != key:
        with torch.no_grad():
            cached = (key, build())
        module.__dict__["_frozen_weights"] = cached
    return cached[1]


def matmul(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``x @ matrix`` for ``x [B, K]`` and ``matrix [K, C]``; under ``torch.compile``, with one
    column (C = 1), as a broadcast product and sum. Its backward is then no ``[B, 1] @ [1, K]``
    product, which inductor turns into an element-wise one only for small B, behind a guard on B:
    the compiled model would recompile once for molecules of under ~30 atoms or edges. Eager code
    keeps the matrix product (the same function, with the round-off it always had).
    """
    if matrix.shape[1] == 1 and torch.compiler.is_compiling():
        return (x * matrix[:, 0]).sum(-1, keepdim=True)  # [B, 1]
    return x @ matrix  # [B, C]


def _starts(irreps: o3.Irreps) -> list[int]:
    return [s.start for s in irreps.slices()]


class DenseLinear(o3.Linear):
    r""":class:`e3nn.o3.Linear` (shared internal weights, no biases) in one matrix product per
    irrep type:

    .. math:: \mathrm{out}^{t}_{(n,m),w} = \sum_{u} x^{t}_{(n,m),u}\, M^{t}_{u w}, \qquad
        M^{t}_{(a,u),(b,w)} = \alpha_{ab}\, W^{ab}_{uw}

    where :math:`x^t` stacks the channels of every input block of type :math:`t` and :math:`M^t`
    holds e3nn's weight of every instruction :math:`a \to b` between blocks of that type (path
    weight :math:`\alpha_{ab}`).

    Shapes: ``[..., irreps_in.dim]`` -> ``[..., irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out) -> None:
        super().__init__(irreps_in, irreps_out)
        entries, flat = [], 0
        for ins in self.instructions:
            mul_in, mul_out = ins.path_shape
            entries.append((ins.i_in, ins.i_out, flat, mul_in, 1, mul_out, float(ins.path_weight)))
            flat += mul_in * mul_out
        self._layout, self._num_weights, self._has_zero_blocks = _DegreeWiseMap.build(
            self, self.irreps_in, self.irreps_out, entries, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _DegreeWiseMap.apply(self, x, None)  # [..., irreps_out.dim]


class DenseSpeciesLinear(o3.FullyConnectedTensorProduct):
    r"""e3nn's fully connected product of features with ``num_species`` scalars (with the one-hot
    species: a linear map per element), in one matrix product per irrep type:

    .. math:: \mathrm{out}^{t}_{(n,m),w} = \sum_s z_{ns} \sum_u x^{t}_{(n,m),u}\, M^{t}_{u,(s,w)}, \qquad
        M^{t}_{(a,u),(s,b,w)} = \alpha_{ab}\, C^{l0l}\, W^{ab}_{usw}

    (:math:`C^{l0l} = 1/\sqrt{2l+1}`, the Clebsch-Gordan coefficient of a product with a scalar).

    Called as ``module(x, z)`` with ``x [..., irreps_in1.dim]`` and ``z [..., num_species]``
    -> ``[..., irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out, num_species: int) -> None:
        if not isinstance(num_species, int) or num_species < 1:
            raise ValueError(f"num_species must be a positive integer, got {num_species!r}")
        super().__init__(irreps_in, f"{num_species}x0e", irreps_out)
        self.num_species = num_species
        entries, flat = [], 0
        for ins in self.instructions:
            mul_in, mul_s, mul_out = ins.path_shape
            l = self.irreps_in1[ins.i_in1].ir.l
            cg = o3.wigner_3j(l, 0, l, dtype=torch.float64)[:, 0, :]  # [2l+1, 2l+1], the identity / sqrt(2l+1)
            if not torch.allclose(cg, torch.eye(2 * l + 1, dtype=torch.float64) * cg[0, 0]):
                raise ValueError(f"unexpected Clebsch-Gordan coefficients for {l} x 0 -> {l}")
            entries.append((ins.i_in1, ins.i_out, flat, mul_in, mul_s, mul_out, float(ins.path_weight) * float(cg[0, 0])))
            flat += mul_in * mul_s * mul_out
        self._layout, self._num_weights, self._has_zero_blocks = _DegreeWiseMap.build(
            self, self.irreps_in1, self.irreps_out, entries, num_species)

    def forward(self, x: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
        return _DegreeWiseMap.apply(self, x, attrs.reshape(math.prod(attrs.shape[:-1]), attrs.shape[-1]))  # [..., irreps_out.dim]


class DenseChannelwiseProduct(o3.TensorProduct):
    r"""An e3nn ``"uuu"`` tensor product (every channel with itself, one weight per channel and
    path), all of whose inputs have one multiplicity :math:`U`, evaluated per channel as one outer
    product and one matrix product with every path's Clebsch-Gordan coefficients:

    .. math:: \mathrm{out}^{p}_{u k} = W^{p}_{u}\, \alpha_p \sum_{ij} C^{p}_{ijk}\, x_{u i}\, y_{u j}

    where :math:`x_u, y_u` are channel :math:`u` of all degrees of the inputs. Each instruction
    must write its own output block (as :func:`~equiformer_lite.nn.irreps_tools.product_paths` builds them).

    Shapes: ``[..., irreps_in1.dim]``, ``[..., irreps_in2.dim]`` -> ``[..., irreps_out.dim]``.
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions) -> None:
        super().__init__(irreps_in1, irreps_in2, irreps_out, instructions)
        muls = {mul for mul, _ in self.irreps_in1} | {mul for mul, _ in self.irreps_in2}
        if len(muls) != 1:
            raise ValueError(f"DenseChannelwiseProduct needs one multiplicity in both inputs, got {self.irreps_in1} and {self.irreps_in2}")
        outs = [ins.i_out for ins in self.instructions]
        if sorted(outs) != list(range(len(self.irreps_out))):
            raise ValueError(f"every output block needs exactly one instruction, got outputs {outs} for {self.irreps_out}")
        for ins in self.instructions:
            if ins.connection_mode != "uuu" or not ins.has_weight:
                raise ValueError(f"DenseChannelwiseProduct takes weighted 'uuu' instructions, got {ins}")
        (mul,) = muls
        self.mul = mul

        def component_starts(irreps):  # start of each degree inside one channel's [D] vector
            return list(np.cumsum([0] + [ir.dim for _, ir in irreps])[:-1])

        def to_channels(irreps):  # e3nn layout -> [U, D]: index of element (u, m) in e3nn's flat vector
            starts, dim = component_starts(irreps), sum(ir.dim for _, ir in irreps)
            index = np.empty(mul * dim, dtype=np.int64)
            for start, block_start, (_, ir) in zip(starts, _starts(irreps), irreps):
                for u in range(mul):
                    index[u * dim + start : u * dim + start + ir.dim] = block_start + u * ir.dim + np.arange(ir.dim)
            return index, starts, dim

        index1, starts1, self._d1 = to_channels(self.irreps_in1)
        index2, starts2, self._d2 = to_channels(self.irreps_in2)
        out_dims = [self.irreps_out[ins.i_out].ir.dim for ins in self.instructions]
        self._k = int(sum(out_dims))
        coupling = np.zeros((self._d1 * self._d2, self._k))
        path_of_column = np.zeros(self._k, dtype=np.int64)
        out_index = np.empty(self.irreps_out.dim, dtype=np.int64)
        out_starts = _starts(self.irreps_out)
        column = 0
        for p, (ins, dim3) in enumerate(zip(self.instructions, out_dims)):
            l1, l2 = self.irreps_in1[ins.i_in1].ir.l, self.irreps_in2[ins.i_in2].ir.l
            cg = o3.wigner_3j(l1, l2, self.irreps_out[ins.i_out].ir.l, dtype=torch.float64).numpy()  # [d1, d2, d3]
            for i in range(cg.shape[0]):
                for j in range(cg.shape[1]):
                    coupling[(starts1[ins.i_in1] + i) * self._d2 + starts2[ins.i_in2] + j, column : column + dim3] += ins.path_weight * cg[i, j]
            path_of_column[column : column + dim3] = p
            for u in range(mul):  # e3nn puts (u, k) of this block at out_start + u * dim3 + k
                out_index[out_starts[ins.i_out] + u * dim3 + np.arange(dim3)] = u * self._k + column + np.arange(dim3)
            column += dim3
        dtype = torch.get_default_dtype()
        self.register_buffer("_index1", torch.as_tensor(index1), persistent=False)
        self.register_buffer("_index2", torch.as_tensor(index2), persistent=False)
        self.register_buffer("_coupling", torch.as_tensor(coupling, dtype=dtype), persistent=False)
        self.register_buffer("_path_of_column", torch.as_tensor(path_of_column), persistent=False)
        self.register_buffer("_out_index", torch.as_tensor(out_index), persistent=False)
        # A plain int: forward must not read e3nn's Irreps (dynamo's guards on an Irrep's length fail)
        self._dim_out = int(self.irreps_out.dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        batch = x.shape[:-1]
        rows = math.prod(batch)  # explicit sizes: reshape(-1, ...) is ambiguous for zero rows
        a = x.index_select(-1, self._index1).reshape(rows, self.mul, self._d1, 1)  # [B, U, D1, 1]
        b = y.index_select(-1, self._index2).reshape(rows, self.mul, 1, self._d2)  # [B, U, 1, D2]
        paths = ((a * b).reshape(rows * self.mul, self._d1 * self._d2) @ self._coupling).reshape(rows, self.mul, self._k)  # [B, U, K]
        weights = weights_of(self, self.weight, lambda: self.weight.view(-1, self.mul).t().index_select(1, self._path_of_column))  # [U, K]
        out = (paths * weights).reshape(rows, self.mul * self._k).index_select(-1, self._out_index)  # [B, irreps_out.dim]
        return out.reshape(*batch, self._dim_out)
