"""Reproduce (at CPU scale) Table I of the A2I-Transformer paper: per-atom energy errors.

    python benchmarks/bench_a2i_table1.py --systems lj_2d_periodic_n128 --models a2i a2i-nope \
        [--train-snapshots 256] [--test-snapshots 128] [--steps 250 500 1000] [--batch-size 16] \
        [--threads 1] [--seed 0] [--cache-dir /tmp/a2i_data] [--json out.json]

Paper: J. W. Yu, M. Y. Ha, B. Seo, W. B. Lee, "A2I Transformer" (2021), Secs. II.C-II.D, III, IV,
Table I and Fig. 3(c).

For every system of ``--systems`` (names of :data:`equiformer_lite.data.synthetic.SYSTEMS`):

1. ``--train-snapshots`` training snapshots are generated with ``seed`` and ``--test-snapshots``
   test snapshots (Table I's N_sample = 128) with ``seed + 1000`` -- an independent MD run, so no
   test configuration is a training configuration or a close neighbour in time of one.
2. Every model of ``--models`` is trained on the PER-ATOM energies only: loss = MSE between
   predicted and true per-atom energies (data units: epsilon, or kcal/mol for Stillinger-Weber),
   plain Adam at a constant learning rate, batches of ``--batch-size`` snapshots drawn at random
   (the paper: 100,000 random batches of 128 from 2 million snapshots). No forces, no total
   energies. Single precision, as in the paper.
3. After each step count of ``--steps`` (one training run; the metrics are taken on the way,
   which with a constant learning rate is the same as separate runs of those lengths), the
   paper's four metrics (eqs. 8-11, :class:`equiformer_lite.train.metrics.MetricAccumulator`)
   are evaluated on the test snapshots: MAE, MME (mean over snapshots of the max error), NMAE and
   MAPE (printed in %, as in Table I), each with its standard deviation over the test snapshots
   (Table I's ±).

Models (``--models``):

* ``a2i``: :class:`~equiformer_lite.A2IPotential` as in the paper (8 Set Attention Blocks, width
  32, 4 heads, no layer norm), position encoding (eq. 14) when the system is periodic,
  ``spatial_dims=2`` for the 2D systems, the species as an extra input column for Kob-Andersen
  (Sec. IV.C). Adam lr ``--lr`` (5e-4, the paper's upper value).
* ``a2i-nope``: the same without position encoding (raw coordinates; Table I's "PBC" rows). On a
  fixed-boundary system it is the same model as ``a2i``.
* ``fcn``: the fully connected baseline of Fig. 3(c): an MLP from the flattened coordinate
  vector of a fixed-size system (N x d numbers, scaled by the box length) to the N per-atom
  energies. Not permutation-equivariant -- which is the point. Two hidden layers of
  ``--fcn-hidden`` (256) SiLU units (the paper gives no FC sizes); Adam lr ``--lr``.
* ``wall`` (fixed-boundary systems only): a diagnostic, not a model of the paper -- the mean
  training label in 20 bins of the distance to the nearest box face (:class:`WallDistanceBaseline`).
  It is the best a model can do that knows *where in the box* an atom is but not where its
  neighbours are; an A2I run stuck at its error has learned only the boundary effect.
* ``gatv2``: :class:`~equiformer_lite.GATv2Potential`, 32 channels, 4 heads, 3 layers, Bessel
  edge features; ``se3``: :class:`~equiformer_lite.SE3Potential`, 8 channels per degree,
  lmax 1, 2 layers, 4 heads. Both with the interaction cutoff of the potential (2.5 sigma for the
  LJ/DPD/Kob-Andersen systems, a*sigma = 4.3065 Å for Stillinger-Weber), E0 = 0 (an isolated
  particle has zero energy in all these potentials), Adam lr ``--gnn-lr`` (1e-3).

Every model's per-atom output scale and shift are the std and mean of the training per-atom
labels (:meth:`DatasetStatistics.suggested_scale_shift` with ``per_atom_labels=True``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from ase import Atoms
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter

from equiformer_lite import A2IPotential, GATv2Potential, SE3Potential, atoms_to_graph
from equiformer_lite.data import compute_statistics, keys
from equiformer_lite.data.synthetic import SYSTEMS, SystemSpec, generate, get_system
from equiformer_lite.train.metrics import MetricAccumulator

MODELS = ("a2i", "a2i-nope", "fcn", "wall", "gatv2", "se3")
METRICS = ("atomic_mae", "atomic_mme", "atomic_nmae", "atomic_mape")
A2I_INPUT_CUTOFF = A2IPotential.graph_cutoff_of({})  # no edges: the graph radius only serves the overlap check
TEST_SEED_OFFSET = 1000

# Table I of the paper: (MAE, MME, NMAE, MAPE in %), each as (mean, +-), N_sample = 128. Keys are
# our system names and model names; the comment gives the Table I row. Units: LJ reduced energy,
# kcal/mol for Stillinger-Weber (SW). "a2i-nope" is the pristine model of the "PBC" rows.
PAPER_TABLE1: dict[str, dict[str, tuple[tuple[float, float], ...]]] = {
    # 2D DPD No PBC N = 64, 128, 256; DPD (FC) N = 64, 128, 256
    "dpd_2d_fixed_n64": {
        "a2i": ((0.111, 0.014), (0.366, 0.094), (0.011, 0.001), (0.233, 0.030)),
        "fcn": ((9.298, 0.631), (35.810, 3.840), (0.897, 0.041), (19.589, 1.410)),
    },
    "dpd_2d_fixed_n128": {
        "a2i": ((0.186, 0.014), (0.672, 0.120), (0.021, 0.002), (0.370, 0.028)),
        "fcn": ((7.951, 0.364), (38.579, 3.580), (0.889, 0.022), (15.781, 0.757)),
    },
    "dpd_2d_fixed_n256": {
        "a2i": ((0.207, 0.012), (0.867, 0.204), (0.028, 0.002), (0.394, 0.022)),
        "fcn": ((6.504, 0.257), (39.183, 3.531), (0.885, 0.014), (12.404, 0.503)),
    },
    # 2D LJ (No PBC) N = 64, 128, 256
    "lj_2d_fixed_n64": {"a2i": ((0.022, 0.004), (0.124, 0.067), (0.043, 0.007), (1.320, 0.279))},
    "lj_2d_fixed_n128": {"a2i": ((0.020, 0.003), (0.121, 0.041), (0.040, 0.005), (1.149, 0.187))},
    "lj_2d_fixed_n256": {"a2i": ((0.030, 0.004), (0.249, 0.119), (0.062, 0.008), (1.644, 0.277))},
    # 2D LJ PBC N = 128 (no PE) and PBC (PE) N = 128
    "lj_2d_periodic_n128": {
        "a2i-nope": ((0.052, 0.009), (0.466, 0.273), (0.131, 0.022), (2.642, 0.520)),
        "a2i": ((0.019, 0.002), (0.127, 0.049), (0.046, 0.005), (0.936, 0.130)),
    },
    # 3D LJ No PBC N = 256 at rho = 0.2, 0.8, 1.2
    "lj_3d_fixed_n256_rho0.2": {"a2i": ((0.028, 0.004), (0.275, 0.133), (0.044, 0.006), (2.160, 0.252))},
    "lj_3d_fixed_n256_rho0.8": {"a2i": ((0.044, 0.005), (0.324, 0.098), (0.044, 0.005), (1.269, 0.159))},
    "lj_3d_fixed_n256_rho1.2": {"a2i": ((0.139, 0.012), (0.670, 0.156), (0.118, 0.011), (3.578, 0.289))},
    # 3D LJ PBC N = 256 (no PE) and PBC (PE) N = 256
    "lj_3d_periodic_n256": {
        "a2i-nope": ((0.164, 0.018), (1.779, 0.615), (0.306, 0.032), (3.494, 0.396)),
        "a2i": ((0.034, 0.003), (0.223, 0.071), (0.063, 0.006), (0.714, 0.074)),
    },
    # SW (N = 216): Germanium (lambda = 20.00), Silicon (21.00), Water (23.15); kcal/mol
    "sw_germanium": {"a2i": ((0.081, 0.005), (0.323, 0.049), (0.112, 0.008), (0.780, 0.049))},
    "sw_silicon": {"a2i": ((0.084, 0.005), (0.335, 0.054), (0.116, 0.008), (0.818, 0.048))},
    "sw_water": {"a2i": ((0.092, 0.005), (0.371, 0.069), (0.127, 0.010), (0.917, 0.055))},
    # LJ (Extra Dim.) N = 256, f_A = 1.0, 0.8, 0.5 (Kob-Andersen)
    "ka_3d_periodic_n256_fa1.0": {"a2i": ((0.032, 0.003), (0.209, 0.067), (0.059, 0.006), (0.672, 0.067))},
    "ka_3d_periodic_n256_fa0.8": {"a2i": ((0.055, 0.004), (0.415, 0.165), (0.080, 0.006), (1.203, 0.101))},
    "ka_3d_periodic_n256_fa0.5": {"a2i": ((0.067, 0.007), (0.483, 0.158), (0.059, 0.007), (1.582, 0.177))},
}


# --- data --------------------------------------------------------------------------------------


def load_snapshots(system: str, num: int, seed: int, cache_dir: Optional[str]) -> list[Atoms]:
    """``num`` labelled snapshots of ``system`` from :func:`generate` with ``seed``, cached as a
    pickle in ``cache_dir`` when given (generation is deterministic for a seed on one machine)."""
    path = os.path.join(cache_dir, f"{system}_n{num}_seed{seed}.pkl") if cache_dir else None
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            return pickle.load(handle)
    frames = generate(system, num, seed=seed)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        with open(path, "wb") as handle:
            pickle.dump(frames, handle)
    return frames


def to_graphs(frames: Sequence[Atoms], cutoff: float) -> list[Data]:
    """Float32 graphs (neighbour lists within ``cutoff``) with per-atom energy labels."""
    return [atoms_to_graph(atoms, cutoff, dtype=torch.float32) for atoms in frames]


def interaction_cutoff(spec: SystemSpec) -> float:
    """The potential's interaction range: the message-passing cutoff of GATv2 and SE3."""
    return float(spec.cutoff)


