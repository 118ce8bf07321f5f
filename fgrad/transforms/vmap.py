"""Vectorising map: ``vmap(f)`` runs ``f`` on a whole batch at once.

``vmap`` is an interpreter like ``jvp``. A ``BatchTracer`` carries a value
and the position of its batch axis (``bdim``; ``None`` means "the same for
every batch element", i.e. not batched). For each primitive the
``BatchTrace`` calls the primitive's ``batch`` rule:

    rule(values, bdims, **params) -> (out, out_bdim)

which computes the batched result with ordinary (parent-trace) primitives
and says where the batch axis of the output is. Unbatched values stay
unbatched: a primitive whose inputs are all unbatched is not touched at all.

Most rules come from three constructors in ``primitives/rules.py``:
vectorized (unary elementwise), broadcasting (n-ary elementwise) and
reducers (an axes parameter to shift).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import api_boundary
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import tree_flatten, tree_structure, tree_unflatten
from fgrad.core.trace import Trace, Tracer, check_alive, current_trace, set_current_trace
from fgrad.transforms import api_util

not_mapped = None


class BatchTracer(Tracer):
    __slots__ = ("val", "bdim")

    def __init__(self, trace: BatchTrace, val: Any, bdim: int | None) -> None:
        self._trace = trace
        self.val = val
        self.bdim = bdim

    @property
    def aval(self) -> ShapedArray:
        aval = get_aval(self.val)
        if self.bdim is None:
            return aval
        shape = aval.shape[:self.bdim] + aval.shape[self.bdim + 1:]
        return ShapedArray(shape, aval.dtype, aval.weak_type)


class BatchTrace(Trace):
    name = "a vmap transform"

    def __init__(self, parent: Trace, axis_size: int) -> None:
        self.parent = parent
        self.records_constants = parent.records_constants
        self.axis_size = axis_size

    def to_batch_info(self, x: Any) -> tuple[Any, int | None]:
        if isinstance(x, BatchTracer) and x._trace is self:
            return x.val, x.bdim
        if isinstance(x, Tracer):
            check_alive(x)
        return x, None

    def process_primitive(self, prim: Primitive, args: tuple[Any, ...],
                          params: dict[str, Any]) -> Any:
        vals, dims = [], []
        for x in args:
            v, d = self.to_batch_info(x)
            vals.append(v)
            dims.append(d)
        with set_current_trace(self.parent):
            if all(d is None for d in dims):
                return prim.bind(*vals, **params)
            if prim.batch is None:
                raise NotImplementedError(f"Batching rule for '{prim.name}' not implemented")
            out, out_dims = prim.batch(vals, dims, axis_size=self.axis_size, **params)
        if prim.multiple_results:
            return [self.new_tracer(v, d) for v, d in zip(out, out_dims)]
        return self.new_tracer(out, out_dims)

    def new_tracer(self, val: Any, bdim: int | None) -> Any:
        return val if bdim is None else BatchTracer(self, val, bdim)


# --- helpers for batching rules ---------------------------------------------------------------

def moveaxis(x: Any, src: int, dst: int) -> Any:
    """Move axis ``src`` of ``x`` to position ``dst`` (strict transpose; no-op if equal)."""
    from fgrad.primitives.shape import transpose
    ndim = get_aval(x).ndim
    src, dst = src % ndim, dst % ndim
    if src == dst:
        return x
    perm = [i for i in range(ndim) if i != src]
    perm.insert(dst, src)
    return transpose(x, perm)


def bdim_at_front(x: Any, bdim: int | None, axis_size: int) -> Any:
    """``x`` with its batch axis first, broadcasting an unbatched ``x`` to the batch size."""
    from fgrad.primitives.shape import broadcast_in_dim
    if bdim is None:
        aval = get_aval(x)
        return broadcast_in_dim(x, (axis_size, *aval.shape), tuple(range(1, aval.ndim + 1)))
    return moveaxis(x, bdim, 0)


def matchaxis(x: Any, src: int | None, dst: int | None, axis_size: int) -> Any:
    """Move (or create, by broadcasting) the batch axis of ``x`` from ``src`` to ``dst``."""
    if src == dst:
        return x
    if dst is None:
        raise ValueError("vmap: an output that varies over the batch cannot have out_axes=None")
    if src is None:
        return moveaxis(bdim_at_front(x, None, axis_size), 0, dst)
    return moveaxis(x, src, dst)


# --- the public transform --------------------------------------------------------------------

def _flatten_axes(what: str, tree: Any, axes: Any) -> list[Any]:
    """One axis spec per leaf of ``tree``, given a pytree prefix ``axes`` of it."""
    from fgrad.core.pytree import flatten_up_to
    axes_leaves, axes_tree = tree_flatten(axes, is_leaf=lambda x: x is None)
    for a in axes_leaves:
        if a is not None and not isinstance(a, int):
            raise TypeError(f"vmap {what} must be ints, None, or (nested) tuples/lists/dicts "
                            f"of them, got {a!r}")
    try:
        subtrees = flatten_up_to(axes_tree, tree)
    except ValueError as e:
        raise ValueError(f"vmap {what} specification must be a tree prefix of the "
                         f"corresponding value; {e}") from None
    out: list[Any] = []
    for ax, sub in zip(axes_leaves, subtrees):
        out.extend([ax] * len(tree_flatten(sub)[0]))
    return out


def vmap(fun: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0,
         axis_name: Any = None, axis_size: int | None = None) -> Callable[..., Any]:
    """Vectorise ``fun`` over a batch axis of its arguments.

    Args:
      fun: a function of arrays (pytrees of arrays).
      in_axes: for each argument, the axis to map over (int, negative too) or
        ``None`` (broadcast: the argument is the same for every batch element);
        a pytree prefix of the arguments.
      out_axes: where the batch axis goes in each output (same conventions).
      axis_size: the batch size when no argument is mapped.

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.vmap(lambda x, y: x * y, in_axes=(0, None))(fnp.arange(3.0), 2.0)
    Array([0., 2., 4.], dtype=float32)
    """
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)  # JAX treats a list in_axes like a tuple at the top level

    @api_boundary
    def vmapped(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            args = api_util.resolve_kwargs(fun, args, kwargs)
        leaves, in_tree = tree_flatten(args)
        leaves = api_util.canonicalize_leaves(leaves, "vmap")
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap in_axes must be an int, None, or a tuple of entries "
                             f"corresponding to the positional arguments passed to the "
                             f"function, but got len(in_axes)={len(in_axes)}, "
                             f"len(args)={len(args)}")
        leaf_axes = _flatten_axes("in_axes", tuple(args), tuple(axes))
        size = _axis_size(leaves, leaf_axes, in_tree, axis_size)
        trace = BatchTrace(current_trace(), size)
        try:
            tracers = []
            for x, ax in zip(leaves, leaf_axes):
                if ax is None:
                    tracers.append(x)
                else:
                    ndim = get_aval(x).ndim
                    tracers.append(BatchTracer(trace, x, ax % ndim))
            flat_fun, out_tree = api_util.flatten_fun(fun, in_tree, "vmap")
            with set_current_trace(trace):
                outs = flat_fun(*tracers)
            out_axes_flat = _flatten_axes("out_axes", tree_unflatten(out_tree.value, outs),
                                          out_axes)
            results = []
            with set_current_trace(trace.parent):
                for out, dst in zip(outs, out_axes_flat):
                    val, bdim = trace.to_batch_info(out)
                    if dst is not None:
                        dst = dst % (get_aval(val).ndim + (1 if bdim is None else 0))
                    results.append(matchaxis(val, bdim, dst, size))
        finally:
            trace.invalidate()
        return tree_unflatten(out_tree.value, results)

    vmapped.__name__ = f"vmap({api_util.fun_name(fun)})"
    return vmapped


def _axis_size(leaves: Sequence[Any], axes: Sequence[int | None], in_tree: Any,
               axis_size: int | None) -> int:
    sizes = {}
    for i, (x, ax) in enumerate(zip(leaves, axes)):
        if ax is None:
            continue
        shape = get_aval(x).shape
        if not -len(shape) <= ax < len(shape):
            raise ValueError(f"vmap was requested to map its argument along axis {ax}, which "
                             f"implies that its rank should be at least {max(ax + 1, -ax)}, "
                             f"but it has rank {len(shape)} (shape {shape})")
        sizes[i] = shape[ax]
    if not sizes:
        if axis_size is None:
            raise ValueError("vmap must have at least one non-None value in in_axes, or be "
                             "given axis_size")
        return axis_size
    distinct = set(sizes.values())
    if len(distinct) > 1 or (axis_size is not None and axis_size not in distinct):
        paths = ", ".join(f"argument leaf {i} has size {s}" for i, s in sizes.items())
        raise ValueError(f"vmap got inconsistent sizes for the array axes to be mapped: "
                         f"{paths}" + (f" (axis_size={axis_size})" if axis_size else ""))
    return distinct.pop()


__all__ = ["vmap", "BatchTrace", "BatchTracer", "moveaxis", "bdim_at_front", "matchaxis",
           "not_mapped", "tree_structure"]
