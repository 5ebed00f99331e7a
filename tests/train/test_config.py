"""The run configuration's ``model`` section, checked against the model it names."""

import pytest
import yaml

from equiformer_lite.train import RunConfig, load_config


@pytest.mark.parametrize(
    "model, message",
    [
        ({"type": "transformer"}, r"unknown model type 'transformer' in 'model'; choose one of \['a2i', 'gatv2', 'se3'\]"),
        ({"type": "se3", "chanels": 8}, r"unknown key 'chanels' in 'model' for type 'se3'; allowed: \[.*'channels'"),
        ({"type": "gatv2", "lmax": 2}, r"unknown key 'lmax' in 'model' for type 'gatv2'"),
        ({"type": "se3", "dtype": "float64"}, r"'model.dtype' is set by the run from training.dtype"),
        ({"type": "se3", "scale": 2.0}, r"'model.scale' is set by the run from the training data's statistics"),
        ({"type": "a2i", "cutoff": 1.0}, r"the a2i model reads no neighbour list and takes no cutoff"),
    ],
)
def test_a_bad_model_section_names_the_key_and_the_allowed_ones(tmp_path, model, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": model}))
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_the_shipped_model_sections_pass():
    config = RunConfig.from_dict({"model": {"type": "a2i", "num_blocks": 2, "species": ["Ar"]}})
    assert config.model["num_blocks"] == 2
    assert RunConfig().model["type"] == "se3"
