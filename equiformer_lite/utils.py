"""Small shared helpers."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import torch

__all__ = ["atomic_save", "atomic_write_text", "default_dtype", "free_cores", "parse_dtype"]

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
    a crash mid-write never leaves a truncated file behind (the package's atomic write of tensors:
    models, checkpoints, data caches; :func:`atomic_write_text` writes text the same way).

    A write that fails (a full disk, a read-only directory) removes its temporary file, leaves
    any previous file at ``path`` as it was, and raises an ``OSError`` (of the errno's subclass,
    e.g. ``PermissionError``) naming ``path``. A process killed mid-write leaves a temporary
    ``.NAME*.tmp`` beside ``path``, which no reader of ``path`` ever opens.
    """
    _atomic_write(path, "wb", lambda fh: torch.save(obj, fh))


def atomic_write_text(path: Union[str, os.PathLike], text: str) -> None:
    """Write a text file (a config, a metrics report) as :func:`atomic_save` writes tensors: a
    reader sees the old file or the whole new one."""
    _atomic_write(path, "w", lambda fh: fh.write(text))


def _atomic_write(path: Union[str, os.PathLike], mode: str, write: Callable[[Any], Any]) -> None:
    path = Path(path)
    tmp: Optional[str] = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets what open() would give
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except (OSError, RuntimeError) as err:  # torch reports a failed write of its zip writer as RuntimeError
        errno = getattr(err, "errno", None)
        reason = getattr(err, "strerror", None) or str(err)
        kept = "the previous file there is unchanged" if path.exists() else "nothing was written there"
        message = f"could not write {path}: {reason} ({kept})"
        raise (OSError(errno, message) if errno is not None else OSError(message)) from err
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    _fsync_directory(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Flush a directory entry (a rename) to disk where the platform allows it."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
