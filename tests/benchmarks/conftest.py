"""Shared by the tests of the scripts in benchmarks/ (they are files, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module, loaded once and kept in ``sys.modules`` under ``name``
    (so that worker processes and pickled objects find it by name)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """:func:`load_benchmark` for tests: ``benchmark_script("bench_env")``."""
    return load_benchmark
