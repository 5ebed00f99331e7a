"""Deployment: a potential compiled ahead of time into one ``.pt2`` file (torch.export +
AOTInductor) that runs without the package's model classes, checked before it is written."""

from ..models.exported import ExportedPotential, is_exported
from .compile import DEVIATION_BOUNDS, ExportRefused, ExportReport, export_model, format_report, trace_model

__all__ = [
    "DEVIATION_BOUNDS",
    "ExportedPotential",
    "ExportRefused",
    "ExportReport",
    "export_model",
    "format_report",
    "is_exported",
    "trace_model",
]
