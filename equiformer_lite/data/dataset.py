"""Training data sets of atomic graphs, cached on disk, and train/val/test splits."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import operator
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms
from torch.utils.data import Dataset
from torch_geometric.data import Data
from torch_geometric.data.collate import collate
from torch_geometric.data.separate import separate

from ..utils import atomic_save
from . import keys
from .graph import atoms_to_graph, check_in_memory_labels, pad_missing_stress
from .labels import DEFAULT_LABELS, LabelSpec
from .readers import ReadSummary, read_structures_with_summary, validate_structures
from .readers.base import checked_source
from .species import check_elements, symbols_of

__all__ = [
    "AtomicDataset",
    "default_cache_dir",
    "split_indices",
    "load_split_indices",
    "CACHE_DIR_ENV",
    "CACHE_FORMAT_VERSION",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
CACHE_DIR_ENV = "EQUIFORMER_CACHE_DIR"
CACHE_FORMAT_VERSION = 2  # bump when the graphs or the cache layout change (2: per-atom energies)
SPLITS = ("train", "val", "test")


def default_cache_dir() -> Path:
    """``$EQUIFORMER_CACHE_DIR`` if set, else ``~/.cache/equiformer_lite/graphs`` (read at each call)."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "equiformer_lite" / "graphs"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class AtomicDataset(Dataset):
    r"""Atomic graphs (:class:`torch_geometric.data.Data`, float64) for training.

    Each item is the graph of one structure as built by
    :func:`~equiformer_lite.data.atoms_to_graph`: positions, cell, neighbour list at
    :attr:`cutoff`, and the labels ``energy [1]`` (eV), ``forces [N, 3]`` (eV/Å),
    ``stress [1, 3, 3]`` (eV/Å³) and ``atomic_energies [N]`` (eV, from ASE's per-atom
    ``energies``) when present. Graphs are stored in float64; the model casts.
    Every graph has the same fields: when only some structures have a stress label (molecules
    next to crystals), the others get a zero stress and all a ``stress_weight`` of 1 or 0
    (:func:`~equiformer_lite.data.graph.pad_missing_stress`), for the loss to mask.
    Batch with :class:`torch_geometric.loader.DataLoader`.

    Build one with :meth:`from_file` (cached on disk) or :meth:`from_structures`.

    Parameters
    ----------
    graphs : graphs sharing their fields and cutoff.
    summary : where the graphs were read from and in which units, when from a file.

    >>> from ase.build import molecule
    >>> from torch_geometric.loader import DataLoader
    >>> water = molecule("H2O")
    >>> water.info["energy"] = -14.2
    >>> ds = AtomicDataset.from_structures([water, water.copy()], cutoff=3.0)
    >>> next(iter(DataLoader(ds, batch_size=2))).energy
    tensor([-14.2000, -14.2000], dtype=torch.float64)
    """

    def __init__(self, graphs: Iterable[Data], *, summary: Optional[ReadSummary] = None) -> None:
        super().__init__()
        graphs = list(graphs)
        for i, graph in enumerate(graphs):
            if not isinstance(graph, Data):
                raise TypeError(f"graph {i} is a {type(graph).__name__}, expected torch_geometric.data.Data")
        if graphs:
            fields = sorted(graphs[0].keys())
            cutoff = float(graphs[0][keys.GRAPH_CUTOFF])
            for i, graph in enumerate(graphs):
                if sorted(graph.keys()) != fields:
                    raise ValueError(
                        f"graph {i} has fields {sorted(graph.keys())} but graph 0 has {fields}: "
                        "every graph needs the same labels"
                    )
                if float(graph[keys.GRAPH_CUTOFF]) != cutoff:
                    other = float(graph[keys.GRAPH_CUTOFF])
                    raise ValueError(f"graph {i} was built with cutoff {other} Å, graph 0 with {cutoff} Å")
        self._graphs = graphs
        self.summary = summary

    # --- construction -------------------------------------------------------------------------------

    @classmethod
    def from_structures(
        cls,
        structures: Iterable[Atoms],
        cutoff: float,
        labels: LabelSpec = DEFAULT_LABELS,
        *,
        species: Optional[Sequence[str]] = None,
        summary: Optional[ReadSummary] = None,
        source: str = "structures",
    ) -> "AtomicDataset":
        """Graphs of in-memory structures, labels read under the keys of ``labels`` in eV units.

        Parameters
        ----------
        structures : the structures; they are not modified.
        cutoff : neighbour-list radius, Å.
        labels : where the labels are (``atoms.info``, ``atoms.arrays`` or a single-point
            calculator) and which every structure must have; a spec with units is refused.
        species : if given, elements outside it are an error.
        summary : provenance to keep with the data set (set by :meth:`from_file`).
        source : name used in error messages.

        The structures are validated as by :func:`~equiformer_lite.data.validate_structures`
        (errors name ``source`` and the frame index). No unit conversion is done here: labels
        must already be in eV, eV/Å, eV/Å³; use :func:`~equiformer_lite.data.read_structures`
        for files in other units.
        """
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        check_in_memory_labels(labels)
        structures = list(structures)
        if not structures:
            raise ValueError(f"{source}: no structures given")
        validate_structures(structures, labels, species=species, source=source)
        graphs = []
        for i, atoms in enumerate(structures):
            try:
                graphs.append(atoms_to_graph(atoms, cutoff, dtype=torch.float64, labels=labels))
            except ValueError as err:
                raise ValueError(f"{source}, frame {i}: {err}") from err
        pad_missing_stress(graphs)
        return cls(graphs, summary=summary)

    @classmethod
    def from_file(
        cls,
        path: PathLike,
        cutoff: float,
        labels: LabelSpec = DEFAULT_LABELS,
        *,
        format: Optional[str] = None,
        species: Optional[Sequence[str]] = None,
        cache_dir: Optional[PathLike] = None,
        use_cache: bool = True,
    ) -> "AtomicDataset":
        """Read a file (see :func:`~equiformer_lite.data.read_structures`) and build its graphs, cached.

        The processed graphs are saved under ``cache_dir`` (default :func:`default_cache_dir`)
        in a file keyed on the sha256 of the file's bytes, the cutoff, format, ``labels`` (keys,
        units, required labels), the package version and :data:`CACHE_FORMAT_VERSION`; a second
        call with the same inputs loads it instead of reading and rebuilding, and any change to
        the file's content makes a new one. The cache holds tensors, strings and numbers only and
        is loaded with ``torch.load(weights_only=True)``; it is written to a temporary file and
        renamed, so an interrupted run never leaves half a cache. An unreadable cache file is
        rebuilt; an unwritable cache directory only costs a warning.

        Parameters are those of :func:`read_structures` plus the ``cutoff`` (Å) of the
        neighbour list, ``cache_dir`` and ``use_cache``.
        """
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        path, fmt = checked_source(path, labels, format)
        cache_file = key = None
        if use_cache:
            key = _cache_key(path, cutoff, fmt, labels)
            digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
            directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            cache_file = directory / f"{path.name}-{digest[:32]}.pt"
            dataset = _load_cache(cache_file, key)
            if dataset is not None:
                logger.info("loaded %d graphs from the cache %s", len(dataset), cache_file)
                if dataset.summary is not None:
                    logger.info("cached %s", dataset.summary.describe())
                if species is not None:
                    dataset._check_species(species, str(path))
                return dataset
        structures, summary = read_structures_with_summary(path, labels, format=fmt, species=species)
        # Labels are now in eV units under the standard keys.
        standard = LabelSpec(require=labels.require)
        dataset = cls.from_structures(structures, cutoff, standard, summary=summary, source=str(path))
        if cache_file is not None:
            _save_cache(cache_file, key, dataset)
        return dataset

    @classmethod
    def concatenate(cls, datasets: Sequence["AtomicDataset"]) -> "AtomicDataset":
        """One data set of the graphs of several, in order (same cutoff and labels; stress is padded).

        The graphs are shallow copies, so padding a missing stress leaves the inputs unchanged.
        The result has no single :attr:`summary`; the inputs keep theirs.
        """
        datasets = list(datasets)
        if not datasets:
            raise ValueError("no data sets given")
        graphs = [copy.copy(graph) for dataset in datasets for graph in dataset.graphs]
        pad_missing_stress(graphs)
        if any(keys.STRESS_WEIGHT in graph for graph in graphs):
            # A padded data set next to one whose stress is all real: the real ones get weight 1.
            for graph in graphs:
                if keys.STRESS_WEIGHT not in graph:
                    graph[keys.STRESS_WEIGHT] = torch.ones(1, dtype=graph[keys.POSITIONS].dtype)
        return cls(graphs)

    # --- access -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._graphs)

    def __getitem__(self, index: int) -> Data:
        # A shallow copy, as InMemoryDataset does: setting attributes on an item leaves the data set alone.
        return copy.copy(self._graphs[operator.index(index)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} graphs, cutoff={self.cutoff})"

    @property
    def graphs(self) -> list[Data]:
        """The stored graphs themselves (not copies)."""
        return self._graphs

    @property
    def species(self) -> list[str]:
        """Element symbols present, by atomic number."""
        if not self._graphs:
            return []
        return symbols_of(torch.cat([graph[keys.ATOMIC_NUMBERS] for graph in self._graphs]).tolist())

    @property
    def cutoff(self) -> Optional[float]:
        """Neighbour-list cutoff of the graphs, Å (None when empty)."""
        return float(self._graphs[0][keys.GRAPH_CUTOFF]) if self._graphs else None

    def subset(self, indices: Union[Sequence[int], np.ndarray, torch.Tensor]) -> "AtomicDataset":
        """The data set of the graphs at ``indices`` (shared, not copied), in that order."""
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be a 1-D array of integers, got shape {idx.shape} and dtype {idx.dtype}")
        bad = idx[(idx < 0) | (idx >= len(self))]
        if bad.size:
            raise ValueError(f"indices {bad[:10].tolist()} out of range for a data set of {len(self)} structures")
        return type(self)([self._graphs[i] for i in idx], summary=self.summary)

    def _check_species(self, species: Sequence[str], source: str) -> None:
        for i, graph in enumerate(self._graphs):
            check_elements(graph[keys.ATOMIC_NUMBERS], species, f"{source}, frame {i}")


