"""Run configuration: YAML files -> validated dataclasses. Unknown keys are errors."""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .losses import LOSSES

__all__ = ["DataConfig", "TrainingConfig", "RunConfig", "check_model_section", "load_config"]


# GFN2-xTB (tblite 0.8.0) energies of isolated H, C and O atoms, eV (data_cards/ethanol_gfn2_md.md).
GFN2_XTB_ATOM_ENERGIES = {"H": -10.707211, "C": -48.847445, "O": -102.571173}

# The default job's data: bundled ethanol MD and periodic water box (data_cards/).
DEFAULT_DATA = ("bundled:ethanol", "bundled:water_box")

# The default job's model: small enough to train in minutes on 2 CPU cores.
DEFAULT_MODEL = {"type": "se3", "cutoff": 5.0, "lmax": 2, "channels": 8, "num_heads": 2, "num_layers": 2}


@dataclass
class DataConfig:
    """Where the structures come from and how labels are read.

    Two ways to give the structures (a file is anything a reader of :mod:`equiformer_lite.data`
    handles, or ``bundled:NAME`` for a data set shipped with the package; each field takes one
    file or a list):

    - ``path``: one pool, split into training, validation and test sets by ``val_fraction`` and
      ``test_fraction`` (seeded by ``split_seed``) or by the index file ``split_file``;
    - ``train_path`` with optional ``val_path`` and ``test_path`` (MACE's ``--train_file``,
      ``--valid_file``, ``--test_file``): the sets as given. Without ``val_path`` the validation set
      is ``val_fraction`` of the training file; without ``test_path`` there is no test set.

    Without either, ``path`` is the bundled default data. ``max_structures`` keeps a seeded random
    subset of the pool (or of the training file). ``atomic_energies``: ``"fit"`` (least squares on
    composition), a dict ``{symbol: eV}``, or ``None`` (zeros).

    ``energy_key``/``forces_key``/``stress_key`` (``null`` leaves a label out) and
    ``energy_unit``/``length_unit`` (``null``: the format's convention) say where the labels are
    and in which units; :attr:`labels` carries them to the readers.
    """

    path: Union[str, list, None] = None
    train_path: Union[str, list, None] = None
    val_path: Union[str, list, None] = None
    test_path: Union[str, list, None] = None
    format: Optional[str] = None
    energy_key: Optional[str] = "energy"
    forces_key: Optional[str] = "forces"
    stress_key: Optional[str] = "stress"
    energy_unit: Optional[str] = None
    length_unit: Optional[str] = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0
    split_file: Optional[str] = None
    max_structures: Optional[int] = 1200  # a random subset (seeded), for a job of minutes on 2 cores
    # The default job's data are GFN2-xTB: its isolated-atom energies (data_cards/) are physical
    # E0s, where a fit on two compositions for three elements would not be unique.
    atomic_energies: Union[str, dict, None] = field(default_factory=lambda: dict(GFN2_XTB_ATOM_ENERGIES))
    cache_dir: Optional[str] = None

    def __post_init__(self) -> None:
        coerce_fields(self, "data")
        if self.train_path is None:
            if self.val_path is not None or self.test_path is not None:
                raise ValueError("data.val_path and data.test_path need data.train_path")
            if self.path is None:
                self.path = list(DEFAULT_DATA)
        else:
            if self.path is not None:
                raise ValueError(f"give data.path (one pool, split by fractions) or data.train_path "
                                 f"(separate files), not both: path={self.path!r}, train_path={self.train_path!r}")
            if self.split_file is not None:
                raise ValueError("data.split_file indexes a pooled data.path; with data.train_path the files are the split")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1):
            raise ValueError(f"val_fraction ({self.val_fraction}) and test_fraction ({self.test_fraction}) must be in [0, 1) and sum below 1")
        if isinstance(self.atomic_energies, str) and self.atomic_energies != "fit":
            raise ValueError(f"data.atomic_energies must be 'fit', a dict of eV per element or null, got {self.atomic_energies!r}")
        if isinstance(self.atomic_energies, dict):
            self.atomic_energies = {
                str(symbol): _coerce(value, float, f"data.atomic_energies.{symbol}") for symbol, value in self.atomic_energies.items()
            }
        if self.max_structures is not None and self.max_structures < 1:
            raise ValueError(f"data.max_structures must be >= 1, got {self.max_structures}")
        try:
            self.labels
        except ValueError as err:
            raise ValueError(f"data: {err}") from None

    @property
    def labels(self):
        """The label keys and units of the data files, as one :class:`~equiformer_lite.data.LabelSpec`."""
        from ..data import LabelSpec

        return LabelSpec(energy_key=self.energy_key, forces_key=self.forces_key, stress_key=self.stress_key,
                         energy_unit=self.energy_unit, length_unit=self.length_unit)


