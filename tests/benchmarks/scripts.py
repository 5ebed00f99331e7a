"""Load a benchmark script (not a package module) by its path under ``benchmarks/``."""

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_script(relative: str):
    """The module of ``benchmarks/<relative>``, registered in ``sys.modules`` under its stem
    (dataclasses look their module up there)."""
    path = BENCHMARKS / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
