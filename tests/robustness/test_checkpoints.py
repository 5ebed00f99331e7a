"""Bad checkpoints and incompatible resumes: each case names the exception and the words its message must hold.

Every message names the file; reading cases go through ``load_checkpoint``, resume cases through
``Trainer(..., resume=True)`` on a checkpoint of a tiny two-epoch run (``fault_worker``'s model and data).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Callable

import pytest
import torch

from equiformer_lite import GATv2Potential, SE3Potential, save_model
from equiformer_lite.train import Trainer, TrainingConfig
from equiformer_lite.train.checkpoint import load_checkpoint
from tests.robustness.fault_worker import CUTOFF, make_data, make_model

BASE = dict(epochs=2, batch_size=2, lr=5e-3, scheduler="onecycle", progress=False, seed=0, dtype="float64")


@dataclasses.dataclass
class Run:
    """A finished two-epoch run to resume from."""

    out: Path
    data: tuple[list, list]

    @property
    def last(self) -> Path:
        return self.out / "last.pt"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("run")
    data = make_data()
    Trainer(make_model(), data[0], data[1], TrainingConfig(**BASE), out).fit()
    return Run(out, data)


def _copy(run: Run, tmp_path: Path) -> Path:
    """A fresh copy of the run's output directory (cases must not harm the shared run)."""
    out = tmp_path / "copy"
    shutil.copytree(run.out, out)
    return out


def _edited(run: Run, tmp_path: Path, edit: Callable[[dict], object]) -> Path:
    """The run's last.pt, edited in memory and written to a new file."""
    state = torch.load(run.last, weights_only=True)
    state = edit(state) or state
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return path


