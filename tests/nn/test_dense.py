"""`nn/dense.py` and the few-operation gate: the same functions as e3nn's modules, with the same weights.

Each class replaces an e3nn forward, so each is checked against that forward (called on the same
module, or on an e3nn module loaded with the same state_dict) in float64: values, first
derivatives and the second derivatives with respect to the weights that a force loss takes. An
O(3) test with reflections covers the equivariance directly.
"""

import pytest
import torch
from e3nn import o3
from e3nn.nn import Gate

from equiformer_lite.nn import hidden_irreps
from equiformer_lite.nn.dense import DenseChannelwiseProduct, DenseLinear, DenseSpeciesLinear
from equiformer_lite.nn.irreps_tools import product_paths
from equiformer_lite.nn.nonlinearity import build_gate
from equiformer_lite.testing import float64_default_dtype

HIDDEN = hidden_irreps(4, 2)  # 4x0e+4x1o+4x2e
LINEARS = {
    "hidden to hidden": (HIDDEN, HIDDEN),
    "to scalars": (HIDDEN, "6x0e"),
    "repeated irreps, an unreachable output": ("4x0e+2x0e+3x1e+2x1e", "5x0e+2x1e+1x2e"),
    "SO(3) only": (hidden_irreps(3, 2, parity=False), hidden_irreps(5, 1, parity=False)),
}


def _pair(dense: torch.nn.Module, reference: torch.nn.Module) -> torch.nn.Module:
    reference.load_state_dict(dense.state_dict())  # the same parameters, by name and layout
    with torch.no_grad():
        for p in dense.parameters():
            p.normal_()
        reference.load_state_dict(dense.state_dict())
    return reference


def _same_function(dense, reference, inputs):
    """Values, input gradients and second derivatives w.r.t. the weights agree to float64 precision."""
    out, ref = dense(*inputs), reference(*inputs)
    assert out.shape == ref.shape
    scale = ref.abs().max()
    assert scale > 0.1
    assert (out - ref).abs().max() <= 1e-12 * scale
    probe = torch.randn_like(ref)
    grads = {}
    for key, module in (("dense", dense), ("e3nn", reference)):
        first = torch.autograd.grad((module(*inputs) * probe).sum(), inputs, create_graph=True)
        second = torch.autograd.grad(sum((g ** 2).sum() for g in first), list(module.parameters()))
        grads[key] = list(first) + list(second)
    for a, b in zip(grads["dense"], grads["e3nn"]):
        assert (a - b).abs().max() <= 1e-11 * max(float(b.detach().abs().max()), 1.0)


@pytest.mark.parametrize("name", sorted(LINEARS))
def test_dense_linear_is_e3nns_linear(name):
    with float64_default_dtype():
        torch.manual_seed(0)
        irreps_in, irreps_out = LINEARS[name]
        dense = DenseLinear(irreps_in, irreps_out)
        reference = _pair(dense, o3.Linear(irreps_in, irreps_out))
        x = torch.randn(7, dense.irreps_in.dim, requires_grad=True)
        _same_function(dense, reference, (x,))
        assert dense(x[None]).shape == (1, 7, dense.irreps_out.dim)  # leading dimensions kept


def test_dense_species_linear_is_e3nns_product_with_scalars():
    with float64_default_dtype():
        torch.manual_seed(1)
        irreps_out = "3x0e+4x1o+2x2e+2x1e"  # 1e: no input reaches it (zeros, as in e3nn)
        dense = DenseSpeciesLinear(HIDDEN, irreps_out, 3)
        reference = _pair(dense, o3.FullyConnectedTensorProduct(HIDDEN, "3x0e", irreps_out))
        x = torch.randn(7, HIDDEN.dim, requires_grad=True)
        z = torch.randn(7, 3, requires_grad=True)  # any scalars, not only one-hot rows
        _same_function(dense, reference, (x, z))


