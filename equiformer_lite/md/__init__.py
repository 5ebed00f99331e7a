"""Molecular dynamics with the package's potentials: NVE, NVT and NPT through ASE's integrators,
with guards that stop a simulation leaving physical ground (``equiformer-lite md``)."""

from .config import ENSEMBLES, MDConfig, load_md_config
from .guards import check_state
from .run import MDResult, make_integrator, read_frame, run_md

__all__ = ["ENSEMBLES", "MDConfig", "MDResult", "check_state", "load_md_config", "make_integrator", "read_frame", "run_md"]
