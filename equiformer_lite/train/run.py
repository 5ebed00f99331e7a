"""A whole training run from a config: data, splits, reference energies, model, training, report."""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch_geometric.loader import DataLoader

from ..data import keys
from ..models import MODELS, load_model, save_model
from ..utils import atomic_write_text, free_cores
from .config import RunConfig, check_model_section
from .metrics import MetricAccumulator
from .plots import plot_learning_curve, plot_parity
from .trainer import Trainer, TrainingDiverged

__all__ = ["BUNDLED_DATA", "committee_members", "resolve_data_paths", "load_splits", "pooled_split_indices", "train_committee", "train_from_config", "evaluate_model"]

log = logging.getLogger(__name__)

# Data sets shipped in equiformer_lite/resources (see data_cards/).
BUNDLED_DATA = {
    "ethanol": "ethanol_gfn2_md.extxyz.gz",
    "water_box": "water_box_gfn2_md.extxyz.gz",
}


def resolve_data_paths(spec: Union[str, Sequence[str]]) -> list[Path]:
    """``bundled:NAME`` -> the shipped file; anything else is a path. Accepts one or a list."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    paths = []
    for item in specs:
        if item.startswith("bundled:"):
            name = item.removeprefix("bundled:")
            if name not in BUNDLED_DATA:
                raise ValueError(f"unknown bundled data set '{name}', choose one of {sorted(BUNDLED_DATA)}")
            paths.append(Path(str(resources.files("equiformer_lite") / "resources" / BUNDLED_DATA[name])))
        else:
            path = Path(item).expanduser()
            if not path.exists():
                raise FileNotFoundError(f"data file {path} does not exist")
            paths.append(path)
    return paths


def _load_files(spec, cutoff: float, d):
    """One data set of the graphs of the files ``spec`` names (stress labels of mixed data padded)."""
    from ..data import AtomicDataset

    datasets = [
        AtomicDataset.from_file(path, cutoff, d.labels, format=d.format, cache_dir=d.cache_dir)
        for path in resolve_data_paths(spec)
    ]
    return datasets[0] if len(datasets) == 1 else AtomicDataset.concatenate(datasets)


def _kept(num_structures: int, d) -> np.ndarray:
    """Indices of the structures ``max_structures`` keeps (all of them without it), in file order."""
    if d.max_structures is not None and num_structures > d.max_structures:
        return np.sort(np.random.default_rng(d.split_seed).permutation(num_structures)[: d.max_structures])
    return np.arange(num_structures)


def _max_structures(dataset, d):
    keep = _kept(len(dataset), d)
    return dataset if len(keep) == len(dataset) else dataset.subset(keep)


def pooled_split_indices(num_structures: int, config: RunConfig) -> dict[str, np.ndarray]:
    """For a config with one pooled ``data.path``: the indices, into the concatenation of its files'
    frames in order, of the training, validation and test structures :func:`load_splits` uses.
    For handing the very same split to another code (a peer benchmark)."""
    from ..data import load_split_indices, split_indices

    d = config.data
    if d.train_path is not None:
        raise ValueError("pooled_split_indices needs a config with data.path, not data.train_path")
    keep = _kept(num_structures, d)
    if d.split_file:
        split = load_split_indices(d.split_file, num_structures=len(keep))
    else:
        split = split_indices(len(keep), val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.split_seed)
    return {name: keep[np.asarray(split[name], dtype=np.int64)] for name in ("train", "val", "test")}


def load_splits(config: RunConfig, cutoff: float):
    """The training, validation and test sets a config's ``data`` section describes: a pooled
    ``path`` split by fractions or an index file, or separate ``train_path``/``val_path``/``test_path``
    files (see :class:`~equiformer_lite.train.DataConfig`)."""
    from ..data import split_indices

    d = config.data
    if d.train_path is None:
        dataset = _load_files(d.path, cutoff, d)
        split = pooled_split_indices(len(dataset), config)
        return tuple(dataset.subset(split[k]) for k in ("train", "val", "test"))
    train = _max_structures(_load_files(d.train_path, cutoff, d), d)
    if d.val_path is None:
        split = split_indices(len(train), val_fraction=d.val_fraction, test_fraction=0.0, seed=d.split_seed)
        train, val = train.subset(split["train"]), train.subset(split["val"])
    else:
        val = _load_files(d.val_path, cutoff, d)
    test = _load_files(d.test_path, cutoff, d) if d.test_path is not None else train.subset([])
    return train, val, test


def _reference_energies(config: RunConfig, train_set, species: list[str]) -> dict[str, float]:
    from ..data import fit_atomic_energies

    given = config.data.atomic_energies
    has_energy = len(train_set) > 0 and keys.ENERGY in train_set[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit_atomic_energies(train_set, species) if has_energy else None
    if isinstance(given, dict):
        missing = sorted(set(species) - set(given))
        if missing:
            raise ValueError(f"data.atomic_energies gives no E0 for {missing} (species {species})")
        if fitted is not None:
            note = " (not unique: the compositions do not determine every element)" if caught else ""
            print("reference energies E0 (eV): from the config " + _fmt(given) + "; least-squares fit would give " + _fmt(fitted) + note)
        return {s: float(given[s]) for s in species}
    for warning in caught:  # the fit is what will be used: pass its warnings on
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if given == "fit" and fitted is not None:
        print("reference energies E0 (eV), least-squares fit on the training set: " + _fmt(fitted))
        return fitted
    return {s: 0.0 for s in species}


def _fmt(energies: dict[str, float]) -> str:
    return ", ".join(f"{s} {e:.4f}" for s, e in energies.items())


def setup_distributed() -> bool:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, NCCL on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


# What a run writes into its output directory (besides TensorBoard's folder).
RUN_FILES = ("model.pt", "last.pt", "best.pt", "metrics.json", "log.csv", "learning_curve.png",
             "parity_energy.png", "parity_forces.png")
CONFIG_HEADER = "# equiformer-lite train: the resolved config of the run in this directory\n"


def check_output_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start a fresh run over a previous one (``force`` deletes the previous run's files)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {out} is a file, not a directory")
    previous = [name for name in RUN_FILES if (out / name).exists()]
    if resume or not previous:
        return
    if not force:
        raise ValueError(
            f"output_dir {out} already holds a run ({', '.join(previous)}): pass --resume to continue it, "
            f"--force to replace it, or choose another output_dir"
        )
    for name in previous:
        (out / name).unlink()
    if _config_path(out).name == "config.yaml" and (out / "config.yaml").exists():
        (out / "config.yaml").unlink()


def _config_path(out: Path) -> Path:
    """Where the run keeps its resolved config: ``config.yaml``, unless a config.yaml there is the
    user's own (not written by a run), which is never overwritten: then ``run_config.yaml``."""
    path = out / "config.yaml"
    if path.exists() and not path.read_text(errors="replace").startswith(CONFIG_HEADER):
        return out / "run_config.yaml"
    return path


