"""Every building block of the SE3 and GATv2 models declares what it reads and writes."""

import inspect

import pytest
import torch
from e3nn import o3

import equiformer_lite.nn as nn_package
from equiformer_lite.models import GATv2Potential, SE3Potential

# The Set Transformer blocks of the A2I model read features of raw coordinates, not irreps.
NOT_IRREPS = {"MultiheadAttentionBlock", "SetAttentionBlock", "SetTransformerEncoder"}


def _blocks_in(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    exported = {getattr(nn_package, name) for name in nn_package.__all__ if inspect.isclass(getattr(nn_package, name))}
    return {type(m).__name__: m for m in model.modules() if type(m) in exported}


@pytest.mark.parametrize("model_class, options", [(SE3Potential, {}), (GATv2Potential, {}), (GATv2Potential, {"angular_lmax": 2})])
def test_blocks_of_the_models_declare_irreps(model_class, options):
    model = model_class(["H", "O"], cutoff=3.0, channels=8, num_heads=2, num_layers=1, **options)
    blocks = _blocks_in(model)
    assert len(blocks) >= 4
    for name, block in blocks.items():
        assert isinstance(block.irreps_in, o3.Irreps) and isinstance(block.irreps_out, o3.Irreps), name


def test_every_exported_module_but_the_set_transformer_declares_irreps_in_its_source():
    for name in nn_package.__all__:
        obj = getattr(nn_package, name)
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and name not in NOT_IRREPS:
            source = inspect.getsource(obj)
            assert "irreps_in" in source and "irreps_out" in source, name
