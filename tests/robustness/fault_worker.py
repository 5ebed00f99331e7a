"""A fork server that trains a tiny potential on request, for the fault-injection tests.

Importing torch, e3nn and PyG takes seconds; forking a process that has them loaded takes
milliseconds. So this process imports once, builds the data once, and then for each line
``run OUTPUT_DIR SLOW_WRITE_S`` on stdin forks a child that trains in ``OUTPUT_DIR`` until the
end: from scratch, or with ``resume=True`` when ``OUTPUT_DIR/last.pt`` exists (as a job script
that is restarted after a crash would). It answers on stdout, one line each:

- ``pid PID`` when the child starts (the test kills it with SIGKILL at moments of its choice);
- from the child: ``start EPOCH`` (epochs already trained), ``step`` before every training step,
  ``writing`` when half of a checkpoint is written to its temporary file (the child then sleeps
  ``SLOW_WRITE_S`` before writing the rest, so that a kill lands mid-write), ``done``;
- ``exit PID CODE`` when the child has ended (``CODE`` is ``-9`` for SIGKILL).

Run as ``python -m tests.robustness.fault_worker`` from the repository root, single-threaded.
"""

from __future__ import annotations

import io
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase.build import molecule  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from equiformer_lite import GATv2Potential  # noqa: E402
from equiformer_lite.data import atoms_to_graph  # noqa: E402
from equiformer_lite.train import Trainer, TrainingConfig  # noqa: E402

EPOCHS = 5
CUTOFF = 3.0
CONFIG = dict(epochs=EPOCHS, batch_size=2, lr=2e-2, scheduler="onecycle", progress=False, seed=0, dtype="float64", num_threads=1)


def make_data(n: int = 8, seed: int = 0) -> tuple[list, list]:
    """Rattled water molecules with EMT labels, as float64 graphs: 6 to train on, 2 to validate."""
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(n):
        atoms = molecule("H2O")
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        atoms.calc = EMT()
        labels = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        atoms.calc = SinglePointCalculator(atoms, **labels)
        graphs.append(atoms_to_graph(atoms, CUTOFF, dtype=torch.float64))
    return graphs[:6], graphs[6:]


def make_model() -> GATv2Potential:
    """The smallest GATv2 potential (127 parameters), seeded: the same in every child."""
    torch.manual_seed(0)
    return GATv2Potential(["H", "O"], cutoff=CUTOFF, channels=4, num_heads=1, num_layers=1, readout_widths=[4],
                          dtype=torch.float64)


def emit(line: str) -> None:
    """One line to stdout, in one unbuffered write (lines of parent and child never interleave)."""
    os.write(1, (line + "\n").encode())


def slow_checkpoint_writes(slow_s: float) -> None:
    """Make every ``torch.save`` write half, announce it, sleep ``slow_s``, then write the rest."""
    real_save = torch.save

    def save(obj, fh, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        fh.write(data[: len(data) // 2])
        fh.flush()
        emit("writing")
        time.sleep(slow_s)
        fh.write(data[len(data) // 2:])

    torch.save = save


def train(out_dir: Path, slow_s: float, data: tuple[list, list]) -> int:
    """The child: train to the end in ``out_dir``, resuming when there is a ``last.pt``."""
    slow_checkpoint_writes(slow_s)
    trainer = Trainer(make_model(), data[0], data[1], TrainingConfig(**CONFIG), out_dir,
                      resume=(out_dir / "last.pt").exists())
    emit(f"start {trainer.epoch}")
    step = trainer.train_step

    def announced_step(batch):
        emit("step")
        return step(batch)

    trainer.train_step = announced_step
    trainer.fit()
    emit("done")
    return 0


def serve() -> None:
    """Read ``run DIR SLOW_S`` lines; fork one training child per line and report its end."""
    torch.set_num_threads(1)
    data = make_data()
    emit("ready")
    for line in sys.stdin:
        if not line.strip():
            continue
        _, out_dir, slow_s = line.split()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = train(Path(out_dir), float(slow_s), data)
            except BaseException:  # the test reads the traceback from stderr
                traceback.print_exc()
                sys.stderr.flush()
            os._exit(code)
        emit(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        emit(f"exit {pid} {-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)}")


if __name__ == "__main__":
    serve()