# A model whose force error is this many times that of predicting zero forces has diverged.
DIVERGED_FORCE_RATIO = 100.0


def check_trained_model(model: torch.nn.Module, dataset, metrics: dict[str, float]) -> None:
    """:class:`TrainingDiverged` unless the trained model is usable: every weight and every
    metric of it on ``dataset`` finite, and its force MAE within ``DIVERGED_FORCE_RATIO`` times
    the MAE of predicting zero forces (a diverged run gives finite weights with 1e17 eV/Å forces)."""
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingDiverged(f"the trained model's weight {name!r} is not finite (NaN or inf); no model.pt written")
    bad = sorted(k for k, v in metrics.items() if not np.isfinite(v))
    if bad:
        raise TrainingDiverged(f"the trained model gives non-finite {', '.join(bad)} (the training diverged: "
                               f"lower training.lr); no model.pt written")
    if "forces_mae" in metrics and len(dataset):
        zero_mae = float(torch.cat([g[keys.FORCES].reshape(-1) for g in dataset]).abs().mean())
        if zero_mae > 0 and metrics["forces_mae"] > DIVERGED_FORCE_RATIO * zero_mae:
            raise TrainingDiverged(
                f"the trained model's force MAE is {metrics['forces_mae']:.3g} eV/Å, more than {DIVERGED_FORCE_RATIO:g} x "
                f"that of predicting zero forces ({zero_mae:.3g} eV/Å): the training diverged (lower training.lr); "
                f"no model.pt written"
            )


