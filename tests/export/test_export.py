"""Export: a model compiled ahead of time into one ``.pt2`` file, checked before it is written.

Each export compiles C++ (tens of seconds on 2 cores), so the default run exports the GATv2 model
(float64 once for several tests, float32 through the CLI, and the refusal of a planted bug); SE3
and A2I round trips are marked slow.
"""

import json

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.io import read

from equiformer_lite import EquiformerCalculator, atoms_to_batch, keys, load_model, save_model
from equiformer_lite.cli import default_structures_path, main
from equiformer_lite.export import DEVIATION_BOUNDS, ExportedPotential, ExportRefused, export_model, is_exported
from equiformer_lite.testing import relative_error
from tests.conftest import diamond, ethanol, small_potential, water_box
from tests.models.test_a2i_potential import small_a2i


def structures():
    return read(default_structures_path(), index=":")


def assert_round_trip(model, exported, atoms_list):
    bound = DEVIATION_BOUNDS[model.dtype]
    for atoms in atoms_list:
        eager = EquiformerCalculator(model)
        compiled = EquiformerCalculator(exported)
        for prop in ("energy", "energies", "forces") + (("stress",) if atoms.pbc.all() else ()):
            a, b = atoms.copy(), atoms.copy()
            a.calc, b.calc = eager, compiled
            ours, theirs = np.atleast_1d(a.calc.get_property(prop, a)), np.atleast_1d(b.calc.get_property(prop, b))
            if prop == "energy":
                # Relative to the size of its per-atom terms, as the export's own check measures it:
                # an untrained model's total can nearly cancel, and float32 round-off of the terms
                # would then read as a large relative error of the total (seen: 1.6e-5 on a water box).
                error = float(np.abs(ours - theirs).sum() / np.abs(a.calc.get_property("energies", a)).sum())
            else:
                error = relative_error(torch.from_numpy(ours), torch.from_numpy(theirs))
            print(f"{type(model).__name__} {str(model.dtype)[6:]} {atoms.get_chemical_formula()} {prop}: {error:.1e}")
            assert error <= bound


@pytest.fixture(scope="module")
def gatv2_export(tmp_path_factory):
    """A float64 GATv2 model and its artefact (written once for the tests that read it)."""
    model = small_potential("gatv2")
    path = tmp_path_factory.mktemp("export") / "gatv2.pt2"
    report = export_model(model, path, structures())
    return model, path, report


def test_gatv2_round_trip(gatv2_export):
    model, path, report = gatv2_export
    assert report.passed and path.exists() and is_exported(path)
    assert max(report.deviation.values()) <= DEVIATION_BOUNDS[torch.float64] and len(report.audit) > 30
    exported = load_model(path)
    assert isinstance(exported, ExportedPotential)
    assert (exported.species, exported.cutoff, exported.dtype) == (model.species, model.cutoff, torch.float64)
    assert exported.units["energy"] == "eV" and exported.model_type == "gatv2"
    # Other sizes than the traced sample: a bigger periodic box, a molecule, a lone atom (no edges).
    assert_round_trip(model, exported, [ethanol(), diamond(), water_box().repeat((2, 1, 1))])
    lone = molecule("H2O")[:1]
    lone.calc = EquiformerCalculator(str(path))
    expected = float(model(model_graph(model, lone))[keys.ENERGY][0].detach())
    assert lone.get_potential_energy() == pytest.approx(expected, abs=1e-12)


def model_graph(model, atoms):
    from equiformer_lite import atoms_to_graph

    return atoms_to_graph(atoms, model.graph_cutoff, dtype=model.dtype, with_labels=False)


def test_exported_potential_validates_like_a_model(gatv2_export):
    model, path, _ = gatv2_export
    exported = ExportedPotential.load(path)
    with pytest.raises(ValueError, match="not among the model's species"):
        exported(model_graph(model, molecule("NH3")))
    with pytest.raises(ValueError, match="one dtype"):
        exported.with_dtype(torch.float32)
    with pytest.raises(ValueError, match="not an exported potential"):
        ExportedPotential.load(__file__)
    batch = atoms_to_batch([ethanol(), water_box()], model.graph_cutoff, dtype=torch.float64)
    ours, theirs = model(batch), exported(batch)  # a batch: evaluated one structure at a time
    for key in (keys.ENERGY, keys.FORCES, keys.STRESS):
        assert relative_error(ours[key].detach(), theirs[key]) < 1e-10


def test_a_planted_bug_is_refused_and_nothing_written(tmp_path):
    """A hard cutoff (the envelope replaced by a step) passes every symmetry check, not the audit."""
    model = small_potential("gatv2")

    class HardCutoff(torch.nn.Module):
        def forward(self, lengths):
            return (lengths < model.cutoff).to(lengths.dtype)

    model.radial.envelope = HardCutoff()
    path = tmp_path / "bug.pt2"
    with pytest.raises(ExportRefused, match="force jump at r_c|energy jump at r_c") as err:
        export_model(model, path, structures())
    assert "FAIL" in str(err.value) and not path.exists()
    assert not list(tmp_path.iterdir()), "no temporary file may be left behind"


def test_cli_export(tmp_path, capsys):
    model = small_potential("gatv2")
    save_model(model, tmp_path / "model.pt")
    assert main(["export", str(tmp_path / "model.pt"), "--dtype", "float32", "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "passed, 0 failed" in out and "exported vs eager (float32)" in out
    exported = load_model(tmp_path / "model.pt2")
    assert exported.dtype == torch.float32 and json.loads(json.dumps(exported.config))["channels"] == 8
    assert_round_trip(model.with_dtype(torch.float32), exported, [ethanol(), diamond()])
    before = (tmp_path / "model.pt2").read_bytes()
    assert main(["export", str(tmp_path / "model.pt")]) == 2
    assert "model.pt2 exists (pass --force" in capsys.readouterr().err
    assert (tmp_path / "model.pt2").read_bytes() == before, "a refused export must leave the old file alone"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["se3", "a2i"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_se3_and_a2i_round_trip(tmp_path, kind, dtype):
    if kind == "se3":
        model = small_potential("se3", dtype)
    else:
        model = small_a2i(dtype, species=["H", "C", "O"], atomic_energies=None)
    path = tmp_path / f"{kind}.pt2"
    report = export_model(model, path, structures())
    print({k: f"{v:.1e}" for k, v in report.deviation.items()})
    assert report.passed
    assert_round_trip(model, load_model(path), [ethanol(), diamond(), water_box().repeat((2, 1, 1))])