# --- the fully connected baseline (Fig. 3c) ----------------------------------------------------


class FullyConnectedBaseline(nn.Module):
    """MLP from the flattened coordinates of an N-particle system to its N per-atom energies.

    Input: the ``[N, d]`` coordinates divided by the box length ``L`` of the system and centred
    (``x / L - 1/2``; the positions lie in ``[0, L)`` -- the graphs of fixed-boundary snapshots
    carry a zero cell, so ``L`` is given, not read from the batch), flattened to ``N d`` numbers; output: ``N`` per-atom energies ``scale * y + shift``. The atom
    order is part of the input, so the model is not permutation-equivariant (paper Fig. 3c).
    """

    def __init__(
        self, num_atoms: int, spatial_dims: int, box_length: float, hidden: int, scale: float, shift: float
    ) -> None:
        super().__init__()
        self.num_atoms, self.spatial_dims, self.box_length = num_atoms, spatial_dims, float(box_length)
        self.net = nn.Sequential(
            nn.Linear(num_atoms * spatial_dims, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, num_atoms),
        )
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``atomic_energies [B N]`` and ``energy [B]`` of a batch of same-size structures."""
        num_graphs = int(batch[keys.NUM_ATOMS].numel())
        pos = batch[keys.POSITIONS].view(num_graphs, self.num_atoms, 3)[..., : self.spatial_dims]
        x = (pos / self.box_length - 0.5).flatten(1)  # [B, N d]
        atomic = (self.scale * self.net(x) + self.shift).flatten()  # [B N]
        energy = scatter(atomic, batch[keys.BATCH], dim=0, dim_size=num_graphs, reduce="sum")
        return {keys.ATOMIC_ENERGIES: atomic, keys.ENERGY: energy}


class WallDistanceBaseline(nn.Module):
    """Per-atom energy as a function of the atom's distance to the nearest box face only.

    A diagnostic for fixed-boundary systems, not a model of the paper: atoms near the open
    boundary have fewer neighbours and so higher energies, and a model that has learned only
    *where in the box* an atom sits (not where its neighbours are) predicts at best the mean
    label at that distance. :meth:`fit` bins the training atoms by distance to the nearest face
    of the box ``[0, L]^d`` (``num_bins`` quantile bins) and predicts the bin's mean label.
    """

    def __init__(self, spatial_dims: int, box_length: float, num_bins: int = 20) -> None:
        super().__init__()
        self.spatial_dims, self.box_length, self.num_bins = spatial_dims, float(box_length), num_bins
        self.register_buffer("edges", torch.zeros(num_bins - 1, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(num_bins, dtype=torch.float64))

    def wall_distance(self, positions: torch.Tensor) -> torch.Tensor:
        """``[N]`` distance of each atom to the nearest face of the box, from positions ``[N, 3]``."""
        xyz = positions[:, : self.spatial_dims].double()
        return torch.minimum(xyz, self.box_length - xyz).amin(dim=1)

    @torch.no_grad()
    def fit(self, positions: Sequence[torch.Tensor], values: Sequence[torch.Tensor]) -> float:
        """Fit the bins to per-atom ``values`` (``[n]`` per structure: labels, or a model's
        predictions) at ``positions`` (``[n, 3]`` per structure); returns the fit's MSE."""
        distance = torch.cat([self.wall_distance(p) for p in positions])
        labels = torch.cat([v.detach().double() for v in values])
        quantiles = torch.linspace(0, 1, self.num_bins + 1, dtype=torch.float64)[1:-1]
        self.edges = torch.quantile(distance, quantiles)
        bins = torch.bucketize(distance, self.edges)
        total = torch.zeros(self.num_bins, dtype=torch.float64).index_add_(0, bins, labels)
        count = torch.zeros(self.num_bins, dtype=torch.float64).index_add_(0, bins, torch.ones_like(labels))
        self.means = torch.where(count > 0, total / count.clamp(min=1), labels.mean())
        return float(torch.mean((self.means[bins] - labels) ** 2))

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        atomic = self.means[torch.bucketize(self.wall_distance(batch[keys.POSITIONS]), self.edges)]  # [N]
        energy = scatter(atomic, batch[keys.BATCH], dim=0, dim_size=int(batch[keys.NUM_ATOMS].numel()), reduce="sum")
        return {keys.ATOMIC_ENERGIES: atomic, keys.ENERGY: energy}


