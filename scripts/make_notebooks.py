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
import matplotlib
matplotlib.use("Agg")
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

NOTEBOOKS = {"01_se3potential_tour.ipynb": TOUR, "02_quickstart_training.ipynb": QUICKSTART}


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
