"""The one species table: symbols <-> atomic numbers <-> model index."""

import pytest
import torch

from equiformer_lite.data.species import check_elements, parse_species, species_index, species_table, symbols_of


def test_table_round_trip():
    species = parse_species(["O", 1, "C"])
    assert species == ["O", "H", "C"]
    table = species_table(species)
    assert table.shape == (119,) and table[8] == 0 and table[1] == 1 and table[6] == 2 and table[7] == -1
    z = torch.tensor([6, 1, 1, 8])
    assert species_index(z, table, species).tolist() == [2, 1, 1, 0]
    assert symbols_of([8, 1, 8, 6]) == ["H", "C", "O"]


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: parse_species([]), "non-empty list"),
        (lambda: parse_species("H"), "non-empty list"),
        (lambda: parse_species(["H", "Xx"]), "unknown element symbol 'Xx'"),
        (lambda: parse_species(["X"]), "unknown element symbol 'X'"),
        (lambda: parse_species([0]), "neither an element symbol nor an atomic number"),
        (lambda: parse_species(["H", 1]), "lists an element twice"),
        (lambda: species_index(torch.tensor([1, 0]), species_table(["H"]), ["H"]), r"invalid atomic numbers \[0, 1\]"),
        (lambda: species_index(torch.tensor([1, 7, 6]), species_table(["H"]), ["H"]), r"\['C', 'N'\] not among the model's species \['H'\]"),
        (lambda: check_elements(torch.tensor([1, 6]), ["H"], "x.xyz, frame 3"), r"x.xyz, frame 3: element\(s\) \['C'\] not in species \['H'\]"),
    ],
)
def test_errors_name_the_bad_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()