# --- models ------------------------------------------------------------------------------------


@dataclass
class ModelSetup:
    """A model to train: the module, how to call it, its graph radius and learning rate."""

    name: str
    module: nn.Module
    predict: Callable[[Batch], dict[str, torch.Tensor]]
    graph_cutoff: float
    lr: float
    description: str


def build_model(name: str, spec: SystemSpec, scale: float, shift: float, args: argparse.Namespace) -> ModelSetup:
    """The model ``name`` for system ``spec`` with per-atom output ``scale`` and ``shift``."""
    species = list(spec.symbols)
    dims = spec.dimension
    periodic = spec.boundary == "periodic"
    cutoff = interaction_cutoff(spec)

    def potential_call(module: nn.Module) -> Callable[[Batch], dict[str, torch.Tensor]]:
        return lambda batch: module(batch, compute_forces=False, compute_stress=False)

    if name in ("a2i", "a2i-nope"):
        use_pe = name == "a2i" and periodic
        model = A2IPotential(
            species, num_blocks=8, channels=32, num_heads=4, position_encoding=use_pe,
            species_encoding="extra_dimension", spatial_dims=dims, layer_norm=False, activation="silu",
            scale=scale, shift=shift, dtype="float32",
        )  # fmt: skip
        text = f"A2I 8 SAB x 32 ch x 4 heads, PE={'on' if use_pe else 'off'}, spatial_dims={dims}"
        return ModelSetup(name, model, potential_call(model), A2I_INPUT_CUTOFF, args.lr, text)
    if name == "fcn":
        model = FullyConnectedBaseline(spec.num_atoms, dims, spec.box_length, args.fcn_hidden, scale, shift)
        text = f"FC MLP {spec.num_atoms * dims}-{args.fcn_hidden}-{args.fcn_hidden}-{spec.num_atoms}, SiLU"
        return ModelSetup(name, model, model, A2I_INPUT_CUTOFF, args.lr, text)
    if name == "wall":
        model = WallDistanceBaseline(dims, spec.box_length)
        text = f"wall-distance baseline: mean training label in {model.num_bins} bins of distance to the nearest box face"
        return ModelSetup(name, model, model, A2I_INPUT_CUTOFF, 0.0, text)
    if name == "gatv2":
        model = GATv2Potential(
            species, cutoff, channels=32, num_heads=4, num_layers=3, scale=scale, shift=shift,
            atomic_energies=[0.0] * len(species), dtype="float32",
        )  # fmt: skip
        return ModelSetup(name, model, potential_call(model), cutoff, args.gnn_lr, f"GATv2 32 ch x 3 layers, rc={cutoff:g}")
    if name == "se3":
        model = SE3Potential(
            species, cutoff, lmax=1, channels=8, num_heads=4, num_layers=2, scale=scale, shift=shift,
            atomic_energies=[0.0] * len(species), dtype="float32",
        )  # fmt: skip
        return ModelSetup(name, model, potential_call(model), cutoff, args.gnn_lr, f"SE3 8 ch lmax 1 x 2 layers, rc={cutoff:g}")
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


