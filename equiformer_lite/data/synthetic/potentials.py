r"""Per-atom energies and exact forces of the A2I paper's model potentials, vectorised in numpy.

Every function takes Cartesian positions ``[N, d]`` (``d`` = 2 or 3; a 2D system may also be
passed as ``[N, 3]`` with ``z = 0``), an orthorhombic ``box`` (edge lengths) and ``pbc`` flags,
and returns ``(energies [N], forces [N, d])`` in float64 with

.. math::

    E = \sum_i \varepsilon_i, \qquad \mathbf F_i = -\partial E / \partial \mathbf r_i .

Per-atom convention (paper, Sec. II B: the per-particle energy is the target):

* a pair term :math:`U_{ij}` is split equally, :math:`\tfrac12 U_{ij}` to each of ``i`` and ``j``;
* a three-body Stillinger-Weber term :math:`U_{jik}` (angle at ``i``) goes to the central atom ``i``.

Periodic directions use the minimum-image convention, exact when every periodic box edge is at
least twice the largest cutoff (checked: a :class:`ValueError` otherwise). Neighbours are found by
an all-pairs search, :math:`O(N^2)` memory and time, meant for the few hundred atoms of the paper.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence, Union

import numpy as np

__all__ = [
    "lennard_jones_energies",
    "kob_andersen_energies",
    "dpd_energies",
    "stillinger_weber_energies",
    "pair_list",
    "KOB_ANDERSEN_EPSILON",
    "KOB_ANDERSEN_SIGMA",
    "DPD_FORMS",
]

ArrayLike = Union[np.ndarray, Sequence]
BoxLike = Union[None, float, ArrayLike]
PbcLike = Union[bool, Sequence[bool], np.ndarray]

# Kob & Andersen, PRE 51, 4626 (1995); A2I paper Sec. IV C. Index 0 = A, 1 = B.
KOB_ANDERSEN_EPSILON = np.array([[1.0, 1.5], [1.5, 0.5]])
KOB_ANDERSEN_SIGMA = np.array([[1.0, 0.8], [0.8, 0.88]])

DPD_FORMS = ("hoomd", "eq12")


# --- geometry --------------------------------------------------------------------------------------


def _as_positions(positions: ArrayLike) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] not in (1, 2, 3):
        raise ValueError(f"positions must have shape (N, d) with d in (1, 2, 3), got {pos.shape}")
    if not np.isfinite(pos).all():
        raise ValueError("positions contain NaN or inf")
    return pos


def _box_and_pbc(box: BoxLike, pbc: PbcLike, dim: int, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Edge lengths ``[d]`` and periodic flags ``[d]``, validated against the cutoff."""
    flags = np.asarray(pbc, dtype=bool)
    periodic = np.full(dim, bool(flags)) if flags.ndim == 0 else flags
    if periodic.shape != (dim,):
        raise ValueError(f"pbc must be one bool or {dim} bools (one per dimension), got {np.asarray(pbc).tolist()}")
    if not periodic.any():
        return np.full(dim, np.inf), periodic
    if box is None:
        raise ValueError(f"pbc={periodic.tolist()} needs the box edge lengths, got box=None")
    lengths = np.asarray(box, dtype=np.float64)
    if lengths.ndim == 2:  # a diagonal cell matrix
        if lengths.shape[0] < dim or lengths.shape[1] < dim or np.abs(lengths - np.diag(np.diag(lengths))).max() > 0:
            raise ValueError(f"only orthorhombic boxes are supported, got cell {lengths.tolist()}")
        lengths = np.diag(lengths)[:dim]
    lengths = np.broadcast_to(lengths, (dim,)).astype(np.float64) if lengths.ndim == 0 else lengths[:dim]
    if lengths.shape != (dim,):
        raise ValueError(f"box must be one length or {dim} edge lengths, got {np.asarray(box).tolist()}")
    short = periodic & ~(lengths >= 2.0 * cutoff)
    if short.any():
        raise ValueError(
            f"periodic box edges {lengths[short].tolist()} are shorter than twice the cutoff {cutoff}: "
            "the minimum-image convention would miss periodic images"
        )
    return lengths, periodic


