r"""The test systems of the A2I-Transformer paper as named, validated specifications.

Source: J. W. Yu, M. Y. Ha, B. Seo, W. B. Lee, "A2I Transformer: Permutation-equivariant
attention network for pairwise and many-body interactions with minimal featurization" (2021),
Sections III and IV and Table I.

What the paper states, and what is chosen here where it does not (see the data cards in
``data_cards/synthetic_*.md``):

* Pair-potential systems were run with HOOMD in NVT at unit temperature, in LJ reduced units,
  at number density 0.8 (Sec. III) "unless otherwise specified". Fixed-boundary data are made by
  running a *periodic* MD and recomputing the energies of its snapshots without periodic images
  (Sec. III: "We run PBC MD simulation in canonical ensemble (NVT) at a unit temperature and
  recalculate the energy under fixed boundary in the postprocessing"). The same is done here.
* Not stated, chosen here: thermostat (BAOAB Langevin, see :mod:`.md`), time step, friction,
  equilibration length and snapshot spacing; the LJ cutoff (taken as 2.5 sigma, the DPD cutoff of
  Sec. III, "the same parameters ... unless otherwise specified"), shifted as in Eq. (13); the
  Kob-Andersen density and temperature (0.8 and 1.0 as for the other LJ systems) and cutoff
  (2.5 for every pair, not Kob and Andersen's 2.5 sigma_ab: see the data card).
* Eq. (12) (DPD) as printed is 2 r_c = 5 times stiffer than HOOMD's DPD conservative potential;
  the HOOMD form reproduces Table I's energy scale and is the default (``form="eq12"`` gives
  the printed one). Eq. (13) (LJ) as printed lacks the usual factor 4; the standard 4 epsilon
  form (HOOMD's, ASE's) is used, which again reproduces Table I's energy scale.
* Stillinger-Weber systems: LAMMPS NVT at 1.0 g/cm^3 and 300 K with epsilon = 6.189 kcal/mol and
  sigma = 2.3925 Å (the mW-water values) for all three lambdas; the number density is derived
  with the molar mass of water, 18.015 g/mol, for all three (the paper changes only lambda).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

import numpy as np
from ase import Atoms, units
from ase.data import atomic_numbers

from . import potentials
from .md import langevin_trajectory, lattice_positions, maxwell_boltzmann_velocities

__all__ = ["SystemSpec", "SYSTEMS", "FAMILIES", "BOUNDARIES", "get_system", "generate", "system_names"]

FAMILIES = ("lennard_jones", "dpd", "stillinger_weber", "kob_andersen")
BOUNDARIES = ("periodic", "fixed")

_ENERGY_FUNCTIONS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "lennard_jones": potentials.lennard_jones_energies,
    "dpd": potentials.dpd_energies,
    "stillinger_weber": potentials.stillinger_weber_energies,
    "kob_andersen": potentials.kob_andersen_energies,
}

# Stillinger-Weber units: kcal/mol, Å, K, amu and fs.
KCAL_MOL_PER_KELVIN = units.kB / (units.kcal / units.mol)  # k_B = 0.0019872 kcal/mol/K
AMU_A2_PER_FS2_IN_KCAL_MOL = units._amu * 1e10 * units._Nav / 4184.0  # 1 amu Å^2/fs^2 = 2390.06 kcal/mol
WATER_MOLAR_MASS = 18.015  # g/mol, mW water (Molinero & Moore 2009)

_OVERRIDABLE = (
    "num_atoms", "density", "temperature", "boundary", "timestep", "friction",
    "equilibration_steps", "sample_interval", "fraction_a",
)  # fmt: skip


def _potential_parameters(family: str) -> set[str]:
    """Names of the keyword parameters of a family's energy function."""
    return set(inspect.signature(_ENERGY_FUNCTIONS[family]).parameters) - {"positions", "types", "box", "pbc"}


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(name: str, value: Any, allow_zero: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} finite number, got {value!r}")
    return x


