"""The command line: the audit main job on the bundled structures."""

import json

import torch
from ase.io import read

from equiformer_lite import save_model
from equiformer_lite.cli import default_structures_path, main
from tests.conftest import small_model


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