def _bytes(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "bytes.pt"
    path.write_bytes(content)
    return path


def _first_weight(state: dict, key: str = "model") -> str:
    return next(name for name, t in state[key].items() if t.is_floating_point() and t.numel() > 1)


def _poison(key: str, value: float):
    def edit(state):
        state[key][_first_weight(state, key)].view(-1)[1] = value
    return edit


# --- reading: load_checkpoint -------------------------------------------------------------------------
def _not_a_dict(run, tmp_path):
    return _edited(run, tmp_path, lambda state: 5)


def _a_list(run, tmp_path):
    return _edited(run, tmp_path, lambda state: [state["model"]])


def _missing_keys(run, tmp_path):
    return _edited(run, tmp_path, lambda state: {k: v for k, v in state.items() if k not in ("optimizer", "scheduler")})


def _model_file(run, tmp_path):
    path = tmp_path / "model.pt"
    save_model(make_model(), path)
    return path


def _truncated(run, tmp_path):
    content = run.last.read_bytes()
    return _bytes(tmp_path, content[: len(content) // 2])


def _cut_tail(run, tmp_path):  # the "OSError: [Errno 22] Invalid argument"
    content = run.last.read_bytes()
    return _bytes(tmp_path, content[:-30] + bytes(30))


def _random_bytes(run, tmp_path):
    return _bytes(tmp_path, os.urandom(4096))


def _empty(run, tmp_path):
    return _bytes(tmp_path, b"")


def _text(run, tmp_path):
    return _bytes(tmp_path, b"training:\n  epochs: 3\n")


def _model_not_a_state_dict(run, tmp_path):
    return _edited(run, tmp_path, lambda state: {**state, "model": 3})


def _nan_model(run, tmp_path):
    return _edited(run, tmp_path, _poison("model", float("nan")))


def _inf_ema(run, tmp_path):
    return _edited(run, tmp_path, _poison("ema", float("inf")))


def _changed_weight(run, tmp_path):  # finite, so only the checksum tells
    return _edited(run, tmp_path, _poison("model", 0.125))


def _flipped_bit(run, tmp_path):
    """One bit of a weight flipped in the file itself: the zip and the pickle stay valid."""
    state = torch.load(run.last, weights_only=True)
    content = bytearray(run.last.read_bytes())
    # A trained weight whose bytes occur once in the file (fixed ones, e.g. radial frequencies,
    # are stored again in the moving average).
    weight = next(t for t in state["model"].values()
                  if t.is_floating_point() and t.numel() > 1 and content.count(t.numpy().tobytes()) == 1)
    start = content.find(weight.numpy().tobytes())
    content[start + weight.element_size() + 2] ^= 0x10  # a mantissa bit of its second value
    return _bytes(tmp_path, bytes(content))


def _missing(run, tmp_path):
    return tmp_path / "nowhere" / "last.pt"


def _directory(run, tmp_path):
    return tmp_path


READ_CASES = [
    ("not-a-dict", _not_a_dict, ValueError, ["edited.pt", "is not a trainer checkpoint", "holds a int"]),
    ("a-list", _a_list, ValueError, ["edited.pt", "holds a list", "'optimizer'"]),
    ("missing-keys", _missing_keys, ValueError, ["edited.pt", "lacks the keys", "'optimizer'", "'scheduler'"]),
    ("model-file-not-checkpoint", _model_file, ValueError, ["model.pt", "lacks the keys", "save_model", "last.pt or best.pt"]),
    ("truncated", _truncated, ValueError, ["bytes.pt", "not a readable checkpoint", "truncated"]),
    ("cut-tail-errno-22", _cut_tail, ValueError, ["bytes.pt", "not a readable checkpoint", "OSError"]),
    ("random-bytes", _random_bytes, ValueError, ["bytes.pt", "not a readable checkpoint"]),
    ("empty-file", _empty, ValueError, ["bytes.pt", "not a readable checkpoint", "EOFError"]),
    ("yaml-text", _text, ValueError, ["bytes.pt", "not a readable checkpoint"]),
    ("model-not-a-state-dict", _model_not_a_state_dict, ValueError, ["edited.pt", "'model' must be a state_dict", "int"]),
    ("nan-model-weight", _nan_model, ValueError, ["edited.pt", "non-finite weights", "model.", "1 of"]),
    ("inf-ema-weight", _inf_ema, ValueError, ["edited.pt", "non-finite weights", "ema.module."]),
    ("changed-weight", _changed_weight, ValueError, ["edited.pt", "is corrupted", "checksum"]),
    ("flipped-bit", _flipped_bit, ValueError, ["bytes.pt", "checksum"]),
    ("missing-file", _missing, FileNotFoundError, ["no checkpoint at", "nowhere/last.pt"]),
    ("directory", _directory, ValueError, ["is a directory", "last.pt"]),
]


@pytest.mark.parametrize("make, error, words", [c[1:] for c in READ_CASES], ids=[c[0] for c in READ_CASES])
def test_bad_checkpoint_files_are_refused_by_name(run, tmp_path, make, error, words):
    path = make(run, tmp_path)
    with pytest.raises(error) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


# --- resuming: Trainer(..., resume=True) ----------------------------------------------------------------
def _resume(out: Path, run: Run, model=None, data=None, **training):
    train, val = data or run.data
    Trainer(model or make_model(), train, val, TrainingConfig(**{**BASE, **training}), out, resume=True)


def _wider_model(run, tmp_path):
    torch.manual_seed(0)
    model = GATv2Potential(["H", "O"], cutoff=CUTOFF, channels=8, num_heads=1, num_layers=1, readout_widths=[4], dtype=torch.float64)
    _resume(_copy(run, tmp_path), run, model=model)


def _other_model_type(run, tmp_path):
    model = SE3Potential(["H", "O"], cutoff=CUTOFF, channels=4, num_heads=1, num_layers=1, lmax=1, dtype=torch.float64)
    _resume(_copy(run, tmp_path), run, model=model)


def _float32_model(run, tmp_path):
    torch.manual_seed(0)
    model = GATv2Potential(["H", "O"], cutoff=CUTOFF, channels=4, num_heads=1, num_layers=1, readout_widths=[4], dtype=torch.float32)
    _resume(_copy(run, tmp_path), run, model=model, dtype="float32")


def _changed_lr(run, tmp_path):
    _resume(_copy(run, tmp_path), run, lr=1e-3)


def _changed_batch_and_seed(run, tmp_path):
    _resume(_copy(run, tmp_path), run, batch_size=3, seed=7)


def _changed_scheduler_and_loss(run, tmp_path):
    _resume(_copy(run, tmp_path), run, scheduler="cosine", forces_weight=1.0)


def _ema_turned_off(run, tmp_path):
    _resume(_copy(run, tmp_path), run, ema_decay=None)


def _fewer_structures(run, tmp_path):
    train, val = run.data
    _resume(_copy(run, tmp_path), run, data=(train[:5], val))


def _fewer_epochs_than_trained(run, tmp_path):
    _resume(_copy(run, tmp_path), run, epochs=1)


def _stage_two_moves(run, tmp_path):
    out = tmp_path / "staged"
    train, val = run.data
    Trainer(make_model(), train, val, TrainingConfig(**{**BASE, "epochs": 4, "stage_two_fraction": 0.5}), out).fit(until_epoch=1)
    _resume(out, run, epochs=8, stage_two_fraction=0.5)


def _old_checkpoint_ema_turned_off(run, tmp_path):
    out = _copy(run, tmp_path)
    state = torch.load(out / "last.pt", weights_only=True)
    del state["fingerprint"]  # as written before the settings were stored
    torch.save(state, out / "last.pt")
    _resume(out, run, ema_decay=None)


def _no_last_pt(run, tmp_path):
    _resume(tmp_path / "empty_run", run)


def _model_pt_as_last_pt(run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    save_model(make_model(), out / "last.pt")
    _resume(out, run)


def _nan_last_pt(run, tmp_path):
    out = _copy(run, tmp_path)
    state = torch.load(out / "last.pt", weights_only=True)
    _poison("model", float("nan"))(state)
    torch.save(state, out / "last.pt")
    _resume(out, run)


RESUME_CASES = [
    ("changed-model-size", _wider_model, ValueError,
     ["last.pt", "does not fit this GATv2Potential", "differ (checkpoint vs model)", "(4,", "vs float64 (8,"]),
    ("other-model-type", _other_model_type, ValueError,
     ["last.pt", "does not fit this SE3Potential", "tensors are not in the checkpoint", "tensors are not in the model"]),
    ("other-dtype", _float32_model, ValueError, ["last.pt", "float64 (", "vs float32 ("]),
    ("changed-lr", _changed_lr, ValueError, ["last.pt", "other settings", "training.lr: 0.005 -> 0.001"]),
    ("changed-batch-and-seed", _changed_batch_and_seed, ValueError,
     ["last.pt", "2 changed", "training.batch_size: 2 -> 3", "training.seed: 0 -> 7"]),
    ("changed-scheduler-and-loss-weight", _changed_scheduler_and_loss, ValueError,
     ["training.scheduler: 'onecycle' -> 'cosine'", "training.forces_weight: 10.0 -> 1.0"]),
    ("ema-turned-off", _ema_turned_off, ValueError, ["last.pt", "training.ema_decay: 0.99 -> None"]),
    ("fewer-training-structures", _fewer_structures, ValueError, ["last.pt", "num_train (structures): 6 -> 5"]),
    ("fewer-epochs-than-trained", _fewer_epochs_than_trained, ValueError,
     ["last.pt", "has trained 2 epochs already", "training.epochs = 1"]),
    ("longer-run-moves-stage-two", _stage_two_moves, ValueError,
     ["last.pt", "stage two start", "2 -> 4", "stage_two_epoch: 2"]),
    ("old-checkpoint-ema-turned-off", _old_checkpoint_ema_turned_off, ValueError,
     ["last.pt", "has an EMA", "training.ema_decay is now None"]),
    ("missing-last-pt", _no_last_pt, FileNotFoundError, ["no checkpoint at", "empty_run/last.pt", "without resume"]),
    ("model-pt-as-last-pt", _model_pt_as_last_pt, ValueError, ["last.pt", "lacks the keys", "save_model"]),
    ("nan-weights-in-last-pt", _nan_last_pt, ValueError, ["last.pt", "non-finite weights"]),
]


@pytest.mark.parametrize("resume, error, words", [c[1:] for c in RESUME_CASES], ids=[c[0] for c in RESUME_CASES])
def test_incompatible_resumes_are_refused_with_what_differs(run, tmp_path, resume, error, words):
    with pytest.raises(error) as info:
        resume(run, tmp_path)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


def test_settings_that_do_not_change_the_result_may_change(run, tmp_path):
    """Progress bars, threads, early-stopping patience and a longer run are no reason to refuse."""
    out = _copy(run, tmp_path)
    train, val = run.data
    config = TrainingConfig(**{**BASE, "epochs": 3, "progress": True, "num_threads": 1, "early_stopping_patience": 5})
    trainer = Trainer(make_model(), train, val, config, out, resume=True)
    assert trainer.epoch == 2
