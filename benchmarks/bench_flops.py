"""Arithmetic of one forward pass: FLOPs counted by ``torch.utils.flop_counter`` per model variant.

    python benchmarks/bench_flops.py [--variants se3 se3_node se3_recipe se3_recipe_node] [--batch 5]

A batch of ``--batch`` aspirin frames of the bundled GFN2-xTB set (float32, the training dtype),
the energy-only forward pass and energy + forces (the forward and its backward), with the share
of the largest operators. FLOPs are counted for matrix products and convolutions only (what
``FlopCounterMode`` knows); element-wise work is not in them. The variants are ``bench_md.py``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

import torch  # noqa: E402
from ase.io import read  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from bench_md import MODELS, build  # noqa: E402
from peers.data import ASPIRIN  # noqa: E402

from equiformer_lite import atoms_to_batch  # noqa: E402


def count(fn) -> tuple[int, dict]:
    mode = FlopCounterMode(display=False)
    with mode:
        fn()
    per_op = {str(op): n for op, n in mode.get_flop_counts()["Global"].items()}
    return mode.get_total_flops(), per_op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["se3", "se3_node", "se3_recipe", "se3_recipe_node"],
                        choices=sorted(m for m in MODELS if m.startswith("se3")))
    parser.add_argument("--batch", type=int, default=5)
    args = parser.parse_args()
    frames = [read(ASPIRIN, index=100 * k) for k in range(args.batch)]
    print("| variant | parameters | edges | forward GFLOP | energy + forces GFLOP | largest operators (forward) |")
    print("|---|---|---|---|---|---|")
    for name in args.variants:
        model = build(name, "float32")
        batch = atoms_to_batch(frames, model.cutoff, dtype=torch.float32)
        forward, per_op = count(lambda: model(batch, compute_forces=False))
        both, _ = count(lambda: model(batch))
        top = ", ".join(f"{op} {100 * n / forward:.0f} %" for op, n in sorted(per_op.items(), key=lambda kv: -kv[1])[:2])
        params = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {params:,} | {batch.edge_index.shape[1]:,} | {forward / 1e9:.3f} | {both / 1e9:.3f} | {top} |")


if __name__ == "__main__":
    main()
