"""The training loop: robust to NaNs and exploding gradients, resumable exactly, DDP-ready."""

from __future__ import annotations

import copy
import csv
import dataclasses
import logging
import math
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DistributedSampler
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from ..data import keys
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import TrainingConfig
from .losses import PotentialLoss
from .metrics import MetricAccumulator

__all__ = ["Trainer", "TrainingDiverged"]

log = logging.getLogger(__name__)

RECENT_STEPS = 100  # gradient norms remembered for the relative clipping bound
MIN_RECENT_STEPS = 10  # no relative clipping before this many steps
# Training settings a resume may change: how (not what) is computed, and when to stop. Any other
# change makes the resumed run differ from an uninterrupted one and is refused (``epochs`` is
# accepted too, by rebuilding the schedule: see :meth:`Trainer.resume`).
RESUME_MAY_CHANGE = ("epochs", "progress", "num_threads", "compile", "early_stopping_patience")
MAX_LISTED = 5  # differing parameters or settings listed in a resume error
CHECKPOINT_NAMES = ("best.pt", "last.pt")


def ema_with_warmup(decay: float):
    r"""The ``multi_avg_fn`` of an exponential moving average whose decay warms up,
    :math:`d_n = \min\big(d, (1 + n) / (10 + n)\big)` after :math:`n` averaged steps (as
    ``torch_ema`` with ``use_num_updates``, which MACE trains with): early on the average follows
    the fast-moving weights instead of remembering the random start for ~1/(1-d) steps."""

    def update(ema_params: list, params: list, num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        pairs = [(e, p) for e, p in zip(ema_params, params) if e.is_floating_point()]
        if pairs:  # integer buffers (species maps) are not averaged
            torch._foreach_lerp_([e for e, _ in pairs], [p for _, p in pairs], 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


class TrainingDiverged(RuntimeError):
    """Training could not recover from non-finite losses or gradients."""


class Trainer:
    """Train a potential on energies, forces and stress.

    - AdamW; one-cycle, cosine-with-warm-up, reduce-on-plateau or constant learning rate;
    - gradient-norm clipping, absolute (``clip_grad_norm``) or relative to the median norm of the
      recent steps (``clip_grad_factor``, which fires on outliers only), with the norms and the
      number of clipped steps logged;
    - an exponential moving average of the weights, used for validation and the saved model;
    - a step whose loss or gradients are not finite is skipped (parameters untouched) and counted;
      after ``max_consecutive_skips`` in a row, the model, optimiser, scheduler and EMA roll back to
      the last good epoch and the learning rate is multiplied by ``rollback_lr_factor``; after
      ``max_rollbacks`` the run stops with :class:`TrainingDiverged`;
    - a CSV log (and TensorBoard scalars when TensorBoard is installed);
    - checkpoints ``last.pt`` and ``best.pt`` written atomically; :meth:`resume` restores model,
      optimiser, scheduler, EMA, RNG states and epoch, so a resumed run reproduces an
      uninterrupted one (the data order depends only on the seed and the epoch);
    - early stopping on the validation loss;
    - under ``torch.distributed`` (one process per rank, DDP): a distributed sampler, gradients
      averaged across ranks, skip decisions agreed across ranks, and only rank 0 writes.
    """

    def __init__(self, model: torch.nn.Module, train_set, val_set, config: TrainingConfig, output_dir, *, resume: bool = False):
        self.config = config
        self.model = model
        self.output_dir = Path(output_dir)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = dist.get_world_size() if self.distributed else 1
        self.is_main = self.rank == 0
        self.train_set, self.val_set = train_set, val_set
        self.stage_one_loss = self._loss(config.energy_weight, config.forces_weight)
        self.stage_two_loss = (
            self._loss(
                config.energy_weight if config.stage_two_energy_weight is None else config.stage_two_energy_weight,
                config.forces_weight if config.stage_two_forces_weight is None else config.stage_two_forces_weight,
            )
            if config.stage_two_start is not None
            else None
        )
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay, amsgrad=config.amsgrad
        )
        self.sampler = DistributedSampler(
            train_set, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=config.seed, drop_last=self.distributed
        )
        self.train_loader = DataLoader(train_set, batch_size=config.batch_size, sampler=self.sampler)
        self.val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False)
        self.steps_per_epoch = max(len(self.train_loader), 1)
        self.scheduler = self._build_scheduler()
        self.trained = torch.nn.parallel.DistributedDataParallel(model) if self.distributed else model
        if config.compile:
            if self.distributed:
                raise ValueError("training.compile is not supported with distributed training yet; set it to false")
            from ..models.compiled import CompiledPotential

            self.trained = CompiledPotential(model)
        self.ema = (
            AveragedModel(model, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=True)
            if config.ema_decay
            else None
        )
        self.epoch = 0  # epochs completed
        self.step = 0
        self.lr_scale = 1.0  # lowered by rollbacks, applied on top of the schedule
        self.best_val = math.inf
        self.epochs_since_best = 0
        self.counters = {"clipped": 0, "skipped": 0, "rollbacks": 0, "steps": 0}
        self._consecutive_skips = 0
        self._recent_grad_norms: list[float] = []  # the last RECENT_STEPS gradient norms, for clip_grad_factor
        self.history: list[dict[str, float]] = []
        self._good_state: Optional[dict[str, Any]] = None
        if self.is_main and self.output_dir.is_dir():
            self._remove_stale_temporaries()
        if resume:
            self.resume(self.output_dir / "last.pt")

    def _loss(self, energy_weight: float, forces_weight: float) -> PotentialLoss:
        c = self.config
        return PotentialLoss(
            c.loss, energy_weight=energy_weight, forces_weight=forces_weight, stress_weight=c.stress_weight,
            atomic_energies_weight=c.atomic_energies_weight, alpha=c.loss_alpha,
        )

    @property
    def in_stage_two(self) -> bool:
        """Whether the epoch being trained (or just finished) is in stage two."""
        start = self.config.stage_two_start
        return start is not None and self.epoch >= start

    @property
    def loss_fn(self) -> PotentialLoss:
        """The loss of the current stage."""
        return self.stage_two_loss if self.in_stage_two else self.stage_one_loss

    # --- schedule ---------------------------------------------------------------------------------
    def _build_scheduler(self):
        c, total = self.config, self.config.epochs * self.steps_per_epoch
        if c.scheduler == "onecycle":
            # As in the JAT thesis: up for 45% of the steps, down for 45%, then annealing to the final lr.
            # Starts and turns at lr * onecycle_start_ratio, ends at lr * min_lr_ratio (never above the start).
            start = c.onecycle_start_ratio
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=c.lr, total_steps=max(total, 2), pct_start=0.45, anneal_strategy="linear",
                div_factor=1.0 / start, final_div_factor=max(1.0, start / c.min_lr_ratio), three_phase=True,
            )
        if c.scheduler == "cosine":
            warmup = max(int(c.warmup_epochs * self.steps_per_epoch), 1)

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                progress = min((step - warmup) / max(total - warmup, 1), 1.0)
                return c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        if c.scheduler == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=c.plateau_factor, patience=c.plateau_patience)
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)

    @property
    def per_step_schedule(self) -> bool:
        return not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def _apply_stage_two_lr(self) -> bool:
        """Stage two with its own lr: set that lr (times any rollback reduction), whatever the
        schedule; returns whether it applies."""
        if not (self.in_stage_two and self.config.stage_two_lr is not None):
            return False
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.stage_two_lr * self.lr_scale
        return True

    def _apply_lr_overrides(self) -> None:
        """After a scheduler step: the stage-two lr, or the rollback reduction on the schedule's lr."""
        if self._apply_stage_two_lr():
            return
        # The per-step schedules compute the lr in closed form each step, so a rollback's reduction
        # is re-applied on top of it; reduce-on-plateau is multiplicative and is scaled once instead.
        if self.per_step_schedule and self.lr_scale != 1.0:
            for group in self.optimizer.param_groups:
                group["lr"] *= self.lr_scale

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    # --- one step ---------------------------------------------------------------------------------
    def _all_ranks_agree(self, ok: bool) -> bool:
        if not self.distributed:
            return ok
        flag = torch.tensor([1.0 if ok else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() > 0)

    def train_step(self, batch) -> Optional[dict[str, float]]:
        """One optimiser step; returns the loss terms, or ``None`` if the step was skipped."""
        self.trained.train()
        outputs = self.trained(batch)
        loss, terms = self.loss_fn(outputs, batch)
        self.counters["steps"] += 1
        self.optimizer.zero_grad(set_to_none=True)
        if not self._all_ranks_agree(bool(torch.isfinite(loss))):
            return self._skip()
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        grad_norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
        if not self._all_ranks_agree(math.isfinite(grad_norm)):
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip()
        max_norm = self.max_grad_norm
        self._recent_grad_norms = (self._recent_grad_norms + [grad_norm])[-RECENT_STEPS:]
        if grad_norm > max_norm:
            torch.nn.utils.clip_grads_with_norm_(params, max_norm, torch.tensor(grad_norm))
            self.counters["clipped"] += 1
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        if self.per_step_schedule:
            self.scheduler.step()
            self._apply_lr_overrides()
        self.step += 1
        self._consecutive_skips = 0
        return {"loss": float(loss.detach()), "grad_norm": grad_norm, **terms}

    @property
    def max_grad_norm(self) -> float:
        """The clipping bound of the next step: ``clip_grad_norm``, and ``clip_grad_factor`` times
        the median gradient norm of the recent steps (once there are enough), the smaller one."""
        c = self.config
        bound = c.clip_grad_norm if c.clip_grad_norm else math.inf
        if c.clip_grad_factor and len(self._recent_grad_norms) >= MIN_RECENT_STEPS:
            bound = min(bound, c.clip_grad_factor * statistics.median(self._recent_grad_norms))
        return bound

    def _skip(self) -> None:
        self.counters["skipped"] += 1
        self._consecutive_skips += 1
        log.warning("skipped a step with a non-finite loss or gradient (%d in a row)", self._consecutive_skips)
        if self._consecutive_skips >= self.config.max_consecutive_skips:
            self._rollback()
        return None

    def _rollback(self) -> None:
        self.counters["rollbacks"] += 1
        if self.counters["rollbacks"] > self.config.max_rollbacks:
            raise TrainingDiverged(
                f"{self.config.max_consecutive_skips} consecutive non-finite steps after {self.config.max_rollbacks} "
                f"rollbacks (lr now {self.lr:.3g}): check the data for NaN/huge labels, lower the learning rate "
                "or tighten clip_grad_norm"
            )
        if self._good_state is not None:
            self._load_training_state(self._good_state)
        self.lr_scale *= self.config.rollback_lr_factor
        for group in self.optimizer.param_groups:
            group["lr"] *= self.config.rollback_lr_factor
        self._consecutive_skips = 0
        log.warning("rolled back to the last good state; learning rate x%g (now %.3g)", self.config.rollback_lr_factor, self.lr)

    # --- epochs -----------------------------------------------------------------------------------
    def train_epoch(self) -> dict[str, float]:
        self.sampler.set_epoch(self.epoch)
        totals: dict[str, float] = {}
        count, start, structures, norms = 0, time.perf_counter(), 0, []
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{self.config.epochs}", leave=False,
                   disable=not (self.config.progress and self.is_main))
        for batch in bar:
            result = self.train_step(batch)
            structures += int(batch[keys.NUM_ATOMS].numel())
            if result is None:
                continue
            norms.append(result["grad_norm"])
            count += 1
            for k, v in result.items():
                totals[k] = totals.get(k, 0.0) + v
            bar.set_postfix(loss=f"{result['loss']:.4g}", lr=f"{self.lr:.2g}")
        elapsed = time.perf_counter() - start
        summary = {f"train_{k}": v / max(count, 1) for k, v in totals.items() if k != "grad_norm"}
        summary.update({
            "grad_norm_mean": sum(norms) / max(len(norms), 1),
            "grad_norm_max": max(norms, default=0.0),
            "train_structures_per_s": structures * self.world_size / elapsed,
            "epoch_time_s": elapsed,
        })
        return summary

    @torch.no_grad()
    def evaluate(self, dataset_or_loader, model: Optional[torch.nn.Module] = None) -> dict[str, float]:
        """Loss and metrics of ``model`` (default: the EMA model) over a data set."""
        model = model or self.eval_model
        model.eval()
        loader = dataset_or_loader if isinstance(dataset_or_loader, DataLoader) else DataLoader(dataset_or_loader, batch_size=self.config.batch_size)
        metrics, loss_sum, n = MetricAccumulator(), 0.0, 0
        for batch in loader:
            outputs = model(batch)
            loss, _ = self.loss_fn(outputs, batch)
            loss_sum += float(loss) * batch[keys.NUM_ATOMS].numel()
            n += batch[keys.NUM_ATOMS].numel()
            metrics.update(outputs, batch)
        return {"loss": loss_sum / max(n, 1), **metrics.compute()}

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def fit(self, until_epoch: Optional[int] = None) -> list[dict[str, float]]:
        """Train until ``epochs`` (or early stopping, or ``until_epoch`` for a time-boxed job that a
        later :meth:`resume` continues); returns the per-epoch history."""
        self._good_state = self._training_state()
        last = self.config.epochs if until_epoch is None else min(until_epoch, self.config.epochs)
        while self.epoch < last and not self._stopped_early():
            if self.config.stage_two_start is not None and self.epoch == self.config.stage_two_start:
                log.info("stage two from epoch %d: loss weights changed, best model chosen anew", self.epoch + 1)
                self.best_val, self.epochs_since_best = math.inf, 0
            # Not the rollback scale: the lr of the last step (or of a rollback) already has it.
            self._apply_stage_two_lr()
            row = {"epoch": self.epoch + 1, "lr": self.lr, "stage": 2 if self.in_stage_two else 1}
            row.update(self.train_epoch())
            val = self.evaluate(self.val_loader) if len(self.val_set) else {"loss": row.get("train_loss", math.nan)}
            row.update({f"val_{k}": v for k, v in val.items()})
            row.update({k: float(v) for k, v in self.counters.items()})
            self.epoch += 1
            if not self.per_step_schedule:
                self.scheduler.step(val["loss"])
            improved = val["loss"] < self.best_val
            if improved:
                self.best_val, self.epochs_since_best = val["loss"], 0
            else:
                self.epochs_since_best += 1
            self.history.append(row)
            self._good_state = self._training_state()
            if self.is_main:
                self._write_log(row)
                self._save_checkpoints(improved)
        return self.history

    def _stopped_early(self) -> bool:
        """Whether the validation loss has not improved for ``early_stopping_patience`` epochs
        (checked before each epoch, so that a resumed run that had stopped early stays stopped)."""
        patience = self.config.early_stopping_patience
        if patience is None or self.epochs_since_best < patience:
            return False
        log.info("early stopping after %d epochs without improvement", patience)
        return True

    def _save_checkpoints(self, improved: bool) -> None:
        """``best.pt`` (if the epoch improved) and then ``last.pt``, each written atomically.

        In this order a run killed between the two writes resumes from the previous epoch and
        writes ``best.pt`` again; the other order would leave ``best.pt`` an epoch behind for good.
        A failed write stops training with an ``OSError`` naming the file; the previous
        checkpoints stay as they were.
        """
        for name in (("best.pt",) if improved else ()) + ("last.pt",):
            try:
                save_checkpoint(self._good_state, self.output_dir / name)
            except OSError as err:
                reason = f"training stopped after epoch {self.epoch}: {err.strerror or err}"
                raise (type(err)(err.errno, reason) if err.errno is not None else type(err)(reason)) from err

    # --- state ------------------------------------------------------------------------------------
    def _fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint: the training
        settings and the sizes of the training and validation sets."""
        return {"training": dataclasses.asdict(self.config), "num_train": len(self.train_set), "num_val": len(self.val_set)}

    def _training_state(self) -> dict[str, Any]:
        return copy.deepcopy({
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": self.epoch,
            "step": self.step,
            "lr_scale": self.lr_scale,
            "best_val": self.best_val,
            "epochs_since_best": self.epochs_since_best,
            "counters": dict(self.counters),
            "recent_grad_norms": list(self._recent_grad_norms),
            "history": list(self.history),
            "rng": rng_state(),
            "fingerprint": self._fingerprint(),
        })

    def _load_training_state(self, state: dict[str, Any]) -> None:
        """What a rollback and a resume both restore: weights, optimiser, schedule, EMA, the step
        count and the clipping window (older checkpoints lack the window and start it empty)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.step = state["step"]
        self._recent_grad_norms = list(state.get("recent_grad_norms", []))

    def load_best_model(self, path) -> torch.nn.Module:
        """The evaluation (EMA) model with the weights of the checkpoint at ``path``."""
        state = load_checkpoint(path)
        model = copy.deepcopy(self.eval_model)
        if self.ema is not None and state["ema"] is not None:
            ema = AveragedModel(copy.deepcopy(self.model), use_buffers=True)
            ema.load_state_dict(state["ema"])
            model = ema.module
        else:
            model.load_state_dict(state["model"])
        return model.eval()

    def resume(self, path) -> None:
        """Continue from a checkpoint written by :meth:`fit`.

        The checkpoint is checked first (:func:`~equiformer_lite.train.checkpoint.load_checkpoint`),
        then against this trainer: weights of other names or shapes, or training settings that
        would make the resumed run differ from an uninterrupted one, are a ``ValueError`` naming
        ``path`` and listing the differences (``name: checkpoint -> now``). The settings in
        :data:`RESUME_MAY_CHANGE` may change; checkpoints written before the settings were stored
        in them are resumed without that comparison.

        ``epochs`` may grow (or shrink down to the epochs already trained). One-cycle and cosine
        schedules depend on the total number of steps, so they are then rebuilt for the new total
        and continue at the step count already done: the lr jumps onto the new curve at that step
        (for a finished one-cycle run, from its final lr back up onto the new curve's annealing
        phase). The result is a well-defined longer run, not the run an uninterrupted longer
        schedule would have given. Reduce-on-plateau and constant schedules go on as they were.
        """
        if not Path(path).exists():
            raise FileNotFoundError(f"no checkpoint at {path} to resume from (a run writes it after its first epoch): "
                                    "start the run without resume")
        state = load_checkpoint(path)
        self._check_model_fits(state, path)
        self._check_settings(state, path)
        self._check_ema(state, path)
        try:
            self._load_training_state(state)
        except (RuntimeError, ValueError, KeyError, IndexError) as err:  # e.g. an optimiser of another layout
            raise ValueError(f"{path}: its training state does not fit this trainer: {err}") from err
        self.epoch, self.lr_scale = state["epoch"], state["lr_scale"]
        self.best_val, self.epochs_since_best = state["best_val"], state["epochs_since_best"]
        self.counters.update(state["counters"])
        self.history = list(state["history"])
        set_rng_state(state["rng"])
        if self._schedule_length_changed(state):
            self._rebuild_schedule(state["scheduler"])
        if self.is_main and self.history:
            self._write_log_rows(self.history, new=True)  # drops rows of epochs trained after the checkpoint
        log.info("resumed from %s at epoch %d", path, self.epoch)

    def _check_model_fits(self, state: dict[str, Any], path) -> None:
        """A ``ValueError`` listing the parameters whose names, shapes or dtypes differ between
        the checkpoint and this trainer's model."""
        own, saved = self.model.state_dict(), state["model"]
        differ = [f"{name}: {_describe(saved[name])} vs {_describe(tensor)}"
                  for name, tensor in own.items() if name in saved and _describe(saved[name]) != _describe(tensor)]
        missing = [name for name in own if name not in saved]
        unexpected = [name for name in saved if name not in own]
        if differ or missing or unexpected:
            parts = []
            if differ:
                parts.append(f"{len(differ)} differ (checkpoint vs model): " + _first(differ))
            if missing:
                parts.append(f"{len(missing)} of the model's tensors are not in the checkpoint: " + _first(missing))
            if unexpected:
                parts.append(f"{len(unexpected)} of the checkpoint's tensors are not in the model: " + _first(unexpected))
            raise ValueError(
                f"{path} does not fit this {type(self.model).__name__}: its weights are of another model; "
                + "; ".join(parts) + ". Resume with the model settings of the run that wrote it, "
                "or start a new run in another output directory"
            )

    def _check_settings(self, state: dict[str, Any], path) -> None:
        """A ``ValueError`` with a diff ``key: checkpoint -> now`` when settings changed that make
        the resumed run differ from an uninterrupted one (nothing to compare in older checkpoints)."""
        fingerprint = state.get("fingerprint")
        done = int(state["epoch"])
        if self.config.epochs < done:
            raise ValueError(f"{path} has trained {done} epochs already, more than training.epochs = "
                             f"{self.config.epochs}: ask for at least {done} epochs to resume it")
        if not isinstance(fingerprint, dict):
            return
        saved, now = dict(fingerprint.get("training", {})), dataclasses.asdict(self.config)
        diff = [f"training.{key}: {saved[key]!r} -> {now[key]!r}" for key in now
                if key in saved and key not in RESUME_MAY_CHANGE and saved[key] != now[key]]
        sizes = {"num_train": len(self.train_set), "num_val": len(self.val_set)}
        diff += [f"{key} (structures): {fingerprint[key]!r} -> {value!r}" for key, value in sizes.items()
                 if key in fingerprint and fingerprint[key] != value]
        if saved.get("epochs", self.config.epochs) != self.config.epochs:
            diff += self._stage_two_moves(int(saved["epochs"]))
        if diff:
            raise ValueError(
                f"{path} was written by a run with other settings; resuming would not continue it "
                f"({len(diff)} changed, checkpoint -> now): " + _first(diff, limit=len(diff))
                + ". Restore them, or start a new run in another output directory "
                f"(only {', '.join(RESUME_MAY_CHANGE)} may change on resume)"
            )

    def _check_ema(self, state: dict[str, Any], path) -> None:
        """A ``ValueError`` when only one of the checkpoint and this trainer has an EMA (a check
        for checkpoints without the settings: in newer ones ``ema_decay`` is compared)."""
        if (self.ema is None) != (state["ema"] is None):
            has = "has" if state["ema"] is not None else "has no"
            raise ValueError(f"{path} {has} an EMA of the weights, but training.ema_decay is now "
                             f"{self.config.ema_decay!r}: set it as in the run that wrote the checkpoint")

    def _stage_two_moves(self, saved_epochs: int) -> list[str]:
        """The diff entry when a changed ``epochs`` moves a stage two set by ``stage_two_fraction``."""
        try:
            before = dataclasses.replace(self.config, epochs=saved_epochs).stage_two_start
        except ValueError:  # settings this version no longer accepts with those epochs: nothing to compare
            return []
        after = self.config.stage_two_start
        if before == after:
            return []
        return [f"stage two start (0-based epoch, from training.stage_two_fraction and epochs): {before!r} -> {after!r}; "
                f"set training.stage_two_epoch: {before} to keep it"]

    def _schedule_length_changed(self, state: dict[str, Any]) -> bool:
        """Whether the checkpoint's schedule was built for another number of epochs."""
        if self.config.scheduler not in ("onecycle", "cosine"):
            return False
        fingerprint = state.get("fingerprint")
        if isinstance(fingerprint, dict) and "epochs" in fingerprint.get("training", {}):
            return int(fingerprint["training"]["epochs"]) != self.config.epochs
        # Older checkpoints: a one-cycle schedule stores its total; a cosine one cannot tell.
        total = state["scheduler"].get("total_steps")
        return total is not None and total != max(self.config.epochs * self.steps_per_epoch, 2)

    def _rebuild_schedule(self, saved: dict[str, Any]) -> None:
        """A schedule for the current ``epochs``, moved on to the steps the checkpoint had done,
        with the lr it gives there (and any rollback reduction or stage-two lr on top)."""
        done = int(saved["last_epoch"])
        self.scheduler = self._build_scheduler()
        self.scheduler.last_epoch = done - 1
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": a resume, not a bug
            warnings.simplefilter("ignore", UserWarning)
            self.scheduler.step()
        self.scheduler._step_count = int(saved.get("_step_count", done + 1))
        self._apply_lr_overrides()
        log.info("schedule rebuilt for %d epochs, continuing at step %d (lr %.3g)", self.config.epochs, done, self.lr)

    def _remove_stale_temporaries(self) -> None:
        """Delete the temporary files of checkpoint writes a killed run left behind."""
        for name in CHECKPOINT_NAMES:
            for stale in self.output_dir.glob(f".{name}*.tmp"):
                stale.unlink(missing_ok=True)
                log.info("removed %s, left by an interrupted checkpoint write", stale)

    def _tensorboard(self, first_epoch: int):
        """A TensorBoard writer into ``output_dir/tensorboard`` when TensorBoard is installed, else None.

        Events of epochs from ``first_epoch`` on (the first this trainer logs) are purged: a run
        resumed from an earlier checkpoint than its last logged epoch shows each epoch once, as
        ``log.csv`` does."""
        if not hasattr(self, "_tb_writer"):
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self._tb_writer = None
            else:
                self._tb_writer = SummaryWriter(log_dir=str(self.output_dir / "tensorboard"), purge_step=first_epoch)
        return self._tb_writer

    def _write_log(self, row: dict[str, float]) -> None:
        writer = self._tensorboard(int(row["epoch"]))
        if writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    writer.add_scalar(key, value, int(row["epoch"]))
            writer.flush()
        self._write_log_rows([row], new=self.epoch == 1 or not (self.output_dir / "log.csv").exists())

    def _write_log_rows(self, rows: list[dict[str, float]], *, new: bool) -> None:
        """Append ``rows`` to ``log.csv``, or start it anew with a header when ``new``."""
        path = self.output_dir / "log.csv"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with open(path, "w" if new else "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerows(rows)


def _describe(tensor: Any) -> str:
    """A tensor's dtype and shape, as ``float64 (4, 8)`` (the type of anything else)."""
    if not isinstance(tensor, torch.Tensor):
        return f"a {type(tensor).__name__}, not a tensor"
    return f"{str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)}"


def _first(items: list[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` items joined, and how many more there are."""
    more = f"; ... and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(items[:limit]) + more
