"""Write the tutorial notebooks in notebooks/ from the cells below (run from the repo root).

Keeping the source here makes the notebook diff-able; the tests execute the .ipynb itself.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TOUR = [
    ("md", """# A tour of `SE3Potential`

`SE3Potential` is an SE(3)-Transformer interatomic potential built from e3nn parts. This notebook
builds one, evaluates a molecule and a crystal through the ASE calculator, then measures how
equivariant each layer is (the relative error $\\Delta_{EQ}$ of the SE(3)-Transformer thesis,
eq. 3.1) in float64 and float32, and checks that energy and forces stay continuous when a
neighbour crosses the cutoff. The model is untrained: everything shown here holds for any weights."""),
    ("code", """import numpy as np
import torch
import matplotlib.pyplot as plt
from ase import Atoms
from ase.build import bulk, molecule

from equiformer_lite import SE3Potential, atoms_to_graph
from equiformer_lite.testing import model_equivariance_errors, se3_layerwise_errors

torch.manual_seed(0)
model = SE3Potential(species=["H", "C", "O"], cutoff=5.0, lmax=2, channels=8, num_heads=2, num_layers=2)
print(model.irreps_hidden, "|", sum(p.numel() for p in model.parameters()), "parameters")"""),
    ("md", "## A molecule and a crystal through ASE"),
    ("code", """ethanol = molecule("CH3CH2OH")
ethanol.rattle(0.05, seed=1)
ethanol.calc = model.as_calculator()
print("ethanol energy (eV):", round(ethanol.get_potential_energy(), 6))
print("per-atom energies sum to it:", np.isclose(ethanol.get_potential_energies().sum(), ethanol.get_potential_energy()))
print("net force (eV/Å):", np.abs(ethanol.get_forces().sum(axis=0)).max())

diamond = bulk("C", "diamond", a=3.57)
diamond.rattle(0.05, seed=2)
diamond.calc = model.as_calculator()
print("diamond energy (eV):", round(diamond.get_potential_energy(), 6))
print("diamond stress (eV/Å³, Voigt):", np.round(diamond.get_stress(), 6))"""),
    ("md", """## Equivariance, layer by layer

Each stage of the model is evaluated on randomly rotated, reflected and translated inputs (cell
included) and compared with the rotated output: $\\Delta_{EQ} = \\lVert L\\Phi(f) - \\Phi L(f)\\rVert_2 / \\lVert L\\Phi(f)\\rVert_2$."""),
    ("code", """rows = {}
for dtype in (torch.float64, torch.float32):
    m = model.to(dtype)
    for name, atoms in (("ethanol", ethanol), ("diamond", diamond)):
        graph = atoms_to_graph(atoms, m.cutoff, dtype=dtype, with_labels=False)
        errors = se3_layerwise_errors(m, graph)
        errors.update({f"model {k}": v for k, v in model_equivariance_errors(m, graph).items()})
        rows[(name, str(dtype).split(".")[-1])] = errors
model.to(torch.float32)

columns = list(rows)
print(f"{'stage':<26}" + "".join(f"{a + ' ' + b:>20}" for a, b in columns))
for stage in rows[columns[-1]]:
    print(f"{stage:<26}" + "".join(f"{rows[c].get(stage, float('nan')):>20.1e}" for c in columns))"""),
    ("code", """stages = list(rows[("diamond", "float64")])
fig, ax = plt.subplots(figsize=(8, 3.5))
for offset, dtype in ((-0.2, "float64"), (0.2, "float32")):
    values = [max(rows[("diamond", dtype)][s], 1e-18) for s in stages]
    ax.bar(np.arange(len(stages)) + offset, values, width=0.4, label=dtype)
ax.set_yscale("log"); ax.set_ylabel(r"$\\Delta_{EQ}$"); ax.set_xticks(range(len(stages)))
ax.set_xticklabels(stages, rotation=60, ha="right"); ax.legend(); ax.set_title("diamond: equivariance error per stage")
fig.tight_layout()
assert max(rows[("diamond", "float64")].values()) < 1e-11 and max(rows[("diamond", "float32")].values()) < 1e-5"""),
    ("md", """## Smooth at the cutoff

One neighbour stays inside; a second is swept across the cutoff. The attention weights put the
cutoff envelope inside the softmax normalisation, so energy and force fall to their
no-neighbour values continuously."""),
    ("code", """m = model.to(torch.float64)