# --- training and evaluation -------------------------------------------------------------------


def wall_distance_share(graphs: Sequence[Data], values: Sequence[torch.Tensor], spec: SystemSpec) -> float:
    """Fraction of the variance of per-atom ``values`` (one ``[n]`` tensor per graph: labels or a
    model's predictions) that a function of the distance to the nearest box face alone explains:
    ``1 - MSE(WallDistanceBaseline fitted to the values) / Var(values)``. Near 1: the values depend
    on where an atom sits in the box, not on where its neighbours are."""
    mse = WallDistanceBaseline(spec.dimension, spec.box_length).fit([g[keys.POSITIONS] for g in graphs], values)
    variance = float(torch.cat([v.double() for v in values]).var(unbiased=False))
    return 1.0 - mse / variance


@torch.no_grad()
def predictions(setup: "ModelSetup", graphs: Sequence[Data]) -> list[torch.Tensor]:
    """Per-atom predictions ``[n]`` of ``setup`` for each graph."""
    setup.module.eval()
    out = [setup.predict(Batch.from_data_list([g]))[keys.ATOMIC_ENERGIES].detach() for g in graphs]
    setup.module.train()
    return out


@torch.no_grad()
def evaluate(setup: ModelSetup, graphs: Sequence[Data], batch_size: int) -> dict[str, float]:
    """The paper's four per-atom metrics (eqs. 8-11) on ``graphs``, MAPE as a fraction, each with
    its standard deviation over the test snapshots (``*_std``, Table I's ±)."""
    setup.module.eval()
    accumulator = MetricAccumulator()
    for start in range(0, len(graphs), batch_size):
        batch = Batch.from_data_list(list(graphs[start : start + batch_size]))
        accumulator.update(setup.predict(batch), batch)
    setup.module.train()
    metrics = accumulator.compute()
    return {key: metrics[key] for name in METRICS for key in (name, f"{name}_std")}