# --- cache ------------------------------------------------------------------------------------------


def _cache_key(path: Path, cutoff: float, fmt: str, labels: LabelSpec) -> dict[str, Any]:
    from .. import __version__

    return {
        "cache_format": CACHE_FORMAT_VERSION,
        "package_version": __version__,
        "sha256": _sha256(path),
        "cutoff": float(cutoff),
        "format": fmt,
        **labels.to_dict(),
        "dtype": "float64",
    }


def _load_cache(cache_file: Path, key: dict[str, Any]) -> Optional[AtomicDataset]:
    if not cache_file.is_file():
        return None
    try:
        payload = torch.load(cache_file, weights_only=True)
        if payload["key"] != key:  # a truncated-digest collision or a hand-edited file
            logger.warning("cache file %s belongs to other inputs; rebuilding", cache_file)
            return None
        batch = Data.from_dict(payload["data"])
        graphs = [
            separate(Data, batch=batch, idx=i, slice_dict=payload["slices"], decrement=False)
            for i in range(payload["num_graphs"])
        ]
        summary = ReadSummary.from_dict(payload["summary"]) if payload["summary"] is not None else None
    except Exception as err:  # any unreadable cache (truncated, old layout, foreign file) is rebuilt
        logger.warning("ignoring unreadable cache file %s (%s: %s); rebuilding", cache_file, type(err).__name__, err)
        return None
    return AtomicDataset(graphs, summary=summary)