direction = np.array([-0.48, 0.6, 0.64]); direction /= np.linalg.norm(direction)
radii = np.linspace(4.0, 5.5, 151)
energies, forces = [], []
for r in radii:
    atoms = Atoms("OHH", positions=[[0, 0, 0], [1.0, 0, 0], r * direction])
    atoms.calc = m.as_calculator()
    energies.append(atoms.get_potential_energy()); forces.append(atoms.get_forces()[2] @ direction)
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].plot(radii, energies); axes[0].set_xlabel("r (Å)"); axes[0].set_ylabel("E (eV)")
axes[1].plot(radii, forces); axes[1].set_xlabel("r (Å)"); axes[1].set_ylabel("radial force on atom 2 (eV/Å)")
for ax in axes: ax.axvline(m.cutoff, color="k", ls=":")
fig.tight_layout()
beyond = radii > m.cutoff
print("energy spread beyond the cutoff:", np.ptp(np.array(energies)[beyond]))
print("largest |force| beyond the cutoff:", np.abs(np.array(forces)[beyond]).max())"""),
]


QUICKSTART = [
    ("md", """# Quickstart: train, inspect, simulate

Train an `SE3Potential` on the bundled GFN2-xTB data (ethanol molecular dynamics and a periodic
water box, see `data_cards/`), look at the parity plots, reload the saved model and run a few
steps of molecular dynamics with its ASE calculator. The budget here is tiny so the notebook
runs in under a minute; `equiformer-lite train` runs the full default job (`configs/se3.yaml`)."""),
    ("code", """import json
import tempfile
from pathlib import Path

import numpy as np
from IPython.display import Image, display

from equiformer_lite import load_model
from equiformer_lite.train import RunConfig, train_from_config

out = Path(tempfile.mkdtemp()) / "quickstart"
config = RunConfig.from_dict({
    "model": {"type": "se3", "cutoff": 4.0, "lmax": 1, "channels": 4, "num_heads": 2, "num_layers": 1},
    "data": {"path": ["bundled:ethanol", "bundled:water_box"], "max_structures": 80},
    "training": {"epochs": 3, "batch_size": 8, "lr": 1e-2, "progress": False},
    "output_dir": str(out),
})
results = train_from_config(config)
print(json.dumps(results["test"], indent=1))"""),
    ("md", "The run leaves the model, the metrics, a CSV log and plots in its output directory:"),
    ("code", """print(sorted(p.name for p in out.iterdir()))
for name in ("learning_curve.png", "parity_energy.png", "parity_forces.png"):
    display(Image(filename=str(out / name)))"""),
    ("md", "## Reload the model and run molecular dynamics with it"),
    ("code", """from ase import units
from ase.io import read
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from equiformer_lite.train import resolve_data_paths

model = load_model(out / "model.pt")
atoms = read(resolve_data_paths("bundled:ethanol")[0], index=0)
atoms.calc = model.as_calculator()
MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
energies = []
dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
dyn.run(40)
print(f"total energy drift over 20 fs: {np.ptp(energies):.2e} eV (kinetic energy {atoms.get_kinetic_energy():.3f} eV)")"""),
]


GATV2 = [
    ("md", """# `GATv2Potential`: train it, look at its attention, compare it with `SE3Potential`

`GATv2Potential` is the sparse GATv2 ("JAT") potential of the JAT thesis ported to torch-geometric:
invariant features, dynamic attention over the neighbours within the cutoff with the distance in the
attention logits, skip connections and layer norm, and the pyramidal readout. This notebook trains it
and `SE3Potential` on the same bundled GFN2-xTB data with the same budget, compares accuracy and
speed, and shows which neighbours each attention head of the trained model attends to.