@functools.lru_cache(maxsize=16)
def _upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def pair_list(
    positions: ArrayLike, box: BoxLike, pbc: PbcLike, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""All pairs ``i < j`` closer than ``cutoff`` (minimum image along periodic directions).

    Returns
    -------
    i, j : ``[P]`` int64 atom indices, ``i < j``.
    d : ``[P, d]`` displacement :math:`\mathbf r_j - \mathbf r_i` of the nearest image.
    r : ``[P]`` its length.
    """
    pos = _as_positions(positions)
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    lengths, periodic = _box_and_pbc(box, pbc, pos.shape[1], cutoff)
    i, j = _upper_pairs(len(pos))
    columns = []
    r2 = np.zeros(len(i))
    for k in range(pos.shape[1]):  # one coordinate at a time: contiguous, no fancy column writes
        x = np.ascontiguousarray(pos[:, k])
        dk = x[j] - x[i]
        if periodic[k]:
            dk -= lengths[k] * np.rint(dk / lengths[k])
        r2 += dk * dk
        columns.append(dk)
    keep = np.flatnonzero(r2 < cutoff * cutoff)
    d = np.stack([dk[keep] for dk in columns], axis=1)
    return i[keep], j[keep], d, np.sqrt(r2[keep])


def _accumulate_pairs(
    n: int, i: np.ndarray, j: np.ndarray, d: np.ndarray, u: np.ndarray, du_dr: np.ndarray, r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom energies (half of each pair to each atom) and forces from pair energies ``u(r)``."""
    energies = 0.5 * (np.bincount(i, weights=u, minlength=n) + np.bincount(j, weights=u, minlength=n))
    # dU/dr_j = du/dr * d/r (d = r_j - r_i), dU/dr_i = -that; F = -dU/dr.
    g = (du_dr / r)[:, None] * d
    forces = np.empty((n, d.shape[1]))
    for k in range(d.shape[1]):
        forces[:, k] = np.bincount(i, weights=g[:, k], minlength=n) - np.bincount(j, weights=g[:, k], minlength=n)
    return energies, forces


def _pair_potential(
    positions: ArrayLike,
    box: BoxLike,
    pbc: PbcLike,
    cutoff: float,
    pair: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """``pair(r, i, j) -> (u, du/dr)`` summed over pairs within ``cutoff``; zero beyond the pair's own cutoff."""
    pos = _as_positions(positions)
    i, j, d, r = pair_list(pos, box, pbc, cutoff)
    u, du = pair(r, i, j)
    return _accumulate_pairs(len(pos), i, j, d, u, du, r)


# --- Lennard-Jones and Kob-Andersen ----------------------------------------------------------------


def _lj_terms(
    r: np.ndarray, epsilon: np.ndarray, sigma: np.ndarray, cutoff: np.ndarray, shift: bool
) -> tuple[np.ndarray, np.ndarray]:
    inside = r < cutoff
    sr6 = (sigma / r) ** 6
    u = 4.0 * epsilon * (sr6 * sr6 - sr6)
    du = -24.0 * epsilon * (2.0 * sr6 * sr6 - sr6) / r
    if shift:
        sc6 = (sigma / cutoff) ** 6
        u = u - 4.0 * epsilon * (sc6 * sc6 - sc6)
    return np.where(inside, u, 0.0), np.where(inside, du, 0.0)


def lennard_jones_energies(
    positions: ArrayLike,
    box: BoxLike = None,
    pbc: PbcLike = False,
    *,
    epsilon: float = 1.0,
    sigma: float = 1.0,
    cutoff: float = 2.5,
    shift: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Truncated (and by default shifted) Lennard-Jones energies per atom, and forces.

    .. math::

        U(r) = 4\epsilon\left[(\sigma/r)^{12} - (\sigma/r)^{6}\right] - U_{\mathrm{LJ}}(r_c)
        \quad (r < r_c), \qquad U(r) = 0 \quad (r \ge r_c)

    This is the paper's Eq. (13) (the shift :math:`-U(r_c)` included) with the usual factor 4
    (HOOMD's ``pair.LJ``, which the paper used; Eq. (13) as printed omits it), and the same
    convention as :class:`ase.calculators.lj.LennardJones` with ``smooth=False``. The force
    jumps at :math:`r_c` by :math:`U'_{\mathrm{LJ}}(r_c)`, as in the paper's MD.

    Parameters
    ----------
    positions : ``[N, d]`` Cartesian positions.
    box : edge lengths of the orthorhombic box (one number, ``d`` numbers or a diagonal cell);
        needed when any direction is periodic.
    pbc : periodic flag, one for all directions or one per direction.
    epsilon, sigma : well depth and diameter.
    cutoff : :math:`r_c` (absolute distance, default :math:`2.5\sigma` for :math:`\sigma = 1`).
    shift : subtract :math:`U_{\mathrm{LJ}}(r_c)` so that the energy is continuous at the cutoff.

    Returns
    -------
    energies : ``[N]``, :math:`\varepsilon_i = \tfrac12\sum_{j\ne i} U(r_{ij})`.
    forces : ``[N, d]``, :math:`-\partial E/\partial\mathbf r_i`.
    """
    for name, value in (("epsilon", epsilon), ("sigma", sigma), ("cutoff", cutoff)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    eps, sig, rc = float(epsilon), float(sigma), float(cutoff)
    return _pair_potential(positions, box, pbc, rc, lambda r, i, j: _lj_terms(r, eps, sig, rc, shift))


def kob_andersen_energies(
    positions: ArrayLike,
    types: ArrayLike,
    box: BoxLike = None,
    pbc: PbcLike = False,
    *,
    epsilon: Optional[ArrayLike] = None,
    sigma: Optional[ArrayLike] = None,
    cutoff: float = 2.5,
    scale_cutoff_by_sigma: bool = False,
    shift: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Binary Lennard-Jones mixture (Kob-Andersen) energies per atom, and forces.

    .. math::

        U_{\alpha\beta}(r) = 4\epsilon_{\alpha\beta}\left[(\sigma_{\alpha\beta}/r)^{12}
        - (\sigma_{\alpha\beta}/r)^{6}\right] - U_{\alpha\beta}(r_{c,\alpha\beta})
        \quad (r < r_{c,\alpha\beta}), \qquad 0 \quad (r \ge r_{c,\alpha\beta})

    with :math:`\sigma_{AA}=1,\ \sigma_{AB}=0.8,\ \sigma_{BB}=0.88,\ \epsilon_{AA}=1,\
    \epsilon_{AB}=1.5,\ \epsilon_{BB}=0.5` (paper Sec. IV C, Kob & Andersen 1995).

    The cutoff is :math:`r_{c,\alpha\beta} = ` ``cutoff`` for every pair by default (the
    paper's :math:`r_c = 2.5` of Sec. III, "the same parameters ... unless otherwise specified";
    it also reproduces the energy scale of Table I best, see ``data_cards/synthetic_kob_andersen.md``),
    or :math:`r_{c,\alpha\beta} = ` ``cutoff`` :math:`\times\,\sigma_{\alpha\beta}` with
    ``scale_cutoff_by_sigma=True`` (Kob and Andersen's own :math:`2.5\sigma_{\alpha\beta}`).

    Parameters
    ----------
    positions : ``[N, d]``.
    types : ``[N]`` integers, 0 for A and 1 for B.
    box, pbc : as in :func:`lennard_jones_energies`.
    epsilon, sigma : ``2 x 2`` symmetric matrices (default: Kob-Andersen's).
    cutoff : :math:`r_c` (absolute), or :math:`r_c/\sigma_{\alpha\beta}` with ``scale_cutoff_by_sigma``.
    scale_cutoff_by_sigma : use a per-pair cutoff ``cutoff * sigma[a, b]``.
    shift : shift each pair energy to zero at its cutoff.

    Returns
    -------
    energies ``[N]`` (pair energies split equally), forces ``[N, d]``.
    """
    pos = _as_positions(positions)
    t = np.asarray(types)
    if t.shape != (len(pos),) or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"types must be {len(pos)} integers (0 = A, 1 = B), got shape {t.shape} dtype {t.dtype}")
    if len(t) and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"types must be 0 (A) or 1 (B), got values {sorted(set(t.tolist()))}")
    eps = np.asarray(KOB_ANDERSEN_EPSILON if epsilon is None else epsilon, dtype=np.float64)
    sig = np.asarray(KOB_ANDERSEN_SIGMA if sigma is None else sigma, dtype=np.float64)
    for name, m in (("epsilon", eps), ("sigma", sig)):
        if m.shape != (2, 2) or not np.allclose(m, m.T) or not (m > 0).all():
            raise ValueError(f"{name} must be a symmetric positive 2x2 matrix, got {m.tolist()}")
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive number, got {cutoff!r}")
    rc = cutoff * sig if scale_cutoff_by_sigma else np.full((2, 2), float(cutoff))

    def pair(r: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = t[i], t[j]
        return _lj_terms(r, eps[a, b], sig[a, b], rc[a, b], shift)

    return _pair_potential(pos, box, pbc, float(rc.max()), pair)


# --- DPD conservative ------------------------------------------------------------------------------


def dpd_energies(
    positions: ArrayLike,
    box: BoxLike = None,
    pbc: PbcLike = False,
    *,
    a: float = 50.0,
    cutoff: float = 2.5,
    form: str = "hoomd",
) -> tuple[np.ndarray, np.ndarray]:
    r"""Conservative dissipative-particle-dynamics energies per atom, and forces.

    ``form="hoomd"`` (default) is HOOMD-blue's ``DPDConservative``, the energy of Groot and
    Warren's conservative force :math:`F = A(1 - r/r_c)`:

    .. math:: U(r) = \frac{A}{2 r_c}(r_c - r)^2 \quad (r < r_c), \qquad 0 \quad (r \ge r_c).

    ``form="eq12"`` is the paper's Eq. (12) exactly as printed, :math:`U(r) = A(r - r_c)^2`, which
    is :math:`2r_c` (= 5) times stiffer. The paper ran its pair-potential MD with HOOMD, and its
    Table I implies a mean :math:`|\varepsilon_i|` of 47.6 for the 2D N = 64 system (MAE / MAPE);
    data generated here with ``"hoomd"`` give 47.5, with ``"eq12"`` 233 (data card
    ``synthetic_dpd.md``). Both forms have continuous energy and force at :math:`r_c`.

    Parameters
    ----------
    positions, box, pbc : as in :func:`lennard_jones_energies`.
    a : the energy coefficient :math:`A` (paper: 50).
    cutoff : :math:`r_c` (paper: 2.5).
    form : ``"hoomd"`` or ``"eq12"``.

    Returns
    -------
    energies ``[N]`` (pair energies split equally), forces ``[N, d]``.
    """
    if form not in DPD_FORMS:
        raise ValueError(f"form must be one of {list(DPD_FORMS)}, got {form!r}")
    for name, value in (("a", a), ("cutoff", cutoff)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    rc = float(cutoff)
    k = float(a) if form == "eq12" else float(a) / (2.0 * rc)

    def pair(r: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = rc - r  # > 0 inside the cutoff (pair_list keeps r < rc only)
        return k * x * x, -2.0 * k * x

    return _pair_potential(positions, box, pbc, rc, pair)


# --- Stillinger-Weber ------------------------------------------------------------------------------


def stillinger_weber_energies(
    positions: ArrayLike,
    box: BoxLike = None,
    pbc: PbcLike = False,
    *,
    epsilon: float = 6.189,
    sigma: float = 2.3925,
    a: float = 1.8,
    lambda_: float = 23.15,
    gamma: float = 1.2,
    cos_theta0: float = -1.0 / 3.0,
    A: float = 7.049556277,
    B: float = 0.6022245584,
    p: float = 4.0,
    q: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Stillinger-Weber energies per atom (three-body terms on the central atom), and forces.

    The paper's Eq. (15), in the standard (LAMMPS ``pair_style sw``) form

    .. math::

        E &= \sum_i\sum_{j>i}\phi_2(r_{ij}) + \sum_i\sum_{j\ne i}\sum_{k>j}\phi_3(r_{ij}, r_{ik}, \theta_{jik}),\\
        \phi_2(r) &= A\epsilon\left[B(\sigma/r)^p - (\sigma/r)^q\right]\exp\!\left(\frac{\sigma}{r - a\sigma}\right),\\
        \phi_3 &= \lambda\epsilon\,(\cos\theta_{jik} - \cos\theta_0)^2
            \exp\!\left(\frac{\gamma\sigma}{r_{ij} - a\sigma}\right)
            \exp\!\left(\frac{\gamma\sigma}{r_{ik} - a\sigma}\right),

    every term zero beyond :math:`a\sigma`. (Eq. (15) as printed has :math:`[\cos\theta -
    \theta_0]^2` and :math:`\gamma a` in the three-body exponents; the text's
    :math:`\cos\theta_0 = -1/3` and the SW/LAMMPS form :math:`\gamma\sigma` are used here.)

    Per-atom energy: :math:`\varepsilon_i = \tfrac12\sum_{j\ne i}\phi_2(r_{ij}) +
    \sum_{j<k;\,j,k\ne i}\phi_3(r_{ij}, r_{ik}, \theta_{jik})`.

    Parameters
    ----------
    positions, box, pbc : as in :func:`lennard_jones_energies` (lengths in Å for the paper's units).
    epsilon, sigma, a, lambda_, gamma, cos_theta0, A, B, p, q : SW parameters; defaults are the
        paper's mW-water set (epsilon 6.189 kcal/mol, sigma 2.3925 Å, lambda 23.15).

    Returns
    -------
    energies ``[N]`` (units of ``epsilon``), forces ``[N, d]`` (``epsilon`` per length).
    """
    for name, value in (("epsilon", epsilon), ("sigma", sigma), ("a", a), ("gamma", gamma), ("A", A)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    for name, value in (("lambda_", lambda_), ("B", B), ("p", p), ("q", q), ("cos_theta0", cos_theta0)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    pos = _as_positions(positions)
    n, dim = pos.shape
    rc = a * sigma
    i, j, d, r = pair_list(pos, box, pbc, rc)

    # Two-body.
    x = r - rc  # < 0
    e2 = np.exp(sigma / x)
    sr = sigma / r
    radial = B * sr**p - sr**q
    u2 = A * epsilon * radial * e2
    du2 = A * epsilon * e2 * ((-p * B * sr**p + q * sr**q) / r - radial * sigma / (x * x))
    energies, forces = _accumulate_pairs(n, i, j, d, u2, du2, r)

    # Three-body: directed bonds c -> n (centre, neighbour), grouped by centre.
    centre = np.concatenate([i, j])
    neigh = np.concatenate([j, i])
    vec = np.concatenate([d, -d])  # r_neigh - r_centre
    dist = np.concatenate([r, r])
    order = np.argsort(centre, kind="stable")
    centre, neigh, vec, dist = centre[order], neigh[order], vec[order], dist[order]
    counts = np.bincount(centre, minlength=n)
    if counts.max(initial=0) < 2:
        return energies, forces
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(len(centre)) - starts[centre]
    table = np.full((n, counts.max()), -1, dtype=np.int64)
    table[centre, slot] = np.arange(len(centre))
    sa, sb = np.triu_indices(counts.max(), k=1)
    pa, pb = table[:, sa], table[:, sb]  # [n, T]
    valid = (pa >= 0) & (pb >= 0)
    b1, b2 = pa[valid], pb[valid]  # bond indices of the two arms of each triplet
    c = centre[b1]
    v1, v2, r1, r2 = vec[b1], vec[b2], dist[b1], dist[b2]
    h1 = np.exp(gamma * sigma / (r1 - rc))
    h2 = np.exp(gamma * sigma / (r2 - rc))
    dh1 = -h1 * gamma * sigma / (r1 - rc) ** 2  # dh/dr
    dh2 = -h2 * gamma * sigma / (r2 - rc) ** 2
    cos = np.einsum("tk,tk->t", v1, v2) / (r1 * r2)
    delta = cos - cos_theta0
    u3 = lambda_ * epsilon * delta * delta * h1 * h2
    energies += np.bincount(c, weights=u3, minlength=n)
    # Gradients w.r.t. the two arm vectors v1 = r_j - r_i, v2 = r_k - r_i.
    dcos1 = v2 / (r1 * r2)[:, None] - (cos / (r1 * r1))[:, None] * v1
    dcos2 = v1 / (r1 * r2)[:, None] - (cos / (r2 * r2))[:, None] * v2
    pref = lambda_ * epsilon
    g1 = (pref * 2.0 * delta * h1 * h2)[:, None] * dcos1 + (pref * delta * delta * dh1 * h2 / r1)[:, None] * v1
    g2 = (pref * 2.0 * delta * h1 * h2)[:, None] * dcos2 + (pref * delta * delta * h1 * dh2 / r2)[:, None] * v2
    jn, kn = neigh[b1], neigh[b2]
    for k in range(dim):
        forces[:, k] += (
            np.bincount(c, weights=g1[:, k] + g2[:, k], minlength=n)
            - np.bincount(jn, weights=g1[:, k], minlength=n)
            - np.bincount(kn, weights=g2[:, k], minlength=n)
        )
    return energies, forces
