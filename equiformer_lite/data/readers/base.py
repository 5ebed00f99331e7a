"""What every reader shares: the frames it returns, the summary of what was read, the registry.

A reader is a function ``read(path, labels) -> RawFrames`` registered under a format name with
the ``format=`` aliases and file suffixes that select it (:func:`register_reader`). Any format
name no reader claims goes to :mod:`ase.io` (see :mod:`.ase_files`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ase import Atoms

from .. import keys
from ..labels import LabelSpec, check_label_spec

__all__ = ["RawFrames", "ReadSummary", "Reader", "register_reader", "registered_readers", "resolve_format"]

PathLike = Union[str, Path]
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass
class RawFrames:
    """Frames as a reader returns them: in the file's units, before validation and conversion.

    Attributes
    ----------
    structures : the frames.
    frame_names : one name per frame for error messages (``"frame 3"``, ``"row id 7"``).
    read_keys : energy/forces/stress label -> key under which it sits in the returned Atoms
        (``None``: not there).
    file_keys : label -> name it has in the file, for the summary.
    energy_unit, length_unit, unit_source : the file's units, and why (a format's default,
        declared by the file); :class:`~equiformer_lite.data.LabelSpec` units override them.
    """

    structures: list[Atoms]
    frame_names: list[str]
    read_keys: dict[str, Optional[str]]
    file_keys: dict[str, str]
    energy_unit: str = "eV"
    length_unit: str = "Å"
    unit_source: str = "ASE convention"


ReadFunction = Callable[[Path, LabelSpec], RawFrames]


@dataclass(frozen=True)
class Reader:
    """A file format: its name, the function that reads it and what selects it.

    Attributes
    ----------
    name : the format name :func:`resolve_format` returns (``"npz"``).
    read : ``read(path, labels) -> RawFrames``; raise :class:`ValueError` naming the path.
    aliases : other ``format=`` names that select it (lower case).
    suffixes : file suffixes that select it (lower case, with the dot; compression suffixes are
        never matched, so ``x.npz.gz`` goes to ASE's sniffing).
    """

    name: str
    read: ReadFunction
    aliases: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower():
            raise ValueError(f"reader name must be a non-empty lower-case string, got {self.name!r}")
        for suffix in self.suffixes:
            if not suffix.startswith(".") or suffix != suffix.lower():
                raise ValueError(f"reader {self.name!r}: suffix {suffix!r} must be lower case and start with '.'")


_REGISTRY: dict[str, Reader] = {}


def register_reader(reader: Reader, *, replace: bool = False) -> Reader:
    """Add a reader to the registry (``replace=True`` to overwrite one of the same name).

    A name, alias or suffix another reader already claims is refused, so a format is never
    read two ways depending on import order.
    """
    if reader.name in _REGISTRY and not replace:
        raise ValueError(f"a reader named {reader.name!r} is already registered (pass replace=True)")
    for other in _REGISTRY.values():
        if other.name == reader.name:
            continue
        clash = ({other.name, *other.aliases} & {reader.name, *reader.aliases}) | (set(other.suffixes) & set(reader.suffixes))
        if clash:
            raise ValueError(f"reader {reader.name!r} claims {sorted(clash)}, already claimed by reader {other.name!r}")
    _REGISTRY[reader.name] = reader
    return reader


def registered_readers() -> dict[str, Reader]:
    """The registered readers by name (a copy); formats not in it are read with :mod:`ase.io`."""
    return dict(_REGISTRY)


def _by_alias(name: str) -> Optional[Reader]:
    return next((r for r in _REGISTRY.values() if name == r.name or name in r.aliases), None)


def resolve_format(path: PathLike, format: Optional[str] = None) -> str:
    """The format name for ``path``: a registered reader's name or an :mod:`ase.io` format name.

    ``format`` may name a reader or one of its aliases (``"md17"``/``"sgdml"``/``"npz"``,
    ``"ani"``/``"hdf5"``/``"h5"``, ``"db"``/``"json"``) or any ASE format. Without it a registered
    suffix decides, then ASE's content sniffing.
    """
    from ase.io.formats import filetype, ioformats

    if format is not None:
        name = format.lower()
        reader = _by_alias(name)
        if reader is not None:
            return reader.name
        if name in ioformats:
            return name
        names = sorted(n for r in _REGISTRY.values() for n in (r.name, *r.aliases))
        raise ValueError(f"unknown format {format!r}: use one of {names} or an ase.io format name")
    name = Path(path).name.lower()
    stem = name
    for suffix in COMPRESSION_SUFFIXES:
        stem = stem.removesuffix(suffix)
    suffix = Path(stem).suffix
    if stem == name:
        reader = next((r for r in _REGISTRY.values() if suffix in r.suffixes), None)
        if reader is not None:
            return reader.name
    try:
        fmt = filetype(str(path), guess=True)
    except Exception as err:  # ASE raises several types for unknown content
        raise ValueError(f"cannot tell the format of {path} ({err}); pass format=...") from err
    reader = _by_alias(fmt)
    return reader.name if reader is not None else fmt


def checked_source(path: PathLike, labels: LabelSpec, format: Optional[str] = None) -> tuple[Path, str]:
    """The file to read and its format (:func:`resolve_format`), after checking that it exists
    and that ``labels`` is a :class:`~equiformer_lite.data.LabelSpec`."""
    check_label_spec(labels)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path, resolve_format(path, format)


def reader_for(fmt: str) -> Optional[Reader]:
    """The registered reader of a format name from :func:`resolve_format` (None: an ASE format)."""
    return _REGISTRY.get(fmt)


@dataclass(frozen=True)
class ReadSummary:
    """What was read from a file, and in which units it was read.

    Attributes
    ----------
    path, format : the file and the reader used (``"npz"``, ``"hdf5"``, ``"db"`` or an ASE format).
    num_structures : frames read.
    label_keys : label (``energy``/``forces``/``stress``/``atomic_energies``) -> name it had in
        the file, for the labels present.
    energy_unit, length_unit : units of the file; labels were converted to eV, Å, eV/Å, eV/Å³.
    energy_factor, length_factor : size of one file unit in eV and in Å.
    unit_source : why these units (given as argument, declared by the file, format default).
    """

    path: str
    format: str
    num_structures: int
    label_keys: dict[str, str] = field(default_factory=dict)
    energy_unit: str = "eV"
    length_unit: str = "Å"
    energy_factor: float = 1.0
    length_factor: float = 1.0
    unit_source: str = "ASE convention"

    def describe(self) -> str:
        """One line for the log: keys, units and conversions."""
        e, l_ = self.energy_unit, self.length_unit
        converted = {
            keys.ENERGY: f"{e} -> eV",
            keys.FORCES: f"{e}/{l_} -> eV/Å",
            keys.STRESS: f"{e}/{l_}^3 -> eV/Å^3",
            keys.ATOMIC_ENERGIES: f"{e} -> eV",
        }
        labels = ", ".join(f"{label} from '{key}' [{converted[label]}]" for label, key in self.label_keys.items())
        return (
            f"{self.path} ({self.format}): {self.num_structures} structures; "
            f"{labels or 'no labels'}; positions [{l_} -> Å]; "
            f"units: {self.unit_source} (1 {e} = {self.energy_factor:.10g} eV, 1 {l_} = {self.length_factor:.10g} Å)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (str, int, float, dict), safe for ``torch.load(weights_only=True)``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ReadSummary":
        return cls(**values)
