r"""Equivariance errors, measured the way the SE(3)-Transformer thesis defines them (eq. 3.1):

.. math:: \Delta_{EQ} = \lVert L\Phi(f) - \Phi L(f)\rVert_2 \,/\, \lVert L\Phi(f)\rVert_2

for random roto-translations :math:`L` (with reflections where parity is on), applied to
positions and cell alike; and the permutation error of per-atom outputs.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
from e3nn import o3

from ..data import keys
from ..utils import default_dtype

__all__ = [
    "relative_error",
    "random_orthogonal",
    "transform_graph",
    "transform_outputs",
    "permute_graph",
    "model_equivariance_errors",
    "permutation_errors",
    "layer_equivariance_errors",
    "float64_default_dtype",
    "wigner_matrix",
]

# How each model output transforms under an orthogonal matrix R (row-vector convention).
_VECTOR_OUTPUTS = (keys.FORCES, keys.DIRECT_FORCES)
_TENSOR_OUTPUTS = (keys.STRESS, keys.VIRIAL)
_INVARIANT_OUTPUTS = (keys.ENERGY, keys.ATOMIC_ENERGIES)
_PER_ATOM_OUTPUTS = (keys.ATOMIC_ENERGIES, keys.FORCES, keys.DIRECT_FORCES)


def float64_default_dtype():
    """Context manager: torch's default dtype is float64 inside (see :func:`~equiformer_lite.utils.default_dtype`)."""
    return default_dtype(torch.float64)


def wigner_matrix(irreps: o3.Irreps, rotation: torch.Tensor) -> torch.Tensor:
    r"""The representation matrix of ``irreps`` for an orthogonal ``rotation``, ``[dim, dim]``,
    accurate to float64 round-off for every rotation.

    e3nn's ``Irreps.D_from_matrix`` goes through Euler angles (``acos``/``atan2``), which lose
    precision near gimbal lock (errors up to ~1e-10 seen for some random rotations), and builds its
    generators in the default dtype (float32-accurate for l >= 2 under a float32 default).
    Here each block is solved from real spherical harmonics of well-spread points,
    :math:`Y^l(X R^T) = Y^l(X)\, D^l(R)^T`, a least-squares problem that is well conditioned for
    every rotation. Improper rotations get the irrep's parity factor, as in e3nn.
    """
    rotation = rotation.double()
    det = torch.det(rotation).sign()
    proper = det * rotation
    points = _SPHERE_POINTS
    blocks = []
    for mul, ir in o3.Irreps(irreps):
        y = o3.spherical_harmonics(ir.l, points, normalize=True)  # [P, 2l+1]
        y_rotated = o3.spherical_harmonics(ir.l, points @ proper.T, normalize=True)
        d_l = torch.linalg.lstsq(y, y_rotated).solution.T  # [2l+1, 2l+1]
        if det < 0:
            d_l = ir.p * d_l
        blocks += [d_l] * mul
    return torch.block_diag(*blocks) if blocks else torch.zeros(0, 0, dtype=torch.float64)


# Well-spread unit vectors (fixed): enough for every degree used in practice (l <= 10).
_SPHERE_POINTS = torch.randn(128, 3, generator=torch.Generator().manual_seed(12345), dtype=torch.float64)
_SPHERE_POINTS = _SPHERE_POINTS / _SPHERE_POINTS.norm(dim=1, keepdim=True)


def relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    r""":math:`\lVert a - b\rVert_2 / \lVert a\rVert_2` in float64 (the absolute error if :math:`a = 0`)."""
    a, b = reference.detach().double(), other.detach().double()
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    diff = torch.linalg.vector_norm(a - b).item()
    norm = torch.linalg.vector_norm(a).item()
    return diff / norm if norm > 0 else diff


