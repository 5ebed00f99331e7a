"""Molecular-dynamics settings: a YAML ``md`` file -> a validated dataclass, like the training config."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..train.config import coerce_fields

__all__ = ["ENSEMBLES", "MDConfig", "load_md_config"]

# ensemble -> what drives it (ASE integrators).
ENSEMBLES = {
    "nve": "velocity Verlet",
    "nvt": "Langevin thermostat",
    "nvt-nose-hoover": "Nosé-Hoover chain thermostat",
    "npt": "isotropic MTK barostat with Nosé-Hoover chains (periodic cells)",
    "npt-berendsen": "Berendsen thermostat and barostat (periodic cells)",
}


@dataclass
class MDConfig:
    """One simulation. Times in fs, temperatures in K, pressures in GPa.

    The run stops, keeping its trajectory, when the energy, forces or stress are not finite, when
    the temperature passes ``max_temperature_K``, when two atoms come closer than
    ``min_distance`` Å, or when the model fails (an exception, e.g. out of memory).
    """

    ensemble: str = "nvt"
    steps: int = 1000
    timestep_fs: float = 0.5
    temperature_K: float = 300.0
    initial_temperature_K: Optional[float] = None  # Maxwell-Boltzmann velocities at this T (default temperature_K)
    pressure_GPa: float = 0.0  # npt ensembles
    friction_per_fs: float = 0.01  # Langevin
    tdamp_fs: float = 50.0  # Nosé-Hoover thermostat time; Berendsen's taut
    pdamp_fs: float = 500.0  # MTK barostat time; Berendsen's taup
    compressibility_per_GPa: float = 0.46  # Berendsen barostat (water: 4.6e-5 / bar)
    seed: int = 0
    write_interval: int = 10  # steps between trajectory frames (and the first frame)
    log_interval: int = 10  # steps between log rows
    max_temperature_K: Optional[float] = None  # default: 10 x max(temperature_K, 100 K)
    min_distance: float = 0.5  # Å; closer atoms stop the run
    # With a committee of models: the run stops when the largest per-atom force standard deviation
    # of the members passes this (eV/Å): the simulation has left the data the committee agrees on.
    max_force_std: Optional[float] = None
    # Fu et al. (2022)'s instability: a bond of the starting structure (ASE's covalent radii)
    # longer than its starting length by this much (Å) stops the run. None: not checked.
    max_bond_stretch: Optional[float] = None
    dtype: Optional[str] = None  # evaluate the model in this dtype (default: the model's)
    # Å: the neighbour search runs at cutoff + skin and is reused until an atom moved skin / 2
    # (SkinNeighborList; every step still sees exactly the pairs within the cutoff). 0: every step.
    neighbor_skin: float = 1.0
    output_dir: str = "runs/md"
    progress: bool = True

    def __post_init__(self) -> None:
        coerce_fields(self, "md")
        checks = [
            ("ensemble", self.ensemble in ENSEMBLES, f"one of {', '.join(ENSEMBLES)}"),
            ("steps", self.steps >= 1, "an integer >= 1"),
            ("timestep_fs", 0 < self.timestep_fs <= 10, "in (0, 10] fs"),
            ("temperature_K", 0 <= self.temperature_K < math.inf, "a temperature >= 0 K"),
            ("initial_temperature_K", self.initial_temperature_K is None or self.initial_temperature_K >= 0, "null or >= 0 K"),
            ("friction_per_fs", self.friction_per_fs > 0, "a positive number"),
            ("tdamp_fs", self.tdamp_fs > 0, "a positive number"),
            ("pdamp_fs", self.pdamp_fs > 0, "a positive number"),
            ("compressibility_per_GPa", self.compressibility_per_GPa > 0, "a positive number"),
            ("write_interval", self.write_interval >= 1, "an integer >= 1"),
            ("log_interval", self.log_interval >= 1, "an integer >= 1"),
            ("max_temperature_K", self.max_temperature_K is None or self.max_temperature_K > 0, "null or a positive number"),
            ("min_distance", self.min_distance >= 0, "a distance >= 0 Å"),
            ("neighbor_skin", 0 <= self.neighbor_skin < math.inf, "a distance >= 0 Å"),
            ("max_force_std", self.max_force_std is None or self.max_force_std > 0, "null or a positive number of eV/Å"),
            ("max_bond_stretch", self.max_bond_stretch is None or self.max_bond_stretch > 0, "null or a positive number of Å"),
            ("dtype", self.dtype in (None, "float32", "float64"), "null, float32 or float64"),
        ]
        for name, ok, valid in checks:
            if not ok:
                raise ValueError(f"md.{name} must be {valid}, got {getattr(self, name)!r}")
        if self.ensemble in ("nvt", "nvt-nose-hoover", "npt", "npt-berendsen") and self.temperature_K == 0:
            raise ValueError(f"md.ensemble {self.ensemble!r} needs md.temperature_K > 0")

    @property
    def temperature_limit(self) -> float:
        """The temperature (K) above which the run stops."""
        if self.max_temperature_K is not None:
            return self.max_temperature_K
        return 10.0 * max(self.temperature_K, self.initial_temperature_K or 0.0, 100.0)

    @classmethod
    def from_dict(cls, raw: Optional[dict[str, Any]]) -> "MDConfig":
        if raw is not None and not isinstance(raw, dict):
            raise ValueError(f"an md config must be a mapping of keys to values, got a {type(raw).__name__}")
        raw = dict(raw or {})
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ValueError(f"unknown keys in the md config: {unknown}; allowed: {sorted(allowed)}")
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_md_config(path: Union[str, Path, None]) -> MDConfig:
    """Read a YAML md config (``None``: the defaults)."""
    if path is None:
        return MDConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from err
    return MDConfig.from_dict(raw)
