"""Bad model files through ``load_model`` and ``save_model``: every error names the file and the fault,
and no non-finite model is ever written or loaded."""

import pytest
import torch

from equiformer_lite import load_model, save_model
from tests.conftest import small_potential


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A good model file and its payload."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(small_potential("se3", torch.float64), path)
    return path, torch.load(path, weights_only=True)


def _write(tmp_path, payload):
    path = tmp_path / "bad.pt"
    torch.save(payload, path)
    return path


def _nan_weight(payload):
    state = dict(payload["state_dict"])
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    return {**payload, "state_dict": state}


def _reshaped(payload):
    state = dict(payload["state_dict"])
    name = next(k for k, v in state.items() if v.is_floating_point() and v.dim() == 2)
    state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1], dtype=state[name].dtype)
    return {**payload, "state_dict": state}


PAYLOAD_CASES = {
    "an-int": (lambda p: 3, r"bad.pt holds a int, not a model file written by equiformer_lite.save_model"),
    "a-list": (lambda p: [1, 2], r"bad.pt holds a list"),
    "missing-state-dict": (lambda p: {k: v for k, v in p.items() if k != "state_dict"}, r"bad.pt lacks \['state_dict'\]"),
    "a-training-checkpoint": (lambda p: {"model": p["state_dict"], "optimizer": {}, "epoch": 1},
                              r"lacks .*a training checkpoint\? load OUTPUT_DIR/model.pt instead"),
    "unknown-model-type": (lambda p: {**p, "model_type": "mace"}, r"bad.pt: unknown model type 'mace'; this version has \['a2i', 'gatv2', 'se3'\]"),
    "config-of-another-model": (lambda p: {**p, "model_type": "gatv2"}, r"bad.pt: its config does not build a gatv2 model of this version"),
    "config-not-a-mapping": (lambda p: {**p, "config": [1, 2]}, r"'config' and 'state_dict' must be mappings"),
    "nan-weight": (_nan_weight, r"bad.pt: the weight '.*' is not finite \(NaN or inf\)"),
    "mis-shaped-weight": (_reshaped, r"bad.pt: its weights do not fit the se3 model"),
}


@pytest.mark.parametrize("change, message", list(PAYLOAD_CASES.values()), ids=list(PAYLOAD_CASES))
def test_a_bad_payload_is_refused_with_the_file_named(tmp_path, saved, change, message):
    path = _write(tmp_path, change(saved[1]))
    with pytest.raises(ValueError, match=message):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 10, "half"], ids=["empty", "random-bytes", "truncated"])
def test_an_unreadable_file_is_refused_with_its_path(tmp_path, saved, content):
    path = tmp_path / "broken.pt"
    path.write_bytes(saved[0].read_bytes()[:2000] if content == "half" else content)
    with pytest.raises(ValueError, match=r"broken.pt is not a model file written by equiformer_lite.save_model"):
        load_model(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing.pt")


def test_a_non_finite_model_is_never_written(tmp_path):
    model = small_potential("gatv2", torch.float64)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(ValueError, match=r"not saving .*model.pt: the model's weight '.*' is not finite"):
        save_model(model, tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []  # not even a temporary file


def test_the_good_file_still_loads(saved):
    model = load_model(saved[0])
    assert model.model_type == "se3"
