"""Building blocks of ``lower`` rules, the kernel-IR lowering of a primitive.

A ``lower`` rule receives the scheduler and its operands as lazy values
(``Lazy``: a shape, a dtype, and a function giving the expression of one
element at symbolic indices) and returns the result as a lazy value,
usually built with ``elementwise`` (combine operands element by element
with ``alu(ScalarOp..., ...)``) or ``reindex`` (read an operand at other
indices, optionally masked by conditions made with ``lt``/``ge``/``eq``/
``all_of``). See ``fgrad/lowering/schedule.py`` for the full story.
"""

from __future__ import annotations

from fgrad.lowering.kernel_ir import ScalarOp, all_of, alu, eq, ge, lt
from fgrad.lowering.schedule import Lazy, LoweringError, elementwise, reindex

__all__ = ["Lazy", "LoweringError", "ScalarOp", "all_of", "alu", "elementwise", "eq", "ge",
           "lt", "reindex"]
