"""File readers: formats, keys, unit conversion to eV/Å, and clear errors naming file and frame."""

import bz2
import gzip
import logging
import lzma
import shutil
import sys

import ase.db
import ase.io
import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk, molecule
from ase.calculators.singlepoint import SinglePointCalculator

from equiformer_lite.data import LabelSpec, keys, read_labels, read_structures, read_structures_with_summary, validate_structures
from equiformer_lite.data.readers import RawFrames, Reader, register_reader, registered_readers, resolve_format

KCAL_MOL_IN_EV = 0.0433641  # 1 kcal/mol = 0.0433641 eV (1 eV = 23.0605 kcal/mol)
HARTREE_IN_EV = 27.211386


def _molecules(n: int = 3, seed: int = 0) -> list[Atoms]:
    """Small rattled molecules of varied composition, labels under custom keys."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = molecule(["H2O", "CH4", "CH3OH"][i % 3])
        atoms.rattle(0.02, seed=i)
        atoms.info["dft_energy"] = -10.0 - i
        atoms.arrays["dft_forces"] = rng.normal(size=(len(atoms), 3))
        frames.append(atoms)
    return frames


def _crystal(energy: float = -7.0) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.01, seed=5)
    forces = np.random.default_rng(1).normal(size=(len(atoms), 3))
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=np.arange(1.0, 7.0))
    return atoms


def _write_npz(path, n_frames=4, **overrides):
    rng = np.random.default_rng(0)
    arrays = dict(
        R=molecule("H2O").positions[None] + 0.01 * rng.normal(size=(n_frames, 3, 3)),
        z=np.array([8, 1, 1]),
        E=np.linspace(-1000.0, -1000.3, n_frames)[:, None],  # kcal/mol, [frames, 1] as in sGDML
        F=rng.normal(size=(n_frames, 3, 3)),  # kcal/mol/Å
    )
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


# --- formats -------------------------------------------------------------------------------------


def test_extxyz_custom_keys_are_moved_to_standard_keys(tmp_path):
    frames = _molecules()
    frames[0].info["energy"] = 123.0  # a stray standard key must not shadow the requested one
    ase.io.write(tmp_path / "train.extxyz", frames)
    read, summary = read_structures_with_summary(tmp_path / "train.extxyz", LabelSpec(energy_key="dft_energy", forces_key="dft_forces"))
    assert summary.format == "extxyz" and summary.num_structures == 3
    assert summary.label_keys == {"energy": "dft_energy", "forces": "dft_forces"}
    assert (summary.energy_unit, summary.length_unit) == ("eV", "Å")
    for original, atoms in zip(frames, read):
        labels = read_labels(atoms)  # default keys find the labels
        assert labels[keys.ENERGY].tolist() == [original.info["dft_energy"]]
        np.testing.assert_allclose(labels[keys.FORCES], original.arrays["dft_forces"], atol=1e-8)
        assert keys.STRESS not in labels
        assert atoms.get_potential_energy() == original.info["dft_energy"]


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_compressed_extxyz_reads_like_the_plain_file(tmp_path, suffix, opener):
    frames = [_crystal(-7.0), _crystal(-8.0)]
    ase.io.write(tmp_path / "x.extxyz", frames)
    compressed = tmp_path / f"x.extxyz{suffix}"
    with open(tmp_path / "x.extxyz", "rb") as src, opener(compressed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert resolve_format(compressed) == "extxyz"
    plain, gz = read_structures(tmp_path / "x.extxyz"), read_structures(compressed)
    assert len(gz) == 2
    for a, b in zip(plain, gz):
        assert read_labels(a).keys() == read_labels(b).keys()
        for key, value in read_labels(a).items():
            np.testing.assert_array_equal(value, read_labels(b)[key])
    # Voigt (xx yy zz yz xz xy) = 1..6 survives the round trip.
    assert read_labels(gz[-1])[keys.STRESS][0].tolist() == [[1, 6, 5], [6, 2, 4], [5, 4, 3]]


def test_units_convert_positions_cell_forces_and_stress(tmp_path):
    atoms = _crystal()
    ase.io.write(tmp_path / "c.extxyz", atoms)
    read, summary = read_structures_with_summary(tmp_path / "c.extxyz", LabelSpec(energy_unit="Hartree", length_unit="Bohr"))
    out = read[0]
    assert summary.unit_source == "given as argument"
    np.testing.assert_allclose(out.positions, atoms.positions * units.Bohr, atol=1e-7)
    np.testing.assert_allclose(out.cell.array, atoms.cell.array * units.Bohr, atol=1e-7)
    labels = read_labels(out)
    assert labels[keys.ENERGY][0] == pytest.approx(-7.0 * HARTREE_IN_EV, rel=1e-7)
    np.testing.assert_allclose(labels[keys.FORCES], atoms.get_forces() * units.Hartree / units.Bohr, rtol=1e-7)
    stress = atoms.get_stress(voigt=False) * units.Hartree / units.Bohr**3
    np.testing.assert_allclose(labels[keys.STRESS][0], stress, rtol=1e-7)


def test_ase_database_with_calculator_results_and_custom_keys(tmp_path):
    path = tmp_path / "train.db"
    db = ase.db.connect(str(path))
    crystal = _crystal(energy=-3.0)
    db.write(crystal, dft_energy=-3.0, data={"dft_forces": crystal.get_forces()})
    mol = _molecules(1)[0]
    db.write(Atoms(mol), dft_energy=mol.info["dft_energy"], data={"dft_forces": mol.arrays["dft_forces"]})
    read = read_structures(path, LabelSpec(energy_key="dft_energy", forces_key="dft_forces", stress_key=None))
    assert [len(a) for a in read] == [len(crystal), len(mol)]
    np.testing.assert_allclose(read_labels(read[1])[keys.FORCES], mol.arrays["dft_forces"])
    assert read_labels(read[0])[keys.ENERGY].tolist() == [-3.0]
    assert keys.STRESS not in read_labels(read[0])  # stress_key=None skips the stored stress
    # Default keys read the calculator results of the rows.
    with pytest.raises(ValueError, match=r"row id 2: energy label \(required\) not found"):
        read_structures(path)


def test_md17_npz_is_converted_from_kcal_per_mol(tmp_path, caplog):
    arrays = _write_npz(tmp_path / "md17.npz")
    with caplog.at_level(logging.INFO, logger="equiformer_lite.data.readers"):
        read, summary = read_structures_with_summary(tmp_path / "md17.npz")
    assert summary.format == "npz" and summary.label_keys == {"energy": "E", "forces": "F"}
    assert summary.energy_unit == "kcal/mol" and "MD17/sGDML default" in summary.unit_source
    assert "kcal/mol" in caplog.text and "assuming kcal/mol" in caplog.text
    assert len(read) == 4 and read[0].get_chemical_formula() == "H2O"
    energies = np.array([read_labels(a)[keys.ENERGY][0] for a in read])
    np.testing.assert_allclose(energies, arrays["E"][:, 0] * KCAL_MOL_IN_EV, rtol=1e-6)
    np.testing.assert_allclose(read_labels(read[2])[keys.FORCES], arrays["F"][2] * KCAL_MOL_IN_EV, rtol=1e-6)
    np.testing.assert_allclose(read[1].positions, arrays["R"][1])
    # An explicit unit overrides the layout's default.
    read = read_structures(tmp_path / "md17.npz", LabelSpec(energy_unit="eV"))
    assert read_labels(read[0])[keys.ENERGY][0] == pytest.approx(-1000.0)


def test_npz_declared_units_and_revised_md17_names(tmp_path):
    rng = np.random.default_rng(2)
    np.savez(
        tmp_path / "rmd17.npz",
        coords=molecule("H2O").positions[None] + 0.01 * rng.normal(size=(2, 3, 3)),
        nuclear_charges=np.array([8, 1, 1]),
        energies=np.array([-2.0, -2.5]),
        forces=rng.normal(size=(2, 3, 3)),
    )
    read = read_structures(tmp_path / "rmd17.npz")
    assert read_labels(read[1])[keys.ENERGY][0] == pytest.approx(-2.5 * KCAL_MOL_IN_EV, rel=1e-6)
    _write_npz(tmp_path / "declared.npz", e_unit=np.array("eV"), r_unit=np.array("Ang"))
    read, summary = read_structures_with_summary(tmp_path / "declared.npz")
    assert summary.energy_unit == "eV" and "declared by the file" in summary.unit_source
    assert read_labels(read[0])[keys.ENERGY][0] == pytest.approx(-1000.0)


def test_ani_hdf5_groups_in_hartree(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(3)
    water, methane = molecule("H2O"), molecule("CH4")
    with h5py.File(tmp_path / "ani.h5", "w") as f:
        g = f.create_group("gdb_01/water")  # nested, species as bytes
        g["species"] = np.array([b"O", b"H", b"H"])
        g["coordinates"] = water.positions[None] + 0.01 * rng.normal(size=(2, 3, 3))
        g["energies"] = np.array([-76.4, -76.41])
        g["forces"] = rng.normal(size=(2, 3, 3))
        g = f.create_group("methane")  # atomic numbers instead of symbols
        g["atomic_numbers"] = methane.numbers
        g["coordinates"] = methane.positions[None]
        g["energies"] = np.array([-40.5])
        g["forces"] = np.zeros((1, 5, 3))
    read, summary = read_structures_with_summary(tmp_path / "ani.h5")
    assert summary.format == "hdf5" and summary.energy_unit == "Hartree"
    assert summary.label_keys == {"energy": "energies", "forces": "forces"}
    assert [a.get_chemical_formula() for a in read] == ["H2O", "H2O", "CH4"]
    assert read_labels(read[1])[keys.ENERGY][0] == pytest.approx(-76.41 * HARTREE_IN_EV, rel=1e-7)
    with h5py.File(tmp_path / "ani.h5", "r") as f:
        expected = f["gdb_01/water/forces"][1] * HARTREE_IN_EV
    np.testing.assert_allclose(read_labels(read[1])[keys.FORCES], expected, rtol=1e-7)

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["m/species"] = np.array([b"O", b"Qq"])
        f["m/coordinates"] = np.zeros((1, 2, 3))
        f["m/energies"] = np.zeros(1)
    with pytest.raises(ValueError, match=r"bad.h5, group '/m': unknown element symbol\(s\) \['Qq'\]"):
        read_structures(tmp_path / "bad.h5")
    with pytest.raises(ValueError, match=r"group '/m': energy label not found \(tried keys \['wb97x.energy'\]\)"):
        read_structures(tmp_path / "bad.h5", LabelSpec(energy_key="wb97x.energy"))


# --- validation errors -----------------------------------------------------------------------------


def test_missing_energy_key_lists_the_keys_present(tmp_path):
    ase.io.write(tmp_path / "t.extxyz", _molecules())
    with pytest.raises(ValueError) as err:
        read_structures(tmp_path / "t.extxyz")  # energies are under 'dft_energy'
    message = str(err.value)
    assert "t.extxyz, frame 0: energy label (required) not found under key 'energy'" in message
    assert "info ['dft_energy']" in message and "arrays ['dft_forces']" in message
    assert "Pass energy_key=..." in message
    # Not required, it is simply absent ...
    unlabelled = read_structures(tmp_path / "t.extxyz", LabelSpec(require=(), forces_key="dft_forces"))
    assert keys.ENERGY not in read_labels(unlabelled[0])
    # ... but a non-default key that is asked for and missing is an error even when not required.
    with pytest.raises(ValueError, match=r"forces label \(asked for under key 'frc'\) not found"):
        read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy", forces_key="frc"))


def test_label_in_some_frames_only(tmp_path):
    frames = _molecules()
    del frames[1].arrays["dft_forces"]
    ase.io.write(tmp_path / "t.extxyz", frames)
    message = r"t.extxyz, frame 1: forces label \(asked for under key 'dft_forces'\) not found"
    with pytest.raises(ValueError, match=message):
        read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy", forces_key="dft_forces"))
    frames = [_crystal(), _crystal()]
    frames[1].calc = SinglePointCalculator(frames[1], energy=-1.0)
    message = r"forces label \(key 'forces'\) is present in 1 of 2 frames but missing in frames \['frame 1'\]"
    with pytest.raises(ValueError, match=message):
        validate_structures(frames)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda a: a.arrays.update(dft_forces=np.ones((len(a), 2))),
            r"frame 2: forces label 'dft_forces' must have shape \(6, 3\)",
        ),
        (lambda a: a.info.update(dft_energy=np.nan), r"frame 2: label 'energy' contains NaN or inf"),
        (lambda a: a.arrays["dft_forces"].__setitem__((0, 0), np.inf), r"frame 2: label 'forces' contains NaN or inf"),
        (lambda a: a.positions.__setitem__((1, 1), np.nan), r"frame 2: positions of atoms \[1\] are not finite"),
        (lambda a: a.numbers.__setitem__(0, 0), r"frame 2: invalid atomic numbers \[0, 1, 8\]"),
        (lambda a: a.info.update(stress=np.ones(6)), r"frame 2: a stress label needs a fully periodic cell"),
    ],
)
def test_bad_frames_are_named(tmp_path, edit, message):
    frames = _molecules()
    edit(frames[2])
    ase.io.write(tmp_path / "t.extxyz", frames)
    with pytest.raises(ValueError, match=message):
        read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy", forces_key="dft_forces"))


def test_empty_frame_and_species_check(tmp_path):
    frames = _molecules()
    ase.io.write(tmp_path / "t.extxyz", [frames[0], Atoms(), frames[1]])
    with pytest.raises(ValueError, match=r"t.extxyz, frame 1: empty structure"):
        read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy", require=()))
    ase.io.write(tmp_path / "t.extxyz", frames)
    with pytest.raises(ValueError, match=r"frame 1: element\(s\) \['C'\] not in species \['H', 'O'\]"):
        read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy"), species=["H", "O"])


def test_wrong_stress_shape():
    atoms = _crystal()
    atoms.info["s"] = np.ones(4)
    message = r"structures, frame 0: stress label 's' must be Voigt \(6,\) or \(3, 3\), got shape \(4,\)"
    with pytest.raises(ValueError, match=message):
        validate_structures([atoms], LabelSpec(stress_key="s"))


def test_all_zero_forces_are_rejected_but_not_for_single_atoms(tmp_path):
    frames = _molecules()
    for atoms in frames:
        atoms.arrays["dft_forces"][:] = 0.0
    ase.io.write(tmp_path / "t.extxyz", frames)
    message = (
        r"forces \(key 'dft_forces'\) are exactly zero in every frame with more than one atom \(3 frames\): "
        "most likely a wrong key or unit"
    )
    with pytest.raises(ValueError, match=message):
        read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy", forces_key="dft_forces"))
    # forces_key=None trains without them; isolated atoms have zero force legitimately.
    assert len(read_structures(tmp_path / "t.extxyz", LabelSpec(energy_key="dft_energy", forces_key=None))) == 3
    isolated = [Atoms(s) for s in "HO"]
    for atoms in isolated:
        atoms.calc = SinglePointCalculator(atoms, energy=-13.6, forces=np.zeros((1, 3)))
    assert len(validate_structures(isolated)) == 2


def test_npz_layout_errors(tmp_path):
    _write_npz(tmp_path / "f.npz", F=np.zeros((4, 2, 3)))
    message = r"f.npz: array 'F' must have shape \(4, 3, 3\) like the positions, got \(4, 2, 3\)"
    with pytest.raises(ValueError, match=message):
        read_structures(tmp_path / "f.npz")
    _write_npz(tmp_path / "e.npz", E=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"array 'E' must have shape \(4,\) or \(4, 1\), got \(4, 2\)"):
        read_structures(tmp_path / "e.npz")
    _write_npz(tmp_path / "noe.npz", E=None)
    message = (
        r"noe.npz: energy label not found \(tried keys \['energy', 'E', 'energies'\]\); "
        r"arrays present: \['F', 'R', 'z'\]"
    )
    with pytest.raises(ValueError, match=message):
        read_structures(tmp_path / "noe.npz")
    _write_npz(tmp_path / "nan.npz", E=np.array([0.0, 0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"nan.npz, frame 2: label 'energy' contains NaN or inf"):
        read_structures(tmp_path / "nan.npz")


def test_unknown_unit_format_and_missing_file(tmp_path):
    _write_npz(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"unknown energy unit 'kcal'; known: \["):
        read_structures(tmp_path / "m.npz", LabelSpec(energy_unit="kcal"))
    with pytest.raises(ValueError, match=r"unknown length unit 'inch'"):
        read_structures(tmp_path / "m.npz", LabelSpec(length_unit="inch"))
    with pytest.raises(ValueError, match=r"unknown format 'nope'"):
        read_structures(tmp_path / "m.npz", format="nope")
    with pytest.raises(ValueError, match=r"require contains 'charges'"):
        read_structures(tmp_path / "m.npz", LabelSpec(require=("charges",)))
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_structures(tmp_path / "missing.extxyz")


def test_hdf5_without_h5py_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "ani.h5").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(ImportError, match=r"needs h5py, an optional dependency: pip install h5py"):
        read_structures(tmp_path / "ani.h5")


# --- the registry --------------------------------------------------------------------------------


def _read_toy(path, labels):
    """A toy format: one line per frame, ``symbol x y z energy`` (one atom; Hartree and Bohr)."""
    frames, names = [], []
    for i, line in enumerate(path.read_text().splitlines()):
        symbol, x, y, z, energy = line.split()
        atoms = Atoms(symbol, positions=[[float(x), float(y), float(z)]])
        atoms.info["toy_energy"] = float(energy)
        frames.append(atoms)
        names.append(f"line {i + 1}")
    return RawFrames(frames, names, {keys.ENERGY: "toy_energy", keys.FORCES: None, keys.STRESS: None},
                     {keys.ENERGY: "column 5"}, "Hartree", "Bohr", "toy default (Hartree, Bohr)")


@pytest.fixture
def toy_registry(monkeypatch):
    """The registry with a toy reader added; restored after the test."""
    from equiformer_lite.data.readers import base

    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    return register_reader(Reader("toy", _read_toy, aliases=("toyfile",), suffixes=(".toy",)))


def test_the_built_in_formats_are_registered_readers():
    readers = registered_readers()
    assert {"npz", "hdf5", "db"} <= set(readers)
    assert resolve_format("x.npz") == resolve_format("y", "md17") == "npz"
    assert resolve_format("x.h5") == resolve_format("y", "ani") == "hdf5"


def test_a_registered_reader_gets_the_shared_validation_and_unit_conversion(tmp_path, toy_registry):
    (tmp_path / "a.toy").write_text("H 0 0 1 -0.5\nH 0 0 2 -0.49\n")
    assert resolve_format(tmp_path / "a.toy") == resolve_format(tmp_path / "a", "TOYFILE") == "toy"
    structures, summary = read_structures_with_summary(tmp_path / "a.toy")
    assert summary.format == "toy" and summary.label_keys == {keys.ENERGY: "column 5"}
    assert structures[1].get_potential_energy() == pytest.approx(-0.49 * units.Hartree)
    assert structures[1].positions[0, 2] == pytest.approx(2 * units.Bohr)
    (tmp_path / "bad.toy").write_text("H 0 0 1 -0.5\nH 0 0 2 nan\n")
    with pytest.raises(ValueError, match=r"bad.toy, line 2: label 'energy' contains NaN or inf"):
        read_structures(tmp_path / "bad.toy")
    with pytest.raises(ValueError, match=r"a.toy: the 'toy' reader found no forces label, which is required"):
        read_structures(tmp_path / "a.toy", LabelSpec(require=("energy", "forces")))


def test_a_reader_may_not_claim_what_another_claims(toy_registry):
    with pytest.raises(ValueError, match=r"a reader named 'toy' is already registered"):
        register_reader(Reader("toy", _read_toy))
    with pytest.raises(ValueError, match=r"reader 'toy2' claims \['.npz'\], already claimed by reader 'npz'"):
        register_reader(Reader("toy2", _read_toy, suffixes=(".npz",)))
    with pytest.raises(ValueError, match=r"reader 'toy3' claims \['md17'\], already claimed by reader 'npz'"):
        register_reader(Reader("toy3", _read_toy, aliases=("md17",)))
    with pytest.raises(ValueError, match=r"suffix 'TOY' must be lower case and start with '.'"):
        Reader("toy4", _read_toy, suffixes=("TOY",))
    with pytest.raises(ValueError, match=r"unknown format 'nope': use one of \[.*'toyfile'"):
        resolve_format("x", "nope")
