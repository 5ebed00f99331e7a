#!/usr/bin/env bash
# The runs behind benchmarks/README_a2i.md: each writes one JSON file of this folder.
# Run from the repository root: bash benchmarks/results/a2i_table1/run_all.sh [output folder]
# About 3 CPU-hours on one thread per run (the runs are independent: two at a time on two cores).
# Results are deterministic for a seed on one machine; the training times are not.
set -euo pipefail
out="${1:-benchmarks/results/a2i_table1}"
mkdir -p "$out"
export OMP_NUM_THREADS=1
bench() { python3 benchmarks/bench_a2i_table1.py --test-snapshots 128 --batch-size 16 --threads 1 --seed 0 \
    --cache-dir "${A2I_CACHE:-/tmp/a2i_cache}" "$@"; }

# fixed boundary, 256 training snapshots: the wall-distance diagnostic, A2I (trained on until it memorises), FC baseline
bench --systems lj_2d_fixed_n64 --models wall a2i fcn --train-snapshots 256 --steps 250 500 1000 2000 4000 8000 12000 --json "$out/lj_fixed.json"
bench --systems dpd_2d_fixed_n64 --models wall a2i fcn --train-snapshots 256 --steps 250 500 1000 4000 --json "$out/dpd_fixed.json"
# fixed boundary, 8,192 training snapshots: long A2I run
bench --systems lj_2d_fixed_n64 --models wall a2i --train-snapshots 8192 --steps 1000 2000 4000 6000 8000 12000 16000 --json "$out/lj2d_n64_8192.json"
# periodic 2D LJ: A2I with and without position encoding on 8,192 snapshots; GATv2 and SE3 on 256
bench --systems lj_2d_periodic_n128 --models a2i --train-snapshots 8192 --steps 1000 2000 4000 6000 8000 --json "$out/lj2d_pbc_pe_8192.json"
bench --systems lj_2d_periodic_n128 --models a2i-nope --train-snapshots 8192 --steps 1000 2000 4000 6000 8000 --json "$out/lj2d_pbc_nope_8192.json"
bench --systems lj_2d_periodic_n128 --models gatv2 se3 --train-snapshots 256 --steps 250 500 1000 --json "$out/lj2d_pbc_gnn.json"
# 3D systems, 256 training snapshots
bench --systems lj_3d_periodic_n256 --models a2i a2i-nope gatv2 --train-snapshots 256 --steps 250 500 1000 --json "$out/lj3d.json"
bench --systems lj_3d_periodic_n256 --models se3 --train-snapshots 256 --steps 250 --json "$out/lj3d_se3.json"
bench --systems sw_silicon --models a2i gatv2 --train-snapshots 256 --steps 250 500 1000 --json "$out/sw.json"
bench --systems sw_silicon --models se3 --train-snapshots 256 --steps 250 500 1000 --json "$out/sw_se3.json"
bench --systems ka_3d_periodic_n256_fa0.8 --models a2i gatv2 --train-snapshots 256 --steps 250 500 1000 --json "$out/ka.json"
