"""Slot completeness: every registered primitive has the rules it needs, and a test.

* every primitive has an ``impl`` and an ``abstract_eval``;
* every primitive has a ``jvp`` rule, or is ``nondifferentiable``, or states
  why not in ``missing_reasons["jvp"]``;
* a primitive with ``linear_args`` has a ``transpose`` rule, and a primitive
  with a ``transpose`` rule declares ``linear_args`` (the transpose machinery
  and the completeness checks read it);
* every primitive appears in the jaxpr of at least one op-table record
  (found by tracing each record, so a record cannot claim what it does not
  exercise), except the few reached only through special APIs, which are
  listed with the test file that covers them.

* every primitive has a ``batch`` rule (vmap) and a ``lower`` rule (the
  compiled backends), or states why not in ``missing_reasons``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

import fgrad
import op_table
from fgrad.core.avals import ShapeDtypeStruct
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr
from fgrad.core.primitive import all_primitives

PRIMITIVES = all_primitives()
NAMES = sorted(PRIMITIVES)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Primitives only reachable through special APIs: (the test file covering them, a word that
# file must use). add_any accumulates cotangents whenever a value is used twice under grad.
SPECIAL_API: dict[str, tuple[str, str]] = {
    "custom_jvp_call": ("tests/transforms/test_custom_derivatives.py", "custom_jvp"),
    "custom_vjp_call": ("tests/transforms/test_custom_derivatives.py", "custom_vjp"),
    "custom_lin": ("tests/transforms/test_custom_derivatives.py", "custom_vjp"),
    "checkpoint": ("tests/transforms/test_custom_derivatives.py", "checkpoint"),
    "jit": ("tests/transforms/test_jit.py", "jit"),
    "add_any": ("tests/transforms/test_grad.py", "grad"),
    "stop_gradient": ("tests/transforms/test_grad.py", "stop_gradient"),
}


@pytest.mark.parametrize("name", NAMES)
def test_has_impl_and_abstract_eval(name: str) -> None:
    prim = PRIMITIVES[name]
    assert prim.impl is not None, f"primitive {name!r} has no impl"
    assert prim.abstract_eval is not None, f"primitive {name!r} has no abstract_eval"


@pytest.mark.parametrize("name", NAMES)
def test_has_jvp_or_a_reason(name: str) -> None:
    prim = PRIMITIVES[name]
    assert prim.jvp is not None or prim.nondifferentiable or prim.missing_reasons.get("jvp"), (
        f"primitive {name!r} has no jvp rule; give it one, mark it nondifferentiable "
        "(defjvp_zero), or state why in missing_reasons['jvp'] (prim.declare_missing)")


@pytest.mark.parametrize("name", NAMES)
def test_has_batch_rule(name: str) -> None:
    prim = PRIMITIVES[name]
    assert prim.batch is not None or prim.missing_reasons.get("batch"), (
        f"primitive {name!r} has no batching rule (vmap): add one in its block, or state "
        "why it cannot have one with prim.declare_missing('batch', reason)")


@pytest.mark.parametrize("name", NAMES)
def test_has_lowering_rule(name: str) -> None:
    prim = PRIMITIVES[name]
    assert prim.lower is not None or prim.missing_reasons.get("lower"), (
        f"primitive {name!r} has no lowering rule for the compiled backends "
        "(fgrad/lowering): add one, or state why with prim.declare_missing('lower', reason)")


@pytest.mark.parametrize("name", NAMES)
def test_linear_args_and_transpose_agree(name: str) -> None:
    prim = PRIMITIVES[name]
    if prim.linear_args:
        assert prim.transpose is not None, (
            f"primitive {name!r} declares linear_args={prim.linear_args!r} but has no "
            "transpose rule")
    if prim.transpose is not None:
        assert prim.linear_args, (
            f"primitive {name!r} has a transpose rule but no linear_args: set "
            "prim.linear_args to the positions it is linear in")


# --- every primitive is exercised by an op-table record ----------------------------------------

def _abstract(arg: op_table.Arg) -> Any:
    dtype = op_table.arg_dtype(arg, np.float32)
    return arg.value if dtype is None else ShapeDtypeStruct(arg.shape, dtype)


def _collect(jaxpr: ClosedJaxpr | Jaxpr, names: set[str]) -> None:
    inner = jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr
    for eqn in inner.eqns:
        names.add(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                if isinstance(sub, (ClosedJaxpr, Jaxpr)):
                    _collect(sub, names)


def _traced_primitives(rec: op_table.Rec) -> set[str]:
    """The primitives in ``make_jaxpr`` of the record's fn ("const" args closed over)."""
    values = [_abstract(a) for a in rec.args]
    dyn_positions = [i for i, a in enumerate(rec.args) if a.kind != "const"]

    def f(*dyn: Any) -> Any:
        full = list(values)
        for i, x in zip(dyn_positions, dyn):
            full[i] = x
        return rec.fn(*full)

    names: set[str] = set()
    _collect(fgrad.make_jaxpr(f)(*[values[i] for i in dyn_positions]), names)
    return names


def exercised_primitives() -> tuple[dict[str, list[str]], list[str]]:
    """primitive name -> records whose jaxpr contains it; and records that failed to trace."""
    by_prim: dict[str, list[str]] = {}
    untraceable = []
    for rec in op_table.all_records():
        try:
            names = _traced_primitives(rec)
        except Exception as e:  # reported by the test below; the generic suites show why
            untraceable.append(f"{rec.name}: {type(e).__name__}: {e}")
            continue
        for name in names:
            by_prim.setdefault(name, []).append(rec.name)
    return by_prim, untraceable


def test_every_record_traces() -> None:
    _, untraceable = exercised_primitives()
    assert not untraceable, "op-table records that make_jaxpr cannot trace:\n" + "\n".join(
        untraceable)


def test_every_primitive_has_an_op_table_record() -> None:
    by_prim, _ = exercised_primitives()
    missing = [n for n in NAMES if n not in by_prim and n not in SPECIAL_API]
    assert not missing, (
        f"{len(missing)} primitives appear in no op-table record's jaxpr (add a Rec to "
        f"tests/op_table/<family>.py): {missing}")


def test_record_prims_are_registered_names() -> None:
    """``Rec.prims`` is documentation (coverage is found by tracing); keep it free of typos."""
    bad = [f"{rec.name}: {p!r}" for rec in op_table.all_records() for p in rec.prims
           if p not in PRIMITIVES]
    assert not bad, "op-table records naming unknown primitives:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(SPECIAL_API))
def test_special_api_primitives_are_covered(name: str) -> None:
    path, word = SPECIAL_API[name]
    assert name in PRIMITIVES, f"allowlisted primitive {name!r} is no longer registered"
    full = os.path.join(_ROOT, path)
    assert os.path.exists(full), f"{name}: its covering test file {path} does not exist"
    with open(full) as f:
        assert word in f.read(), f"{name}: {path} never mentions {word!r}"
