"""Small pieces shared by forward and reverse mode.

* ``Zero(aval)``: a *symbolic* zero tangent or cotangent. Rules skip work on
  it (the tangent of a constant is never materialised), and transforms only
  turn it into an array ("instantiate") when a user asks for one.
* ``UndefPrimal(aval)``: in a transpose rule, marks the argument the rule is
  linear in: its value is unknown; we are computing its cotangent.
* ``add_any_p``: adds two tangents (or cotangents). A separate primitive
  from ``add`` because it is what accumulates contributions in autodiff, so
  its rules are trivial and it never needs promotion or broadcasting.
  Under ``vmap`` (``vmap(grad(f))`` accumulates batched cotangents) it is
  batched like any elementwise binary primitive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive


class Zero:
    """A symbolic zero of type ``aval``."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


class UndefPrimal:
    """The unknown linear input of a transpose rule, of type ``aval``."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    def __repr__(self) -> str:
        return f"UndefPrimal({self.aval.str_short()})"


def is_undefined_primal(x: Any) -> bool:
    return type(x) is UndefPrimal


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    """Tangents have the primal's shape and dtype; they are never weakly typed."""
    return aval.strip_weak_type()


# --- add_any -------------------------------------------------------------------------
add_any_p = Primitive("add_any")


def add_tangents(x: Any, y: Any) -> Any:
    """x + y for tangents, where either may be a symbolic ``Zero``."""
    if type(x) is Zero:
        return y
    if type(y) is Zero:
        return x
    return add_any_p.bind(x, y)


def _add_any_abstract_eval(x: ShapedArray, y: ShapedArray) -> ShapedArray:
    if x.shape != y.shape or x.dtype != y.dtype:
        raise FgradTypeError(f"add_any: operands must have equal types, got "
                             f"{x.str_short()} and {y.str_short()}")
    return ShapedArray(x.shape, x.dtype, x.weak_type and y.weak_type)


add_any_p.def_impl(np.add)
add_any_p.def_abstract_eval(_add_any_abstract_eval)
add_any_p.def_jvp(lambda primals, tangents: (add_any_p.bind(*primals),
                                             add_tangents(*tangents)))
add_any_p.def_transpose(lambda ct, x, y: [ct, ct])
add_any_p.linear_args = (0, 1)


def _add_any_batch(vals: Any, dims: Any, *, axis_size: int) -> Any:
    # The generic elementwise rule (batch axes lined up, an unbatched operand broadcast).
    # Imported here: fgrad.primitives imports this module, so it cannot be imported above.
    from fgrad.primitives.rules import broadcasting_batcher
    return broadcasting_batcher(add_any_p)(vals, dims, axis_size=axis_size)


add_any_p.def_batch(_add_any_batch)
