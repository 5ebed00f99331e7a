"""The model contract: inputs are validated once (``prepare_inputs``) and ``forward`` on them is pure
tensor code, with no value read back to the host, in inference and in training."""

import ast
import inspect
import textwrap

import pytest
import torch
from ase.build import molecule

import equiformer_lite.models as models_package
import equiformer_lite.nn as nn_package
from equiformer_lite import atoms_to_batch, keys
from equiformer_lite.testing import HostSyncError, no_host_sync
from tests.conftest import CUTOFF, diamond, ethanol, small_potential, water_box
from tests.models.test_a2i_potential import small_a2i

MODELS = {
    "se3": lambda dtype: small_potential("se3", dtype),
    "gatv2": lambda dtype: small_potential("gatv2", dtype),
    "gatv2-angular": lambda dtype: small_potential("gatv2", dtype, angular_lmax=2, angular_correlation=3),
    "a2i": lambda dtype: small_a2i(dtype, species=["H", "C", "O"], atomic_energies=None),
}


def batches():
    """A molecule, and a batch of two periodic cells and a molecule (stress rows of open ones 0)."""
    return {"molecule": [ethanol()], "mixed": [water_box(), ethanol(), diamond()]}


def test_host_sync_guard_catches_value_reads():
    x = torch.ones(3)
    for read in (lambda: x.sum().item(), lambda: bool(x.any()), lambda: x.nonzero(), lambda: float(x[0])):
        with pytest.raises(HostSyncError, match="reads a tensor value"), no_host_sync():
            read()
    with no_host_sync():
        (x * 2).sum()


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("name", ["molecule", "mixed"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_forward_on_validated_inputs_never_syncs(kind, name, training):
    model = MODELS[kind](torch.float64).train(training)
    batch = atoms_to_batch(batches()[name], CUTOFF, dtype=torch.float64)
    inputs = model.prepare_inputs(batch)
    reference = model(batch)
    with no_host_sync():
        out = model(inputs)
        if training:  # the force loss differentiates the forces again
            out[keys.FORCES].square().sum().backward()
    for key in (keys.ENERGY, keys.FORCES):
        assert torch.equal(out[key].detach(), reference[key].detach())
    assert (keys.STRESS in out) == (name == "mixed")


def test_the_door_rejects_what_forward_no_longer_checks():
    model = small_potential("se3")
    batch = atoms_to_batch([molecule("H2O")], CUTOFF)
    batch[keys.POSITIONS][1] = batch[keys.POSITIONS][0]
    with pytest.raises(ValueError, match="coincident atoms"):
        model.prepare_inputs(batch)
    batch = atoms_to_batch([molecule("H2O"), molecule("CH4")], CUTOFF)
    batch[keys.BATCH] = batch[keys.BATCH].flip(0)
    with pytest.raises(ValueError, match="must be sorted"):
        model.prepare_inputs(batch)


FORBIDDEN_CALLS = {"item", "tolist", "numpy", "cpu", "nonzero"}


def _forward_sources():
    """``(qualified name, source)`` of every ``forward`` defined in the package's models and layers."""
    for package in (models_package, nn_package):
        for _, cls in inspect.getmembers(package, inspect.isclass):
            if not issubclass(cls, torch.nn.Module) or not cls.__module__.startswith("equiformer_lite"):
                continue
            for name in ("forward", "compute", "atomic_energies", "raw_energies", "stages"):
                fn = cls.__dict__.get(name)
                if fn is not None:
                    yield f"{cls.__name__}.{name}", textwrap.dedent(inspect.getsource(fn))


@pytest.mark.parametrize("qualname,source", [pytest.param(*p, id=p[0]) for p in _forward_sources()])
def test_no_value_reads_in_forward_source(qualname, source):
    """What the dispatcher cannot see (``.tolist()``, ``.numpy()``) and what it can, by name."""
    tree = ast.parse(source)
    bad = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FORBIDDEN_CALLS
    ]
    bad += [
        "bool(...)"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("bool", "float", "int")
    ]
    assert not bad, f"{qualname} reads tensor values on the host: {bad}"
