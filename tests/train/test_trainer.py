"""The training loop: learning, NaN-skip, rollback, clipping, checkpoints, exact resume, early stop."""

import math

import numpy as np

import pytest
import torch

from equiformer_lite import SE3Potential
from equiformer_lite.train import Trainer, TrainingConfig, TrainingDiverged
from equiformer_lite.train.checkpoint import load_checkpoint
from tests.train.conftest import graphs


def _model(seed=0):
    """A tiny model with reference energy and scale set from the EMT data, as a real run does."""
    torch.manual_seed(seed)
    # Rattled EMT ethanol: mean energy 4.9 eV per structure (9 atoms), force RMS 4.1 eV/Å.
    return SE3Potential(["H", "C", "O"], cutoff=4.0, channels=4, num_heads=2, num_layers=1, num_basis=4,
                        radial_hidden=8, lmax=1, dtype=torch.float64, atomic_energies=[0.54, 0.54, 0.54], scale=4.1)


def _config(**overrides):
    base = dict(epochs=3, batch_size=4, lr=5e-3, progress=False, seed=0, dtype="float64")
    base.update(overrides)
    return TrainingConfig(**base)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_reduces_the_loss(ethanol_frames, tmp_path):
    data = graphs(ethanol_frames)
    # Measured: the validation loss falls from ~160 to ~10 in 8 epochs (5 steps each) at this lr.
    trainer = Trainer(_model(), data[:20], data[20:], _config(epochs=8, lr=3e-2, ema_decay=0.5, scheduler="constant"), tmp_path)
    before = trainer.evaluate(data[20:], trainer.model)["loss"]
    history = trainer.fit()
    assert history[-1]["val_loss"] < 0.2 * before
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists() and (tmp_path / "log.csv").exists()
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporaries
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 8




def test_non_finite_step_is_skipped_and_parameters_stay(ethanol_frames, tmp_path, monkeypatch):
    data = graphs(ethanol_frames)
    trainer = Trainer(_model(), data[:8], data[8:12], _config(epochs=1, batch_size=8), tmp_path)
    before = _params(trainer.model).clone()
    batch = next(iter(trainer.train_loader))
    monkeypatch.setattr(trainer.loss_fn, "forward", lambda outputs, b: (torch.tensor(math.nan, requires_grad=True), {}))
    assert trainer.train_step(batch) is None
    assert trainer.counters["skipped"] == 1
    assert torch.equal(_params(trainer.model), before)
    # Non-finite gradients (finite loss) are skipped too.
    monkeypatch.undo()
    for p in trainer.model.parameters():
        p.register_hook(lambda g: g * math.inf)
    assert trainer.train_step(batch) is None
    assert trainer.counters["skipped"] == 2 and torch.equal(_params(trainer.model), before)


def test_consecutive_skips_roll_back_and_lower_the_lr(ethanol_frames, tmp_path, monkeypatch):
    data = graphs(ethanol_frames)
    trainer = Trainer(_model(), data[:16], data[16:20], _config(epochs=2, batch_size=4, max_consecutive_skips=3, scheduler="constant"), tmp_path)
    trainer.fit()
    good = _params(trainer.model).clone()
    lr = trainer.lr
    trainer._good_state = trainer._training_state()
    good_step, good_norms = trainer.step, list(trainer._recent_grad_norms)
    batch = next(iter(trainer.train_loader))
    trainer.train_step(batch)  # a good step after the saved state, which the rollback undoes
    assert trainer.step == good_step + 1
    nan = lambda outputs, b: (torch.tensor(math.nan), {})  # noqa: E731
    monkeypatch.setattr(trainer.loss_fn, "forward", nan)
    for _ in range(3):
        trainer.train_step(batch)
    assert trainer.counters["rollbacks"] == 1
    assert trainer.lr == pytest.approx(0.5 * lr)
    assert torch.equal(_params(trainer.model), good)
    # The step count and the clipping window are those of the state rolled back to.
    assert trainer.step == good_step and trainer._recent_grad_norms == good_norms
    with pytest.raises(TrainingDiverged, match="consecutive non-finite steps"):
        for _ in range(3 * 10):
            trainer.train_step(batch)


def test_clipping_is_counted(ethanol_frames, tmp_path):
    data = graphs(ethanol_frames)
    trainer = Trainer(_model(), data[:8], data[8:12], _config(epochs=1, batch_size=4, clip_grad_norm=1e-8), tmp_path)
    row = trainer.fit()[-1]
    assert trainer.counters["clipped"] == trainer.counters["steps"] == 2
    assert row["grad_norm_max"] > 1e-8


