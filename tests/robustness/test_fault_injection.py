"""Fault injection: training runs killed with SIGKILL at random moments, and checkpoint writes that fail.

A killed run, restarted with ``resume=True`` (as often as it takes), must end with exactly the
weights of an uninterrupted run, and no partially written checkpoint may ever be loaded. A write
that fails (a full disk, a read-only directory) must leave the previous checkpoint intact, leave
no temporary file, and stop training with an error naming the file.

The killed runs are forked by one server process (``fault_worker.py``) that imports torch once:
each run then starts in milliseconds, and the file runs in well under two minutes on 2 cores.
"""

from __future__ import annotations

import csv
import errno
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest
import torch

from equiformer_lite.train import Trainer, TrainingConfig
from equiformer_lite.train.checkpoint import load_checkpoint
from equiformer_lite.utils import atomic_save

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 10
SEED = 20240613
STEPS_PER_EPOCH = 3  # fault_worker: 6 training structures, batch size 2
EPOCHS = 5  # fault_worker.EPOCHS (not imported: the test process need not build its data)
SLOW_WRITE_S = 0.2  # how long a child sleeps with half a checkpoint written, when a kill aims there
TIMEOUT_S = 60.0  # for any one line from the server


@dataclass
class Kill:
    """Kill the child right after its ``count``-th ``event`` line, ``delay_s`` later."""

    event: str
    count: int
    delay_s: float


@dataclass
class RunResult:
    code: int
    events: list[str] = field(default_factory=list)
    start_epoch: Optional[int] = None


class TrainingServer:
    """The fork server of ``fault_worker.py``, driven line by line."""

    def __init__(self, log_dir: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.stderr_path = log_dir / "worker.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.robustness.fault_worker"], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.next_line() == "ready", self.stderr()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()[-4000:]

    def next_line(self) -> str:
        try:
            return self.lines.get(timeout=TIMEOUT_S)
        except queue.Empty:
            raise AssertionError(f"no answer from the training server in {TIMEOUT_S} s:\n{self.stderr()}") from None

    def run(self, out_dir: Path, plan=None, slow_s: float = 0.0) -> RunResult:
        """Train in ``out_dir``; ``plan(start_epoch)`` gives the :class:`Kill` for this run, or None."""
        self.proc.stdin.write(f"run {out_dir} {slow_s}\n")
        self.proc.stdin.flush()
        tag, pid = self.next_line().split()
        assert tag == "pid", self.stderr()
        result, kill, seen = RunResult(code=0), None, 0
        while True:
            line = self.next_line()
            if line.startswith("exit "):
                result.code = int(line.split()[2])
                return result
            result.events.append(line)
            if line.startswith("start "):
                result.start_epoch = int(line.split()[1])
                kill = plan(result.start_epoch) if plan else None
            elif kill is not None and line == kill.event:
                seen += 1
                if seen == kill.count:
                    time.sleep(kill.delay_s)
                    os.kill(int(pid), signal.SIGKILL)
                    kill = None

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._stderr.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = TrainingServer(tmp_path_factory.mktemp("worker"))
    yield srv
    srv.close()


@dataclass
class Reference:
    out: Path
    writes: int  # checkpoint writes of the whole run


@pytest.fixture(scope="module")
def reference(server, tmp_path_factory) -> Reference:
    """One uninterrupted run: the weights every killed-and-resumed run must end with."""
    out = tmp_path_factory.mktemp("reference")
    result = server.run(out)
    assert result.code == 0 and result.events[-1] == "done", server.stderr()
    assert result.events.count("step") == EPOCHS * STEPS_PER_EPOCH
    return Reference(out, result.events.count("writing"))


