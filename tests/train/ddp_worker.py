"""Worker for test_distributed.py, launched by torchrun: a few DDP training steps, then each rank
writes its final weights and per-step losses to OUT_DIR/rank<R>.pt."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from equiformer_lite.train import Trainer  # noqa: E402
from equiformer_lite.train.run import setup_distributed  # noqa: E402
from tests.train.conftest import emt_frames, graphs  # noqa: E402
from tests.train.test_distributed import ddp_config, ddp_model  # noqa: E402


def main(out_dir: str) -> None:
    setup_distributed()
    rank = dist.get_rank()
    data = graphs(emt_frames(8, seed=5))
    trainer = Trainer(ddp_model(), data, data[:2], ddp_config(batch_size=2), Path(out_dir) / "run")
    losses = []
    original = trainer.train_step

    def recording_step(batch):
        result = original(batch)
        losses.append(result["loss"])
        return result

    trainer.train_step = recording_step
    trainer.fit()
    params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    torch.save({"params": params, "losses": torch.tensor(losses, dtype=torch.float64)}, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
