"""Generate per-atom-energy data of the A2I paper's model systems as extended XYZ.

Each frame carries ``energy`` (total, in ``info``), ``energies`` (per atom) and ``forces``
(per-atom columns), plus the system's metadata in ``info``; ``ase.io.read(path, index=":")``
reads them back (ASE puts the labels into a ``SinglePointCalculator``). Units are those of the
system (LJ reduced units, or kcal/mol and Å for Stillinger-Weber; see ``info["units"]``).

Examples (run from the repository root)::

    python scripts/generate_synthetic_data.py --list
    python scripts/generate_synthetic_data.py --system lj_3d_periodic_n256 --snapshots 128 --seed 0 --out lj3d.extxyz
    python scripts/generate_synthetic_data.py --system dpd_2d_fixed_n64 --snapshots 128 --out dpd.extxyz --set form=eq12
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy's BLAS is not used in the hot loop; keep it quiet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import ase.io  # noqa: E402

from equiformer_lite.data.synthetic import SYSTEMS, generate  # noqa: E402


def _value(text: str) -> Any:
    """``--set`` values: bool, int, float, else the string."""
    if text in ("True", "true", "False", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("num_atoms", "density", "temperature", "boundary", "fraction_a",
                 "equilibration_steps", "sample_interval", "timestep", "friction"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            out[name] = value
    for item in args.set or []:
        if "=" not in item:
            raise SystemExit(f"--set expects NAME=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        out[key.strip()] = _value(text.strip())
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=list(SYSTEMS), help="registered system name (see --list)")
    parser.add_argument(
        "--snapshots", type=int, default=128, help="number of snapshots (default 128, Table I's N_sample)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, help="output file, extended XYZ (e.g. data.extxyz)")
    parser.add_argument("--list", action="store_true", help="list the systems and exit")
    overrides = parser.add_argument_group("overrides (default: the registered values)")
    overrides.add_argument("--num-atoms", dest="num_atoms", type=int)
    overrides.add_argument("--density", type=float)
    overrides.add_argument("--temperature", type=float)
    overrides.add_argument("--boundary", choices=["periodic", "fixed"])
    overrides.add_argument("--fraction-a", dest="fraction_a", type=float, help="Kob-Andersen f_A in (0, 1]")
    overrides.add_argument("--equilibration-steps", dest="equilibration_steps", type=int)
    overrides.add_argument("--sample-interval", dest="sample_interval", type=int)
    overrides.add_argument("--timestep", type=float)
    overrides.add_argument("--friction", type=float)
    overrides.add_argument(
        "--set", action="append", metavar="NAME=VALUE",
        help="a potential parameter, e.g. form=eq12 (DPD) or lambda_=20 (SW); repeatable",
    )  # fmt: skip
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name, spec in SYSTEMS.items():
            print(
                f"{name:28s} N={spec.num_atoms:<4d} {spec.dimension}D {spec.boundary:8s} "
                f"density={spec.density:g} {spec.density_unit}  T={spec.temperature:g}  {spec.reference}"
            )
        return 0
    if args.system is None or args.out is None:
        build_parser().error("--system and --out are required (or --list)")
    try:
        start = time.perf_counter()
        frames = generate(args.system, args.snapshots, seed=args.seed, **_overrides(args))
        elapsed = time.perf_counter() - start
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(args.out, frames, format="extxyz")
    info = frames[0].info
    print(
        f"wrote {len(frames)} snapshots of {args.system} ({len(frames[0])} atoms, {info['boundary']}, "
        f"{info['units']}) to {args.out} in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
