"""`EdgeTensorProduct.mixed`: the attention layer's keys and values computed path by path.

The layer used to form the tensor-product messages ``[E, irreps_mid]`` and then map them with
``key_value``; ``mixed`` computes ``key_value(edge_tp(...))`` without that tensor. It must be the
same function: values, gradients and the second derivatives that force training takes, for every
layer shape the models build (scalar first layer, l = 2 hidden features, messages of a higher
degree than the features, SO(3)-only irreps).
"""

import pytest
import torch
from e3nn import o3

from equiformer_lite.nn import SE3AttentionLayer, hidden_irreps
from equiformer_lite.testing import float64_default_dtype

LAYERS = {
    "first layer (scalars in)": dict(irreps_in="8x0e", irreps_sh="1x0e+1x1o+1x2e", irreps_out=hidden_irreps(8, 2)),
    "hidden l=2": dict(irreps_in=hidden_irreps(8, 2), irreps_sh="1x0e+1x1o+1x2e", irreps_out=hidden_irreps(8, 2)),
    "messages above the features": dict(irreps_in=hidden_irreps(8, 1), irreps_sh="1x0e+1x1o+1x2e+1x3o",
                                        irreps_out=hidden_irreps(8, 1), irreps_message=hidden_irreps(8, 2),
                                        tensor_square=True),
    "SO(3) only": dict(irreps_in=hidden_irreps(8, 2, parity=False), irreps_sh="1x0e+1x1e+1x2e",
                       irreps_out=hidden_irreps(8, 2, parity=False)),
}


def _layer(spec: dict) -> SE3AttentionLayer:
    spec = dict(spec)
    return SE3AttentionLayer(spec.pop("irreps_in"), spec.pop("irreps_sh"), spec.pop("irreps_out"), 6,
                             num_heads=2, radial_hidden=16, **spec)


def _inputs(layer: SE3AttentionLayer, num_edges: int = 40):
    x = torch.randn(num_edges, layer.irreps_in.dim, requires_grad=True)
    sh = torch.randn(num_edges, layer.irreps_sh.dim, requires_grad=True)
    radial = torch.randn(num_edges, 6, requires_grad=True)
    return x, sh, radial


def _reference(layer, x, sh, radial):
    return layer.key_value(layer.edge_tp(x, sh, radial))  # [E, qk + value]


def _mixed(layer, x, sh, radial):
    return torch.cat(layer.edge_tp.mixed(x, sh, radial, layer.key_value, layer._mixing), dim=-1)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_mixed_is_the_linear_of_the_tensor_product(name):
    with float64_default_dtype():
        torch.manual_seed(0)
        layer = _layer(LAYERS[name])
        x, sh, radial = _inputs(layer)
        ref, new = _reference(layer, x, sh, radial), _mixed(layer, x, sh, radial)
        assert new.shape == ref.shape == (x.shape[0], layer.key_value.irreps_out.dim)
        scale = ref.abs().max()
        assert scale > 0.1
        assert (new - ref).abs().max() < 1e-12 * scale

        # First and second derivatives (a force loss differentiates the layer twice), with
        # respect to the inputs and to every parameter that takes part.
        probe = torch.randn_like(ref)
        params = [p for p in layer.parameters() if p.requires_grad]
        grads = {}
        for key, f in (("ref", _reference), ("new", _mixed)):
            g_x, g_sh, g_r = torch.autograd.grad((f(layer, x, sh, radial) * probe).sum(), (x, sh, radial), create_graph=True)
            second = torch.autograd.grad((g_x ** 2).sum() + (g_sh ** 2).sum() + (g_r ** 2).sum(), params, allow_unused=True)
            grads[key] = [g_x, g_sh, g_r] + [torch.zeros_like(p) if g is None else g for p, g in zip(params, second)]
        for a, b in zip(grads["ref"], grads["new"]):
            assert (a - b).abs().max() <= 1e-11 * max(a.abs().max(), 1.0)
        assert any(g.abs().max() > 0 for g in grads["new"][3:])  # the check saw the parameters


def test_mixed_in_float32_matches_float64():
    torch.manual_seed(1)
    layer = _layer(LAYERS["hidden l=2"])
    x, sh, radial = _inputs(layer)
    ref = _reference(layer.double(), x.double(), sh.double(), radial.double())
    new = _mixed(layer.float(), x.float(), sh.float(), radial.float())
    assert (new.double() - ref).abs().max() < 1e-5 * ref.abs().max()


def test_a_linear_on_other_irreps_is_refused():
    layer = _layer(LAYERS["hidden l=2"])
    with pytest.raises(ValueError, match="must read"):
        layer.edge_tp.mixing_plan(o3.Linear(hidden_irreps(8, 2), hidden_irreps(8, 2)))


def test_the_saved_weights_do_not_change():
    """The constants of ``mixed`` are not saved: a model saved before loads as it was."""
    layer = _layer(LAYERS["hidden l=2"])
    assert not any(key.startswith("edge_tp._mix_") for key in layer.state_dict())  # e3nn's own stay
    assert {"_mix_coupling_0", "_mix_rows", "_mix_scales"} <= {name for name, _ in layer.edge_tp.named_buffers()}


def test_one_coupling_product_per_feature_block():
    """The groups of paths that read one feature block share one product with the harmonics and
    one batched product (per group, compiled code turned the backward of the batched products with
    one output row into a reduction parallelised inside every edge)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.bmm = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.bmm += func is torch.ops.aten.bmm.default
            return func(*args, **(kwargs or {}))

    layer = _layer(LAYERS["hidden l=2"])
    blocks = layer._mixing.blocks
    assert [b.dim_in for b in blocks] == [1, 3, 5]  # the 0e, 1o and 2e features
    assert len(layer._mixing.groups) > len(blocks)  # several groups read each block
    x, sh, radial = _inputs(layer)
    with Count() as count:
        _mixed(layer, x, sh, radial)
    assert count.bmm == 2  # l1 = 1 and l1 = 2; the scalars' product is a broadcast one
