"""Test helpers for looking inside jaxprs."""

from __future__ import annotations

from typing import Any

from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr


def count_eqns(jaxpr: Any, name: str) -> int:
    """Equations named ``name`` in ``jaxpr`` and in every jaxpr nested in its params."""
    jaxpr = jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr
    total = 0
    for eqn in jaxpr.eqns:
        total += eqn.primitive.name == name
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(sub, (Jaxpr, ClosedJaxpr)):
                    total += count_eqns(sub, name)
    return total
