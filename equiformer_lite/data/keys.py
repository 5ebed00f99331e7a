"""Names of the fields of an atomic graph and of a model's outputs.

Every tensor the data pipeline builds or a model returns is stored under one of these keys.
Units follow ASE: energies in eV, lengths in Å, forces in eV/Å, stress in eV/Å³.
``B`` is the number of structures in a batch, ``N`` the number of atoms, ``E`` the number of
directed edges.
"""

# --- inputs -------------------------------------------------------------------------------------
POSITIONS = "pos"  # [N, 3] float, Cartesian positions, Å
ATOMIC_NUMBERS = "atomic_numbers"  # [N] long, chemical element Z
CELL = "cell"  # [B, 3, 3] float, lattice vectors as rows, Å (zeros for open systems)
PBC = "pbc"  # [B, 3] bool, periodic along each lattice vector
EDGE_INDEX = "edge_index"  # [2, E] long, (sender j, receiver i): the message flows j -> i
EDGE_CELL_SHIFT = "edge_cell_shift"  # [E, 3] float, integer lattice shift S: r_ij = r_j - r_i + S @ cell
GRAPH_CUTOFF = "graph_cutoff"  # [B] float, the cutoff the neighbour list was built with, Å
BATCH = "batch"  # [N] long, index of the structure each atom belongs to
NUM_ATOMS = "num_atoms"  # [B] long, atoms per structure

# --- labels (targets) and model outputs -----------------------------------------------------------
ENERGY = "energy"  # [B] float, total energy, eV
ATOMIC_ENERGIES = "atomic_energies"  # [N] float, per-atom energy contributions, eV
FORCES = "forces"  # [N, 3] float, conservative forces -dE/dr, eV/Å
STRESS = "stress"  # [B, 3, 3] float, (1/V) dE/d(strain), eV/Å³ (ASE sign: compressed -> negative)
STRESS_WEIGHT = "stress_weight"  # [B] float, 1 where the stress label is real, 0 where it is padding
VIRIAL = "virial"  # [B, 3, 3] float, -dE/d(strain), eV
DIRECT_FORCES = "direct_forces"  # [N, 3] float, NON-conservative forces of an optional l=1 head, eV/Å