@dataclass(frozen=True)
class SystemSpec:
    r"""One simulated system: potential, state point, boundary and MD protocol.

    Attributes
    ----------
    name : registry name.
    family : ``"lennard_jones"``, ``"dpd"``, ``"stillinger_weber"`` or ``"kob_andersen"``.
    dimension : 2 (xy-plane, z = 0) or 3.
    num_atoms : :math:`N`.
    density : number density :math:`N/L^d` in :math:`\sigma^{-d}` (reduced-unit systems), or the
        mass density in g/cm³ (Stillinger-Weber, converted with :attr:`molar_mass`).
    temperature : :math:`k_BT/\epsilon` (reduced units) or kelvin (Stillinger-Weber).
    boundary : ``"periodic"``, or ``"fixed"``: positions from a periodic run, energies and forces
        recomputed without periodic images (the paper's fixed boundary).
    timestep, friction : Langevin :math:`\Delta t` and :math:`\gamma` (reduced time :math:`\tau`,
        or fs and 1/fs for Stillinger-Weber).
    equilibration_steps, sample_interval : steps before the first snapshot and between snapshots.
    potential : keyword arguments of the family's energy function in :mod:`.potentials`.
    fraction_a : Kob-Andersen fraction of A particles :math:`f_A \in (0, 1]` (1 otherwise).
    symbols : element symbols standing in for particle types A (and B).
    mass : MD mass (reduced units, or amu for Stillinger-Weber); it sets the dynamics only.
    molar_mass : g/mol, converts a Stillinger-Weber mass density to a number density.
    reference : where in the paper the system is.
    """

    name: str
    family: str
    dimension: int
    num_atoms: int
    density: float
    temperature: float
    boundary: str
    timestep: float
    friction: float
    equilibration_steps: int
    sample_interval: int
    potential: Mapping[str, Any] = field(default_factory=dict)
    fraction_a: float = 1.0
    symbols: tuple[str, ...] = ("Ar",)
    mass: float = 1.0
    molar_mass: Optional[float] = None
    reference: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {list(FAMILIES)}, got {self.family!r}")
        if self.dimension not in (2, 3):
            raise ValueError(f"dimension must be 2 or 3, got {self.dimension!r}")
        _positive_int("num_atoms", self.num_atoms, 2)
        _positive_float("density", self.density)
        _positive_float("temperature", self.temperature)
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {list(BOUNDARIES)}, got {self.boundary!r}")
        _positive_float("timestep", self.timestep)
        _positive_float("friction", self.friction)
        _positive_int("equilibration_steps", self.equilibration_steps, 0)
        _positive_int("sample_interval", self.sample_interval, 1)
        _positive_float("mass", self.mass)
        fa = float(self.fraction_a) if isinstance(self.fraction_a, (int, float, np.number)) else math.nan
        if not 0.0 < fa <= 1.0:
            raise ValueError(f"fraction_a (f_A) must lie in (0, 1], got {self.fraction_a!r}")
        if self.family != "kob_andersen" and fa != 1.0:
            raise ValueError(f"fraction_a applies to Kob-Andersen mixtures only; {self.family} has one species")
        if self.family == "stillinger_weber" and not (self.molar_mass and self.molar_mass > 0):
            raise ValueError(f"a Stillinger-Weber system needs a positive molar_mass, got {self.molar_mass!r}")
        allowed = _potential_parameters(self.family)
        unknown = sorted(set(self.potential) - allowed)
        if unknown:
            raise ValueError(f"unknown {self.family} parameter(s) {unknown}; allowed: {sorted(allowed)}")
        object.__setattr__(self, "potential", MappingProxyType(dict(self.potential)))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        # Let the energy function validate the parameter values (two particles, far apart, open).
        probe = np.zeros((2, self.dimension))
        probe[1, 0] = 1e3
        args = (probe, np.array([0, 1])) if self.family == "kob_andersen" else (probe,)
        _ENERGY_FUNCTIONS[self.family](*args, None, False, **self.potential)
        if len(self.symbols) != (2 if self.family == "kob_andersen" else 1):
            needed = 2 if self.family == "kob_andersen" else 1
            raise ValueError(f"{self.family} needs {needed} symbol(s), got {self.symbols}")
        unknown_symbols = [s for s in self.symbols if s not in atomic_numbers or atomic_numbers[s] == 0]
        if unknown_symbols:
            raise ValueError(f"symbols {unknown_symbols} are not chemical element symbols")
        length, cutoff = self.box_length, self.cutoff
        if length < 2 * cutoff:  # the MD is periodic even for fixed-boundary snapshots
            raise ValueError(
                f"{self.name}: box length {length:.4g} (num_atoms={self.num_atoms}, density={self.density}) is "
                f"shorter than twice the cutoff {cutoff:.4g}: use more atoms or a lower density"
            )

    # --- derived quantities ---------------------------------------------------------------------

    @property
    def units(self) -> str:
        """Units of energies, lengths and temperature, in words."""
        if self.family == "stillinger_weber":
            return "kcal/mol, Angstrom, K"
        return "LJ reduced (energy epsilon, length sigma, temperature epsilon/k_B)"

    @property
    def energy_unit(self) -> str:
        return "kcal/mol" if self.family == "stillinger_weber" else "epsilon"

    @property
    def length_unit(self) -> str:
        return "Angstrom" if self.family == "stillinger_weber" else "sigma"

    @property
    def density_unit(self) -> str:
        return "g/cm^3" if self.family == "stillinger_weber" else f"sigma^-{self.dimension}"

    @property
    def number_density(self) -> float:
        """Particles per length^d (per Å³ for Stillinger-Weber)."""
        if self.family == "stillinger_weber":
            return self.density * units._Nav / self.molar_mass * 1e-24  # g/cm^3 -> 1/Å^3
        return self.density

    @property
    def box_length(self) -> float:
        """Edge :math:`L = (N/\\rho)^{1/d}` of the square or cubic box."""
        return (self.num_atoms / self.number_density) ** (1.0 / self.dimension)

    @property
    def cutoff(self) -> float:
        """Largest interaction range of the potential."""
        p = self.potential
        if self.family == "stillinger_weber":
            return float(p.get("a", 1.8)) * float(p.get("sigma", 2.3925))
        if self.family == "kob_andersen":
            sigma = np.asarray(p.get("sigma", potentials.KOB_ANDERSEN_SIGMA))
            return float(p.get("cutoff", 2.5)) * (float(sigma.max()) if p.get("scale_cutoff_by_sigma") else 1.0)
        return float(p.get("cutoff", 2.5))

    @property
    def boltzmann(self) -> float:
        """:math:`k_B` in energy per temperature unit."""
        return KCAL_MOL_PER_KELVIN if self.family == "stillinger_weber" else 1.0

    @property
    def md_mass(self) -> float:
        """Mass in energy x time^2 / length^2 (for :func:`.md.langevin_trajectory`)."""
        return self.mass * AMU_A2_PER_FS2_IN_KCAL_MOL if self.family == "stillinger_weber" else self.mass

    @property
    def num_b(self) -> int:
        """Number of B particles, ``round((1 - f_A) N)``."""
        return int(round((1.0 - self.fraction_a) * self.num_atoms))

    def types(self) -> np.ndarray:
        """``[N]`` particle types: 0 (A) for the first ``N - num_b`` atoms, then 1 (B)."""
        return np.repeat([0, 1], [self.num_atoms - self.num_b, self.num_b]).astype(np.int64)

    def energies(self, positions: np.ndarray, *, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom energies ``[N]`` and forces ``[N, d]`` of ``positions [N, d]`` in this box."""
        function = _ENERGY_FUNCTIONS[self.family]
        args = (positions, self.types()) if self.family == "kob_andersen" else (positions,)
        box = self.box_length if periodic else None
        return function(*args, box, periodic, **self.potential)

    def describe_potential(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.potential.items())
        return f"{self.family}({params})"

    def replace(self, **overrides: Any) -> "SystemSpec":
        """A validated copy with some fields or potential parameters changed.

        Overridable: ``num_atoms, density, temperature, boundary, timestep, friction,
        equilibration_steps, sample_interval, fraction_a`` and the keyword arguments of the
        family's energy function (e.g. ``lambda_`` for Stillinger-Weber, ``form`` for DPD).
        """
        fields = {k: v for k, v in overrides.items() if k in _OVERRIDABLE}
        params = {k: v for k, v in overrides.items() if k not in _OVERRIDABLE}
        allowed = _potential_parameters(self.family)
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(
                f"unknown override(s) {unknown} for {self.name}; allowed: {sorted(_OVERRIDABLE)} and the "
                f"{self.family} parameters {sorted(allowed)}"
            )
        if params:
            fields["potential"] = {**self.potential, **params}
        return dataclasses.replace(self, **fields)


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return str(value.tolist())
    return f"{value:.10g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


# --- the paper's systems ------------------------------------------------------------------------------

# MD protocol (not stated in the paper; chosen here). Reduced units: dt = 0.005 tau, gamma = 1/tau,
# 20 tau of equilibration from a lattice, a snapshot every 0.5 tau.
_REDUCED_MD = dict(timestep=0.005, friction=1.0, equilibration_steps=4000, sample_interval=100)
# Stillinger-Weber (mW-like, mass 18.015 amu): dt = 5 fs, gamma = 1/(200 fs), 20 ps equilibration,
# a snapshot every 0.5 ps.
_SW_MD = dict(timestep=5.0, friction=0.005, equilibration_steps=4000, sample_interval=100)

# Sec. III, Eq. (12): "energy coefficient A=50 and cutoff r_c=2.5", rho = 0.8, T = 1, 2D,
# fixed boundary, N = 64, 128, 256 (Fig. 3a, Table I rows "2D DPD No PBC"). HOOMD's form
# U = A/(2 r_c) (r_c - r)^2 reproduces Table I's energy scale; Eq. (12) as printed (form="eq12")
# is 5x stiffer (see potentials.dpd_energies and data_cards/synthetic_dpd.md).
_DPD = dict(a=50.0, cutoff=2.5, form="hoomd")
# Sec. III, Eq. (13): epsilon = sigma = 1, shifted at r_c (cutoff 2.5 sigma, see module docstring).
_LJ = dict(epsilon=1.0, sigma=1.0, cutoff=2.5, shift=True)
# Sec. IV B, Eq. (15): "epsilon = 6.189 kcal/mol, sigma = 2.3925 Å, gamma = 1.20, cos theta_0 = -1/3,
# A = 7.049556277, B = 0.6022245584, p = 4, q = 0, a = 1.8"; lambda per system (Fig. 6, Table I).
_SW = dict(
    epsilon=6.189, sigma=2.3925, a=1.8, gamma=1.2, cos_theta0=-1.0 / 3.0, A=7.049556277, B=0.6022245584, p=4.0, q=0.0
)
# Sec. IV C: Kob-Andersen sigma_AA = 1, sigma_BB = 0.88, sigma_AB = 0.8, epsilon_AA = 1,
# epsilon_BB = 0.5, epsilon_AB = 1.5 (potentials.KOB_ANDERSEN_*); 3D, N = 256 (Fig. 7, Table I).
# Cutoff r_c = 2.5 for every pair, shifted (the LJ protocol of Sec. III; Kob-Andersen's own
# 2.5 sigma_ab is scale_cutoff_by_sigma=True); density 0.8 and T = 1 as for the other LJ systems.
_KA = dict(cutoff=2.5, scale_cutoff_by_sigma=False, shift=True)


def _registry() -> dict[str, SystemSpec]:
    specs: list[SystemSpec] = []
    for n in (64, 128, 256):
        specs.append(SystemSpec(
            f"dpd_2d_fixed_n{n}", "dpd", 2, n, 0.8, 1.0, "fixed", potential=_DPD, symbols=("He",),
            reference=f"Sec. III, Eq. (12), Fig. 3(a), Table I '2D DPD No PBC N = {n}'", **_REDUCED_MD,
        ))  # fmt: skip
    for n in (64, 128, 256):
        specs.append(SystemSpec(
            f"lj_2d_fixed_n{n}", "lennard_jones", 2, n, 0.8, 1.0, "fixed", potential=_LJ,
            reference=f"Sec. III, Eq. (13), Fig. 3(b), Table I '2D LJ N = {n}'", **_REDUCED_MD,
        ))  # fmt: skip
    specs.append(SystemSpec(
        "lj_2d_periodic_n128", "lennard_jones", 2, 128, 0.8, 1.0, "periodic", potential=_LJ,
        reference="Sec. IV A, Fig. 4, Table I '2D LJ PBC N = 128'", **_REDUCED_MD,
    ))  # fmt: skip
    for rho in ("0.2", "0.8", "1.2"):
        specs.append(SystemSpec(
            f"lj_3d_fixed_n256_rho{rho}", "lennard_jones", 3, 256, float(rho), 1.0, "fixed", potential=_LJ,
            reference=f"Sec. III, Fig. 3(d,e), Table I '3D LJ No PBC N = 256 (rho = {rho})'", **_REDUCED_MD,
        ))  # fmt: skip
    specs.append(SystemSpec(
        "lj_3d_periodic_n256", "lennard_jones", 3, 256, 0.8, 1.0, "periodic", potential=_LJ,
        reference="Sec. IV A, Fig. 4, Table I '3D LJ PBC N = 256'", **_REDUCED_MD,
    ))  # fmt: skip
    for label, symbol, lam in (("germanium", "Ge", 20.0), ("silicon", "Si", 21.0), ("water", "O", 23.15)):
        specs.append(SystemSpec(
            f"sw_{label}", "stillinger_weber", 3, 216, 1.0, 300.0, "periodic", potential={**_SW, "lambda_": lam},
            symbols=(symbol,), mass=WATER_MOLAR_MASS, molar_mass=WATER_MOLAR_MASS,
            reference=f"Sec. IV B, Eq. (15), Fig. 6, Table I 'SW (N = 216) {label} (lambda = {lam})'", **_SW_MD,
        ))  # fmt: skip
    for fa in ("1.0", "0.8", "0.5"):
        specs.append(SystemSpec(
            f"ka_3d_periodic_n256_fa{fa}", "kob_andersen", 3, 256, 0.8, 1.0, "periodic", potential=_KA,
            fraction_a=float(fa), symbols=("Ar", "Ne"),
            reference=f"Sec. IV C, Fig. 7, Table I 'LJ (Extra Dim.) N = 256 (f_A = {fa})'", **_REDUCED_MD,
        ))  # fmt: skip
    return {spec.name: spec for spec in specs}


SYSTEMS: Mapping[str, SystemSpec] = MappingProxyType(_registry())
"""The paper's systems by name (read-only)."""


def system_names() -> list[str]:
    """Names of the registered systems, in registry order."""
    return list(SYSTEMS)


def get_system(system: str, **overrides: Any) -> SystemSpec:
    """The registered spec ``system``, with ``overrides`` applied (see :meth:`SystemSpec.replace`)."""
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; choose one of {system_names()}")
    spec = SYSTEMS[system]
    return spec.replace(**overrides) if overrides else spec


def generate(system: str | SystemSpec, num_snapshots: int, *, seed: int = 0, **overrides: Any) -> list[Atoms]:
    r"""Sample ``num_snapshots`` labelled configurations of a system by Langevin MD.

    The MD always runs in the periodic box (BAOAB Langevin, :mod:`.md`) from a jittered lattice
    with Maxwell-Boltzmann velocities; after ``equilibration_steps`` a snapshot is taken every
    ``sample_interval`` steps. For ``boundary="fixed"`` each snapshot's positions (wrapped into
    :math:`[0, L)^d`) are relabelled with the energies and forces of the same particles without
    periodic images, as in the paper. Everything random comes from
    ``numpy.random.default_rng(seed)``, so a seed reproduces the data (bit for bit on one machine).

    Parameters
    ----------
    system : a name in :data:`SYSTEMS` or a :class:`SystemSpec`.
    num_snapshots : number of snapshots (>= 1).
    seed : seed of the random stream (lattice sites, B-particle placement, velocities, noise).
    **overrides : fields or potential parameters to change (:meth:`SystemSpec.replace`).

    Returns
    -------
    list of :class:`ase.Atoms`, one per snapshot: 3D positions (z = 0 for 2D systems), cell
    ``diag(L, L, L)`` (also for 2D, whose z vector is unused), pbc ``(T, T, T)``, ``(T, T, F)`` for
    periodic 2D or all ``False`` for fixed boundaries; labels ``info["energy"]`` (total),
    ``arrays["energies"]`` ``[N]`` (per atom: pair terms halved, three-body terms on the central
    atom, summing to the total) and ``arrays["forces"]`` ``[N, 3]`` (:math:`-\partial E/\partial\mathbf r`);
    metadata in ``info`` (``system``, ``family``, ``dimension``, ``boundary``, ``density``,
    ``temperature``, ``units``, ``seed``, ``md_step``, ``kinetic_temperature``, ...).
    """
    spec = system if isinstance(system, SystemSpec) else get_system(system)
    if overrides:
        spec = spec.replace(**overrides)
    num_snapshots = _positive_int("num_snapshots", num_snapshots, 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    n, dim, length = spec.num_atoms, spec.dimension, spec.box_length
    x0 = lattice_positions(n, length, dim, rng)
    if spec.family == "kob_andersen":
        x0 = x0[rng.permutation(n)]  # which lattice sites the B particles (the last num_b) take
    v0 = maxwell_boltzmann_velocities(n, dim, spec.temperature, spec.md_mass, rng, spec.boltzmann)
    trajectory = langevin_trajectory(
        lambda x: spec.energies(x, periodic=True),
        x0,
        v0,
        box_length=length,
        periodic=True,
        mass=spec.md_mass,
        temperature=spec.temperature,
        timestep=spec.timestep,
        friction=spec.friction,
        equilibration_steps=spec.equilibration_steps,
        sample_interval=spec.sample_interval,
        num_samples=num_snapshots,
        rng=rng,
        boltzmann=spec.boltzmann,
    )
    symbols = [spec.symbols[t] for t in spec.types()]
    pbc = (True, True, dim == 3) if spec.boundary == "periodic" else (False, False, False)
    frames = []
    for index, frame in enumerate(trajectory):
        energies, forces = frame.energies, frame.forces
        if spec.boundary == "fixed":
            energies, forces = spec.energies(frame.positions, periodic=False)
        frames.append(_to_atoms(spec, frame.positions, energies, forces, symbols, pbc, length))
        frames[-1].info.update(
            seed=int(seed), snapshot=index, md_step=int(frame.step), md_time=float(frame.step * spec.timestep),
            kinetic_temperature=float(frame.kinetic_temperature),
        )  # fmt: skip
    return frames


def _to_atoms(
    spec: SystemSpec,
    positions: np.ndarray,
    energies: np.ndarray,
    forces: np.ndarray,
    symbols: list[str],
    pbc: tuple[bool, bool, bool],
    length: float,
) -> Atoms:
    n, dim = positions.shape
    pos3 = np.zeros((n, 3))
    pos3[:, :dim] = positions
    f3 = np.zeros((n, 3))
    f3[:, :dim] = forces
    atoms = Atoms(symbols=symbols, positions=pos3, cell=np.eye(3) * length, pbc=pbc)
    atoms.new_array("energies", np.asarray(energies, dtype=np.float64).copy())
    atoms.new_array("forces", f3)
    info: dict[str, Any] = dict(
        energy=float(np.sum(energies)),
        system=spec.name,
        family=spec.family,
        dimension=spec.dimension,
        boundary=spec.boundary,
        density=float(spec.density),
        density_unit=spec.density_unit,
        number_density=float(spec.number_density),
        box_length=float(length),
        temperature=float(spec.temperature),
        units=spec.units,
        energy_unit=spec.energy_unit,
        length_unit=spec.length_unit,
        potential=spec.describe_potential(),
        cutoff=float(spec.cutoff),
        timestep=float(spec.timestep),
        friction=float(spec.friction),
        md_mass=float(spec.mass),
    )
    if spec.family == "kob_andersen":
        info.update(fraction_a=float(spec.fraction_a), num_a=spec.num_atoms - spec.num_b, num_b=spec.num_b)
    atoms.info.update(info)
    return atoms