SCHEDULERS = ("onecycle", "cosine", "plateau", "constant")


@dataclass
class TrainingConfig:
    """Optimisation. Loss weights multiply per-atom energy, force, stress and per-atom energy-label terms."""

    epochs: int = 20
    batch_size: int = 8
    lr: float = 5e-3
    weight_decay: float = 0.0
    scheduler: str = "onecycle"  # onecycle | cosine | plateau | constant
    warmup_epochs: float = 1.0  # cosine only
    min_lr_ratio: float = 1e-2  # final lr / lr for onecycle and cosine
    onecycle_start_ratio: float = 0.1  # onecycle: starting (and turning) lr / lr
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    loss: str = "mse"  # mse | huber | logcosh
    loss_alpha: float = 0.1  # Huber delta / log-cosh scale
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    # Stresses are ~0.01 eV/Å³, forces ~1 eV/Å: a stress weight near 1e3 makes both terms count.
    stress_weight: float = 1000.0
    # Per-atom energy labels (the A2I paper's only target); 0 leaves them out of the loss.
    atomic_energies_weight: float = 0.0
    # Stage two (MACE's "SWA" stage): from epoch ``stage_two_epoch`` on (0-based; None: never) the
    # loss uses these energy and force weights, typically a much larger energy weight to fit
    # total energies once the forces are learned. The best model is then chosen among stage-two
    # epochs only (their validation loss is on another scale).
    stage_two_epoch: Optional[int] = None
    stage_two_fraction: Optional[float] = None  # or: stage two from epoch int(fraction * epochs)
    stage_two_energy_weight: Optional[float] = None
    stage_two_forces_weight: Optional[float] = None
    stage_two_lr: Optional[float] = None  # a constant lr in stage two (None: the schedule goes on)
    amsgrad: bool = False  # AMSGrad variant of Adam(W), as MACE and NequIP train
    clip_grad_norm: Optional[float] = 10.0
    # Clip relative to the recent steps: at clip_grad_factor x the median gradient norm of the last
    # 100 steps (none before 10 steps), so that it fires on outliers only, whatever the scale of
    # the loss. With clip_grad_norm too, the smaller bound applies.
    clip_grad_factor: Optional[float] = None
    ema_decay: Optional[float] = 0.99
    max_consecutive_skips: int = 5
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 3
    early_stopping_patience: Optional[int] = None
    seed: int = 0
    dtype: str = "float32"
    num_threads: Optional[int] = None  # torch intra-op threads; None keeps torch's default
    # torch.compile the training step's forward (energies, forces and stress in one graph, double
    # backward through it): the first steps compile, for minutes on a CPU (see benchmarks/README.md).
    compile: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        coerce_fields(self, "training")
        checks = [
            ("epochs", self.epochs >= 1, "an integer >= 1"),
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", 0 < self.lr < math.inf, "a positive number"),
            ("weight_decay", 0 <= self.weight_decay < math.inf, "a number >= 0"),
            ("scheduler", self.scheduler in SCHEDULERS, f"one of {', '.join(SCHEDULERS)}"),
            ("warmup_epochs", 0 <= self.warmup_epochs < math.inf, "a number >= 0"),
            ("min_lr_ratio", 0 < self.min_lr_ratio <= 1, "in (0, 1]"),
            ("onecycle_start_ratio", 0 < self.onecycle_start_ratio <= 1, "in (0, 1]"),
            ("plateau_factor", 0 < self.plateau_factor < 1, "in (0, 1)"),
            ("plateau_patience", self.plateau_patience >= 0, "an integer >= 0"),
            ("loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
            ("loss_alpha", 0 < self.loss_alpha < math.inf, "a positive number"),
            ("energy_weight", 0 <= self.energy_weight < math.inf, "a number >= 0"),
            ("forces_weight", 0 <= self.forces_weight < math.inf, "a number >= 0"),
            ("stress_weight", 0 <= self.stress_weight < math.inf, "a number >= 0"),
            ("atomic_energies_weight", 0 <= self.atomic_energies_weight < math.inf, "a number >= 0"),
            ("clip_grad_norm", self.clip_grad_norm is None or self.clip_grad_norm > 0, "null or a positive number"),
            ("clip_grad_factor", self.clip_grad_factor is None or self.clip_grad_factor > 1, "null or a number > 1"),
            ("stage_two_epoch", self.stage_two_epoch is None or 0 <= self.stage_two_epoch < self.epochs,
             f"null or an epoch in [0, epochs) = [0, {self.epochs})"),
            ("stage_two_fraction", self.stage_two_fraction is None or (0 < self.stage_two_fraction < 1 and self.stage_two_epoch is None),
             "null or in (0, 1), and not together with stage_two_epoch"),
            ("stage_two_energy_weight", self.stage_two_energy_weight is None or self.stage_two_energy_weight >= 0, "null or a number >= 0"),
            ("stage_two_forces_weight", self.stage_two_forces_weight is None or self.stage_two_forces_weight >= 0, "null or a number >= 0"),
            ("stage_two_lr", self.stage_two_lr is None or self.stage_two_lr > 0, "null or a positive number"),
            ("ema_decay", self.ema_decay is None or 0 < self.ema_decay < 1, "null or in (0, 1)"),
            ("max_consecutive_skips", self.max_consecutive_skips >= 1, "an integer >= 1"),
            ("rollback_lr_factor", 0 < self.rollback_lr_factor < 1, "in (0, 1)"),
            ("max_rollbacks", self.max_rollbacks >= 0, "an integer >= 0"),
            ("early_stopping_patience", self.early_stopping_patience is None or self.early_stopping_patience >= 1, "null or an integer >= 1"),
            ("dtype", self.dtype in ("float32", "float64"), "float32 or float64"),
            ("num_threads", self.num_threads is None or self.num_threads >= 1, "null or an integer >= 1"),
        ]
        for name, ok, valid in checks:
            if not ok:
                raise ValueError(f"training.{name} must be {valid}, got {getattr(self, name)!r}")

    @property
    def stage_two_start(self) -> Optional[int]:
        """The first epoch (0-based) of stage two, from ``stage_two_epoch`` or ``stage_two_fraction``."""
        if self.stage_two_fraction is not None:
            return min(max(int(self.stage_two_fraction * self.epochs), 1), self.epochs - 1)
        return self.stage_two_epoch


@dataclass
class RunConfig:
    """A whole run: ``model`` (keyword arguments of the model class named by ``model.type``),
    ``data``, ``training`` and the output directory."""

    model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL))
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    output_dir: str = "runs/default"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "RunConfig":
        raw = dict(raw or {})
        unknown = set(raw) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown top-level config keys {sorted(unknown)}; allowed: model, data, training, output_dir")
        _check_mapping(raw.get("model"), "model")
        model = dict(raw["model"]) if raw.get("model") else dict(DEFAULT_MODEL)
        model.setdefault("type", "se3")
        check_model_section(model)
        return cls(
            model=model,
            data=_section(DataConfig, raw.get("data"), "data"),
            training=_section(TrainingConfig, raw.get("training"), "training"),
            output_dir=_output_dir(raw.get("output_dir", "runs/default")),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Model arguments a training run sets itself, and where they come from instead.
RUN_SET_MODEL_KEYS = {
    "dtype": "training.dtype",
    "atomic_energies": "data.atomic_energies (or the fit to the training energies)",
    "scale": "the training data's statistics",
    "shift": "the training data's statistics",
}


def check_model_section(model: dict[str, Any]) -> None:
    """The ``model`` section against the constructor of the model it names: an unknown type, a
    key the constructor lacks, or one the run sets itself is a ``ValueError`` naming the allowed keys."""
    from ..models import MODELS

    model_type = model.get("type")
    if model_type not in MODELS:
        raise ValueError(f"unknown model type {model_type!r} in 'model'; choose one of {sorted(MODELS)}")
    model_class = MODELS[model_type]
    parameters = set(inspect.signature(model_class).parameters) - {"args", "kwargs"}
    allowed = sorted(parameters - set(RUN_SET_MODEL_KEYS) | {"type"})
    for key in model:
        if key in RUN_SET_MODEL_KEYS:
            raise ValueError(f"'model.{key}' is set by the run from {RUN_SET_MODEL_KEYS[key]}; remove it from 'model'")
        if key == "cutoff" and not model_class.needs_edges:
            raise ValueError(f"'model.cutoff': the {model_type} model reads no neighbour list and takes no cutoff; remove it")
        if key not in allowed:
            raise ValueError(f"unknown key {key!r} in 'model' for type {model_type!r}; allowed: {allowed}")


def _section(cls, raw: Optional[dict], name: str):
    _check_mapping(raw, name)
    raw = dict(raw or {})
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown keys in '{name}': {sorted(unknown)}; allowed: {sorted(allowed)}")
    return cls(**raw)


def _check_mapping(raw: Any, name: str) -> None:
    if raw is not None and not isinstance(raw, dict):
        raise ValueError(f"config section '{name}' must be a mapping of keys to values, got a {type(raw).__name__}: {raw!r}")


def _output_dir(value: Any) -> str:
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError(f"output_dir must be a directory path, got {value!r}")
    return str(value)


def coerce_fields(config: Any, section: str) -> None:
    """Check every field of a config dataclass against its annotation, in place.

    YAML 1.1 reads ``1e-3`` (no dot) as a string: a string that parses as the number a field
    expects is converted; anything else of the wrong type is a ``ValueError`` naming
    ``section.field``, the value and the type expected.
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        setattr(config, f.name, _coerce(getattr(config, f.name), hints[f.name], f"{section}.{f.name}"))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    options = typing.get_args(hint) if typing.get_origin(hint) is Union else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ValueError(f"{where} must be {_describe(options)}, got null")
    for option in options:
        ok, converted = _convert(value, typing.get_origin(option) or option)
        if ok:
            return converted
    raise ValueError(f"{where} must be {_describe(options)}, got {value!r} ({type(value).__name__})")


def _convert(value: Any, kind: type) -> tuple[bool, Any]:
    if kind is bool:
        return isinstance(value, bool), value
    if isinstance(value, bool):  # True is an int to Python, never a number in a config
        return False, None
    if kind is float:
        if isinstance(value, (int, float)):
            return math.isfinite(value), float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return False, None
            return math.isfinite(number), number
        return False, None
    if kind is int:
        if isinstance(value, int):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        if isinstance(value, str):
            try:
                return True, int(value.strip())
            except ValueError:
                return False, None
        return False, None
    if kind is list:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value), list(value) if isinstance(value, (list, tuple)) else None
    if kind is type(None):
        return False, None
    return isinstance(value, kind), value


_NAMES = {bool: "true or false", float: "a finite number", int: "an integer", str: "a string", list: "a list of strings", dict: "a mapping"}


def _describe(options: tuple) -> str:
    names = [_NAMES.get(typing.get_origin(o) or o, getattr(o, "__name__", str(o))) for o in options if o is not type(None)]
    return " or ".join(names) + (" or null" if type(None) in options else "")


def load_config(path: Union[str, Path, None]) -> RunConfig:
    """Read a YAML run configuration (``None``: the defaults, i.e. the bundled default job)."""
    if path is None:
        return RunConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from err
    if raw is not None and not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a mapping of sections, got {type(raw).__name__}")
    return RunConfig.from_dict(raw or {})
