"""TorchSim's model interface over our potentials: a batch of systems in one call gives what the
ASE calculator gives system by system, and TorchSim's integrators run on it."""

import numpy as np
import pytest
import torch

from equiformer_lite import EquiformerCalculator
from tests.conftest import diamond, ethanol, small_potential

ts = pytest.importorskip("torch_sim", reason="torch-sim-atomistic is not installed")


@pytest.mark.parametrize("kind", ["se3", "gatv2"])
@pytest.mark.parametrize("periodic", [False, True], ids=["molecules", "cells"])
def test_a_batch_equals_the_calculator_system_by_system(kind, periodic):
    from equiformer_lite.calculators.torchsim import TorchSimModel

    model = small_potential(kind, torch.float64)
    systems = [diamond().repeat((2, 1, 1)) if periodic else ethanol() for _ in range(3)]
    for i, atoms in enumerate(systems):
        atoms.rattle(0.05, seed=20 + i)
    interface = TorchSimModel(model)
    out = interface(ts.initialize_state(systems, interface.device, interface.dtype))
    start = 0
    for i, atoms in enumerate(systems):
        atoms.calc = EquiformerCalculator(model)
        n = len(atoms)
        assert out["energy"][i].item() == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        assert np.abs(out["forces"][start:start + n].numpy() - atoms.get_forces()).max() < 1e-10
        if periodic:
            assert np.abs(out["stress"][i].numpy() - atoms.get_stress(voigt=False)).max() < 1e-10
        start += n
    assert ("stress" in out) == periodic


def test_torchsim_integrates_a_batch_in_nve():
    from equiformer_lite.calculators.torchsim import TorchSimModel

    interface = TorchSimModel(small_potential("gatv2", torch.float64))
    systems = [ethanol() for _ in range(4)]
    final = ts.integrate(system=systems, model=interface, integrator=ts.nve, n_steps=20, temperature=300.0, timestep=0.0005)
    assert final.positions.shape == (36, 3) and torch.isfinite(final.positions).all()
    moved = (final.positions - ts.initialize_state(systems, interface.device, interface.dtype).positions).abs().max()
    assert moved > 1e-3
