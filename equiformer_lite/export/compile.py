"""Export a potential: trace energy, forces and virial into one graph, compile it ahead of time
(AOTInductor), check the artefact against the model and the physics audit, then write it."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np
import torch
from ase import Atoms
from torch import nn

from ..data import atoms_to_graph, keys
from ..models.base import AtomisticPotential, ModelInputs
from ..testing.audit import AuditRow, audit
from ..testing.equivariance import relative_error
from ..models.exported import EXPORT_FORMAT, METADATA_KEY, ExportedPotential

__all__ = ["ExportRefused", "ExportReport", "check_structures", "export_model", "format_report", "trace_model", "DEVIATION_BOUNDS"]

# Exported against eager outputs, relative: the compiled kernels reorder sums, nothing more.
DEVIATION_BOUNDS = {torch.float64: 1e-10, torch.float32: 1e-5}


class ExportRefused(RuntimeError):
    """The artefact failed a check; nothing was written."""


class _OneStructure(nn.Module):
    """The exported function: one structure's tensors -> ``(energy [1], atomic_energies [N],
    forces [N, 3], virial [3, 3])``, through the model's own pure :meth:`~AtomisticPotential.compute`."""

    def __init__(self, model: AtomisticPotential) -> None:
        super().__init__()
        self.model = model

    def forward(self, pos, species, edge_index, shift, cell, pbc):
        num_atoms = pos.shape[0]
        inputs = ModelInputs(pos, species, edge_index, shift, cell.unsqueeze(0), pbc.unsqueeze(0),
                             torch.zeros_like(species), 1, any_periodic=True, max_atoms=num_atoms)
        out = self.model.compute(inputs, compute_forces=True, compute_stress=True)
        return out[keys.ENERGY], out[keys.ATOMIC_ENERGIES], out[keys.FORCES], out[keys.VIRIAL][0]


def _example(model: AtomisticPotential) -> Atoms:
    """A 27-atom cluster of the model's elements with many edges at its cutoff (the tracing sample;
    the artefact takes any number of atoms and edges)."""
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3) * 1.3
    symbols = [model.species[i % len(model.species)] for i in range(len(grid))]
    return Atoms(symbols, positions=grid + rng.normal(scale=0.1, size=grid.shape))


def check_structures(model, structures: Iterable[Atoms]) -> list[Atoms]:
    """The structures whose elements the model knows; if none, the tracing cluster of the model's
    elements and a periodic box of it (so every model gets open and periodic checks)."""
    known = [a for a in structures if set(a.get_chemical_symbols()) <= set(model.species)]
    if known:
        return known
    cluster = _example(model)
    box = cluster.copy()
    box.set_cell(np.diag([4.2, 4.3, 4.4]) + 0.2 * np.eye(3)[[1, 2, 0]])
    box.pbc = True
    return [cluster, box]


def _tensors(model, atoms: Atoms) -> tuple[torch.Tensor, ...]:
    inputs = model.prepare_inputs(atoms_to_graph(atoms, model.graph_cutoff, dtype=model.dtype, with_labels=False))
    return inputs.pos, inputs.species, inputs.edge_index, inputs.shift, inputs.cell[0], inputs.pbc[0]


@contextlib.contextmanager
def _no_duck_shapes():
    """Trace the numbers of atoms and edges as sizes of their own, never equal to a weight's size
    (make_fx's duck shaping would otherwise specialise an input of 16 atoms to a 16-channel layer)."""
    from torch.fx.experimental import _config

    before = _config.use_duck_shape
    _config.use_duck_shape = False
    try:
        yield
    finally:
        _config.use_duck_shape = before


def trace_model(model: AtomisticPotential, example: Optional[Atoms] = None) -> torch.export.ExportedProgram:
    """``torch.export`` program of energy, forces and virial for any number of atoms and edges.

    The autograd of forces and virial is unrolled into the graph first (``make_fx``, symbolic
    shapes), since ``torch.export`` does not trace ``torch.autograd.grad`` itself.
    """
    from torch.fx.experimental.proxy_tensor import make_fx

    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    module = _OneStructure(model)
    args = _tensors(model, example if example is not None else _example(model))
    with _no_duck_shapes():
        graph = make_fx(module, tracing_mode="symbolic", _allow_non_fake_inputs=True,
                        _error_on_data_dependent_ops=True)(*[a.clone() for a in args])
    atoms = torch.export.Dim("atoms", min=1, max=2**31 - 2)
    # A model without a neighbour list (needs_edges False) always gets an empty edge list: its
    # graphs are built at the overlap radius, and overlapping atoms are refused before the model.
    edges = torch.export.Dim("edges", min=0, max=2**31 - 2) if model.needs_edges else None
    edge_dims = ({1: edges}, {0: edges}) if edges is not None else (None, None)
    shapes = ({0: atoms}, {0: atoms}, *edge_dims, None, None)
    return torch.export.export(graph, args, dynamic_shapes=shapes)


