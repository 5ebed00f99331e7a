"""Command line: ``equiformer-lite train | evaluate | audit | export | md``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence

import torch
from ase.io import read

from .models import MODELS, build_model, load_model
from .testing.audit import audit, format_audit, rows_as_dicts
from .utils import parse_dtype

DEFAULT_STRUCTURES = "audit_structures.extxyz"


def default_structures_path() -> Path:
    return Path(str(resources.files("equiformer_lite") / "resources" / DEFAULT_STRUCTURES))


def _read_structures(option: Optional[str]) -> tuple[Path, list]:
    """The structures of ``--structures`` (default: the bundled audit set) and their path."""
    path = Path(option) if option else default_structures_path()
    try:
        return path, read(path, index=":")
    except Exception as err:
        raise ValueError(f"cannot read structures from {path}: {err}") from err


def _audit(args: argparse.Namespace) -> int:
    path, structures = _read_structures(args.structures)
    dtype = parse_dtype(args.dtype)
    if args.model:
        model = load_model(args.model).with_dtype(dtype)
        source = args.model
    else:
        torch.manual_seed(args.seed)
        species = sorted({s for atoms in structures for s in atoms.get_chemical_symbols()})
        model = build_model(args.model_type, species=species, cutoff=args.cutoff, dtype=dtype)
        source = f"a freshly initialised {type(model).__name__} (species {species}, cutoff {args.cutoff} Å, seed {args.seed})"
    rows = audit(model, structures, n_trials=args.trials, seed=args.seed)
    print(format_audit(rows, title=f"Physics audit of {source}\non {len(structures)} structures from {path}, {args.dtype}"))
    if args.output:
        Path(args.output).write_text(json.dumps({"model": source, "dtype": args.dtype, "rows": rows_as_dicts(rows)}, indent=2))
        print(f"report written to {args.output}")
    return 0 if all(r.passed for r in rows) else 1


def _train(args: argparse.Namespace) -> int:
    from .train import load_config, train_committee, train_from_config

    config = load_config(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.epochs is not None:  # through the dataclass again, so its checks see the new value
        config.training = dataclasses.replace(config.training, epochs=args.epochs)
    if args.committee is not None:
        members = train_committee(config, args.committee, resume=args.resume, force=args.force)
        forces = [m["test"].get("forces_mae", m["validation"].get("forces_mae")) for m in members if m]
        print(f"\ncommittee of {args.committee} in {config.output_dir}/ (committee.json); member force MAE (eV/Å): "
              + ", ".join(f"{f:.4g}" for f in forces if f is not None))
        return 0
    results = train_from_config(config, resume=args.resume, force=args.force)
    if results:
        test = results["test"] or results["validation"]
        print(f"\nfinished {results['epochs']} epochs; {results['counters']['clipped']} clipped and "
              f"{results['counters']['skipped']} skipped steps; {results['train_structures_per_s']:.1f} structures/s")
        print("test metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in test.items()))
        print(f"model, metrics, log and plots in {config.output_dir}/")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .data import LabelSpec
    from .train import evaluate_model

    labels = LabelSpec(energy_key=_key_or_none(args.energy_key), forces_key=_key_or_none(args.forces_key),
                       stress_key=_key_or_none(args.stress_key), energy_unit=args.energy_unit, length_unit=args.length_unit)
    metrics = evaluate_model(args.model, args.data, labels, batch_size=args.batch_size,
                             output=Path(args.output) if args.output else None, force=args.force)
    for key, value in metrics.items():
        print(f"{key:>24}  {value:.6g}")
    return 0


def _key_or_none(key: str) -> Optional[str]:
    """A label key from the command line; ``none`` leaves the label out."""
    return None if key.lower() == "none" else key


def _export(args: argparse.Namespace) -> int:
    from .export import ExportRefused, export_model, format_report

    _, structures = _read_structures(args.structures)
    model = load_model(args.model)
    if args.dtype:
        model = model.with_dtype(args.dtype)
    output = Path(args.output) if args.output else Path(args.model).with_suffix(".pt2")
    if output.exists() and not args.force:
        raise FileExistsError(f"{output} exists (pass --force to replace it)")
    print(f"exporting {args.model} ({type(model).__name__}, {str(model.dtype).removeprefix('torch.')}) to {output}: "
          "tracing, compiling (a few minutes), checking ...", flush=True)
    try:
        report = export_model(model, output, structures, n_trials=args.trials)
    except ExportRefused as err:
        print(err)
        return 1
    print(format_report(report))
    print(f"wrote {output}: run it with EquiformerCalculator({str(output)!r}) or load_model")
    return 0


# md command-line options -> the md config's keys.
MD_OPTIONS = {"ensemble": "ensemble", "steps": "steps", "timestep": "timestep_fs", "temperature": "temperature_K",
              "pressure": "pressure_GPa", "seed": "seed", "output_dir": "output_dir", "dtype": "dtype"}


def _md(args: argparse.Namespace) -> int:
    from .md import MDConfig, load_md_config, read_frame, run_md
    from .train import committee_members, resolve_data_paths

    raw = load_md_config(args.config).to_dict()
    raw.update({key: getattr(args, option) for option, key in MD_OPTIONS.items() if getattr(args, option) is not None})
    config = MDConfig.from_dict(raw)  # checked again with the options in
    path = resolve_data_paths(args.structure)[0]
    atoms = read_frame(path, args.frame)
    print(f"{config.ensemble} ({config.steps} steps of {config.timestep_fs} fs) of {len(atoms)} atoms from {path}, "
          f"frame {args.frame}, with {args.model}", flush=True)
    model = committee_members(args.model) if Path(args.model).is_dir() else args.model
    result = run_md(model, atoms, config, force=args.force)
    print(f"{result.status}: {result.steps} steps ({result.time_ps:.4g} ps) in {result.wall_s:.1f} s, "
          f"{result.ns_per_day:.3g} ns/day; trajectory, log and plot in {result.output_dir}/")
    if result.status != "completed":
        print(f"error: the simulation stopped at {result.reason}", file=sys.stderr)
        return 1
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="equiformer-lite", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a potential (default: SE3Potential on the bundled GFN2-xTB data)")
    p.add_argument("config", nargs="?", help="YAML run config (see configs/); default: the bundled default job")
    p.add_argument("--output-dir", help="override output_dir")
    p.add_argument("--epochs", type=_positive_int, help="override training.epochs")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt")
    p.add_argument("--force", action="store_true", help="replace a previous run in OUTPUT_DIR (default: refuse)")
    p.add_argument("--committee", type=_positive_int, metavar="N",
                   help="train N members (seeds seed..seed+N-1) into OUTPUT_DIR/member_K: a committee for uncertainty")
    p.set_defaults(func=_train)
    p = sub.add_parser("evaluate", help="errors of a saved model on a data file")
    p.add_argument("model", help="model file written by training (model.pt)")
    p.add_argument("data", nargs="+", help="data files (or bundled:NAME)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--energy-key", default="energy", help="key of the energy labels ('none': leave them out)")
    p.add_argument("--forces-key", default="forces", help="key of the force labels ('none': leave them out)")
    p.add_argument("--stress-key", default="stress", help="key of the stress labels ('none': leave them out)")
    p.add_argument("--energy-unit", help="energy unit of the files, e.g. kcal/mol or Hartree (default: the format's)")
    p.add_argument("--length-unit", help="length unit of the files, e.g. Bohr (default: the format's)")
    p.add_argument("--output", help="directory for metrics.json and parity plots")
    p.add_argument("--force", action="store_true", help="replace an earlier evaluation in --output")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("audit", help="check equivariance, forces, stress, periodicity and cutoff smoothness")
    p.add_argument("--model", help="model file written by save_model (default: a fresh model of --model-type)")
    p.add_argument("--model-type", choices=sorted(MODELS), default="se3", help="type of the fresh model")
    p.add_argument("--structures", help=f"any file ASE reads (default: the bundled {DEFAULT_STRUCTURES})")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--cutoff", type=float, default=5.0, help="cutoff of the fresh model, Å")
    p.add_argument("--trials", type=int, default=4, help="random transformations per structure")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="audit_report.json", help="JSON report ('' for none)")
    p.set_defaults(func=_audit)
    p = sub.add_parser("export", help="compile a saved model into one self-contained .pt2 file (AOTInductor), "
                                      "written only if it passes the physics audit")
    p.add_argument("model", help="model file written by training (model.pt)")
    p.add_argument("-o", "--output", help="the .pt2 file (default: MODEL with the suffix .pt2)")
    p.add_argument("--dtype", choices=["float64", "float32"], help="export in this dtype (default: the model's)")
    p.add_argument("--structures", help=f"structures to check the artefact on (default: the bundled {DEFAULT_STRUCTURES})")
    p.add_argument("--trials", type=int, default=2, help="random rotations per structure in the audit")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_export)
    p = sub.add_parser("md", help="molecular dynamics (NVE, NVT, NPT) with a model, stopped when it leaves physical ground")
    p.add_argument("model", help="model file (model.pt, or an exported .pt2), or a committee directory (train --committee)")
    p.add_argument("structure", help="the starting structure: any file ASE reads, or bundled:NAME")
    p.add_argument("--config", help="YAML md config (see configs/md/nvt.yaml); options below override it")
    p.add_argument("--frame", type=int, default=0, help="frame of STRUCTURE to start from (default 0)")
    p.add_argument("--ensemble", help="nve, nvt (Langevin), nvt-nose-hoover, npt (MTK), npt-berendsen")
    p.add_argument("--steps", type=_positive_int)
    p.add_argument("--timestep", type=float, help="fs")
    p.add_argument("--temperature", type=float, help="K")
    p.add_argument("--pressure", type=float, help="GPa (npt)")
    p.add_argument("--seed", type=int)
    p.add_argument("--dtype", choices=["float64", "float32"], help="evaluate the model in this dtype")
    p.add_argument("--output-dir", help="where the trajectory, log and plot go (default runs/md)")
    p.add_argument("--force", action="store_true", help="replace a previous simulation in the output directory")
    p.set_defaults(func=_md)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run a command. An error is one line on stderr and exit status 2 (the traceback with ``--debug``)."""
    args = build_parser().parse_args(argv)
    if args.debug:
        return args.func(args)
    try:
        return args.func(args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # what went wrong, in one line, instead of a traceback
        lines = str(err).strip().splitlines() or [type(err).__name__]
        more = " ..." if len(lines) > 1 else ""
        print(f"error: {lines[0]}{more} ({type(err).__name__}; rerun with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
