"""Integrations with simulation codes."""

from .ase_calculator import EquiformerCalculator

__all__ = ["EquiformerCalculator"]