@dataclass
class Checkpoint:
    """Test metrics after ``steps`` Adam steps and the training seconds spent until then."""

    steps: int
    train_seconds: float
    metrics: dict[str, float]
    train_loss: float


@dataclass
class RunResult:
    """One (system, model) training run."""

    system: str
    model: str
    description: str
    num_parameters: int
    lr: float
    batch_size: int
    train_snapshots: int
    test_snapshots: int
    scale: float
    shift: float
    checkpoints: list[Checkpoint] = field(default_factory=list)
    paper: Optional[dict[str, tuple[float, float]]] = None
    wall_share: Optional[float] = None  # fixed boundary: see wall_distance_share (final model, test set)
    label_wall_share: Optional[float] = None  # the same for the true test labels


def train(
    setup: ModelSetup,
    train_graphs: Sequence[Data],
    test_graphs: Sequence[Data],
    steps: Sequence[int],
    batch_size: int,
    seed: int,
    log_every: int = 100,
) -> list[Checkpoint]:
    """Adam on the per-atom energy MSE, random batches; test metrics at every count in ``steps``."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(setup.module.parameters(), lr=setup.lr)
    setup.module.train()
    checkpoints: list[Checkpoint] = []
    targets = sorted(set(steps))
    seconds, recent = 0.0, []
    for step in range(1, targets[-1] + 1):
        start = time.perf_counter()
        index = torch.randperm(len(train_graphs), generator=generator)[:batch_size].tolist()
        batch = Batch.from_data_list([train_graphs[i] for i in index])
        predicted = setup.predict(batch)[keys.ATOMIC_ENERGIES]
        loss = torch.mean((predicted - batch[keys.ATOMIC_ENERGIES]) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        recent.append(loss.item())
        if step % log_every == 0:
            print(f"    step {step:6d}  train MSE (last {log_every}) {np.mean(recent[-log_every:]):.4g}  {seconds:.0f} s", flush=True)
        if step in targets:
            metrics = evaluate(setup, test_graphs, max(batch_size, 32))
            checkpoints.append(Checkpoint(step, seconds, metrics, float(np.mean(recent[-min(len(recent), 50) :]))))
            print(f"    -> {step} steps: " + "  ".join(f"{k[7:]}={v:.4g}" for k, v in metrics.items()), flush=True)
    return checkpoints


def run_system(system: str, args: argparse.Namespace) -> list[RunResult]:
    """Generate one system's data and train and evaluate every requested model on it."""
    spec = get_system(system)
    t0 = time.perf_counter()
    train_frames = load_snapshots(system, args.train_snapshots, args.seed, args.cache_dir)
    test_frames = load_snapshots(system, args.test_snapshots, args.seed + TEST_SEED_OFFSET, args.cache_dir)
    print(f"\n== {system}: {spec.reference}; data {time.perf_counter() - t0:.0f} s "
          f"({args.train_snapshots} train seed {args.seed}, {args.test_snapshots} test seed {args.seed + TEST_SEED_OFFSET})",
          flush=True)  # fmt: skip
    graph_cache: dict[float, tuple[list[Data], list[Data]]] = {}
    results = []
    for name in args.models:
        if name in ("fcn",) and len({len(a) for a in train_frames + test_frames}) != 1:
            print(f"  skip {name}: needs a fixed number of atoms")
            continue
        if name == "wall" and spec.boundary != "fixed":
            print(f"  skip {name}: a periodic box has no walls")
            continue
        probe = build_model(name, spec, 1.0, 0.0, args)
        if probe.graph_cutoff not in graph_cache:
            graph_cache[probe.graph_cutoff] = (to_graphs(train_frames, probe.graph_cutoff), to_graphs(test_frames, probe.graph_cutoff))
        train_graphs, test_graphs = graph_cache[probe.graph_cutoff]
        stats = compute_statistics(train_graphs, list(spec.symbols))
        scale, shift = stats.suggested_scale_shift(per_atom_labels=True)
        torch.manual_seed(args.seed)
        setup = build_model(name, spec, scale, shift, args)
        num_parameters = sum(p.numel() for p in setup.module.parameters())
        print(f"  {name}: {setup.description}, {num_parameters} parameters, lr {setup.lr:g}, "
              f"scale {scale:.4g} shift {shift:.4g}", flush=True)  # fmt: skip
        result = RunResult(
            system, name, setup.description, num_parameters, setup.lr, args.batch_size, args.train_snapshots,
            args.test_snapshots, scale, shift, paper=_paper_row(system, name),
        )  # fmt: skip
        if name == "wall":  # fitted, not trained: one checkpoint at step 0
            start = time.perf_counter()
            train_mse = setup.module.fit([g[keys.POSITIONS] for g in train_graphs], [g[keys.ATOMIC_ENERGIES] for g in train_graphs])
            metrics = evaluate(setup, test_graphs, max(args.batch_size, 32))
            result.checkpoints = [Checkpoint(0, time.perf_counter() - start, metrics, train_mse)]
            print(f"    fitted: train MSE {train_mse:.4g}, " + "  ".join(f"{k[7:]}={v:.4g}" for k, v in metrics.items()))
        else:
            result.checkpoints = train(setup, train_graphs, test_graphs, args.steps, args.batch_size, args.seed)
        if spec.boundary == "fixed":
            result.label_wall_share = wall_distance_share(test_graphs, [g[keys.ATOMIC_ENERGIES] for g in test_graphs], spec)
            print(f"    share of the test labels' variance explained by the wall distance alone: {result.label_wall_share:.3f}")
            result.wall_share = wall_distance_share(test_graphs, predictions(setup, test_graphs), spec)
            print(f"    share of {name}'s prediction variance explained by the wall distance alone: {result.wall_share:.3f}")
        results.append(result)
    return results


