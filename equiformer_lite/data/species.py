"""The species table, in one place: element symbol <-> atomic number Z <-> index into a model's
``species`` list. Models, the exported artefact, the data statistics, the readers and the data sets
all map elements through these functions.
"""

from __future__ import annotations

from typing import Iterable, Sequence, Union

import torch
from ase.data import atomic_numbers as symbol_to_z
from ase.data import chemical_symbols

__all__ = ["parse_species", "species_table", "species_index", "symbols_of", "check_elements", "NUM_ELEMENTS"]

NUM_ELEMENTS = len(chemical_symbols)  # 119: index 0 is ASE's placeholder "X", then Z = 1..118


def parse_species(species: Sequence[Union[str, int]]) -> list[str]:
    """Element symbols from symbols or atomic numbers; rejects unknown and repeated elements."""
    if isinstance(species, (str, int)) or len(species) == 0:
        raise ValueError(f"species must be a non-empty list of elements, got {species!r}")
    symbols = []
    for s in species:
        if isinstance(s, str):
            if s not in symbol_to_z or s == "X":
                raise ValueError(f"unknown element symbol {s!r} in species")
            symbols.append(s)
        elif isinstance(s, int) and 0 < s < NUM_ELEMENTS:
            symbols.append(chemical_symbols[s])
        else:
            raise ValueError(f"species entry {s!r} is neither an element symbol nor an atomic number 1..118")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"species lists an element twice: {symbols}")
    return symbols


def species_table(species: Sequence[str]) -> torch.Tensor:
    """``[119]`` atomic number -> index into ``species`` (-1 for other elements)."""
    table = torch.full((NUM_ELEMENTS,), -1, dtype=torch.long)
    for i, s in enumerate(parse_species(species)):
        table[symbol_to_z[s]] = i
    return table


def symbols_of(atomic_numbers: Iterable[int]) -> list[str]:
    """The sorted distinct element symbols of some atomic numbers."""
    return [chemical_symbols[z] for z in sorted({int(z) for z in atomic_numbers})]


def species_index(atomic_numbers: torch.Tensor, table: torch.Tensor, species: Sequence[str]) -> torch.Tensor:
    """``[N]`` atomic numbers -> ``[N]`` index into ``species`` through ``table``
    (:func:`species_table`); invalid numbers and elements not in ``species`` raise ``ValueError``."""
    if (atomic_numbers <= 0).any() or (atomic_numbers >= NUM_ELEMENTS).any():
        raise ValueError(f"invalid atomic numbers {atomic_numbers.unique().tolist()}")
    index = table.to(atomic_numbers.device)[atomic_numbers]
    if (index < 0).any():
        raise ValueError(f"element(s) {symbols_of(atomic_numbers[index < 0].tolist())} not among the model's species {list(species)}")
    return index


def check_elements(atomic_numbers: torch.Tensor, species: Sequence[str], where: str) -> None:
    """``ValueError`` naming ``where`` (a file and frame) when ``atomic_numbers`` hold an element
    outside ``species``."""
    table = species_table(species)
    index = table[atomic_numbers]
    if (index < 0).any():
        raise ValueError(f"{where}: element(s) {symbols_of(atomic_numbers[index < 0].tolist())} not in species {list(species)}")