def train_from_config(config: RunConfig, *, resume: bool = False, force: bool = False) -> dict[str, Any]:
    """Train the model a config describes; write the model, logs, metrics and plots.

    A fresh run (``resume=False``) refuses an output directory that holds a previous run unless
    ``force`` (which deletes that run's files first); a config file the user keeps there is never
    overwritten. A run whose final model is not finite raises :class:`TrainingDiverged` and writes
    no ``model.pt`` (its checkpoints stay, to inspect).

    Returns the final metrics (validation and test, of the EMA model with the best validation loss).
    """
    setup_distributed()
    rank = dist.get_rank() if dist.is_initialized() else 0
    t = config.training
    if t.num_threads is not None:
        torch.set_num_threads(t.num_threads)
    elif "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > 1:
        # Not told: leave the cores other jobs keep busy (spinning threads on a shared core cost
        # ~3x; benchmarks/bench_threads.py).
        free = free_cores()
        if free < torch.get_num_threads():
            if rank == 0:
                print(f"{torch.get_num_threads() - free} of {torch.get_num_threads()} cores are busy with other "
                      f"processes: training on {free} thread(s) (training.num_threads overrides)")
            torch.set_num_threads(free)
    torch.manual_seed(t.seed)
    np.random.seed(t.seed)
    out = Path(config.output_dir)
    check_model_section(config.model)  # a RunConfig may be built without from_dict
    if rank == 0:
        check_output_dir(out, resume=resume, force=force)
    model_config = dict(config.model)
    model_type = model_config.pop("type")
    model_class = MODELS[model_type]
    cutoff = model_class.graph_cutoff_of(model_config)  # the graphs come first: the statistics need them

    train_set, val_set, test_set = load_splits(config, cutoff)
    species = model_config.pop("species", None) or sorted({s for part in (train_set, val_set, test_set) for s in part.species})
    e0 = _reference_energies(config, train_set, species)
    from ..data import compute_statistics

    stats = compute_statistics(train_set, species, e0)
    per_atom_only = t.atomic_energies_weight > 0 and t.forces_weight == 0  # e.g. the A2I paper's task
    scale, shift = stats.suggested_scale_shift(per_atom_labels=per_atom_only)
    if "avg_num_neighbors" in inspect.signature(model_class).parameters:
        model_config.setdefault("avg_num_neighbors", stats.avg_num_neighbors)
    model = model_class(species=species, dtype=t.dtype, atomic_energies=e0, scale=scale, shift=shift, **model_config)
    if rank == 0:
        print(f"{len(train_set)} training, {len(val_set)} validation, {len(test_set)} test structures; "
              f"{sum(p.numel() for p in model.parameters())} parameters; scale {scale:.4g} eV, shift {shift:.4g} eV")

    trainer = Trainer(model, train_set, val_set, t, out, resume=resume)  # a resume is checked here
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        config_path = _config_path(out)
        if config_path.name != "config.yaml":
            print(f"{out / 'config.yaml'} is not a run's file: the run's config goes to {config_path}")
        atomic_write_text(config_path, CONFIG_HEADER + yaml.safe_dump(config.to_dict(), sort_keys=False))
    history = trainer.fit()
    if rank != 0:
        return {}
    best = trainer.load_best_model(out / "best.pt") if (out / "best.pt").exists() else trainer.eval_model
    validation = trainer.evaluate(val_set, best) if len(val_set) else {}
    check_trained_model(best, *((val_set, validation) if len(val_set) else (train_set, trainer.evaluate(train_set, best))))
    save_model(best, out / "model.pt")
    results = {
        "validation": validation,
        "test": trainer.evaluate(test_set, best) if len(test_set) else {},
        "counters": trainer.counters,
        "epochs": trainer.epoch,
        "train_structures_per_s": float(np.mean([row["train_structures_per_s"] for row in history])) if history else None,
        "num_train": len(train_set),
        "num_val": len(val_set),
        "num_test": len(test_set),
        "reference_energies": e0,
    }
    atomic_write_text(out / "metrics.json", json.dumps(results, indent=2))
    plot_learning_curve(trainer.history, out / "learning_curve.png")
    parity_set = test_set if len(test_set) else val_set
    if len(parity_set):
        _parity_plots(best, parity_set, out, t.batch_size)
    return results


