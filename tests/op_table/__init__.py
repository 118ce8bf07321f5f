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

How arguments are drawn (``args_strategy``): each ``Arg`` gives a shape and
a kind. "float" args take the record's dtype (each of ``Rec.dtypes`` in the
value tests, float64 with x64 in the derivative tests) unless ``Arg.dtype``
fixes one; their values lie in the *open* interval ``domain``, kept
``strategies.AVOID_MARGIN`` away from each point in ``Arg.avoid`` (kinks
and jumps). Derivative tests differentiate with respect to the float args
only; the others are held fixed. ``Rec.prepare`` may post-process the drawn
values (numpy arrays, in argument order), e.g. to keep ``max``'s operands
from tying.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any, Callable, Sequence

import numpy as np

Shape = tuple[int, ...]


@dataclasses.dataclass
class Arg:
    """How to draw one argument.

    kind: "float" (drawn in the open interval ``domain``, cast to the record's
    dtype or to ``dtype`` if given), "int" (integers in ``[lo, hi)``, int32 or
    ``dtype``), "bool", "index:N" (like "int"; the range is the record's
    business: use ``domain``, e.g. ``(-N, N)``), or "const" (the value
    ``value`` is passed as is to ``fn`` and ``jax_fn`` and closed over when
    tracing; never differentiated).
    avoid: float values to stay ``strategies.AVOID_MARGIN`` away from
    (kinks and discontinuities, e.g. ``(0.0,)`` for ``abs``).
    """

    shape: Shape
    kind: str = "float"
    domain: tuple[float, float] = (-2.0, 2.0)
    value: Any = None
    dtype: Any = None
    avoid: tuple[float, ...] = ()


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
    # Post-process drawn values: prepare(*numpy_args) -> sequence of args (same kinds).
    prepare: Callable[..., Sequence[Any]] | None = None
    family: str = ""                           # set by all_records(): "elementwise", ...

    def float_args(self) -> list[int]:
        return [i for i, a in enumerate(self.args) if a.kind == "float"]


FAMILIES = ("elementwise", "shape", "reductions", "indexing", "linalg", "conv", "numpy_api",
            "nn", "windowed", "control_flow_cond", "control_flow_loops", "random")


def all_records(families: Sequence[str] | None = None) -> list[Rec]:
    """Every family's records (or only ``families``'), each tagged with ``rec.family``.

    The environment variable ``FGRAD_OP_TABLE_FAMILIES=elementwise,shape`` restricts
    the default set (handy when working on one family).
    """
    if families is None:
        chosen = os.environ.get("FGRAD_OP_TABLE_FAMILIES", "")
        families = [f.strip() for f in chosen.split(",") if f.strip()] or FAMILIES
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"op_table: unknown families {sorted(unknown)}; known: {FAMILIES}")
    records: list[Rec] = []
    for family in families:
        try:
            module = importlib.import_module(f"op_table.{family}")
        except ModuleNotFoundError as e:
            if e.name != f"op_table.{family}":
                raise
            continue
        for rec in module.RECORDS:
            rec.family = family
        records.extend(module.RECORDS)
    names = [r.name for r in records]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate op-table record names: {sorted(dupes)}")
    return records


def arg_dtype(arg: Arg, float_dtype: Any) -> np.dtype | None:
    """The dtype ``arg`` is drawn in when the record's float dtype is ``float_dtype``."""
    if arg.kind == "const":
        return None
    if arg.dtype is not None:
        return np.dtype(arg.dtype)
    if arg.kind == "float":
        return np.dtype(float_dtype)
    if arg.kind == "bool":
        return np.dtype(np.bool_)
    if arg.kind == "int" or arg.kind.startswith("index"):
        return np.dtype(np.int32)
    raise ValueError(f"op_table: unknown Arg kind {arg.kind!r}")


def args_strategy(rec: Rec, float_dtype: Any = np.float32, layout: bool = False) -> Any:
    """A hypothesis strategy for ``rec``'s argument list (numpy arrays and const values).

    ``layout=True`` also stores each drawn array in a random, possibly
    non-contiguous memory layout (``strategies.relayout``).
    """
    from hypothesis import strategies as st

    import strategies

    @st.composite
    def draw_args(draw: Any) -> list[Any]:
        values = [arg.value if arg.kind == "const" else
                  draw(strategies.arrays(arg_dtype(arg, float_dtype), arg.shape, arg.domain,
                                         arg.avoid))
                  for arg in rec.args]
        if rec.prepare is not None:
            # prepare sees float64 floats (so it can break ties exactly); we round what it
            # returns back to each argument's dtype.
            wide = [v.astype(np.float64) if a.kind == "float" else v
                    for v, a in zip(values, rec.args)]
            out = list(rec.prepare(*wide))
            values = [np.asarray(o).astype(v.dtype) if a.kind == "float" else o
                      for o, v, a in zip(out, values, rec.args)]
        if layout:
            values = [v if a.kind == "const" else draw(strategies.layouts(v))
                      for v, a in zip(values, rec.args)]
        return values

    return draw_args()