def random_orthogonal(
    *, reflection: bool = False, dtype: torch.dtype = torch.float64, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """A uniformly random rotation ``[3, 3]``; times -1 (an improper rotation) if ``reflection``."""
    q = o3.rand_matrix(dtype=torch.float64) if generator is None else _rand_matrix(generator)
    return (-q if reflection else q).to(dtype)


def _rand_matrix(generator: torch.Generator) -> torch.Tensor:
    # Uniform rotation from a random unit quaternion, reproducible through the generator.
    q = torch.randn(4, generator=generator, dtype=torch.float64)
    return o3.quaternion_to_matrix(q / q.norm())


def transform_graph(data: Any, rotation: torch.Tensor, translation: Optional[torch.Tensor] = None) -> Any:
    """A copy of a graph with positions ``r R^T + t`` and cell rows ``a R^T``.

    Integer cell shifts and the edge list are unchanged: a rigid motion maps neighbours to neighbours.
    """
    out = data.clone()
    rot = rotation.to(data[keys.POSITIONS].dtype)
    pos = data[keys.POSITIONS] @ rot.T
    if translation is not None:
        pos = pos + translation.to(pos.dtype)
    out[keys.POSITIONS] = pos
    out[keys.CELL] = data[keys.CELL] @ rot.T
    return out


def transform_outputs(outputs: dict[str, torch.Tensor], rotation: torch.Tensor) -> dict[str, torch.Tensor]:
    """Apply ``rotation`` to model outputs: vectors ``F R^T``, rank-2 tensors ``R S R^T``."""
    transformed = {}
    for key, value in outputs.items():
        rot = rotation.to(value.dtype)
        if key in _VECTOR_OUTPUTS:
            transformed[key] = value @ rot.T
        elif key in _TENSOR_OUTPUTS:
            transformed[key] = rot @ value @ rot.T
        elif key in _INVARIANT_OUTPUTS:
            transformed[key] = value
    return transformed


def model_equivariance_errors(
    model: Callable[[Any], dict[str, torch.Tensor]],
    data: Any,
    *,
    n_trials: int = 4,
    reflections: bool = True,
    translations: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Largest :math:`\\Delta_{EQ}` of every output over ``n_trials`` random transformations.

    With ``reflections`` every second trial uses an improper rotation (det = -1), so a model must
    be O(3)-equivariant to pass; turn it off for models built with ``parity=False``.

    Returns ``{output key: error}`` for energy, atomic energies, forces, stress, ... as computed.
    """
    generator = torch.Generator().manual_seed(seed)
    reference = {k: v.detach() for k, v in model(data).items()}
    worst: dict[str, float] = {}
    for trial in range(n_trials):
        rotation = random_orthogonal(reflection=reflections and trial % 2 == 1, generator=generator)
        shift = 5.0 * torch.randn(1, 3, generator=generator, dtype=torch.float64) if translations else None
        expected = transform_outputs(reference, rotation)  # L Phi(f)
        got = model(transform_graph(data, rotation, shift))  # Phi L(f)
        for key, value in expected.items():
            worst[key] = max(worst.get(key, 0.0), relative_error(value, got[key]))
    return worst


def permute_graph(data: Any, permutation: torch.Tensor) -> Any:
    """A copy of a single-structure graph with atoms reordered: new atom k is old atom ``permutation[k]``."""
    out = data.clone()
    inverse = torch.empty_like(permutation)
    inverse[permutation] = torch.arange(len(permutation))
    for key in (keys.POSITIONS, keys.ATOMIC_NUMBERS, keys.FORCES):
        if key in data:
            out[key] = data[key][permutation]
    out[keys.EDGE_INDEX] = inverse[data[keys.EDGE_INDEX]]
    return out


def permutation_errors(model: Callable[[Any], dict[str, torch.Tensor]], data: Any, *, seed: int = 0) -> dict[str, float]:
    """Relative errors of every output under a random reordering of the atoms of one structure.

    Per-atom outputs must be permuted the same way; energy, stress and virial must not change.
    """
    generator = torch.Generator().manual_seed(seed)
    n = data[keys.POSITIONS].shape[0]
    permutation = torch.randperm(n, generator=generator)
    reference = model(data)
    got = model(permute_graph(data, permutation))
    errors = {}
    for key, value in reference.items():
        expected = value[permutation] if key in _PER_ATOM_OUTPUTS else value
        errors[key] = relative_error(expected, got[key])
    return errors


def layer_equivariance_errors(
    func: Callable[..., Any],
    args_in: Sequence[torch.Tensor],
    irreps_in: Sequence[Any],
    irreps_out: Sequence[Any],
    *,
    n_trials: int = 4,
    reflections: bool = True,
    translations: bool = True,
    seed: int = 0,
) -> list[float]:
    """Largest :math:`\\Delta_{EQ}` of each output of any function of irreps-valued tensors.

    ``irreps_in``/``irreps_out`` give, per argument/output, an :class:`e3nn.o3.Irreps` (transformed
    by its Wigner matrices), ``"cartesian_points"`` (rotated and translated), ``"vector"``
    (rotated only) or ``None`` (left alone: indices, invariant lengths).
    """
    generator = torch.Generator().manual_seed(seed)
    irreps_in = [_as_irreps(i) for i in irreps_in]
    irreps_out = [_as_irreps(i) for i in irreps_out]
    worst = [0.0] * len(irreps_out)
    reference = _as_list(func(*args_in))
    for trial in range(n_trials):
        rotation = random_orthogonal(reflection=reflections and trial % 2 == 1, generator=generator)
        shift = 5.0 * torch.randn(1, 3, generator=generator, dtype=torch.float64) if translations else None
        rotated_args = [_act(x, ir, rotation, shift) for x, ir in zip(args_in, irreps_in)]
        got = _as_list(func(*rotated_args))
        for k, (ref, ir, value) in enumerate(zip(reference, irreps_out, got)):
            expected = _act(ref.detach(), ir, rotation, shift)
            worst[k] = max(worst[k], relative_error(expected, value))
    return worst


def _as_irreps(spec: Any) -> Any:
    if spec is None or spec in ("cartesian_points", "vector"):
        return spec
    return o3.Irreps(spec)


def _as_list(x: Any) -> list[torch.Tensor]:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _act(x: torch.Tensor, irreps: Any, rotation: torch.Tensor, shift: Optional[torch.Tensor]) -> torch.Tensor:
    if irreps is None:
        return x
    rot = rotation.to(x.dtype)
    if irreps == "cartesian_points":
        return x @ rot.T + (shift.to(x.dtype) if shift is not None else 0.0)
    if irreps == "vector":
        return x @ rot.T
    return x @ wigner_matrix(irreps, rotation).to(x.dtype).T