def test_the_moving_average_warms_up():
    """d_n = min(d, (1 + n) / (10 + n)): the second weights count 9/11, not 1 - d = 1 %."""
    from torch.optim.swa_utils import AveragedModel

    from equiformer_lite.train.trainer import ema_with_warmup

    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(0.0)
    ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(0.99), use_buffers=True)
    ema.update_parameters(model)  # the first update copies
    model.weight.data.fill_(1.0)
    ema.update_parameters(model)  # n = 1: decay 2/11
    assert ema.module.weight.item() == pytest.approx(9 / 11)
    for _ in range(2000):
        ema.update_parameters(model)
    model.weight.data.fill_(2.0)
    ema.update_parameters(model)  # late: decay 0.99
    assert ema.module.weight.item() == pytest.approx(1.0 + 0.01, rel=1e-6)


def test_relative_clipping_fires_on_outliers_only(ethanol_frames, tmp_path):
    """clip_grad_factor bounds a step at factor x the median norm of the recent steps."""
    data = graphs(ethanol_frames)
    trainer = Trainer(_model(), data[:8], data[8:12], _config(epochs=1, batch_size=4, clip_grad_norm=None,
                                                              clip_grad_factor=3.0), tmp_path)
    assert trainer.max_grad_norm == math.inf  # too few steps seen: no relative bound yet
    batch = next(iter(trainer.train_loader))
    trainer._recent_grad_norms = [1e6] * 20  # this step is ordinary next to these: not clipped
    trainer.train_step(batch)
    assert trainer.counters["clipped"] == 0
    trainer._recent_grad_norms = [1e-6] * 20  # an outlier next to these: clipped to 3e-6
    before = _params(trainer.model)
    result = trainer.train_step(batch)
    assert trainer.counters["clipped"] == 1 and result["grad_norm"] > 3e-6
    grads = [p.grad for p in trainer.model.parameters() if p.grad is not None]
    assert float(torch.nn.utils.get_total_norm(grads)) == pytest.approx(3e-6, rel=1e-6)
    assert not torch.equal(before, _params(trainer.model))  # the clipped step is still taken


def test_resume_reproduces_an_uninterrupted_run(ethanol_frames, tmp_path):
    data = graphs(ethanol_frames)
    straight = Trainer(_model(), data[:12], data[12:16], _config(epochs=4), tmp_path / "a")
    straight.fit()

    interrupted = Trainer(_model(), data[:12], data[12:16], _config(epochs=4), tmp_path / "b")
    interrupted.fit(until_epoch=2)  # as if killed after the checkpoint of epoch 2
    torch.manual_seed(1234)  # a different global RNG state: resume must restore its own
    resumed = Trainer(_model(seed=99), data[:12], data[12:16], _config(epochs=4), tmp_path / "b", resume=True)
    assert resumed.epoch == 2
    resumed.fit()
    assert torch.equal(_params(resumed.model), _params(straight.model))
    assert torch.equal(_params(resumed.ema.module), _params(straight.ema.module))
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]
    assert len(resumed.history) == 4


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_a_longer_run_continues_a_finished_schedule_on_the_new_curve(ethanol_frames, tmp_path, scheduler):
    """``--resume --epochs N+1`` after a finished N-epoch run: the schedule is rebuilt for N+1
    epochs and continues at the steps done (one-cycle used to fail after the extra epoch)."""
    data = graphs(ethanol_frames)
    Trainer(_model(), data[:8], data[8:12], _config(epochs=2, scheduler=scheduler), tmp_path).fit()
    longer = Trainer(_model(), data[:8], data[8:12], _config(epochs=3, scheduler=scheduler), tmp_path, resume=True)
    assert longer.epoch == 2
    history = longer.fit()
    assert [row["epoch"] for row in history] == [1, 2, 3] and longer.epoch == 3
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 3
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 3
    fresh = Trainer(_model(), data[:8], data[8:12], _config(epochs=3, scheduler=scheduler), tmp_path / "fresh")
    for _ in range(2 * fresh.steps_per_epoch):  # the lr of a 3-epoch schedule after the 2 epochs' steps
        fresh.optimizer.step()
        fresh.scheduler.step()
    assert history[2]["lr"] == pytest.approx(fresh.lr, rel=1e-12)


def test_checkpoints_without_the_settings_still_resume(ethanol_frames, tmp_path):
    """Checkpoints written before the run's settings were stored in them resume exactly, and a
    longer one-cycle run is still recognised (from the schedule's own total)."""
    data = graphs(ethanol_frames)
    straight = Trainer(_model(), data[:8], data[8:12], _config(epochs=3), tmp_path / "a")
    straight.fit()
    interrupted = Trainer(_model(), data[:8], data[8:12], _config(epochs=3), tmp_path / "b")
    interrupted.fit(until_epoch=2)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    del state["fingerprint"]
    torch.save(state, tmp_path / "b" / "last.pt")
    (tmp_path / "c").mkdir()
    torch.save(state, tmp_path / "c" / "last.pt")
    resumed = Trainer(_model(seed=99), data[:8], data[8:12], _config(epochs=3), tmp_path / "b", resume=True)
    resumed.fit()
    assert torch.equal(_params(resumed.model), _params(straight.model))
    longer = Trainer(_model(), data[:8], data[8:12], _config(epochs=4), tmp_path / "c", resume=True)
    assert longer.scheduler.total_steps == 4 * longer.steps_per_epoch
    assert len(longer.fit()) == 4


