"""Small labelled data sets for training tests (ASE's EMT: fast, has H/C/O, gives stress)."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from equiformer_lite.data import atoms_to_graph


def emt_frames(n: int, seed: int = 0, name: str = "CH3CH2OH"):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = molecule(name)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        atoms.calc = EMT()
        labels = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        atoms.calc = SinglePointCalculator(atoms, **labels)
        frames.append(atoms)
    return frames


def graphs(frames, cutoff=4.0):
    return [atoms_to_graph(a, cutoff, dtype=torch.float64) for a in frames]


@pytest.fixture(scope="session")
def ethanol_frames():
    return emt_frames(24)
