"""Potentials: the shared base class, `SE3Potential`, and the registry."""

from .base import AtomisticPotential
from .registry import MODELS, build_model, load_model, save_model
from .se3_potential import SE3Potential

__all__ = ["AtomisticPotential", "SE3Potential", "MODELS", "build_model", "load_model", "save_model"]
