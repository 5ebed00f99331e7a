"""The command line: the audit main job on the bundled structures."""

import json

import pytest
import torch
from ase.io import read, write

from equiformer_lite import save_model
from equiformer_lite.cli import default_structures_path, main
from tests.conftest import small_model, small_potential
from tests.train.conftest import emt_frames


def test_bundled_structures_are_there():
    structures = read(default_structures_path(), index=":")
    assert len(structures) == 5
    assert sum(a.pbc.all() for a in structures) == 2


def test_audit_command_on_a_saved_model(tmp_path, capsys):
    save_model(small_model(torch.float64, cutoff=5.0), tmp_path / "m.pt")
    report = tmp_path / "report.json"
    code = main(["audit", "--model", str(tmp_path / "m.pt"), "--trials", "1", "--output", str(report)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "0 failed" in printed
    rows = json.loads(report.read_text())["rows"]
    assert rows and all(r["passed"] for r in rows)


def test_an_error_is_one_line_and_the_traceback_needs_debug(tmp_path, capsys):
    import pytest
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model": {"type": "se3", "chanels": 8}, "output_dir": str(tmp_path / "run")}))
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key 'chanels' in 'model'") and "--debug" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written
    with pytest.raises(ValueError, match="unknown key 'chanels'"):
        main(["--debug", "train", str(config)])


def test_epochs_below_one_are_refused_before_anything_runs(tmp_path, capsys):
    import pytest

    for bad in ("0", "-1", "ten"):
        with pytest.raises(SystemExit) as stop:
            main(["train", "--epochs", bad, "--output-dir", str(tmp_path / "run")])
        assert stop.value.code == 2
        assert "--epochs" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_evaluate_reads_the_keys_and_units_it_is_given(tmp_path, capsys):
    """A file in meV under custom keys, read with --energy-unit/--*-key, scores like the eV file."""
    save_model(small_potential("gatv2", torch.float64), tmp_path / "model.pt")
    frames = emt_frames(3, seed=2)
    write(tmp_path / "ev.extxyz", frames)
    for atoms in frames:
        atoms.info["e_mev"] = 1e3 * atoms.get_potential_energy()
        atoms.arrays["f_mev"] = 1e3 * atoms.get_forces()
        atoms.calc = None
    write(tmp_path / "mev.extxyz", frames)

    def metrics(*argv):
        assert main(["evaluate", str(tmp_path / "model.pt"), *argv]) == 0
        return dict(line.split() for line in capsys.readouterr().out.strip().splitlines())

    reference = metrics(str(tmp_path / "ev.extxyz"))
    in_mev = metrics(str(tmp_path / "mev.extxyz"), "--energy-key", "e_mev", "--forces-key", "f_mev",
                     "--stress-key", "none", "--energy-unit", "meV")
    assert reference.keys() == in_mev.keys() and any("forces" in key for key in reference)
    for key in reference:
        assert float(in_mev[key]) == pytest.approx(float(reference[key]), rel=1e-5)
    without_forces = metrics(str(tmp_path / "ev.extxyz"), "--forces-key", "none")
    assert not any("forces" in key for key in without_forces)
