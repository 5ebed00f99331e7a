"""Model registry, and saving/loading models as ``state_dict`` + config (never a pickled module)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import torch

from ..utils import atomic_save
from .a2i_potential import A2IPotential
from .base import AtomisticPotential
from .exported import ExportedPotential, is_exported
from .gatv2_potential import GATv2Potential
from .se3_potential import SE3Potential

__all__ = ["MODELS", "build_model", "save_model", "load_model"]

MODELS: dict[str, type[AtomisticPotential]] = {"se3": SE3Potential, "gatv2": GATv2Potential, "a2i": A2IPotential}

UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"}


def build_model(model_type: str, **config) -> AtomisticPotential:
    """Instantiate a registered model by name (``"se3"``, ``"gatv2"``, ``"a2i"``)."""
    if model_type not in MODELS:
        raise ValueError(f"unknown model type '{model_type}', choose one of {sorted(MODELS)}")
    return MODELS[model_type](**config)


def save_model(model: AtomisticPotential, path: Union[str, os.PathLike]) -> None:
    """Write the model's weights, the config that built it, its dtype, units and package version.

    The file is written to a temporary name and renamed, so a crash never leaves half a model.
    """
    from .. import __version__

    path = Path(path)
    bad = _first_non_finite(model.state_dict())
    if bad is not None:
        raise ValueError(f"not saving {path}: the model's weight {bad!r} is not finite (NaN or inf)")
    payload = {
        "model_type": model.model_type,
        "config": model.config,
        "state_dict": model.state_dict(),
        "dtype": str(model.dtype).removeprefix("torch."),
        "units": UNITS,
        "version": __version__,
    }
    atomic_save(payload, path)


def load_model(path: Union[str, os.PathLike], map_location: Union[str, torch.device] = "cpu") -> AtomisticPotential:
    """Rebuild a model saved by :func:`save_model`, in eval mode and its saved dtype; or load an
    artefact written by ``equiformer-lite export`` (a ``.pt2`` file) as an
    :class:`~equiformer_lite.export.ExportedPotential`, which takes the same calls."""
    if is_exported(path):
        return ExportedPotential.load(path).to(map_location)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a model file written by equiformer_lite.save_model: {err}") from err
    if not isinstance(payload, dict):
        raise ValueError(f"{path} holds a {type(payload).__name__}, not a model file written by equiformer_lite.save_model")
    missing = {"model_type", "config", "state_dict"} - set(payload)
    if missing:
        hint = " (a training checkpoint? load OUTPUT_DIR/model.pt instead)" if {"model", "optimizer"} <= set(payload) else ""
        raise ValueError(f"{path} lacks {sorted(missing)}: not a model file written by save_model{hint}")
    model_type, saved_config, state = payload["model_type"], payload["config"], payload["state_dict"]
    if model_type not in MODELS:
        raise ValueError(f"{path}: unknown model type {model_type!r}; this version has {sorted(MODELS)}")
    if not isinstance(saved_config, dict) or not isinstance(state, dict):
        raise ValueError(f"{path}: 'config' and 'state_dict' must be mappings, got "
                         f"{type(saved_config).__name__} and {type(state).__name__}")
    bad = _first_non_finite(state)
    if bad is not None:
        raise ValueError(f"{path}: the weight {bad!r} is not finite (NaN or inf); the file is not a usable model")
    config = {**saved_config, "dtype": payload.get("dtype", saved_config.get("dtype"))}
    model_class = MODELS[model_type]
    if not model_class.needs_edges:
        config.pop("cutoff", None)  # files from before the edgeless A2I carried a placeholder radius
    try:
        model = build_model(model_type, **config)
    except (TypeError, ValueError) as err:  # a config of another model type or version
        raise ValueError(f"{path}: its config does not build a {model_type} model of this version: {err}") from err
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # missing, unexpected or mis-shaped weights
        from .. import __version__

        raise ValueError(
            f"{path}: its weights do not fit the {payload['model_type']} model this version builds from its "
            f"config (saved by equiformer_lite {payload.get('version', 'unknown')}, this is {__version__}; "
            f"the layer layout may have changed since): {err}"
        ) from err
    return model.to(map_location).eval()


def _first_non_finite(state: dict) -> Optional[str]:
    """The name of the first floating-point tensor of a ``state_dict`` with NaN or inf, else None."""
    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            return name
    return None
