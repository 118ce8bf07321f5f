"""The op table: one record per primitive / public function, driving the generic suites.

Each family module in this package (``elementwise.py``, ``shape.py``, ...)
defines ``RECORDS: list[Rec]``. The generic suites in ``tests/primitives``
and ``tests/transforms`` parametrize over ``all_records()`` and check, for
every record: values against the JAX twin (shape, dtype, weak type),
the shape rule against the impl, JVP against central finite differences,
VJP by the inner-product identity, both to second order, the transpose rule
by the dot-product test (``linear=True``), and ``typecheck_jaxpr`` on every
jaxpr a transform produces.

A record describes a *function of positional arrays*: bind static parameters
with a lambda or ``functools.partial`` in both ``fn`` and ``jax_fn``.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Sequence

import numpy as np

Shape = tuple[int, ...]


@dataclasses.dataclass
class Arg:
    """How to draw one argument.

    kind: "float" (drawn uniformly in ``domain``, cast to the record's dtype),
    "int" (integers in ``domain``, int32), "bool", "index:N" (int32 in
    [-N, N) style ranges are the record's business: use ``domain``),
    or "const" (the value ``value`` is passed as is; not differentiated).
    """

    shape: Shape
    kind: str = "float"
    domain: tuple[float, float] = (-2.0, 2.0)
    value: Any = None


@dataclasses.dataclass
class Rec:
    name: str                                  # test id, e.g. "sin" or "reshape_3x4_to_12"
    fn: Callable[..., Any]                     # fgrad function of positional arrays
    args: Sequence[Arg]                        # how to draw each argument
    jax_fn: Callable[..., Any] | None = None   # JAX twin with the same signature
    no_jax_reason: str = ""                    # required when jax_fn is None
    prims: tuple[str, ...] = ()                # primitive names this record exercises
    dtypes: tuple[Any, ...] = (np.float32,)    # dtypes for the "float" args (value tests)
    diff: bool = True                          # run JVP/VJP finite-difference checks
    order: int = 2                             # derivative order for check_grads
    linear: bool = False                       # linear in its float args: transpose test
    rtol: float | None = None                  # value tolerance override vs JAX (float32)
    grad_tol: float | None = None              # finite-difference tolerance override (float64)
    eps: float = 1e-4                          # finite-difference step (float64)
    check_weak_type: bool = True

    def float_args(self) -> list[int]:
        return [i for i, a in enumerate(self.args) if a.kind == "float"]


FAMILIES = ("elementwise", "shape", "reductions", "indexing", "linalg", "conv", "numpy_api",
            "nn")


def all_records() -> list[Rec]:
    records: list[Rec] = []
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"op_table.{family}")
        except ModuleNotFoundError as e:
            if e.name != f"op_table.{family}":
                raise
            continue
        records.extend(module.RECORDS)
    names = [r.name for r in records]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate op-table record names: {sorted(dupes)}")
    return records