def test_a_rollback_lowers_the_lr_once_not_again_at_each_epoch_start(ethanol_frames, tmp_path):
    data = graphs(ethanol_frames)
    trainer = Trainer(_model(), data[:8], data[8:12], _config(epochs=1, scheduler="constant", lr=1e-3), tmp_path)
    trainer.lr_scale = 0.5  # as after a rollback: the optimiser's lr already carries the factor
    for group in trainer.optimizer.param_groups:
        group["lr"] *= 0.5
    row = trainer.fit()[0]
    assert row["lr"] == pytest.approx(5e-4) and trainer.lr == pytest.approx(5e-4)


def test_temporary_files_of_killed_writes_are_removed(ethanol_frames, tmp_path):
    data = graphs(ethanol_frames)
    stale = [tmp_path / ".last.ptx1y2.tmp", tmp_path / ".best.ptz3.tmp"]
    for path in stale:
        path.write_bytes(b"PK half a checkpoint")
    (tmp_path / "notes.tmp").write_text("not ours")
    Trainer(_model(), data[:8], data[8:12], _config(epochs=1), tmp_path)
    assert not any(path.exists() for path in stale) and (tmp_path / "notes.tmp").exists()


def test_early_stopping(ethanol_frames, tmp_path):
    data = graphs(ethanol_frames)
    config = _config(epochs=10, lr=1e-30, early_stopping_patience=2, ema_decay=None)
    trainer = Trainer(_model(), data[:8], data[8:12], config, tmp_path)
    history = trainer.fit()
    assert len(history) < 10
    # Resumed, a run that stopped early stays stopped (it used to train one more epoch).
    resumed = Trainer(_model(), data[:8], data[8:12], config, tmp_path, resume=True)
    assert len(resumed.fit()) == len(history)


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine", "plateau", "constant"])
def test_schedules_run(ethanol_frames, tmp_path, scheduler):
    data = graphs(ethanol_frames)
    trainer = Trainer(_model(), data[:8], data[8:12], _config(epochs=2, scheduler=scheduler, loss="logcosh"), tmp_path)
    lrs = [row["lr"] for row in trainer.fit()]
    assert all(0 < lr <= 5e-3 + 1e-12 for lr in lrs)


def test_onecycle_follows_the_thesis_schedule(ethanol_frames, tmp_path):
    """The JAT recipe: start 5e-5, peak 4e-4 at 45% of the steps, back at 90%, end at 5e-6."""
    data = graphs(ethanol_frames)
    config = _config(epochs=50, lr=4e-4, onecycle_start_ratio=0.125, min_lr_ratio=0.0125, scheduler="onecycle")
    trainer = Trainer(_model(), data[:8], data[8:12], config, tmp_path)
    total = config.epochs * trainer.steps_per_epoch
    lrs = []
    for _ in range(total):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.scheduler.step()
    lrs = np.array(lrs)
    assert lrs[0] == pytest.approx(5e-5)
    assert lrs.max() == pytest.approx(4e-4) and abs(int(lrs.argmax()) - 0.45 * total) <= 1
    assert total == 100 and lrs[88] == pytest.approx(5e-5)  # torch ends phase 2 at step 2 * 0.45 * total - 2
    assert lrs[-1] == pytest.approx(5e-6, rel=0.2) and lrs.min() >= 5e-6 * (1 - 1e-9)


def test_tensorboard_scalars_when_available(ethanol_frames, tmp_path, monkeypatch):
    """With TensorBoard importable, every logged quantity goes to it per epoch (a recording stand-in here)."""
    import sys
    import types

    calls = []

    class RecordingWriter:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("init", log_dir, purge_step))

        def add_scalar(self, tag, value, step):
            calls.append((tag, step))

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=RecordingWriter))
    data = graphs(ethanol_frames)
    Trainer(_model(), data[:8], data[8:12], _config(epochs=3), tmp_path).fit(until_epoch=1)
    epoch_one = (tmp_path / "last.pt").read_bytes()
    Trainer(_model(), data[:8], data[8:12], _config(epochs=3), tmp_path, resume=True).fit(until_epoch=2)
    assert calls[0] == ("init", str(tmp_path / "tensorboard"), 1)
    assert ("train_loss", 1) in calls and ("val_loss", 2) in calls
    # Resumed from epoch 1's checkpoint after epoch 2 was logged: that writer purges epoch 2 on.
    calls.clear()
    (tmp_path / "last.pt").write_bytes(epoch_one)
    Trainer(_model(), data[:8], data[8:12], _config(epochs=3), tmp_path, resume=True).fit()
    assert calls[0] == ("init", str(tmp_path / "tensorboard"), 2)
    assert ("val_loss", 2) in calls and ("val_loss", 3) in calls and ("val_loss", 1) not in calls
