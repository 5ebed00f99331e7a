"""Shared fixtures: small models, structures, and the float32/float64 switch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from equiformer_lite import GATv2Potential, SE3Potential, keys
from equiformer_lite.models import AtomisticPotential
from equiformer_lite.testing import evaluate

SPECIES = ["H", "C", "O"]
CUTOFF = 4.0

# Bounds on relative equivariance errors (thesis eq. 3.1). Measured values (tests/README.md):
# float64 1e-16 .. 7e-14 for every layer and output; float32 1e-7 .. 2.5e-6 for layers and
# energies. A real equivariance bug gives 1e-3 .. 1.
EQ_TOL = {torch.float64: 1e-11, torch.float32: 1e-5}
# float32 forces and stress of a crystal are small net sums of many cancelling image
# contributions, so their *relative* round-off is larger (measured up to 8.8e-6).
EQ_TOL_DERIVATIVES = {torch.float64: 1e-11, torch.float32: 1e-4}


def eq_bound(dtype: torch.dtype, key: str) -> float:
    """The equivariance bound for one model output."""
    return (EQ_TOL_DERIVATIVES if key in ("forces", "stress", "virial", "direct_forces") else EQ_TOL)[dtype]


def energy_conditioning(model, atoms: Atoms) -> float:
    """``|E| / sum_i |E_i|`` of ``atoms``: the factor that turns a relative error of the total energy
    into one relative to the size of its per-atom terms. The small test models' per-atom energies
    have either sign, so a total can nearly cancel (0.016 eV from terms of 0.86 eV in magnitude for
    the float32 water box) and its relative round-off is then inflated by the inverse of this."""
    out = evaluate(model, atoms)
    return float(out[keys.ENERGY].abs().sum() / out[keys.ATOMIC_ENERGIES].abs().sum())


def small_model(dtype: torch.dtype = torch.float64, seed: int = 0, **overrides) -> SE3Potential:
    """A small but complete SE3Potential: every code path, milliseconds per call."""
    torch.manual_seed(seed)
    config = dict(cutoff=CUTOFF, lmax=2, channels=8, num_heads=2, num_layers=2, num_basis=6, radial_hidden=16)
    config.update(overrides)
    species = config.pop("species", SPECIES)
    model = SE3Potential(species, dtype=dtype, **config)
    # Non-trivial scale/shift/E0s so the tests also cover the readout arithmetic.
    model.scale_shift.scale.fill_(1.7)
    model.scale_shift.shift.fill_(-0.3)
    with torch.no_grad():  # the learned per-element shift, as after some training
        model.scale_shift.species_shift.copy_(torch.linspace(0.1, 0.4, model.num_species))
    return model.eval()


def small_gatv2(dtype: torch.dtype = torch.float64, seed: int = 0, **overrides) -> GATv2Potential:
    """A small GATv2Potential (the thesis' architecture at width 8): every code path, fast."""
    torch.manual_seed(seed)
    config = dict(cutoff=CUTOFF, channels=8, num_heads=2, num_layers=2, readout_widths=[16, 8])
    config.update(overrides)
    species = config.pop("species", SPECIES)
    model = GATv2Potential(species, dtype=dtype, **config)
    model.scale_shift.scale.fill_(1.7)
    model.scale_shift.shift.fill_(-0.3)
    with torch.no_grad():  # the learned per-element shift, as after some training
        model.scale_shift.species_shift.copy_(torch.linspace(0.1, 0.4, model.num_species))
    return model.eval()


SMALL_MODELS = {"se3": small_model, "gatv2": small_gatv2}


def small_potential(kind: str, dtype: torch.dtype = torch.float64, **overrides) -> AtomisticPotential:
    """A small model of a registered kind (``"se3"``, ``"gatv2"``)."""
    return SMALL_MODELS[kind](dtype, **overrides)


@pytest.fixture(params=[torch.float64, torch.float32], ids=["float64", "float32"])
def dtype(request) -> torch.dtype:
    return request.param


def ethanol() -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)  # break every mirror symmetry
    return atoms


def diamond() -> Atoms:
    atoms = bulk("C", "diamond", a=3.57)  # 2 atoms, skewed cell: many periodic images at 4 Å
    atoms.rattle(0.05, seed=2)
    return atoms


def water_box() -> Atoms:
    """Two waters in a triclinic box, one atom deliberately outside the cell."""
    rng = np.random.default_rng(3)
    box = Atoms(cell=[[5.0, 0.0, 0.0], [0.8, 4.6, 0.0], [0.4, 0.6, 4.8]], pbc=True)
    for centre in ([1.0, 1.0, 1.0], [3.6, 3.2, 3.9]):
        mol = molecule("H2O")
        mol.rotate(float(rng.uniform(0, 360)), rng.normal(size=3), center="COM")
        mol.translate(np.array(centre) - mol.get_center_of_mass())
        box += mol
    box.rattle(0.05, seed=4)
    box.positions[0] -= box.cell[0] * 1.2  # outside the cell: must be handled
    return box
