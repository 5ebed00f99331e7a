"""``torch.compile`` of a potential for inference: the whole energy -> forces -> stress step as one
graph, traced once for any number of atoms and edges."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch

from .base import AtomisticPotential, ModelInputs, stress_requested

__all__ = ["CompiledPotential"]


class CompiledPotential:
    """A potential whose pure :meth:`~AtomisticPotential.compute` runs compiled (inductor, dynamic
    shapes, ``fullgraph=True``: one graph with the autograd of forces and stress inside it).

    Called like the model: inputs are validated by the model's :meth:`prepare_inputs` first, then
    the compiled function runs. One graph is traced per combination of ``compute_forces``,
    ``compute_stress`` and the model's mode; sizes are symbolic, so new numbers of atoms or edges do
    not recompile. The first call compiles (tens of seconds to minutes on a CPU). In training mode
    the outputs keep their graph, so a force loss can be differentiated again (double backward
    through the compiled graph).

    Other attributes (``cutoff``, ``dtype``, ``species``, ...) are the model's.
    """

    def __init__(self, model: AtomisticPotential, *, mode: Optional[str] = None, backend: str = "inductor") -> None:
        if not isinstance(model, AtomisticPotential):
            raise TypeError(f"CompiledPotential needs an AtomisticPotential, got {type(model).__name__}")
        self.model = model
        # backend "eager" traces the graph (dynamo) without compiling it: seconds instead of minutes
        self._compiled = torch.compile(model.compute, fullgraph=True, dynamic=True, mode=mode, backend=backend)

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not yet set (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def eval(self) -> "CompiledPotential":
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> "CompiledPotential":
        self.model.train(mode)
        return self

    def to(self, *args, **kwargs) -> "CompiledPotential":
        self.model.to(*args, **kwargs)
        return self

    def __call__(self, data: Any, *, compute_forces: bool = True, compute_stress: Optional[bool] = None) -> dict[str, torch.Tensor]:
        inputs = data if isinstance(data, ModelInputs) else self.model.prepare_inputs(data)
        # One graph for every size: no plan of receiver runs (Python numbers) for dynamo to specialise on.
        inputs = dataclasses.replace(inputs, receiver_chunks=())
        compute_stress = stress_requested(inputs, compute_stress)
        # The tensors to differentiate enter the graph requiring grad (see AtomisticPotential.compute).
        strain = None
        if compute_forces and not inputs.pos.requires_grad:
            inputs = dataclasses.replace(inputs, pos=inputs.pos.detach().requires_grad_(True))
        if compute_stress:
            strain = inputs.pos.new_zeros(inputs.num_graphs, 3, 3).requires_grad_(True)
        # Trace torch.autograd.grad into the graph (forces and stress are its gradients).
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            out = self._compiled(inputs, compute_forces=compute_forces, compute_stress=compute_stress, strain=strain)
        if not self.model.training:
            out = {key: value.detach() for key, value in out.items()}
        return out

    def __repr__(self) -> str:
        return f"CompiledPotential({self.model.__class__.__name__}, cutoff={self.model.cutoff})"
