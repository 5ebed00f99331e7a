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
