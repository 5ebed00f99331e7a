"""Atomic checkpoint files, the checks made on reading one, and the random-number-generator state they carry."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch

from ..utils import atomic_save

__all__ = [
    "CHECKPOINT_KEYS", "atomic_save", "find_non_finite", "load_checkpoint", "rng_state", "save_checkpoint",
    "set_rng_state", "state_checksum",
]

# What Trainer._training_state writes and Trainer.resume needs. Checkpoints may carry more
# ("recent_grad_norms", the run's "fingerprint"); older ones lack those and still resume.
CHECKPOINT_KEYS = (
    "model", "optimizer", "scheduler", "ema", "epoch", "step", "lr_scale", "best_val",
    "epochs_since_best", "counters", "history", "rng",
)
# The keys of a file written by ``save_model`` (``model.pt``): named in the error when one is
# passed where a checkpoint is expected.
MODEL_FILE_KEYS = {"model_type", "config", "state_dict"}
REASON_CHARS = 240  # how much of torch's own error a message quotes
CHECKSUM_KEY = "checksum"  # sha256 of the tensors of CHECKSUMMED, written by save_checkpoint
CHECKSUMMED = ("model", "ema", "optimizer")


def state_checksum(state: Mapping[str, Any]) -> str:
    """SHA-256 over the name, dtype, shape and bytes of every tensor of the weights, the moving
    average and the optimiser state of a checkpoint: a changed byte in any of them changes it."""
    digest = hashlib.sha256()
    for key in CHECKSUMMED:
        if not isinstance(state.get(key), Mapping):
            continue
        for name, tensor in _tensors(state[key], f"{key}."):
            data = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{name}|{data.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(state: dict[str, Any], path: Union[str, os.PathLike]) -> None:
    """Write a trainer checkpoint atomically (:func:`atomic_save`) with its :func:`state_checksum`,
    which :func:`load_checkpoint` verifies: a bit flipped on disk inside a tensor is refused
    instead of resumed from."""
    atomic_save({**state, CHECKSUM_KEY: state_checksum(state)}, path)


def load_checkpoint(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """Read a checkpoint written by the trainer (tensors and plain containers only) and check it.

    Raises ``FileNotFoundError`` when there is no file, and a ``ValueError`` naming ``path`` when
    the file is truncated or corrupted, is not a dict, lacks one of :data:`CHECKPOINT_KEYS`, or
    holds a non-finite weight in ``model`` or ``ema`` (the message names the first one), or when
    its tensors no longer match the checksum written with them (checkpoints written before
    checksums existed are read without that check).
    Temporary files of an interrupted write (``.last.pt*.tmp``) are never read by the trainer.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a checkpoint file (expected e.g. {path / 'last.pt'})")
    state = _read(path)
    check_checkpoint(state, path)
    return state


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, OSError(EINVAL), ...
        raise ValueError(
            f"{path} is not a readable checkpoint (truncated, corrupted, or not written by torch.save): "
            f"{type(err).__name__}: {_reason(err)}"
        ) from err


def _reason(err: BaseException) -> str:
    """The informative part of a torch.load error, short: weights-only unpickling errors bury it
    after a paragraph about the ``weights_only`` default."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    text = " ".join(text.split()) or "empty or cut-off file"
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + "..."


def check_checkpoint(state: Any, path: Union[str, os.PathLike]) -> None:
    """A ``ValueError`` naming ``path`` unless ``state`` is a trainer checkpoint with finite weights."""
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a trainer checkpoint: it holds a {type(state).__name__}, "
                         f"not a dict of training state with keys {list(CHECKPOINT_KEYS)}")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        hint = (" It looks like a model file written by save_model (model.pt): resume from last.pt or best.pt"
                if MODEL_FILE_KEYS <= set(state) else "")
        raise ValueError(f"{path} is not a trainer checkpoint: it lacks the keys {missing}.{hint}")
    for key in ("model", "ema"):
        if state[key] is None and key == "ema":
            continue
        if not isinstance(state[key], Mapping):
            raise ValueError(f"{path}: '{key}' must be a state_dict (a mapping of names to tensors), "
                             f"got a {type(state[key]).__name__}")
        bad = find_non_finite(state[key])
        if bad is not None:
            name, count, total = bad
            raise ValueError(
                f"{path} holds non-finite weights: {key}.{name} has {count} of {total} values NaN or infinite "
                "(the run had diverged when this was written); resume from an earlier checkpoint or start anew"
            )
    if CHECKSUM_KEY in state and state[CHECKSUM_KEY] != state_checksum(state):
        raise ValueError(
            f"{path} is corrupted: its weights or optimiser state do not match the checksum written with them "
            "(a byte changed on disk or in a copy); resume from another checkpoint (best.pt, last.pt) or start anew"
        )


def find_non_finite(state_dict: Mapping[str, Any]) -> Optional[tuple[str, int, int]]:
    """``(name, non-finite count, size)`` of the first floating-point tensor with a NaN or
    infinite value, or ``None`` when all are finite."""
    for name, tensor in _tensors(state_dict):
        if tensor.is_floating_point() or tensor.is_complex():
            finite = torch.isfinite(tensor)
            if not bool(finite.all()):
                return name, int((~finite).sum()), tensor.numel()
    return None


def _tensors(state_dict: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor):
            yield prefix + str(name), value
        elif isinstance(value, Mapping):
            yield from _tensors(value, f"{prefix}{name}.")


def rng_state() -> dict[str, Any]:
    """The state of torch's, NumPy's and Python's generators, as tensors and plain containers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators from :func:`rng_state`'s output."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