@pytest.mark.parametrize("symmetric", [True, False])
def test_dense_channelwise_product_is_e3nns_uuu_product(symmetric):
    with float64_default_dtype():
        torch.manual_seed(2)
        mid, instructions = product_paths(HIDDEN, HIDDEN, {ir for _, ir in HIDDEN}, "uuu", symmetric=symmetric)
        dense = DenseChannelwiseProduct(HIDDEN, HIDDEN, o3.Irreps(mid), instructions)
        reference = _pair(dense, o3.TensorProduct(HIDDEN, HIDDEN, o3.Irreps(mid), instructions))
        x = torch.randn(7, HIDDEN.dim, requires_grad=True)
        y = torch.randn(7, HIDDEN.dim, requires_grad=True)
        _same_function(dense, reference, (x, y))


@pytest.mark.parametrize("irreps", ["4x0e+4x1o+4x2e", "3x0e+2x0o+2x1e+1x1o+2x2e", "4x0e", "2x1o+3x0e"])
def test_few_op_gate_is_e3nns_gate(irreps):
    with float64_default_dtype():
        torch.manual_seed(3)
        gate = build_gate(irreps)
        assert isinstance(gate, Gate)
        x = torch.randn(6, gate.irreps_in.dim, requires_grad=True)
        ref = Gate.forward(gate, x)
        out = gate(x)
        assert (out - ref).abs().max() <= 1e-14 * ref.abs().max()
        probe = torch.randn_like(ref)
        (g_new,) = torch.autograd.grad((out * probe).sum(), x)
        (g_ref,) = torch.autograd.grad((ref * probe).sum(), x)
        assert (g_new - g_ref).abs().max() <= 1e-13 * g_ref.abs().max()


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_dense_maps_are_o3_equivariant(dtype, tolerance):
    """Rotations and a reflection: f(D_in x) = D_out f(x) for every class."""
    with float64_default_dtype():
        torch.manual_seed(4)
        mid, instructions = product_paths(HIDDEN, HIDDEN, {ir for _, ir in HIDDEN}, "uuu", symmetric=True)
        modules = {
            "linear": (DenseLinear(HIDDEN, HIDDEN), lambda m, x, z: m(x)),
            "species": (DenseSpeciesLinear(HIDDEN, HIDDEN, 3), lambda m, x, z: m(x, z)),
            "product": (DenseChannelwiseProduct(HIDDEN, HIDDEN, o3.Irreps(mid), instructions), lambda m, x, z: m(x, x)),
            "gate": (build_gate(HIDDEN), None),
        }
        rotation = o3.rand_matrix()
        for name, (module, call) in modules.items():
            for p in module.parameters():
                torch.nn.init.normal_(p)
            module = module.to(dtype)
            if call is None:  # the gate reads its own input irreps
                call = lambda m, x, z: m(x)
            irreps_in = module.irreps_in1 if hasattr(module, "irreps_in1") else module.irreps_in
            for sign in (1.0, -1.0):  # a proper rotation, then the same with the inversion
                d_in = irreps_in.D_from_matrix(sign * rotation).to(dtype)
                d_out = module.irreps_out.D_from_matrix(sign * rotation).to(dtype)
                x = torch.randn(5, irreps_in.dim, dtype=dtype)
                z = torch.randn(5, 3, dtype=dtype)
                lhs = call(module, x @ d_in.T, z)
                rhs = call(module, x, z) @ d_out.T
                assert (lhs - rhs).abs().max() <= tolerance * max(float(rhs.abs().max()), 1.0), name


