"""LabelSpec: one value for label keys, units and required labels; checked when it is made."""

import pytest
from ase import units
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from equiformer_lite.data import DEFAULT_LABELS, AtomicDataset, LabelSpec, atoms_to_graph, keys, read_labels
from equiformer_lite.data.labels import unit_size

BAD = {
    "key-empty": (dict(energy_key=""), r"energy_key must be a non-empty string or None, got ''"),
    "key-number": (dict(forces_key=3), r"forces_key must be a non-empty string or None, got 3"),
    "unit-unknown": (dict(energy_unit="kcal"), r"unknown energy unit 'kcal'; known: \['Hartree', 'Ry', 'eV'"),
    "length-unit-unknown": (dict(length_unit="inch"), r"unknown length unit 'inch'; known: \['Bohr', 'nm', 'Å'\]"),
    "require-string": (dict(require="energy"), r"require must be a list of labels out of \['energy', 'forces', 'stress'\], got 'energy'"),
    "require-unknown": (dict(require=("charges",)), r"require contains 'charges'; allowed labels are"),
    "require-without-key": (dict(forces_key=None, require=["forces"]), r"require names 'forces' but forces_key is None"),
}


@pytest.mark.parametrize("fields, message", list(BAD.values()), ids=list(BAD))
def test_a_bad_label_spec_names_the_field_and_what_is_allowed(fields, message):
    with pytest.raises(ValueError, match=message):
        LabelSpec(**fields)


def test_defaults_are_ase_keys_and_units_with_energy_required():
    assert DEFAULT_LABELS.label_keys == {keys.ENERGY: "energy", keys.FORCES: "forces", keys.STRESS: "stress"}
    assert DEFAULT_LABELS.require == ("energy",) and not DEFAULT_LABELS.has_units


def test_require_is_stored_as_a_tuple_and_replace_validates_again():
    spec = LabelSpec(require=["energy", "forces"])
    assert spec.require == ("energy", "forces")
    assert hash(spec) == hash(LabelSpec(require=("energy", "forces")))  # frozen: usable as a key
    assert spec.replace(energy_unit="Hartree").energy_unit == "Hartree"
    with pytest.raises(ValueError, match="require names 'forces' but forces_key is None"):
        spec.replace(forces_key=None)


def test_to_dict_is_plain_and_tells_specs_apart():
    a, b = LabelSpec(), LabelSpec(energy_unit="eV")
    assert a.to_dict() != b.to_dict()
    assert all(isinstance(v, (str, list, type(None))) for v in a.to_dict().values())


def test_unit_sizes_are_ase_s():
    assert unit_size(" KCAL/MOL ", "energy") == ("kcal/mol", units.kcal / units.mol)
    assert unit_size("bohr", "length") == ("Bohr", units.Bohr)


def _water_with(energy_key="energy", value=-14.2):
    atoms = molecule("H2O")
    atoms.info[energy_key] = value
    return atoms


def test_read_labels_uses_the_spec_keys_and_skips_a_none_key():
    atoms = _water_with("dft_energy")
    atoms.calc = SinglePointCalculator(atoms, forces=atoms.positions * 0 + 0.1)
    found = read_labels(atoms, LabelSpec(energy_key="dft_energy", forces_key=None))
    assert float(found[keys.ENERGY][0]) == -14.2 and keys.FORCES not in found


def test_in_memory_structures_refuse_units():
    """Units convert files; a spec with units on Atoms would be silently ignored, so it is refused."""
    spec = LabelSpec(energy_unit="kcal/mol")
    with pytest.raises(ValueError, match=r"in-memory structures are read in eV and Å, but labels give energy_unit='kcal/mol'"):
        atoms_to_graph(_water_with(), 3.0, labels=spec)
    with pytest.raises(ValueError, match="in-memory structures are read in eV and Å"):
        AtomicDataset.from_structures([_water_with()], 3.0, spec)
    with pytest.raises(TypeError, match="labels must be a LabelSpec, got dict"):
        atoms_to_graph(_water_with(), 3.0, labels={"energy_key": "energy"})
