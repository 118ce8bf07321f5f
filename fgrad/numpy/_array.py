"""Installs numpy-style operators and methods on ``Array`` and on every ``Tracer``.

The core defines ``Array`` and ``Tracer`` without arithmetic (it must not
import the numpy layer); this module gives both classes ``+ - * / ** @``,
comparisons, indexing, ``.T``, ``.sum()`` and friends, all routed to
``fgrad.numpy`` functions, so traced code and eager code read the same.
"""

from __future__ import annotations

from typing import Any, Callable

from fgrad.core.array import Array
from fgrad.core.trace import Tracer
import fgrad.numpy as fnp


def _swap(f: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda x, y: f(y, x)


def _operators() -> dict[str, Any]:
    return {
        "__add__": fnp.add, "__radd__": _swap(fnp.add),
        "__sub__": fnp.subtract, "__rsub__": _swap(fnp.subtract),
        "__mul__": fnp.multiply, "__rmul__": _swap(fnp.multiply),
        "__truediv__": fnp.divide, "__rtruediv__": _swap(fnp.divide),
        "__pow__": fnp.power, "__rpow__": _swap(fnp.power),
        "__neg__": fnp.negative,
        "__lt__": fnp.less, "__le__": fnp.less_equal,
        "__gt__": fnp.greater, "__ge__": fnp.greater_equal,
        "__eq__": fnp.equal, "__ne__": fnp.not_equal,
        "sum": fnp.sum,
    }


def install() -> None:
    for name, fn in _operators().items():
        for cls in (Array, Tracer):
            setattr(cls, name, fn)


install()
