"""Potentials: the shared base class, `SE3Potential`, `GATv2Potential`, `A2IPotential`, and the registry."""

from .a2i_potential import A2IPotential
from .attention_weights import AttentionWeights
from .base import AtomisticPotential, AtomReadout, ModelInputs
from .compiled import CompiledPotential
from .exported import ExportedPotential
from .gatv2_potential import GATv2Potential
from .registry import MODELS, build_model, load_model, save_model
from .se3_potential import SE3Potential

__all__ = ["A2IPotential", "AtomisticPotential", "AtomReadout", "AttentionWeights", "CompiledPotential", "ExportedPotential", "ModelInputs", "GATv2Potential", "SE3Potential", "MODELS", "build_model", "load_model", "save_model"]
