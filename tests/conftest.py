"""Test-suite configuration: hypothesis profiles, markers, the ``x64`` fixture.

* Hypothesis profiles ``ci`` (the default: few examples, derandomized, so a
  run is reproducible), ``dev`` and ``nightly`` (many examples); choose one
  with ``FGRAD_HYPOTHESIS_PROFILE=nightly pytest ...``.
* Markers: ``slow`` (deselected by default in pyproject.toml) and ``gpu``
  (skipped only when the machine has no CUDA GPU).
* ``tests/`` is put on ``sys.path``, so test files ``import op_table`` and
  ``import strategies`` whatever directory pytest runs from.
* JAX is the oracle and a test dependency: test files import it
  unconditionally (never ``pytest.importorskip``), and CI runs
  ``tests/check_oracle_ran.py`` so a missing install fails loudly.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# --- hypothesis profiles ------------------------------------------------------------------

# function_scoped_fixture: fixtures like x64 only flip a flag, so sharing one fixture
# instance across a test's examples is what we want.
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
             HealthCheck.data_too_large]
# ci skips shrinking and explaining: a failure reports the first failing example at once
# (rerun with FGRAD_HYPOTHESIS_PROFILE=dev to get a minimal one).
_NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
hypothesis.settings.register_profile(
    "ci", max_examples=20, deadline=None, derandomize=True, database=None,
    suppress_health_check=_SUPPRESS, print_blob=True, phases=_NO_SHRINK)
hypothesis.settings.register_profile(
    "dev", max_examples=50, deadline=None, suppress_health_check=_SUPPRESS, print_blob=True)
hypothesis.settings.register_profile(
    "nightly", max_examples=500, deadline=None, suppress_health_check=_SUPPRESS,
    print_blob=True)
HYPOTHESIS_PROFILE = os.environ.get("FGRAD_HYPOTHESIS_PROFILE", "ci")
hypothesis.settings.load_profile(HYPOTHESIS_PROFILE)


# --- markers -----------------------------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running tests (deselected by default)")
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; skipped when none is present")


def _has_cuda_gpu() -> bool:
    """True when cupy finds a usable CUDA GPU (what ``jit(backend="cuda")`` needs)."""
    from fgrad.lowering.cuda.device import gpu_available
    return gpu_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _has_cuda_gpu():
        skip = pytest.mark.skip(reason="no CUDA GPU on this machine")
        for item in gpu_items:
            item.add_marker(skip)


# --- fixtures ------------------------------------------------------------------------------

class enable_x64:  # noqa: N801 (used like a function: ``with enable_x64(): ...``)
    """Context manager: float64 on in both fgrad and JAX, previous values restored."""

    def __init__(self, on: bool = True) -> None:
        self.on = on

    def __enter__(self) -> None:
        import jax

        import fgrad
        self.prev = (fgrad.config.enable_x64, jax.config.read("jax_enable_x64"))
        fgrad.config.update("enable_x64", self.on)
        if self.prev[1] != self.on:
            # NOTE: JAX keeps some traced helpers (e.g. in indexing) in caches that do not
            # key on the x64 flag; a value staged with x64 off then breaks under x64
            # ("lax.add requires ... int32, int64"). Start from clean caches on a switch.
            jax.clear_caches()
        jax.config.update("jax_enable_x64", self.on)

    def __exit__(self, *exc: object) -> None:
        import jax

        import fgrad
        fgrad.config.update("enable_x64", self.prev[0])
        if self.prev[1] != self.on:
            jax.clear_caches()
        jax.config.update("jax_enable_x64", self.prev[1])


@pytest.fixture
def x64() -> Iterator[None]:
    """Enable float64 in fgrad and JAX for one test; restore both afterwards."""
    with enable_x64():
        yield
