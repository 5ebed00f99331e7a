"""The command line on bad input: one line on stderr naming the problem, exit status 2, no traceback
(``--debug`` shows it), and nothing written where nothing should be."""

import pytest
import torch
import yaml
from ase.io import write

from equiformer_lite import save_model
from equiformer_lite.cli import main
from tests.conftest import small_potential
from tests.train.conftest import emt_frames


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    save_model(small_potential("gatv2", torch.float64), root / "model.pt")
    write(root / "data.extxyz", emt_frames(4, seed=5))
    (root / "bad.yaml").write_text("training: {lr: [")
    (root / "not_a_model.pt").write_bytes(b"\x00" * 64)
    return root


CASES = {
    "train-missing-config": (lambda r: ["train", str(r / "nope.yaml")], r"nope.yaml"),
    "train-broken-yaml": (lambda r: ["train", str(r / "bad.yaml")], r"bad.yaml is not valid YAML"),
    "evaluate-missing-model": (lambda r: ["evaluate", str(r / "nope.pt"), str(r / "data.extxyz")], r"nope.pt"),
    "evaluate-not-a-model": (lambda r: ["evaluate", str(r / "not_a_model.pt"), str(r / "data.extxyz")],
                             r"not_a_model.pt is not a model file written by equiformer_lite.save_model"),
    "evaluate-missing-data": (lambda r: ["evaluate", str(r / "model.pt"), str(r / "nope.extxyz")], r"data file .*nope.extxyz does not exist"),
    "evaluate-unknown-bundled": (lambda r: ["evaluate", str(r / "model.pt"), "bundled:benzene"], r"unknown bundled data set 'benzene'"),
    "evaluate-missing-label-key": (lambda r: ["evaluate", str(r / "model.pt"), str(r / "data.extxyz"), "--energy-key", "dft_energy"],
                                   r"dft_energy"),
    "audit-missing-model": (lambda r: ["audit", "--model", str(r / "nope.pt"), "--output", ""], r"nope.pt"),
    "audit-missing-structures": (lambda r: ["audit", "--model", str(r / "model.pt"), "--structures", str(r / "nope.xyz"), "--output", ""],
                                 r"nope.xyz"),
    "export-not-a-model": (lambda r: ["export", str(r / "not_a_model.pt"), "-o", str(r / "out.pt2")], r"not_a_model.pt is not a model file"),
}


@pytest.mark.parametrize("argv, message", list(CASES.values()), ids=list(CASES))
def test_an_error_is_one_clear_line(files, capsys, argv, message):
    assert main(argv(files)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    with pytest.raises(Exception):
        main(["--debug", *argv(files)])


def test_the_train_command_checks_the_config_before_writing(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"training": {"epochs": "ten"}, "output_dir": str(tmp_path / "run")}))
    assert main(["train", str(config)]) == 2
    assert "training.epochs must be an integer, got 'ten'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_evaluate_output_never_overwrites(files, tmp_path, capsys):
    argv = ["evaluate", str(files / "model.pt"), str(files / "data.extxyz"), "--output"]
    (tmp_path / "a_file").write_text("mine")
    assert main(argv + [str(tmp_path / "a_file")]) == 2
    assert "is a file; give a directory" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "mine"
    assert main(argv + [str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "metrics.json").exists()
    assert main(argv + [str(tmp_path / "eval")]) == 2
    assert "already holds an evaluation (metrics.json" in capsys.readouterr().err
    assert main(argv + [str(tmp_path / "eval"), "--force"]) == 0