def _tensors(state) -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a nested state, by path."""
    if isinstance(state, torch.Tensor):
        return [("", state)]
    items = state.items() if isinstance(state, dict) else enumerate(state) if isinstance(state, (list, tuple)) else []
    return [(f"{key}.{name}".rstrip("."), t) for key, value in items for name, t in _tensors(value)]


def _assert_same_state(path: Path, expected: Path, keys=("model", "ema", "optimizer")) -> None:
    got, want = load_checkpoint(path), load_checkpoint(expected)
    assert got["epoch"] == want["epoch"] == EPOCHS
    for key in keys:
        a, b = _tensors(got[key]), _tensors(want[key])
        assert [n for n, _ in a] == [n for n, _ in b]
        for (name, x), (_, y) in zip(a, b):
            assert x.dtype == y.dtype and torch.equal(x, y), f"{path}: {key}.{name} differs from the uninterrupted run"


def _log_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "log.csv") as fh:
        return list(csv.DictReader(fh))


def _check_directory(out: Path) -> int:
    """Every checkpoint in ``out`` loads; a temporary file of a killed write is refused by the
    loader. Returns the number of refused (partial) temporary files."""
    for checkpoint in out.glob("*.pt"):
        state = load_checkpoint(checkpoint)  # raises on a partial or corrupted file
        assert 1 <= state["epoch"] <= EPOCHS
    partial = 0
    for tmp in out.glob(".*.tmp"):
        assert tmp.name.startswith((".last.pt", ".best.pt")), tmp
        with pytest.raises(ValueError, match="not a readable checkpoint"):
            load_checkpoint(tmp)
        partial += 1
    return partial


def _plan(rng: random.Random, kind: str, write: Optional[int] = None):
    """A kill at a random moment of a run that starts at ``start_epoch``: during a random step
    (a random fraction of a step's time after it begins) or during a random checkpoint write
    (or during write number ``write``). A kill planned past the end of the run does not happen."""

    def plan(start_epoch: int) -> Optional[Kill]:
        remaining = EPOCHS - start_epoch
        if remaining <= 0:
            return None
        if kind == "writing":  # per epoch last.pt, and best.pt before it when the epoch improved
            return Kill("writing", write or rng.randint(1, 2 * remaining), 0.0)
        return Kill("step", rng.randint(1, remaining * STEPS_PER_EPOCH), rng.uniform(0.0, 0.01))

    return plan


def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_weights(server, reference, tmp_path):
    rng = random.Random(SEED)
    kills = partial_files = 0
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}"
        kills_planned = rng.randint(1, 3)
        for attempt in range(kills_planned + 1):
            kind = "writing" if (trial % 3 == 0 and attempt == 0) else rng.choice(["step", "step", "writing"])
            # Trial 0 is killed in the very last write of the run: the one that leaves best.pt
            # behind for good if it is written after last.pt.
            write = reference.writes if trial == 0 and attempt == 0 else None
            plan = _plan(rng, kind, write) if attempt < kills_planned else None
            result = server.run(out, plan, SLOW_WRITE_S if kind == "writing" and plan else 0.0)
            if attempt > 0 or (out / "last.pt").exists():
                assert result.start_epoch is not None
            if result.code == -signal.SIGKILL:
                kills += 1
                partial_files += _check_directory(out)
                continue
            assert result.code == 0 and result.events[-1] == "done", f"trial {trial}: {result}\n{server.stderr()}"
            break
        else:
            raise AssertionError(f"trial {trial} never finished")
        _assert_same_state(out / "last.pt", reference.out / "last.pt")
        _assert_same_state(out / "best.pt", reference.out / "best.pt", keys=("model", "ema"))
        rows, expected = _log_rows(out), _log_rows(reference.out)
        assert [r["epoch"] for r in rows] == [str(e) for e in range(1, EPOCHS + 1)]
        assert [r["val_loss"] for r in rows] == [r["val_loss"] for r in expected]
        assert not list(out.glob(".*.tmp")), "a resumed run removes the temporary files of killed writes"
    print(f"{TRIALS} trials, {kills} kills, {partial_files} partial temporary files refused")
    assert kills >= TRIALS
    assert partial_files >= 3, "too few kills landed during a checkpoint write"


# --- failing writes ---------------------------------------------------------------------------------
def _half_then_enospc():
    """A ``torch.save`` that writes half a file and then finds the disk full."""

    def save(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return save


def test_a_full_disk_keeps_the_previous_file_and_names_the_path(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)
    monkeypatch.setattr(torch, "save", _half_then_enospc())
    with pytest.raises(OSError, match="could not write .*last.pt: No space left on device") as info:
        atomic_save({"epoch": 2}, path)
    assert info.value.errno == errno.ENOSPC and "unchanged" in str(info.value)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # the temporary file is gone


def test_a_refused_write_keeps_the_previous_file_and_names_the_path(tmp_path, monkeypatch):
    """The refusal of a read-only directory (EACCES where the write starts), simulated: as root
    (CI containers) ``chmod`` restricts nothing; the next test does it for real where it can."""
    import tempfile

    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / ".last.pt1234.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match="could not write .*last.pt: Permission denied"):
        atomic_save({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_a_chmod_read_only_directory_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="could not write .*last.pt"):
            atomic_save({"epoch": 2}, path)
    finally:
        tmp_path.chmod(0o700)
    assert torch.load(path, weights_only=True) == {"epoch": 1}


def test_the_trainer_stops_when_a_checkpoint_cannot_be_written(tmp_path, monkeypatch):
    from tests.robustness.fault_worker import make_data, make_model

    train, val = make_data()
    config = TrainingConfig(epochs=3, batch_size=2, progress=False, dtype="float64", scheduler="constant")
    trainer = Trainer(make_model(), train, val, config, tmp_path)
    trainer.fit(until_epoch=1)
    monkeypatch.setattr(torch, "save", _half_then_enospc())
    with pytest.raises(OSError, match=r"training stopped after epoch 2: could not write .*(best|last)\.pt: No space left"):
        trainer.fit()
    monkeypatch.undo()
    assert trainer.epoch == 2  # it stopped there, and did not train on without checkpoints
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.tmp"))
