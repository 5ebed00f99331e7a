"""``torch.compile`` of every model for inference: one graph (fullgraph) with the autograd of forces
and stress in it, the eager outputs, no recompilation for new sizes."""

import pytest
import torch
from ase.build import molecule

from equiformer_lite import atoms_to_batch, atoms_to_graph, keys
from equiformer_lite.models import CompiledPotential
from tests.conftest import CUTOFF, diamond, ethanol, small_potential, water_box
from tests.models.test_a2i_potential import small_a2i

MODELS = {
    "gatv2": lambda: small_potential("gatv2"),
    # correlation 3 runs the power spectrum's code and the bispectrum's
    "gatv2-angular": lambda: small_potential("gatv2", angular_lmax=2, angular_correlation=3),
    "a2i": lambda: small_a2i(torch.float64, species=["H", "C", "O"], atomic_energies=None),
    "se3": lambda: small_potential("se3", num_layers=1),
    # Eager it recomputes the layers in the backward; compiled it must trace them plainly
    # (inductor refused the several recomputed regions with an error before).
    "se3-recompute": lambda: small_potential("se3", num_layers=2, recompute_layers=True),
}


@pytest.mark.parametrize("kind", [
    "gatv2", "gatv2-angular", "a2i",
    pytest.param("se3", marks=pytest.mark.slow),  # e3nn's products take minutes to compile on 2 cores
    pytest.param("se3-recompute", marks=pytest.mark.slow),
])
def test_compiled_equals_eager_without_recompiling(kind):
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()  # reset() keeps the counts of the tests before
    model = MODELS[kind]()
    compiled = CompiledPotential(model)
    structures = [ethanol(), molecule("CH3CH2OCH3"), molecule("H2O")]  # different atoms and edges
    for atoms in structures + [water_box(), diamond().repeat((2, 1, 1))]:
        graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64, with_labels=False)
        eager, fast = model(graph), compiled(graph)
        for key in (keys.ENERGY, keys.FORCES) + ((keys.STRESS,) if atoms.pbc.all() else ()):
            assert torch.allclose(eager[key], fast[key], rtol=1e-10, atol=1e-12), key
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    print(f"{kind}: {frames} graphs for 5 structures of different sizes, open and periodic")
    # One graph each for open structures (no stress) and periodic ones; A2I's Python-int padded
    # size (max_atoms) is specialised once, then traced as a symbol (torch's automatic dynamic).
    assert frames <= (2 if kind != "a2i" else 4)
    for atoms in (molecule("C6H6"), molecule("CH3COOH"), water_box().repeat((1, 2, 1))):
        graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64, with_labels=False)
        assert torch.allclose(model(graph)[keys.FORCES], compiled(graph)[keys.FORCES], rtol=1e-10, atol=1e-12)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == frames, "new sizes recompiled"


@pytest.mark.slow  # compiling the double backward takes minutes on 2 cores
def test_compiled_training_step_has_the_eager_gradients():
    """A force loss differentiated through the compiled graph (double backward), stress included."""
    torch._dynamo.reset()
    model = small_potential("gatv2").train()
    compiled = CompiledPotential(model)
    batch = atoms_to_batch([ethanol(), water_box(), diamond()], CUTOFF, dtype=torch.float64)
    params = list(model.parameters())

    def gradients(potential):
        out = potential(batch)
        loss = out[keys.ENERGY].square().sum() + out[keys.FORCES].square().sum() + out[keys.STRESS].square().sum()
        return torch.autograd.grad(loss, params)

    for eager, fast in zip(gradients(model), gradients(compiled)):
        assert torch.allclose(eager, fast, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("inference", [False, True], ids=["model", "for_inference"])
def test_every_model_traces_in_one_graph(kind, inference):
    """Dynamo's trace alone (backend "eager": no inductor, seconds): one graph without breaks for
    every model, also for the copy the calculator runs (frozen weights), and no new graph for a
    new size. The inductor runs of SE3 above are slow tests; this catches what breaks their trace
    (a module that reads e3nn's ``Irreps`` in forward made dynamo fail while building guards)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    model = MODELS[kind]()
    model = model.for_inference() if inference else model.eval()
    compiled = CompiledPotential(model, backend="eager")
    for atoms in (ethanol(), molecule("CH3CH2OCH3")):
        graph = atoms_to_graph(atoms, CUTOFF, dtype=torch.float64, with_labels=False)
        eager, fast = model(graph), compiled(graph)
        for key in (keys.ENERGY, keys.FORCES):
            assert torch.allclose(eager[key], fast[key], rtol=1e-10, atol=1e-12), key
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs <= (1 if kind != "a2i" else 2), f"{graphs} graphs for two open molecules"
