"""Anything :func:`ase.io.read` reads (extended XYZ first), compressed files included.

ASE stores its labels in eV and Å. ``x.extxyz.gz``, ``.bz2`` and ``.xz`` are opened by ASE
transparently; for text and binary formats the file is decompressed once into memory, because
ASE seeks back in a compressed stream for every frame (quadratic: minutes for a few thousand).
This is the fallback reader: every format name no registered reader claims comes here.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from pathlib import Path
from typing import Any

from ase import Atoms

from ..labels import LabelSpec
from .base import COMPRESSION_SUFFIXES, RawFrames

__all__ = ["read_ase"]

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def read_ase(path: Path, labels: LabelSpec, fmt: str) -> RawFrames:
    """Every frame of ``path`` read by :mod:`ase.io` as format ``fmt``; labels stay where ASE put them."""
    import ase.io
    from ase.io.formats import ioformats

    source: Any = path
    compression = path.suffix.lower()
    if compression in COMPRESSION_SUFFIXES and fmt in ioformats and ioformats[fmt].code[1] in "FB":
        binary = ioformats[fmt].code[1] == "B"
        with _OPENERS[compression](path, "rb" if binary else "rt") as fh:
            source = io.BytesIO(fh.read()) if binary else io.StringIO(fh.read())
    try:
        structures = ase.io.read(source, index=":", format=fmt)
    except Exception as err:  # ASE parsers raise many types; name the file
        raise ValueError(f"{path}: ASE could not read it as format {fmt!r}: {err}") from err
    if isinstance(structures, Atoms):
        structures = [structures]
    names = [f"frame {i}" for i in range(len(structures))]
    file_keys = {k: v for k, v in labels.label_keys.items() if v is not None}
    return RawFrames(list(structures), names, labels.label_keys, file_keys)
