r"""Synthetic per-atom-energy data: the model systems of the A2I-Transformer paper.

Configurations are sampled by seeded Langevin molecular dynamics and labelled with per-atom
energies (pair terms split equally between the two atoms, three-body terms on the central
atom), their total, and exact forces. Systems (see :data:`SYSTEMS` and ``data_cards/synthetic_*.md``):

* 2D DPD (conservative, Eq. 12), fixed boundary, N = 64, 128, 256;
* 2D and 3D Lennard-Jones (Eq. 13), fixed boundary (2D N = 64, 128, 256; 3D N = 256 at
  rho = 0.2, 0.8, 1.2) and periodic (2D N = 128, 3D N = 256);
* Stillinger-Weber (Eq. 15) with the paper's germanium, silicon and mW-water lambdas, N = 216;
* Kob-Andersen binary LJ, 3D periodic, N = 256, f_A = 1.0, 0.8, 0.5.

>>> from equiformer_lite.data.synthetic import generate
>>> frames = generate("lj_2d_periodic_n128", 2, seed=0, equilibration_steps=10, sample_interval=5)
>>> len(frames), frames[0].info["system"], frames[0].arrays["energies"].shape
(2, 'lj_2d_periodic_n128', (128,))

Command line: ``python scripts/generate_synthetic_data.py --system NAME --snapshots N --seed S --out FILE.extxyz``.
"""

from .md import MDFrame, kinetic_temperature, langevin_trajectory, lattice_positions, maxwell_boltzmann_velocities
from .potentials import (
    KOB_ANDERSEN_EPSILON,
    KOB_ANDERSEN_SIGMA,
    dpd_energies,
    kob_andersen_energies,
    lennard_jones_energies,
    pair_list,
    stillinger_weber_energies,
)
from .systems import BOUNDARIES, FAMILIES, SYSTEMS, SystemSpec, generate, get_system, system_names

__all__ = [
    "SYSTEMS",
    "SystemSpec",
    "FAMILIES",
    "BOUNDARIES",
    "generate",
    "get_system",
    "system_names",
    "lennard_jones_energies",
    "kob_andersen_energies",
    "dpd_energies",
    "stillinger_weber_energies",
    "pair_list",
    "KOB_ANDERSEN_EPSILON",
    "KOB_ANDERSEN_SIGMA",
    "langevin_trajectory",
    "lattice_positions",
    "maxwell_boltzmann_velocities",
    "kinetic_temperature",
    "MDFrame",
]
