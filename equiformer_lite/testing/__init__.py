"""The equivariance and physics suite: usable on any layer or model of this package (or yours)."""

from .audit import AuditRow, audit, format_audit
from .equivariance import (
    float64_default_dtype,
    layer_equivariance_errors,
    model_equivariance_errors,
    permutation_errors,
    permute_graph,
    random_orthogonal,
    relative_error,
    transform_graph,
    transform_outputs,
    wigner_matrix,
)
from .host_sync import HostSyncError, no_host_sync
from .layerwise import se3_layerwise_errors
from .physics import (
    cutoff_crossing,
    equivalent_cell_invariance,
    evaluate,
    finite_difference_forces,
    finite_difference_stress,
    nve_energy_spread,
    nve_step_scaling,
    supercell_extensivity,
    wrap_invariance,
)

__all__ = [
    "AuditRow",
    "HostSyncError",
    "audit",
    "format_audit",
    "cutoff_crossing",
    "equivalent_cell_invariance",
    "evaluate",
    "finite_difference_forces",
    "finite_difference_stress",
    "float64_default_dtype",
    "layer_equivariance_errors",
    "model_equivariance_errors",
    "no_host_sync",
    "nve_energy_spread",
    "nve_step_scaling",
    "permutation_errors",
    "permute_graph",
    "random_orthogonal",
    "relative_error",
    "se3_layerwise_errors",
    "supercell_extensivity",
    "transform_graph",
    "transform_outputs",
    "wigner_matrix",
    "wrap_invariance",
]
