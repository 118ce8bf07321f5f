"""Plumbing shared by the public transforms: pytrees in and out, argnums, inputs.

Transforms work on *flat* functions (a list of arrays in, a list out). These
helpers turn a user's function of pytrees into such a flat function and
remember the output structure for later.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import get_aval, is_array_like
from fgrad.core.pytree import PyTreeDef, tree_flatten, tree_unflatten
from fgrad.core.trace import Tracer


class Store:
    """A box a flat function fills with its output tree while it is being traced."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Any = None


def flatten_fun(fun: Callable[..., Any], in_tree: PyTreeDef, where: str
                ) -> tuple[Callable[..., list[Any]], Store]:
    """``fun`` of pytrees -> a function of flat leaves; the output tree lands in the store."""
    store = Store()

    def flat_fun(*leaves: Any) -> list[Any]:
        args = tree_unflatten(in_tree, leaves)
        out = fun(*args)
        out_leaves, out_tree = tree_flatten(out)
        check_outputs(out_leaves, where)
        store.value = out_tree
        return out_leaves

    return flat_fun, store


def check_outputs(leaves: Sequence[Any], where: str) -> None:
    for leaf in leaves:
        if not is_array_like(leaf):
            raise TypeError(f"{where}: the function returned a value of type "
                            f"{type(leaf).__name__}, but every output leaf must be an array "
                            "(or a Python/numpy scalar)")


def canonicalize_arg(x: Any, where: str) -> Any:
    """Make a user input an fgrad value: numpy arrays and Python scalars become Arrays.

    float64 inputs become float32 unless x64 is enabled (JAX does the same).
    """
    if isinstance(x, (Tracer, Array)):
        return x
    if isinstance(x, (np.ndarray, np.generic, bool, int, float)):
        dtype, weak = dtypes.dtype_and_weak_type(x)
        return Array(np.asarray(x, dtype=dtype), weak)
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        return canonicalize_arg(np.asarray(x), where)
    raise TypeError(f"{where}: argument of type {type(x).__name__} is not a valid array "
                    f"(expected an fgrad or numpy array, or a Python scalar)")


def canonicalize_leaves(leaves: Sequence[Any], where: str) -> list[Any]:
    return [canonicalize_arg(x, where) for x in leaves]


def normalize_argnums(argnums: int | Sequence[int], nargs: int, where: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    out = []
    for n in nums:
        if not isinstance(n, (int, np.integer)):
            raise TypeError(f"{where}: argnums must be ints, got {n!r}")
        if not -nargs <= n < nargs:
            raise ValueError(f"{where}: argnums={argnums} is out of range for a function "
                             f"called with {nargs} positional arguments")
        out.append(int(n) % nargs)
    return tuple(out)


def split_args(fun: Callable[..., Any], args: tuple[Any, ...], argnums: tuple[int, ...]
               ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``fun`` as a function of only the ``argnums`` arguments, the others fixed."""
    def partial_fun(*dyn: Any) -> Any:
        full = list(args)
        for i, x in zip(argnums, dyn):
            full[i] = x
        return fun(*full)

    return partial_fun, tuple(args[i] for i in argnums)


def fun_name(fun: Callable[..., Any]) -> str:
    return getattr(fun, "__name__", None) or type(fun).__name__


def resolve_kwargs(fun: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Turn keyword arguments into positional ones using ``fun``'s signature."""
    if not kwargs:
        return args
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fun_name(fun)}: cannot bind arguments: {e}") from e
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(f"{fun_name(fun)}: keyword-only arguments {sorted(bound.kwargs)} are "
                        "not supported here; pass them positionally")
    return tuple(bound.args)


def aval_str(x: Any) -> str:
    return get_aval(x).str_short()
