"""Small shared helpers."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import torch

__all__ = ["atomic_save", "default_dtype", "free_cores", "parse_dtype"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parse_dtype(dtype: Optional[Union[str, torch.dtype]]) -> torch.dtype:
    """``"float32"``/``"float64"``/a torch dtype/``None`` (torch's default) -> a torch float dtype."""
    if dtype is None:
        return torch.get_default_dtype()
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        return _DTYPES[name]
    if dtype not in _DTYPES.values():
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


@contextlib.contextmanager
def default_dtype(dtype: Union[str, torch.dtype]) -> Iterator[None]:
    """Run a block with torch's default dtype set to ``dtype``, then restore it.

    e3nn computes its constants (Clebsch-Gordan coefficients, normalisations, the SO(3)
    generators behind Wigner matrices) in the default dtype when a module is *built*. A module
    built in float32 and converted with ``.double()`` keeps float32-rounded constants, and its
    equivariance error stalls near 1e-9 instead of 1e-15: build float64 models under this.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(parse_dtype(dtype))
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def atomic_save(obj: Any, path: Union[str, os.PathLike]) -> None:
    """``torch.save`` to a temporary file in the same directory, flushed to disk, then renamed:
    a crash mid-write never leaves a truncated file behind (the one atomic write of the package:
    models, checkpoints, data caches)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _cpu_times() -> Optional[tuple[float, float]]:
    """(busy, total) CPU time of the machine from ``/proc/stat`` (None where there is none)."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(before: tuple[float, float], after: tuple[float, float], cores: int) -> float:
    """Cores kept busy between two :func:`_cpu_times` samples (0 to ``cores``)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return 0.0 if total <= 0 else min(max(cores * busy / total, 0.0), float(cores))


def free_cores(sample_s: float = 0.3) -> int:
    """The cores this process may use that other processes are not keeping busy now (at least 1).

    torch's threads spin-wait between parallel regions: on a core another job needs, they slow
    both jobs far beyond their share (``benchmarks/bench_threads.py``: a training step took 3.9x
    longer beside one busy single-thread job with all cores' threads, 1.4x with threads = free
    cores). Measured over ``sample_s`` seconds from ``/proc/stat``; without it, all usable cores.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    before = _cpu_times()
    if before is None:
        return cores
    time.sleep(sample_s)
    after = _cpu_times()
    machine = os.cpu_count() or cores
    busy = busy_cores(before, after, machine) if after is not None else 0.0
    return max(1, min(cores, machine - round(busy)))
