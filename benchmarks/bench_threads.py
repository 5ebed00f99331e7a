"""Training-step time of the README's default job on a machine that another job shares.

torch's intra-op threads (OpenMP) spin-wait for work between parallel regions by default: on a
machine whose cores are all busy, a spinning thread holds a core that another process needs,
and both slow down far more than their share of the cores would explain. This benchmark
measures a training step of the default job's model (SE3Potential, 8 channels, 2 layers, batches
of 8 bundled ethanol frames, energy + force loss with its double backward) in a fresh process for
each setting:

* ``alone`` or ``shared`` (beside one single-thread busy torch process: another job);
* threads = all cores with OpenMP's default (spinning) wait, with ``OMP_WAIT_POLICY=PASSIVE``
  (threads sleep when idle), or one thread fewer than the cores (the free cores).

    python benchmarks/bench_threads.py            # writes benchmarks/results/threads/threads.{json,md}

Time it with nothing else running (the "shared" rows bring their own competitor).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "threads"

WORKER = r"""
import json, sys, time, torch
from equiformer_lite import SE3Potential, atoms_to_batch, keys
from equiformer_lite.data import read_structures
threads, steps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
from importlib import resources
path = resources.files("equiformer_lite") / "resources" / "ethanol_gfn2_md.extxyz.gz"
frames = read_structures(str(path))[:64]
model = SE3Potential(["H", "C", "O"], cutoff=5.0, lmax=2, channels=8, num_heads=2, num_layers=2).train()
batches = [atoms_to_batch(frames[i:i + 8], model.cutoff) for i in range(0, 64, 8)]
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
times = []
for step in range(steps + 3):
    batch = batches[step % len(batches)]
    start = time.perf_counter()
    out = model(batch)
    loss = (out[keys.ENERGY] - batch[keys.ENERGY]).square().mean() + 10 * (out[keys.FORCES] - batch[keys.FORCES]).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step >= 3:
        times.append(time.perf_counter() - start)
print(json.dumps(times))
"""

COMPETITOR = r"""
import torch
torch.set_num_threads(1)
a = torch.randn(384, 384)
while True:
    a = torch.tanh(a @ a)
"""


def run(threads: int, wait_policy: str | None, shared: bool, steps: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    competitor = None
    if shared:
        competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR], env={k: v for k, v in env.items() if k != "OMP_WAIT_POLICY"})
        time.sleep(2.0)
    try:
        done = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(steps)], env=env, check=True,
                              capture_output=True, text=True, timeout=1800)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    settings = [
        (f"{cores} threads, default wait", cores, None),
        (f"{cores} threads, OMP_WAIT_POLICY=PASSIVE", cores, "PASSIVE"),
        (f"{max(cores - 1, 1)} thread(s): the free cores", max(cores - 1, 1), None),
    ]
    rows = []
    for shared in (False, True):
        for name, threads, policy in settings:
            times = run(threads, policy, shared, args.steps)
            row = {"machine": "shared with a 1-thread job" if shared else "alone", "setting": name, "threads": threads,
                   "wait_policy": policy or "default", "median_s": statistics.median(times), "mean_s": statistics.fmean(times),
                   "steps": len(times)}
            rows.append(row)
            print(f"{row['machine']:<28} {name:<40} median {row['median_s'] * 1e3:8.1f} ms/step", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_threads.py" + ("".join(f" {a}" for a in argv) if argv else "")
    (args.out / "threads.json").write_text(json.dumps({"command": command, "cores": cores, "rows": rows}, indent=2))
    lines = [f"Training step of the default job's model (batch 8), {cores} cores; `{command}`", "",
             "| machine | setting | median ms/step | mean ms/step |", "|---|---|---|---|"]
    lines += [f"| {r['machine']} | {r['setting']} | {r['median_s'] * 1e3:.1f} | {r['mean_s'] * 1e3:.1f} |" for r in rows]
    (args.out / "threads.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
