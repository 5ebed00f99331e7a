"""A committee of models in the calculator: the mean, the spread, and what MD does with it."""

import json

import numpy as np
import pytest
import torch
import yaml
from ase.io import write

from equiformer_lite import EquiformerCalculator, save_model
from equiformer_lite.cli import main
from equiformer_lite.md import MDConfig, run_md
from equiformer_lite.train import committee_members
from tests.conftest import diamond, ethanol, small_potential
from tests.train.conftest import emt_frames


def _members(n=3, kind="gatv2"):
    """Members that differ: one small model's weights, each perturbed by its own seeded noise."""
    members = []
    for seed in range(n):
        member = small_potential(kind, torch.float64)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in member.parameters():
                p.mul_(1 + 0.2 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
        members.append(member)
    return members


@pytest.mark.parametrize("make", [ethanol, diamond], ids=["molecule", "cell"])
def test_the_committee_gives_the_members_mean_and_spread(make):
    members = _members()
    atoms = make()
    singles = []
    for member in members:
        atoms.calc = EquiformerCalculator(member)
        singles.append({"energy": atoms.get_potential_energy(), "forces": atoms.get_forces().copy(),
                        **({"stress": atoms.get_stress()} if atoms.pbc.all() else {})})
    atoms.calc = EquiformerCalculator(members)
    results = atoms.calc.get_property("forces", atoms) is not None and atoms.calc.results
    for key in singles[0]:
        stack = np.stack([np.asarray(s[key]) for s in singles])
        assert np.allclose(results[key], stack.mean(axis=0), rtol=1e-12, atol=1e-12), key
        assert np.allclose(results[f"{key}_comm"], stack, rtol=1e-12, atol=1e-12), key
        assert np.allclose(results[f"{key}_std"], stack.std(axis=0), rtol=1e-10, atol=1e-14), key
    forces = np.stack([s["forces"] for s in singles])
    assert results["forces_std_max"] == pytest.approx(np.linalg.norm(forces.std(axis=0), axis=1).max())
    assert results["forces_std_max"] > 1e-3


def test_identical_members_have_no_spread_and_one_model_no_committee_keys():
    model = small_potential("gatv2", torch.float64)
    atoms = ethanol()
    atoms.calc = EquiformerCalculator([model, model])
    atoms.get_forces()
    assert atoms.calc.results["forces_std_max"] == 0 and atoms.calc.results["energy_std"] == 0
    atoms.calc = EquiformerCalculator(model)
    atoms.get_forces()
    assert not any(key.endswith(("_std", "_comm", "_std_max")) for key in atoms.calc.results)
    with pytest.raises(ValueError, match="a committee needs at least one model"):
        EquiformerCalculator([])


def test_md_logs_the_uncertainty_and_stops_on_its_threshold(tmp_path):
    members = _members()
    config = MDConfig(ensemble="nvt", steps=20, log_interval=5, write_interval=5, progress=False,
                      output_dir=str(tmp_path / "calm"), max_force_std=1e3)
    assert run_md(members, ethanol(), config).status == "completed"
    header = (tmp_path / "calm" / "log.csv").read_text().splitlines()[0]
    assert "forces_std_max_eV_A" in header and "energy_std_eV" in header
    strict = MDConfig(ensemble="nvt", steps=20, progress=False, output_dir=str(tmp_path / "strict"), max_force_std=1e-6)
    result = run_md(members, ethanol(), strict)
    assert result.status == "stopped" and result.steps == 0
    assert "the committee's force uncertainty" in result.reason and "above md.max_force_std = 1e-06 eV/Å" in result.reason
    with pytest.raises(ValueError, match="md.max_force_std needs a committee of models"):
        run_md(members[0], ethanol(), MDConfig(max_force_std=0.1, output_dir=str(tmp_path / "single"), progress=False))


def test_train_a_committee_and_run_md_with_its_directory(tmp_path, capsys):
    write(tmp_path / "data.extxyz", emt_frames(10, seed=2))
    config = {
        "model": {"type": "gatv2", "cutoff": 3.5, "channels": 8, "num_heads": 2, "num_layers": 1},
        "data": {"path": str(tmp_path / "data.extxyz"), "atomic_energies": "fit", "val_fraction": 0.2, "test_fraction": 0.0},
        "training": {"epochs": 1, "batch_size": 4, "progress": False, "num_threads": 1},
        "output_dir": str(tmp_path / "committee"),
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "config.yaml"), "--committee", "2"]) == 0
    assert "committee of 2" in capsys.readouterr().out
    members = committee_members(tmp_path / "committee")
    assert [m.parent.name for m in members] == ["member_0", "member_1"]
    seeds = [yaml.safe_load((m.parent / "config.yaml").read_text())["training"]["seed"] for m in members]
    assert seeds == [0, 1]
    assert json.loads((tmp_path / "committee" / "committee.json").read_text())["members"] == ["member_0/model.pt", "member_1/model.pt"]
    write(tmp_path / "start.extxyz", emt_frames(1, seed=9))
    argv = ["md", str(tmp_path / "committee"), str(tmp_path / "start.extxyz"), "--steps", "3", "--output-dir", str(tmp_path / "md")]
    assert main(argv) == 0
    assert "forces_std_max_eV_A" in (tmp_path / "md" / "log.csv").read_text()
    with pytest.raises(ValueError, match="is not a committee directory"):
        committee_members(tmp_path)
