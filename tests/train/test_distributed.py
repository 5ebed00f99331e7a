"""Distributed data-parallel training: two processes (gloo, this machine) against one process."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from equiformer_lite import SE3Potential
from equiformer_lite.train import Trainer, TrainingConfig
from tests.train.conftest import emt_frames, graphs


def ddp_model():
    torch.manual_seed(0)
    return SE3Potential(["H", "C", "O"], cutoff=4.0, channels=4, num_heads=2, num_layers=1, num_basis=4,
                        radial_hidden=8, lmax=1, dtype=torch.float64, atomic_energies=[0.54, 0.54, 0.54], scale=4.1)


def ddp_config(batch_size):
    return TrainingConfig(epochs=2, batch_size=batch_size, lr=1e-2, scheduler="constant", ema_decay=None,
                          clip_grad_norm=None, progress=False, seed=3, dtype="float64")


def test_two_ranks_match_one_process_on_the_same_global_batch(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker), str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # Both ranks hold identical weights after the steps (DDP averaged their gradients).
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])

    # One process with the two ranks' batches together (2 x 2 structures per step): the
    # distributed sampler hands rank r the indices perm[r::2] of the same seeded permutation.
    data = graphs(emt_frames(8, seed=5))
    single = Trainer(ddp_model(), data, data[:2], ddp_config(batch_size=4), tmp_path / "single")
    losses = []
    step = single.train_step
    single.train_step = lambda batch: (lambda r: losses.append(r["loss"]) or r)(step(batch))
    single.fit()
    params = torch.cat([p.detach().flatten() for p in single.model.parameters()])
    # Equal-size structures: the global loss is the mean of the two ranks' losses.
    mean_rank_loss = (ranks[0]["losses"] + ranks[1]["losses"]) / 2
    assert torch.allclose(mean_rank_loss, torch.tensor(losses, dtype=mean_rank_loss.dtype), rtol=1e-10)
    assert torch.allclose(ranks[0]["params"], params, rtol=1e-9, atol=1e-12)
    assert not torch.equal(params, torch.cat([p.detach().flatten() for p in ddp_model().parameters()]))  # it trained
