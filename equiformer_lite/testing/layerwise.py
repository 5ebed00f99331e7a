"""Layer-by-layer equivariance errors of an `SE3Potential`, measured inside the real model."""

from __future__ import annotations

from typing import Any

import torch

from ..data import keys
from ..data.neighborlist import edge_vectors
from .equivariance import layer_equivariance_errors

__all__ = ["se3_layerwise_errors"]


def se3_layerwise_errors(model, graph: Any, *, n_trials: int = 4, reflections: bool = True, seed: int = 0) -> dict[str, float]:
    r"""The thesis' :math:`\Delta_{EQ}` (eq. 3.1) of every stage of an
    :class:`~equiformer_lite.SE3Potential` on one structure: spherical harmonics, radial
    features, species embedding, each attention layer's output and the raw per-atom energies,
    as the model's own :meth:`~equiformer_lite.SE3Potential.stages` computes them.

    Positions are rotated (and reflected, translated) and so are the cell vectors; each stage's
    output is compared with the transformed output of the untransformed input.
    """
    species = model.species_index(graph[keys.ATOMIC_NUMBERS])
    edge_index = graph[keys.EDGE_INDEX]
    shift = graph[keys.EDGE_CELL_SHIFT].to(model.dtype)
    batch = torch.zeros(species.shape[0], dtype=torch.long, device=species.device)
    names = ["spherical harmonics", "radial features", "species embedding"]
    names += [f"attention layer {k + 1}" for k in range(len(model.layers))] + ["raw energies"]

    def stages(pos: torch.Tensor, cell: torch.Tensor) -> list[torch.Tensor]:
        vectors = edge_vectors(pos, edge_index, shift, cell.reshape(1, 3, 3), batch)  # [E, 3]
        out = model.stages(species, vectors, edge_index)  # the model's own stages
        out["raw energies"] = out["raw energies"].unsqueeze(-1)  # [N, 1]: one scalar per atom
        return [out[name] for name in names]

    irreps_out = [model.spherical_harmonics.irreps_out, model.radial.irreps_out, model.embedding.irreps_out]
    irreps_out += [layer.irreps_out for layer in model.layers] + ["0e"]
    with torch.no_grad():
        errors = layer_equivariance_errors(
            stages,
            [graph[keys.POSITIONS].to(model.dtype), graph[keys.CELL].to(model.dtype).reshape(3, 3)],
            ["cartesian_points", "vector"],
            irreps_out,
            n_trials=n_trials,
            reflections=reflections,
            seed=seed,
        )
    return dict(zip(names, errors))