# --- reporting ---------------------------------------------------------------------------------


def _paper_row(system: str, model: str) -> Optional[dict[str, tuple[float, float]]]:
    row = PAPER_TABLE1.get(system, {}).get(model)
    return None if row is None else dict(zip(METRICS, row))


def format_table(results: Sequence[RunResult]) -> str:
    """Our metrics next to Table I's (``ours (paper)``), one line per run and step count."""
    header = f"{'system':28s} {'model':9s} {'steps':>6s} {'train s':>8s}  " + "  ".join(
        f"{label:>22s}" for label in ("MAE", "MME", "NMAE", "MAPE %")
    )
    lines = [header, "-" * len(header)]
    for result in results:
        for cp in result.checkpoints:
            cells = []
            for metric in METRICS:
                factor = 100.0 if metric == "atomic_mape" else 1.0
                ours = f"{cp.metrics[metric] * factor:.3f}±{cp.metrics[metric + '_std'] * factor:.3f}"
                paper = f"({result.paper[metric][0]:.3f})" if result.paper else "(-)"
                cells.append(f"{ours:>13s} {paper:>8s}")
            lines.append(f"{result.system:28s} {result.model:9s} {cp.steps:6d} {cp.train_seconds:8.0f}  " + "  ".join(cells))
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=["lj_2d_fixed_n64", "lj_2d_periodic_n128"], choices=list(SYSTEMS))
    parser.add_argument("--models", nargs="+", default=["a2i", "a2i-nope"], choices=MODELS)
    parser.add_argument("--train-snapshots", type=int, default=256)
    parser.add_argument("--test-snapshots", type=int, default=128, help="Table I's N_sample")
    parser.add_argument("--steps", type=int, nargs="+", default=[1000], help="Adam steps; several give an error-vs-budget curve")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam lr of a2i, a2i-nope and fcn (the paper: 2e-4 to 5e-4)")
    parser.add_argument("--gnn-lr", type=float, default=1e-3, help="Adam lr of gatv2 and se3")
    parser.add_argument("--fcn-hidden", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None, help="cache generated snapshots here (pickles)")
    parser.add_argument("--json", default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    if min(args.steps) < 1 or args.batch_size < 1 or args.train_snapshots < 1 or args.test_snapshots < 1:
        parser.error("--steps, --batch-size and the snapshot counts must be positive")
    return args


def main(argv: Optional[Sequence[str]] = None) -> list[RunResult]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    budget = (f"budget: {args.train_snapshots} train / {args.test_snapshots} test snapshots, {max(args.steps)} Adam steps "
              f"(checkpoints {sorted(set(args.steps))}) of batch {args.batch_size} = {max(args.steps) * args.batch_size} "
              f"snapshot-gradients per model, {args.threads} thread(s); the paper: 100,000 batches of 128 "
              f"(12.8 M) from > 2 million snapshots on GPUs")  # fmt: skip
    print(budget, flush=True)
    results: list[RunResult] = []
    for system in args.systems:
        results.extend(run_system(system, args))
    print("\nper-atom energy errors on the test snapshots: ours (paper Table I)\n")
    print(format_table(results))
    print(f"\n{budget}")
    if args.json:
        payload = {
            "budget": budget,
            "args": vars(args),
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "results": [asdict(r) for r in results],
        }
        with open(args.json, "w") as handle:
            json.dump(payload, handle, indent=1)
    return results


if __name__ == "__main__":
    main()
