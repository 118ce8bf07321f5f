"""Installs numpy-style operators and methods on ``Array`` and on every ``Tracer``.

The core defines ``Array`` and ``Tracer`` without arithmetic (it must not
import the numpy layer); this module gives both classes the operators and
methods a ``jax.Array`` has (``+ - * / // % ** @``, comparisons, bitwise
operators, indexing and ``.at``, ``.T``, ``.reshape()``, ``.sum()`` ...), all
routed to ``fgrad.numpy`` functions, so traced code and eager code read the same.
Functions other modules define are looked up when called, not at import.

Operators accept fgrad arrays, tracers, numpy values and Python scalars; for
anything else they return ``NotImplemented`` (lists and tuples raise TypeError,
as in JAX, rather than meaning concatenation). A numpy array on the left
(``np_x * fgrad_x``) defers to our reflected operator because ``Array`` has a
higher ``__array_priority__`` and no ``__array_ufunc__``, so the result is an
fgrad Array; explicit numpy functions (``np.sin(fgrad_x)``) still convert to
numpy, as they do for JAX arrays. Arrays stay unhashable although they define ``==``.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterator

import numpy as np

from fgrad.core.array import Array
from fgrad.core.trace import Tracer


def _fnp() -> Any:
    import fgrad.numpy as fnp
    return fnp


def _late(name: str) -> Callable[..., Any]:
    """``fgrad.numpy.<name>``, looked up at call time."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(_fnp(), name)(*args, **kwargs)
    call.__name__ = name
    return call


_OPERANDS = (Array, Tracer, np.ndarray, np.generic, int, float)


def _binary(fn: Callable[[Any, Any], Any], symbol: str,
            reflected: bool = False) -> Callable[[Any, Any], Any]:
    def op(self: Any, other: Any) -> Any:
        if isinstance(other, _OPERANDS):
            return fn(other, self) if reflected else fn(self, other)
        if type(other) in (list, tuple, dict, set):
            left, right = (other, self) if reflected else (self, other)
            raise TypeError(f"unsupported operand type(s) for {symbol}: "
                            f"{type(left).__name__!r} and {type(right).__name__!r}")
        return NotImplemented
    return op


def _operators() -> dict[str, Callable[..., Any]]:
    fnp = _fnp()
    table: dict[str, Callable[..., Any]] = {}
    # (dunder stem, function, symbol); each gets __op__ and __rop__.
    for stem, fn, symbol in [
            ("add", fnp.add, "+"), ("sub", fnp.subtract, "-"), ("mul", fnp.multiply, "*"),
            ("truediv", fnp.divide, "/"), ("floordiv", fnp.floor_divide, "//"),
            ("mod", fnp.remainder, "%"), ("divmod", fnp.divmod, "divmod"),
            ("pow", fnp.power, "**"), ("matmul", _late("matmul"), "@"),
            ("and", fnp.bitwise_and, "&"), ("or", fnp.bitwise_or, "|"),
            ("xor", fnp.bitwise_xor, "^"), ("lshift", fnp.left_shift, "<<"),
            ("rshift", fnp.right_shift, ">>")]:
        table[f"__{stem}__"] = _binary(fn, symbol)
        table[f"__r{stem}__"] = _binary(fn, symbol, reflected=True)
    for stem, fn, symbol in [
            ("eq", fnp.equal, "=="), ("ne", fnp.not_equal, "!="), ("lt", fnp.less, "<"),
            ("le", fnp.less_equal, "<="), ("gt", fnp.greater, ">"),
            ("ge", fnp.greater_equal, ">=")]:
        table[f"__{stem}__"] = _binary(fn, symbol)
    table.update(__neg__=fnp.negative, __pos__=fnp.positive, __abs__=fnp.absolute,
                 __invert__=fnp.invert, __round__=_round_operator,
                 __getitem__=lambda self, idx: _indexing().getitem(self, idx),
                 __iter__=_iter, __contains__=_contains)
    return table


def _indexing() -> Any:
    from fgrad.numpy import _indexing
    return _indexing


def _round_operator(self: Any, ndigits: int | None = None) -> Any:
    # Python's round(x) of a float returns an int, so round(array) gives an int array.
    out = _fnp().round(self, ndigits or 0)
    return out if ndigits is not None else _fnp().astype(out, int)


def _iter(self: Any) -> Iterator[Any]:
    if not self.shape:
        raise TypeError("iteration over a 0-d array")
    if type(self) is Array:  # eager fast path: rows of the numpy value
        return (Array(np.asarray(row), self.weak_type) for row in self._value)
    return (self[i] for i in range(self.shape[0]))


def _contains(self: Any, item: Any) -> Any:
    return bool(_fnp().any(_fnp().equal(self, item)))


# --- methods ---------------------------------------------------------------------------------


def _shape_args(args: tuple[Any, ...]) -> Any:
    """``x.reshape(3, 4)`` and ``x.reshape((3, 4))`` both mean shape ``(3, 4)``."""
    if len(args) == 1:
        return args[0] if isinstance(args[0], (tuple, list)) else (operator.index(args[0]),)
    return tuple(operator.index(a) for a in args)


def _reshape(self: Any, *args: Any, order: str = "C") -> Any:
    shape = _shape_args(args)
    if order == "F":  # column-major: reverse the axes, reshape row-major, reverse back
        fnp = _fnp()
        return fnp.transpose(fnp.reshape(fnp.transpose(self), tuple(shape)[::-1]))
    return _fnp().reshape(self, shape, order=order)


def _transpose(self: Any, *args: Any) -> Any:
    axes = None if not args or args == (None,) else _shape_args(args)
    return _fnp().transpose(self, axes)


def _matrix_transpose(self: Any) -> Any:
    if len(self.shape) < 2:
        raise ValueError(f"x.mT needs an array of at least 2 dimensions, got shape {self.shape}")
    return _fnp().swapaxes(self, -1, -2)


def _astype(self: Any, dtype: Any, copy: bool = False) -> Any:
    return _fnp().astype(self, dtype)


def _clip(self: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    return _fnp().clip(self, min=min, max=max)


def _flat(self: Any) -> Any:
    raise NotImplementedError("fgrad arrays have no .flat; use x.ravel() or x.flatten()")


def _methods() -> dict[str, Callable[..., Any]]:
    forwarded = ["sum", "mean", "var", "std", "max", "min", "prod", "ptp", "argmax", "argmin",
                 "all", "any", "cumsum", "cumprod", "dot", "ravel", "squeeze", "swapaxes",
                 "diagonal", "trace", "take", "repeat", "round", "conj", "conjugate", "copy"]
    methods: dict[str, Callable[..., Any]] = {name: _late(name) for name in forwarded}
    methods.update(reshape=_reshape, transpose=_transpose, astype=_astype, clip=_clip,
                   flatten=_late("ravel"))
    return methods


def _properties() -> dict[str, property]:
    return {
        "T": property(lambda self: _fnp().transpose(self)),
        "mT": property(_matrix_transpose),
        "real": property(lambda self: _fnp().real(self)),
        "imag": property(lambda self: _fnp().imag(self)),
        "at": property(lambda self: _indexing().index_update_helper(self)),
        "itemsize": property(lambda self: self.dtype.itemsize),
        "nbytes": property(lambda self: self.dtype.itemsize * self.size),
        "flat": property(_flat),
    }


def install() -> None:
    """Set every operator, method and property on ``Array`` and ``Tracer``."""
    attributes: dict[str, Any] = {**_operators(), **_methods(), **_properties()}
    for cls in (Array, Tracer):
        for name, value in attributes.items():
            setattr(cls, name, value)


install()
