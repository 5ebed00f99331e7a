"""Atomic checkpoint files and the random-number-generator state they carry."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch

from ..utils import atomic_save

__all__ = ["atomic_save", "load_checkpoint", "rng_state", "set_rng_state"]


def load_checkpoint(path: Union[str, os.PathLike]) -> dict[str, Any]:
    """Read a checkpoint written by the trainer (tensors and plain containers only)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    """The state of torch's, NumPy's and Python's generators, as tensors and plain containers."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "cached": cached},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
