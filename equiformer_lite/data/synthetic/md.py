r"""Langevin molecular dynamics (BAOAB) in a periodic orthorhombic box, seeded and reproducible.

The integrator is the BAOAB splitting of Langevin dynamics (Leimkuhler & Matthews, Appl. Math.
Res. Express 2013, 34), which samples configurations of the canonical ensemble with an error
of second order in the time step:

.. math::

    \mathbf v &\leftarrow \mathbf v + \tfrac{\Delta t}{2}\,\mathbf F/m                  && \text{(B)}\\
    \mathbf x &\leftarrow \mathbf x + \tfrac{\Delta t}{2}\,\mathbf v                    && \text{(A)}\\
    \mathbf v &\leftarrow c_1\mathbf v + \sqrt{(1 - c_1^2)\,k_BT/m}\;\boldsymbol\xi,
        \quad c_1 = e^{-\gamma\Delta t}                                                  && \text{(O)}\\
    \mathbf x &\leftarrow \mathbf x + \tfrac{\Delta t}{2}\,\mathbf v                    && \text{(A)}\\
    \mathbf v &\leftarrow \mathbf v + \tfrac{\Delta t}{2}\,\mathbf F(\mathbf x)/m       && \text{(B)}

with :math:`\boldsymbol\xi` standard normal draws from a :class:`numpy.random.Generator`, so a
seed fixes the whole trajectory (bit for bit on one machine). Positions are wrapped back into
:math:`[0, L)` along periodic directions after each step. Units are those of the force
function; ``mass`` must be in energy x time^2 / length^2 of those units so that
:math:`a = F/m` is in length / time^2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

__all__ = ["MDFrame", "langevin_trajectory", "lattice_positions", "maxwell_boltzmann_velocities", "kinetic_temperature"]

ForceFunction = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class MDFrame:
    """One sampled state: MD step, positions ``[N, d]`` (wrapped), velocities, the force
    function's per-atom energies ``[N]`` and forces ``[N, d]``, and the kinetic temperature."""

    step: int
    positions: np.ndarray
    velocities: np.ndarray
    energies: np.ndarray
    forces: np.ndarray
    kinetic_temperature: float


def kinetic_temperature(velocities: np.ndarray, mass: float, boltzmann: float = 1.0) -> float:
    r""":math:`T = m\sum_i |\mathbf v_i|^2 / (k_B N d)` (Langevin dynamics conserves no momentum,
    so all :math:`N d` degrees of freedom count)."""
    return float(mass * np.einsum("ik,ik->", velocities, velocities) / (boltzmann * velocities.size))


def lattice_positions(num_atoms: int, box_length: float, dimension: int, rng: np.random.Generator) -> np.ndarray:
    """A start free of close contacts: ``num_atoms`` distinct sites of a lattice filling the box.

    3D uses a face-centred cubic lattice (nearest neighbours :math:`a/\\sqrt2`), 2D a square
    lattice, each with the fewest cells that hold ``num_atoms`` sites; the sites kept are a random
    subset (from ``rng``) and each is displaced by a Gaussian of 2 % of the site spacing.
    """
    if dimension == 3:
        cells = int(np.ceil((num_atoms / 4) ** (1 / 3) - 1e-9))
        basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
        grid = np.stack(np.meshgrid(*[np.arange(cells)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
        sites = ((grid + basis).reshape(-1, 3)) * (box_length / cells)
        spacing = box_length / cells / np.sqrt(2)
    elif dimension == 2:
        cells = int(np.ceil(np.sqrt(num_atoms) - 1e-9))
        sites = np.stack(np.meshgrid(*[np.arange(cells)] * 2, indexing="ij"), -1).reshape(-1, 2) * (box_length / cells)
        spacing = box_length / cells
    else:
        raise ValueError(f"dimension must be 2 or 3, got {dimension}")
    chosen = np.sort(rng.choice(len(sites), size=num_atoms, replace=False))
    pos = sites[chosen] + rng.normal(scale=0.02 * spacing, size=(num_atoms, dimension))
    return np.mod(pos, box_length)


def maxwell_boltzmann_velocities(
    num_atoms: int, dimension: int, temperature: float, mass: float, rng: np.random.Generator, boltzmann: float = 1.0
) -> np.ndarray:
    """Gaussian velocities at ``temperature`` with zero total momentum, rescaled to it exactly."""
    v = rng.normal(scale=np.sqrt(boltzmann * temperature / mass), size=(num_atoms, dimension))
    if num_atoms > 1:
        v -= v.mean(axis=0)
        t = kinetic_temperature(v, mass, boltzmann)
        if t > 0:
            v *= np.sqrt(temperature / t)
    return v


def langevin_trajectory(
    force_function: ForceFunction,
    positions: np.ndarray,
    velocities: np.ndarray,
    *,
    box_length: float,
    periodic: bool,
    mass: float,
    temperature: float,
    timestep: float,
    friction: float,
    equilibration_steps: int,
    sample_interval: int,
    num_samples: int,
    rng: np.random.Generator,
    boltzmann: float = 1.0,
) -> Iterator[MDFrame]:
    r"""Run BAOAB Langevin dynamics and yield ``num_samples`` frames.

    Frames are taken at steps ``equilibration_steps + k * sample_interval`` for
    ``k = 1 .. num_samples``, so the first ``n`` frames of a longer run equal those of a
    shorter run with the same arguments and generator state.

    Parameters
    ----------
    force_function : ``positions [N, d] -> (energies [N], forces [N, d])``.
    positions, velocities : the start, ``[N, d]``; not modified.
    box_length : cubic box edge; positions are wrapped into ``[0, L)`` when ``periodic``.
    mass : particle mass in energy x time^2 / length^2 (see the module docstring).
    temperature : target :math:`T`, with ``boltzmann`` :math:`k_B` in energy per temperature unit.
    timestep, friction : :math:`\Delta t` and :math:`\gamma` (per time unit).
    equilibration_steps, sample_interval, num_samples : the schedule.
    rng : the random stream of the thermostat.

    Raises
    ------
    RuntimeError when the energies or forces stop being finite (an unstable time step).
    """
    x = np.array(positions, dtype=np.float64, copy=True)
    v = np.array(velocities, dtype=np.float64, copy=True)
    c1 = np.exp(-friction * timestep)
    c2 = np.sqrt((1.0 - c1 * c1) * boltzmann * temperature / mass)
    half = 0.5 * timestep
    energies, forces = force_function(x)
    total = equilibration_steps + sample_interval * num_samples
    taken = 0
    for step in range(1, total + 1):
        v += (half / mass) * forces
        x += half * v
        v *= c1
        v += c2 * rng.standard_normal(v.shape)
        x += half * v
        if periodic:
            np.mod(x, box_length, out=x)
            x[x >= box_length] = 0.0  # np.mod may round a tiny negative to exactly L
        energies, forces = force_function(x)
        v += (half / mass) * forces
        if step > equilibration_steps and (step - equilibration_steps) % sample_interval == 0:
            if not (np.isfinite(energies).all() and np.isfinite(forces).all()):
                raise RuntimeError(f"MD became unstable at step {step}: non-finite energies or forces")
            taken += 1
            temperature_now = kinetic_temperature(v, mass, boltzmann)
            yield MDFrame(step, x.copy(), v.copy(), energies.copy(), forces.copy(), temperature_now)
        elif step % 100 == 0 and not np.isfinite(forces).all():
            raise RuntimeError(f"MD became unstable at step {step}: non-finite forces")
    assert taken == num_samples