def _save_cache(cache_file: Path, key: dict[str, Any], dataset: AtomicDataset) -> None:
    # Concatenated tensors plus slice offsets (PyG's InMemoryDataset layout), edge indices local.
    batch, slices, _ = collate(Data, data_list=dataset._graphs, increment=False, add_batch=False)
    payload = {
        "key": key,
        "num_graphs": len(dataset),
        "data": batch.to_dict(),
        "slices": slices,
        "summary": dataset.summary.to_dict() if dataset.summary is not None else None,
    }
    try:
        atomic_save(payload, cache_file)  # readers see the old file or the whole new one
        logger.info("cached %d graphs in %s", len(dataset), cache_file)
    except OSError as err:
        logger.warning("could not write the cache %s (%s); continuing without it", cache_file, err)


# --- splits -----------------------------------------------------------------------------------------


def split_indices(
    n: int, *, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> dict[str, np.ndarray]:
    """Random, disjoint train/val/test indices covering ``range(n)``, reproducible from ``seed``.

    Sizes are ``round(n * fraction)`` for val and test, the rest for train (at least one). The
    test set is drawn first from the permutation, so for a given seed and ``test_fraction`` it
    stays the same when ``val_fraction`` changes. Each array is sorted, int64.

    >>> {k: v.tolist() for k, v in split_indices(5, val_fraction=0.2, test_fraction=0.2).items()}
    {'train': [0, 1, 3], 'val': [4], 'test': [2]}
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    for name, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {fraction}")
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    if n - n_val - n_test < 1:
        raise ValueError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) leave no training structures out of {n}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return {
        "train": np.sort(perm[n_test + n_val :]),
        "val": np.sort(perm[n_test : n_test + n_val]),
        "test": np.sort(perm[:n_test]),
    }


def _index_array(name: str, where: str, values: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"{where}: split '{name}' must be a 1-D array of integers, "
            f"got shape {values.shape} and dtype {values.dtype}"
        )
    return values.astype(np.int64)


def _load_index_file(name: str, path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return _index_array(name, str(path), np.load(path, allow_pickle=False))
    # Whitespace/newline separated, '#' comments; rows may differ in length (np.loadtxt refuses that).
    tokens = [tok for line in path.read_text().splitlines() for tok in line.split("#", 1)[0].split()]
    try:
        return np.array([int(tok) for tok in tokens], dtype=np.int64)
    except ValueError as err:
        raise ValueError(f"{path}: split '{name}' is not a list of integer indices ({err})") from err


def load_split_indices(
    path: Union[PathLike, Mapping[str, Union[PathLike, Sequence[int], np.ndarray]]],
    *,
    num_structures: Optional[int] = None,
) -> dict[str, np.ndarray]:
    """Load given train/val/test indices and validate them.

    Parameters
    ----------
    path : one of
        * a ``.npz`` file with arrays named ``train`` and optionally ``val``, ``test``;
        * a ``.json`` file ``{"train": [...], "val": [...], "test": [...]}``;
        * a directory holding ``train`` and optionally ``val``, ``test`` as ``.npy`` or ``.txt``;
        * a mapping from those names to a ``.npy`` file, a text file or an array.
        Text files hold integers separated by whitespace or newlines, with ``#`` comments.
    num_structures : size of the data set the indices point into; every index must be below it.

    Returns
    -------
    dict with int64 arrays ``train``, ``val`` and ``test`` (empty when not given), 0-based.

    Raises
    ------
    ValueError for unknown split names, a missing ``train``, non-integer or non-1-D indices,
    negative or out-of-range indices, duplicates within a split and indices shared by two splits.
    """
    where = "split indices" if isinstance(path, Mapping) else str(path)
    raw = _read_splits(path)
    unknown = sorted(set(raw) - set(SPLITS))
    if unknown:
        raise ValueError(f"{where}: unknown split name(s) {unknown}; expected {list(SPLITS)}")
    if "train" not in raw:
        raise ValueError(f"{where}: no 'train' indices (found {sorted(raw)})")
    splits = {name: _index_array(name, where, raw.get(name, [])) for name in SPLITS}
    upper = num_structures if num_structures is not None else np.iinfo(np.int64).max
    for name, idx in splits.items():
        bad = idx[(idx < 0) | (idx >= upper)]
        if bad.size:
            bound = f"0..{num_structures - 1}" if num_structures is not None else "non-negative"
            raise ValueError(f"{where}: split '{name}' has indices {bad[:10].tolist()} outside {bound}")
        values, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"{where}: split '{name}' repeats indices {values[counts > 1][:10].tolist()}")
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            shared = np.intersect1d(splits[a], splits[b])
            if shared.size:
                raise ValueError(f"{where}: splits '{a}' and '{b}' share indices {shared[:10].tolist()}")
    return splits


def _read_splits(path: Union[PathLike, Mapping[str, Any]]) -> dict[str, Any]:
    """The raw split arrays or lists by name, before validation."""
    if isinstance(path, Mapping):
        return {
            name: _load_index_file(name, Path(value)) if isinstance(value, (str, Path)) else value
            for name, value in path.items()
        }
    path = Path(path)
    if path.is_dir():
        found = {}
        for name in SPLITS:
            files = [path / f"{name}{suffix}" for suffix in (".npy", ".txt") if (path / f"{name}{suffix}").is_file()]
            if len(files) > 1:
                raise ValueError(f"{path}: both {files[0].name} and {files[1].name}; keep one")
            if files:
                found[name] = _load_index_file(name, files[0])
        return found
    if not path.is_file():
        raise FileNotFoundError(f"no such split file or directory: {path}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    if path.suffix == ".json":
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object {{\"train\": [...], ...}}, got {type(values).__name__}")
        return values
    raise ValueError(
        f"{path}: give a .npz or .json with train/val/test, a directory of train/val/test .npy or .txt "
        "files, or a dict {'train': file, 'val': file, ...}"
    )