@dataclass
class ExportReport:
    """What :func:`export_model` checked: the audit rows of the artefact and its deviation from the model."""

    path: str
    dtype: str
    audit: list[AuditRow] = field(default_factory=list)
    deviation: dict[str, float] = field(default_factory=dict)  # max relative E/F/stress error vs eager
    bound: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.audit) and all(v <= self.bound for v in self.deviation.values())


def _deviation(model, exported: ExportedPotential, structures: list[Atoms]) -> dict[str, float]:
    r"""Largest relative deviation of the artefact from the model over ``structures``: per-atom
    energies, forces and stress by :func:`relative_error`; the total energy relative to the size of
    its terms, :math:`|\Delta E| / \sum_i |E_i|` (a total that nearly cancels, as an untrained
    model's can, would otherwise turn float32 round-off into a large relative error)."""
    worst: dict[str, float] = {}
    for atoms in structures:
        graph = atoms_to_graph(atoms, model.graph_cutoff, dtype=model.dtype, with_labels=False)
        ours = {k: v.detach() for k, v in model(graph).items()}
        theirs = exported(graph)
        errors = {keys.ENERGY: float((ours[keys.ENERGY] - theirs[keys.ENERGY]).abs().sum()
                                     / ours[keys.ATOMIC_ENERGIES].abs().sum().clamp_min(1e-30))}
        for key in (keys.ATOMIC_ENERGIES, keys.FORCES, keys.STRESS):
            if key in ours:
                errors[key] = relative_error(ours[key], theirs[key])
        for key, value in errors.items():
            worst[key] = max(worst.get(key, 0.0), value)
    return worst


def export_model(
    model: AtomisticPotential,
    path: Union[str, os.PathLike],
    structures: Iterable[Atoms],
    *,
    check: bool = True,
    n_trials: int = 2,
) -> ExportReport:
    """Compile ``model`` (in its dtype, on CPU) into a self-contained ``.pt2`` file at ``path``.

    ``structures``: where to check it (those with elements the model lacks are left out; with
    none left, a cluster and a periodic box of the model's elements).

    The artefact is written only if it passes: its energies, forces and stress on ``structures``
    deviate from the model's by at most :data:`DEVIATION_BOUNDS` (relative; see :func:`_deviation`), and the physics
    audit (:func:`~equiformer_lite.testing.audit`: symmetries, forces and stress against finite
    differences, cutoff continuity, NVE) passes on the artefact itself. A float32 artefact cannot
    be differentiated numerically to a useful precision, so its finite-difference, cutoff and NVE
    checks run on the float64 export of the same weights (the traced program, uncompiled). A
    failed check raises :class:`ExportRefused` with the report, and no file is left behind.
    """
    from .. import __version__
    from ..models.registry import UNITS

    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"the exported file must end in .pt2 (an AOTInductor package), got {path}")
    structures = check_structures(model, structures)
    model = model.eval()
    metadata = {
        "format": EXPORT_FORMAT, "model_type": model.model_type, "species": list(model.species),
        "cutoff": model.cutoff, "graph_cutoff": model.graph_cutoff, "dtype": str(model.dtype).removeprefix("torch."), "config": model.config,
        "units": UNITS, "version": __version__, "device": "cpu",
        "rotation_invariant": model.rotation_invariant, "local": model.local,
        "translation_invariant": model.translation_invariant,
    }
    program = trace_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".pt2", dir=path.parent, prefix=f".{path.stem}.")
    os.close(handle)
    try:
        torch._inductor.aoti_compile_and_package(
            program, package_path=temporary,
            inductor_configs={"aot_inductor.metadata": {METADATA_KEY: json.dumps(metadata)}},
        )
        exported = ExportedPotential.load(temporary)
        report = ExportReport(str(path), metadata["dtype"], bound=DEVIATION_BOUNDS[model.dtype])
        report.deviation = _deviation(model, exported, structures)
        if check:
            float64_model = None
            if model.dtype != torch.float64:
                model64 = model.with_dtype(torch.float64)
                float64_model = ExportedPotential(trace_model(model64).module(), {**metadata, "dtype": "float64"},
                                                  source=f"{path} (float64 trace)")
            report.audit = audit(exported, structures, n_trials=n_trials, float64_model=float64_model)
        if not report.passed:
            raise ExportRefused(f"the exported artefact failed its checks; {path} not written\n{format_report(report)}")
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
        exported.source = str(path)
        return report
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def format_report(report: ExportReport) -> str:
    from ..testing.audit import format_audit

    lines = [f"exported vs eager ({report.dtype}), max relative error (bound {report.bound:.0e}):"]
    lines += [f"  {key:<8} {value:.2e} {'pass' if value <= report.bound else 'FAIL'}" for key, value in report.deviation.items()]
    if report.audit:
        lines.append(format_audit(report.audit, title="physics audit of the artefact"))
    return "\n".join(lines)
