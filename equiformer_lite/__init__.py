"""equiformer_lite: equivariant attention interatomic potentials on PyTorch, e3nn and torch-geometric."""

__version__ = "0.1.0"

from .calculators import EquiformerCalculator  # noqa: E402
from .data import atoms_to_batch, atoms_to_graph, keys  # noqa: E402
from .models import A2IPotential, GATv2Potential, SE3Potential, build_model, load_model, save_model  # noqa: E402

__all__ = [
    "__version__",
    "A2IPotential",
    "GATv2Potential",
    "SE3Potential",
    "EquiformerCalculator",
    "atoms_to_graph",
    "atoms_to_batch",
    "build_model",
    "load_model",
    "save_model",
    "keys",
]