def test_saved_weights_are_e3nns():
    """The constants are not saved; a state_dict moves between the dense and the e3nn module."""
    dense = DenseLinear(HIDDEN, HIDDEN)
    assert set(dense.state_dict()) == set(o3.Linear(HIDDEN, HIDDEN).state_dict())
    assert not any(key.startswith("_") for key in dense.state_dict())
    species = DenseSpeciesLinear(HIDDEN, HIDDEN, 2)
    assert set(species.state_dict()) == set(o3.FullyConnectedTensorProduct(HIDDEN, "2x0e", HIDDEN).state_dict())


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_species must be a positive integer"):
        DenseSpeciesLinear(HIDDEN, HIDDEN, 0)
    with pytest.raises(ValueError, match="one multiplicity"):
        mid, instructions = product_paths(o3.Irreps("4x0e+2x1o"), o3.Irreps("4x0e+2x1o"), {o3.Irrep("0e")}, "uuu")
        DenseChannelwiseProduct("4x0e+2x1o", "4x0e+2x1o", o3.Irreps(mid), instructions)
    with pytest.raises(ValueError, match="weighted 'uuu'"):
        DenseChannelwiseProduct("2x0e", "2x0e", "2x0e", [(0, 0, 0, "uvu", True)])


def test_no_rows_and_no_batch_dimension():
    """Zero atoms give empty outputs, and a single unbatched vector works, for every class."""
    mid, instructions = product_paths(HIDDEN, HIDDEN, {ir for _, ir in HIDDEN}, "uuu", symmetric=True)
    linear, species = DenseLinear(HIDDEN, HIDDEN), DenseSpeciesLinear(HIDDEN, HIDDEN, 3)
    product = DenseChannelwiseProduct(HIDDEN, HIDDEN, o3.Irreps(mid), instructions)
    for rows in ((0,), (), (2, 3)):
        x, z = torch.randn(*rows, HIDDEN.dim), torch.randn(*rows, 3)
        assert linear(x).shape == (*rows, HIDDEN.dim)
        assert species(x, z).shape == (*rows, HIDDEN.dim)
        assert product(x, x).shape == (*rows, product.irreps_out.dim)
    x = torch.randn(HIDDEN.dim)
    assert torch.allclose(linear(x), linear(x[None])[0])


def _frozen_modules():
    """A module of each kind that keeps assembled weights, with its inputs (float64)."""
    with float64_default_dtype():
        instructions = product_paths(HIDDEN, HIDDEN, {ir for _, ir in HIDDEN}, "uuu", symmetric=True)
        square = DenseChannelwiseProduct(HIDDEN, HIDDEN, o3.Irreps(instructions[0]), instructions[1])
        modules = {
            "linear": (DenseLinear(HIDDEN, HIDDEN), lambda: (HIDDEN.randn(5, -1),)),
            "species": (DenseSpeciesLinear(HIDDEN, HIDDEN, 3), lambda: (HIDDEN.randn(5, -1), torch.eye(3)[[0, 2, 1, 1, 0]])),
            "channel-wise": (square, lambda: (HIDDEN.randn(5, -1), HIDDEN.randn(5, -1))),
        }
    return modules


@pytest.mark.parametrize("name", ["linear", "species", "channel-wise"])
def test_frozen_weights_are_kept_until_they_change(name):
    """An inference copy (weights without gradient) keeps its assembled matrices; a new weight
    (``load_state_dict``, an in-place change) is seen at once; trainable weights keep none."""
    module, make_inputs = _frozen_modules()[name]
    with float64_default_dtype():
        inputs = make_inputs()
    trainable = module(*inputs)
    assert "_frozen_weights" not in module.__dict__  # trainable: assembled on every call
    module.requires_grad_(False)
    torch.testing.assert_close(module(*inputs), trainable, rtol=0, atol=0)
    kept = module.__dict__["_frozen_weights"][1]
    module(*inputs)
    assert module.__dict__["_frozen_weights"][1] is kept  # not rebuilt
    state = {k: torch.randn_like(v) for k, v in module.state_dict().items()}
    module.load_state_dict(state)
    changed = module(*inputs)
    module.requires_grad_(True)
    torch.testing.assert_close(changed, module(*inputs), rtol=0, atol=0)
    module.requires_grad_(False)
    with torch.no_grad():
        module.weight.mul_(2.0)
    doubled = module(*inputs)
    module.requires_grad_(True)
    torch.testing.assert_close(doubled, module(*inputs), rtol=0, atol=0)
    assert not torch.allclose(doubled, changed)