`BUDGET` sets the number of structures and epochs. The default is small, so the notebook runs in about
a minute (the test suite executes it); the closing table of `README.md` has the same comparison at the
default job's budget (`configs/se3.yaml` against `configs/gatv2.yaml`, 1,200 structures, 20 epochs)."""),
    ("code", """import json
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from ase.io import read

from equiformer_lite import atoms_to_graph, load_model
from equiformer_lite.train import RunConfig, resolve_data_paths, train_from_config

BUDGET = {"max_structures": 160, "epochs": 3}
MODELS = {
    "gatv2": {"type": "gatv2", "cutoff": 5.0, "channels": 48, "num_heads": 4, "num_layers": 4},
    "se3": {"type": "se3", "cutoff": 5.0, "lmax": 2, "channels": 8, "num_heads": 2, "num_layers": 2},
}
root = Path(tempfile.mkdtemp())
results, seconds = {}, {}
for name, model_config in MODELS.items():
    config = RunConfig.from_dict({
        "model": model_config,
        "data": {"path": ["bundled:ethanol", "bundled:water_box"], "max_structures": BUDGET["max_structures"]},
        "training": {"epochs": BUDGET["epochs"], "batch_size": 8, "lr": 5e-3, "progress": False},
        "output_dir": str(root / name),
    })
    start = time.perf_counter()
    results[name] = train_from_config(config)
    seconds[name] = time.perf_counter() - start"""),
    ("md", """## Accuracy and speed on the same data and budget

Test-set errors of the best (EMA) model of each run; speed as training throughput and as the time of
one energy + forces evaluation of a 192-atom periodic water box (float32, this machine). With the
notebook's small budget the errors are far from converged; compare them only with each other."""),
    ("code", """water = read(resolve_data_paths("bundled:water_box")[0], index=0) * (2, 2, 2)

def evaluation_time(model, atoms, repeats=2):
    graph = atoms_to_graph(atoms, model.cutoff, dtype=model.dtype, with_labels=False)
    model(graph, compute_stress=False)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        model(graph, compute_stress=False)
    return (time.perf_counter() - start) / repeats

rows = []
for name in MODELS:
    model = load_model(root / name / "model.pt")
    test = results[name]["test"]
    rows.append((name, sum(p.numel() for p in model.parameters()), seconds[name], results[name]["train_structures_per_s"],
                 1000 * test["energy_per_atom_mae"], test["forces_mae"], evaluation_time(model, water)))
print(f"{'model':>6} {'params':>7} {'train s':>8} {'struct/s':>9} {'E meV/atom':>11} {'F eV/Å':>8} {'192 atoms E+F s':>16}")
for row in rows:
    print(f"{row[0]:>6} {row[1]:>7} {row[2]:>8.1f} {row[3]:>9.1f} {row[4]:>11.2f} {row[5]:>8.4f} {row[6]:>16.3f}")"""),
    ("md", """## Which neighbours does each head attend to?

`model.attention_weights(graph)` returns the edge list and, per layer, the weights
$\\alpha^h_{ij}$ of every edge $j \\to i$ and head $h$: for each atom $i$ and head they lie in
$[0, 1]$ and sum to one over $i$'s neighbours (the cutoff envelope is folded into the softmax, so a
neighbour near the cutoff fades in smoothly). Below, row $i$ of each matrix is how atom $i$ spreads
its attention over the other atoms of an ethanol frame, for every head of the first and last layer."""),
    ("code", """model = load_model(root / "gatv2" / "model.pt")
ethanol = read(resolve_data_paths("bundled:ethanol")[0], index=0)
graph = atoms_to_graph(ethanol, model.cutoff, dtype=model.dtype, with_labels=False)
edge_index, attention = model.attention_weights(graph)
labels = [f"{s}{i}" for i, s in enumerate(ethanol.get_chemical_symbols())]
n, heads = len(ethanol), attention[0].shape[1]
layers = [0, len(attention) - 1]
fig, axes = plt.subplots(len(layers), heads, figsize=(3.2 * heads, 3.2 * len(layers)), squeeze=False)
for row, layer in enumerate(layers):
    for head in range(heads):
        matrix = np.full((n, n), np.nan)
        sender, receiver = edge_index.numpy()
        matrix[receiver, sender] = attention[layer][:, head].numpy()
        ax = axes[row, head]
        image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7); ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=9)
fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight (row: receiver, column: sender)")
for layer, alpha in enumerate(attention):
    sums = torch.zeros(n, heads, dtype=alpha.dtype).index_add_(0, edge_index[1], alpha)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
print("every row of every head sums to one")"""),
    ("md", """For each atom, the neighbour it weights most in each head of the last layer (the heads can learn
different preferences, e.g. the bonded partner versus the farther atoms):"""),
    ("code", """last = attention[-1]
for i in range(n):
    incoming = (edge_index[1] == i).nonzero().flatten()
    picks = [labels[int(edge_index[0, incoming[last[incoming, h].argmax()]])] for h in range(heads)]
    print(f"{labels[i]:>4}: " + "  ".join(f"head {h + 1} -> {p:<4}" for h, p in enumerate(picks)))"""),
]

NOTEBOOKS = {
    "01_se3potential_tour.ipynb": TOUR,
    "02_quickstart_training.ipynb": QUICKSTART,
    "03_gatv2_attention.ipynb": GATV2,
}


def main() -> None:
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook()
        nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / name)
        print(f"wrote {folder / name}")


if __name__ == "__main__":
    main()
