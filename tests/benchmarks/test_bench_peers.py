"""`benchmarks/bench_peers.py`'s bookkeeping: equal-time budgets and what a stored result depends on.

(The runs themselves train for tens of minutes; they are made by hand and their JSONs committed.)
"""

import json

import pytest

from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_peers.py")


def _fingerprint(epochs: int, channels: int = 16, sha: str = "a") -> dict:
    return {"model": "se3", "epochs": epochs, "data_sha256": "d", "split": [950, 50, 1000], "split_seed": 1,
            "settings": {"model": {"type": "se3", "channels": channels}, "training": {"epochs": epochs, "lr": 0.01},
                         "package_sha256": sha}}


def test_equal_time_epochs_and_the_settings_check(bench, tmp_path):
    reference = tmp_path / "mace.json"
    reference.write_text(json.dumps({"train_time_s": 1000.0}))
    ours = tmp_path / "se3.json"
    ours.write_text(json.dumps({"train_time_s": 8 * 70.0, "fingerprint": _fingerprint(8)}))
    # 1000 s at 70 s per epoch: 14 whole epochs; the code hash and the epoch count may differ.
    assert bench.epochs_for_time(reference, ours, _fingerprint(1, sha="b")) == 14
    with pytest.raises(SystemExit, match="differ from this run's"):
        bench.epochs_for_time(reference, ours, _fingerprint(1, channels=32))


def test_a_code_change_invalidates_our_stored_results(bench, tmp_path, monkeypatch):
    package = tmp_path / "equiformer_lite"
    package.mkdir()
    (package / "model.py").write_text("x = 1\n")
    monkeypatch.setattr(bench.ours, "ROOT", tmp_path)
    before = bench.ours.package_sha256()
    (package / "model.py").write_text("x = 2\n")
    assert bench.ours.package_sha256() != before


@pytest.mark.parametrize("name", ["se3_e8.json", "se3_e40.json"])
def test_the_stored_se3_results_are_the_shipped_recipe(bench, name):
    """The READMEs quote `results/peers/se3_e8.json` and `se3_e40.json` as what
    `configs/se3_molecule.yaml` trains to: their settings must be the ones the benchmark computes
    for that config today (model, training and every constructor argument, defaults included).
    Only the package hash may differ: code changes that compute the same model are allowed."""
    stored = json.loads((bench.DEFAULT_OUT / name).read_text())["fingerprint"]
    split = {"train": "train.xyz", "val": "valid.xyz", "test": "test.xyz", "energy_key": bench.peer_data.ENERGY_KEY,
             "forces_key": bench.peer_data.FORCES_KEY, "source_sha256": stored["data_sha256"], "sizes": stored["split"],
             "seed": stored["split_seed"]}
    expected = bench.fingerprint("se3", split, stored["epochs"], {})
    for fingerprint in (stored, expected):
        fingerprint["settings"].pop("package_sha256")
    assert stored == expected
