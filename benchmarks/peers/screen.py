"""Quick architecture screen of SE3Potential on the peer benchmark's aspirin split.

Trains one variant for a few hundred Adam (AMSGrad) steps of batch 5 at a constant lr on the
950 training frames and prints the validation force MAE (raw weights, no EMA) every 100 steps:
a cheap ranking of architectures before a full ``bench_peers.py`` run. One thread, float32.

    python benchmarks/peers/screen.py NAME '{"lmax": 2, "channels": 16, "nonlinearity": "gate"}'

The JSON holds SE3Potential arguments on top of ``BASE`` (below), plus optional ``steps`` (400),
``lr`` (0.01) and ``fw`` (force weight against per-atom energies, 100).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch_geometric.loader import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peers import data as peer_data  # noqa: E402

from equiformer_lite import SE3Potential  # noqa: E402
from equiformer_lite.data import AtomicDataset, LabelSpec, compute_statistics  # noqa: E402
from equiformer_lite.train.losses import PotentialLoss  # noqa: E402

E0 = {"H": -10.707211, "C": -48.847445, "O": -102.571173}  # GFN2-xTB isolated atoms
SPECIES = ["C", "H", "O"]
# The first variant screened (arch1 of the ablation); every screen overrides some of it.
BASE = dict(lmax=1, channels=32, num_layers=3, num_heads=4, attention="silu", nonlinearity="norm",
            self_interaction="species", tensor_square=True)


def main(name: str, overrides: dict) -> list[float]:
    torch.set_num_threads(1)
    split = peer_data.split_files(peer_data.ASPIRIN, Path.home() / ".cache" / "equiformer_lite" / "bench_peers" / "splits")
    labels = LabelSpec(energy_key=split["energy_key"], forces_key=split["forces_key"])
    train = AtomicDataset.from_file(split["train"], 5.0, labels)
    val = AtomicDataset.from_file(split["val"], 5.0, labels)
    stats = compute_statistics(train, SPECIES, E0)
    steps, lr, fw = int(overrides.pop("steps", 400)), float(overrides.pop("lr", 0.01)), float(overrides.pop("fw", 100))
    torch.manual_seed(0)
    scale, shift = stats.suggested_scale_shift()
    model = SE3Potential(SPECIES, 5.0, dtype="float32", atomic_energies=E0, scale=scale, shift=shift,
                         avg_num_neighbors=stats.avg_num_neighbors, **{**BASE, **overrides})
    optimizer = torch.optim.Adam(model.parameters(), lr, amsgrad=True)
    loss_fn = PotentialLoss("mse", energy_weight=1.0, forces_weight=fw)
    loader = DataLoader(train, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(0))

    def val_forces_mae() -> float:
        model.eval()
        errors = [(model(b, compute_stress=False)["forces"].detach() - b["forces"]).abs().flatten()
                  for b in DataLoader(val, batch_size=25)]
        model.train()
        return 1e3 * float(torch.cat(errors).mean())

    curve, step, start = [], 0, time.perf_counter()
    while step < steps:
        for batch in loader:
            loss, _ = loss_fn(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step % 100 == 0:
                curve.append(round(val_forces_mae(), 1))
            if step >= steps:
                break
    per_step = (time.perf_counter() - start) / steps
    params = sum(p.numel() for p in model.parameters())
    print(f"{name:28s} params {params:7d} {1e3 * per_step:6.0f} ms/step  val F MAE (meV/Å) every 100 steps {curve}")
    return curve


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