def train_committee(config: RunConfig, size: int, *, resume: bool = False, force: bool = False) -> list[dict[str, Any]]:
    """Train ``size`` members of one config into ``output_dir/member_K`` (seed ``training.seed + K``:
    other initial weights and batch orders on the same split), and write ``committee.json``.
    :class:`~equiformer_lite.calculators.EquiformerCalculator` on the members (or
    :func:`committee_members` of the directory) gives their mean and spread."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"a committee needs at least 2 members, got {size!r}")
    out = Path(config.output_dir)
    results = []
    for k in range(size):
        member = dataclasses.replace(config, output_dir=str(out / f"member_{k}"),
                                     training=dataclasses.replace(config.training, seed=config.training.seed + k))
        print(f"--- committee member {k + 1} of {size} (seed {member.training.seed}) ---")
        results.append(train_from_config(member, resume=resume, force=force))
    summary = {"members": [f"member_{k}/model.pt" for k in range(size)], "results": results}
    atomic_write_text(out / "committee.json", json.dumps(summary, indent=2))
    return results


def committee_members(path: Union[str, Path]) -> list[Path]:
    """The model files of a committee directory written by :func:`train_committee`."""
    path = Path(path)
    index = path / "committee.json"
    if not index.is_file():
        raise ValueError(f"{path} is not a committee directory (no committee.json): train one with --committee N")
    members = [path / name for name in json.loads(index.read_text())["members"]]
    missing = [str(m) for m in members if not m.is_file()]
    if missing:
        raise FileNotFoundError(f"committee {path} lacks the member files {missing}")
    return members


def _parity_plots(model, dataset, out: Path, batch_size: int) -> None:
    energies_true, energies_pred, forces_true, forces_pred = [], [], [], []
    model.eval()
    for batch in DataLoader(dataset, batch_size=batch_size):
        outputs = model(batch, compute_stress=False)
        n = batch[keys.NUM_ATOMS].double()
        if keys.ENERGY in batch:
            energies_true.append((batch[keys.ENERGY].double() / n).numpy())
            energies_pred.append((outputs[keys.ENERGY].detach().double() / n).numpy())
        if keys.FORCES in batch:
            forces_true.append(batch[keys.FORCES].double().numpy())
            forces_pred.append(outputs[keys.FORCES].detach().double().numpy())
    if energies_true:
        plot_parity(np.concatenate(energies_true), np.concatenate(energies_pred), out / "parity_energy.png", quantity="energy per atom", unit="eV")
    if forces_true:
        plot_parity(np.concatenate(forces_true), np.concatenate(forces_pred), out / "parity_forces.png", quantity="force component", unit="eV/Å")


EVALUATION_FILES = ("metrics.json", "parity_energy.png", "parity_forces.png")


def check_evaluation_output(output: Optional[Path], *, force: bool = False) -> None:
    """An evaluation's ``output`` must be a directory that holds no earlier evaluation (unless ``force``)."""
    if output is None:
        return
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ValueError(f"the evaluation output {output} is a file; give a directory for metrics.json and the parity plots")
    previous = [name for name in EVALUATION_FILES if (output / name).exists()]
    if previous and not force:
        raise ValueError(f"{output} already holds an evaluation ({', '.join(previous)}): pass --force to replace it, "
                         f"or choose another directory")


def evaluate_model(model_path: Union[str, Path], data: Union[str, Sequence[str]], labels=None, *, batch_size: int = 16,
                   output: Optional[Path] = None, force: bool = False) -> dict[str, float]:
    """Metrics of a saved model on data files (and parity plots into ``output`` if given; an
    ``output`` with an earlier evaluation is refused unless ``force``). ``labels``: a
    :class:`~equiformer_lite.data.LabelSpec` for the files' keys and units (default: ASE's)."""
    from ..data import DEFAULT_LABELS, AtomicDataset

    check_evaluation_output(output, force=force)
    model = load_model(model_path)
    labels = DEFAULT_LABELS if labels is None else labels
    datasets = [AtomicDataset.from_file(p, model.graph_cutoff, labels) for p in resolve_data_paths(data)]
    dataset = datasets[0] if len(datasets) == 1 else AtomicDataset.concatenate(datasets)
    metrics = MetricAccumulator()
    for batch in DataLoader(dataset, batch_size=batch_size):
        metrics.update(model(batch), batch)
    result = metrics.compute()
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        _parity_plots(model, dataset, output, batch_size)
        atomic_write_text(output / "metrics.json", json.dumps(result, indent=2))
    return result
