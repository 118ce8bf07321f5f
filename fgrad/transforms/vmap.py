"""Vectorising map: ``vmap(f)`` runs ``f`` on a whole batch at once.

``vmap`` is an interpreter, like ``jvp``. A ``BatchTracer`` carries a value
*with* a batch axis and the position of that axis (``bdim``). A value that is
the same for every batch element is simply not a tracer of this trace: it is
"not mapped" (``bdim`` ``None``), and operations on such values alone are
handed to the parent trace untouched. So ``vmap(f, in_axes=(0, None))(xs, w)``
computes everything that depends only on ``w`` once, unbatched.

For each primitive applied to at least one batched value the ``BatchTrace``
calls the primitive's ``batch`` rule (a slot on the primitive, written next to
its other rules in its family file)::

    rule(vals, dims, *, axis_size, **params) -> (out, out_dim)
    # multiple_results primitives: -> (list_of_outs, list_of_out_dims)

``vals`` hold the operands *with* their batch axes, ``dims[i]`` is where that
axis is (or ``None``: operand ``i`` is unbatched). The rule computes the
batched result by binding ordinary primitives with the parent trace current,
so rules compose with ``jit``, ``grad`` and nested ``vmap`` for free, and it
says where the batch axis of the result is. Rules move axes only when they
must (``out_dim`` may be any axis), and leave unbatched operands unbatched
where the operation allows it.

Pieces, in reading order:

* ``BatchTracer`` / ``BatchTrace``: the interpreter;
* ``moveaxis``, ``bdim_at_front``, ``matchaxis``: helpers for batch rules;
* ``batch_flat``: run a flat function on batched values (the engine);
* ``batch_jaxpr``: the batched version of a closed jaxpr, for the rules of
  higher-order primitives (``jit``, ``checkpoint``, control flow);
* ``vmap``: the public API (axis specs as pytree prefixes, sizes, errors).

Read ``jvp.py`` first for the trace/tracer pattern; ``vmap`` of ``grad`` and
``grad`` of ``vmap`` are just the two nestings of these interpreters.
"""

from __future__ import annotations

import collections
import inspect
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core.avals import ShapedArray, get_aval, is_array_like
from fgrad.core.errors import api_boundary
from fgrad.core.jaxpr import ClosedJaxpr, eval_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import flatten_up_to, tree_flatten, tree_structure, tree_unflatten
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import Trace, Tracer, check_alive, current_trace, set_current_trace
from fgrad.transforms import api_util

not_mapped = None  # the ``dims`` entry of an unbatched operand


class BatchTracer(Tracer):
    """A batched value: ``val`` has an extra axis of size ``axis_size`` at ``bdim``."""

    __slots__ = ("val", "bdim", "_aval")

    def __init__(self, trace: BatchTrace, val: Any, bdim: int) -> None:
        self._trace = trace
        self.val = val
        self.bdim = bdim
        self._aval: ShapedArray | None = None

    @property
    def aval(self) -> ShapedArray:
        # What the user's function sees: one batch element (the batch axis removed).
        # (computed once: rules and shape checks ask for it often)
        if self._aval is None:
            aval = get_aval(self.val)
            shape = aval.shape[:self.bdim] + aval.shape[self.bdim + 1:]
            self._aval = ShapedArray(shape, aval.dtype, aval.weak_type)
        return self._aval


class BatchTrace(Trace):
    """Applies batch rules to primitives that touch one of its tracers."""

    name = "a vmap transform"

    def __init__(self, parent: Trace, axis_size: int) -> None:
        self.parent = parent
        self.records_constants = parent.records_constants
        self.axis_size = axis_size

    def to_batch_info(self, x: Any) -> tuple[Any, int | None]:
        """``(value, bdim)``: anything that is not this trace's tracer is unbatched."""
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
                return prim.bind(*vals, **params)  # nothing batched: not our business
            if prim.batch is None:
                reason = prim.missing_reasons.get("batch")
                raise NotImplementedError(f"Batching rule for '{prim.name}' not implemented"
                                          + (f": {reason}" if reason else ""))
            out, out_dims = prim.batch(vals, dims, axis_size=self.axis_size, **params)
        if prim.multiple_results:
            return [self.new_tracer(v, d) for v, d in zip(out, out_dims)]
        return self.new_tracer(out, out_dims)

    def new_tracer(self, val: Any, bdim: int | None) -> Any:
        # An unbatched result needs no tracer: it is a constant to this trace.
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
        raise ValueError(f"matchaxis: a value batched along axis {src} cannot be made "
                         "unbatched")
    if src is None:
        return moveaxis(bdim_at_front(x, None, axis_size), 0, dst)
    return moveaxis(x, src, dst)


def batched_aval(aval: ShapedArray, bdim: int | None, axis_size: int) -> ShapedArray:
    """The type of a batched value: ``aval`` with an axis of ``axis_size`` inserted at ``bdim``."""
    if bdim is None:
        return aval
    shape = aval.shape[:bdim] + (axis_size,) + aval.shape[bdim:]
    return ShapedArray(shape, aval.dtype, aval.weak_type)


# --- the engine: batching a flat function, batching a jaxpr ------------------------------------

def batch_flat(fun: Callable[..., Sequence[Any]], vals: Sequence[Any],
               dims: Sequence[int | None], axis_size: int) -> tuple[list[Any], list[int | None]]:
    """Run ``fun`` (flat list in, flat list out) on batched values; no axes are moved.

    ``vals[i]`` carries its batch axis at ``dims[i]`` (non-negative) or is
    unbatched (``None``). Returns the outputs with their batch axes where the
    rules left them, and those positions (``None``: unbatched output).
    """
    trace = BatchTrace(current_trace(), axis_size)
    try:
        args = [v if d is None else BatchTracer(trace, v, d) for v, d in zip(vals, dims)]
        with set_current_trace(trace):
            outs = fun(*args)
        pairs = [trace.to_batch_info(o) for o in outs]
    finally:
        trace.invalidate()
    return [v for v, _ in pairs], [d for _, d in pairs]


def _per_output(spec: Any, n: int, what: str) -> list[Any]:
    if spec is None or isinstance(spec, (bool, int, np.integer)):
        return [spec] * n
    spec = list(spec)
    if len(spec) != n:
        raise ValueError(f"batch_jaxpr: {what} has {len(spec)} entries for {n} outputs")
    return spec


def batch_jaxpr(closed: ClosedJaxpr, dims_in: Sequence[int | None], axis_size: int,
                out_dims_wanted: int | None | Sequence[int | None] = None,
                instantiate: bool | Sequence[bool] = False
                ) -> tuple[ClosedJaxpr, list[int | None]]:
    """The batched version of ``closed``: its inputs and outputs carry a batch axis.

    Higher-order primitives (``jit``, ``checkpoint``, ``cond``, ``scan`` ...)
    batch their sub-jaxprs with this, then bind themselves again on the result.

    Args:
      closed: the jaxpr to batch (its consts are unbatched).
      dims_in: for each input, the position of its batch axis in the batched
        jaxpr's argument (negative counts from the end of the batched shape), or
        ``None`` for an unbatched input (its type is unchanged).
      axis_size: the batch size.
      out_dims_wanted: where each batched output's batch axis must be (one int
        or ``None`` for all outputs, or one entry per output; negative allowed).
        ``None`` leaves it wherever the batching rules put it (no transpose).
      instantiate: outputs (one bool for all, or one per output) that must be
        batched even if they do not depend on a batched input; they are
        broadcast along the batch (at ``out_dims_wanted``, default 0). Loop
        carries need this: a carry that becomes batched in the body must be
        batched from the start.

    Returns:
      ``(batched, out_dims)``: the batched closed jaxpr and, for each output,
      the position of its batch axis (``None`` if unbatched).

    >>> import fgrad, fgrad.numpy as fnp
    >>> closed = fgrad.make_jaxpr(lambda x, w: fnp.sin(x) * w)(1.0, 2.0)
    >>> batched, out_dims = batch_jaxpr(closed, [0, None], 3, instantiate=True)
    >>> [a.str_short() for a in batched.in_avals], out_dims
    (['f32[3]', 'f32[]'], [0])
    """
    in_avals = closed.in_avals
    if len(dims_in) != len(in_avals):
        raise ValueError(f"batch_jaxpr: {len(dims_in)} batch dims for {len(in_avals)} inputs")
    dims = [None if d is None else d % (a.ndim + 1) for d, a in zip(dims_in, in_avals)]
    n_out = len(closed.out_avals)
    wanted = _per_output(out_dims_wanted, n_out, "out_dims_wanted")
    inst = _per_output(instantiate, n_out, "instantiate")
    out_dims: list[int | None] = []

    def fun(*args: Any) -> list[Any]:
        outs, got = batch_flat(lambda *xs: eval_jaxpr(closed.jaxpr, closed.consts, *xs),
                               args, dims, axis_size)
        results = []
        out_dims.clear()
        for out, src, want, force, aval in zip(outs, got, wanted, inst, closed.out_avals):
            if src is None and not force:
                dst = None
            elif want is None:
                dst = 0 if src is None else src
            else:
                dst = want % (aval.ndim + 1)
            results.append(matchaxis(out, src, dst, axis_size))
            out_dims.append(dst)
        return results

    batched = trace_to_jaxpr(fun, [batched_aval(a, d, axis_size) for a, d in zip(in_avals, dims)])
    return batched, list(out_dims)


# --- the public transform ---------------------------------------------------------------------

def vmap(fun: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0,
         axis_name: Any = None, axis_size: int | None = None) -> Callable[..., Any]:
    """Vectorise ``fun`` over a batch axis of its arguments.

    ``vmap(f)(xs)`` equals stacking ``f(x)`` for each ``x`` in ``xs``, but runs
    every operation once on the whole batch (each primitive's batch rule says
    how), so it is as fast as writing the batched code by hand.

    Args:
      fun: a function of arrays (pytrees of arrays).
      in_axes: which axis of each positional argument to map over: an int
        (negative counts from the end), ``None`` (the argument is the same for
        every batch element and is not broadcast), or a pytree prefix of the
        argument tuple with ints and ``None`` at its leaves, e.g.
        ``(0, {"w": None, "b": 1})``. A list is treated like a tuple. Keyword
        arguments are always mapped along axis 0 (as in JAX).
      out_axes: where the batch axis goes in each output (an int, negative
        too, ``None``, or a pytree prefix of the output). ``None`` is only
        allowed for outputs that do not depend on a mapped input; an unbatched
        output with an int axis is broadcast along the batch.
      axis_name: accepted for JAX compatibility; fgrad has no collectives.
      axis_size: the batch size; required when no argument is mapped, else it
        must agree with the mapped axes.

    Returns:
      The batched function, taking the same arguments with extra axes.

    Raises:
      ValueError: mapped axes of different sizes (naming each argument, its
        axis, type and size), an axis out of range for an argument's rank,
        ``in_axes`` not matching the arguments, or ``out_axes=None`` for a
        batched output.
      TypeError: axis specs that are not ints/None, non-array arguments with a
        non-None axis, or non-array outputs.

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.vmap(lambda x, y: x * y, in_axes=(0, None))(fnp.arange(3.0), 2.0)
    Array([0., 2., 4.], dtype=float32)
    >>> fgrad.vmap(fnp.dot, in_axes=(None, 1))(fnp.ones(2), fnp.ones((2, 4))).shape
    (4,)
    """
    if not callable(fun):
        raise TypeError(f"Expected a callable value, got {fun!r}")
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)  # JAX treats a top-level list like a tuple
    if not (in_axes is None or _is_axis(in_axes) or type(in_axes) is tuple):
        raise TypeError("vmap in_axes must be an int, None, or a tuple of entries corresponding "
                        f"to the positional arguments passed to the function, but got "
                        f"{in_axes}.")
    for what, spec in (("in_axes", in_axes), ("out_axes", out_axes)):
        if not all(_is_axis(a) for a in tree_flatten(spec)[0]):
            raise TypeError(f"vmap {what} must be an int, None, or (nested) container with "
                            f"those types as leaves, but got {spec}.")
    if axis_size is not None and (not _is_axis(axis_size) or axis_size < 0):
        raise TypeError(f"vmap axis_size must be a non-negative int, got {axis_size!r}")

    @api_boundary
    def vmapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError("vmap in_axes must be an int, None, or a tuple of entries "
                             "corresponding to the positional arguments passed to the "
                             f"function, but got len(in_axes)={len(in_axes)}, "
                             f"len(args)={len(args)}")
        leaves, in_tree = tree_flatten((args, kwargs))
        leaf_axes = _flatten_axes("vmap in_axes", (args, kwargs), (in_axes, 0),
                                  report=(args, in_axes))
        leaves = [_canonicalize_input(x, ax) for x, ax in zip(leaves, leaf_axes)]
        size = _mapped_axis_size(fun, args, kwargs, leaves, leaf_axes, axis_size)
        dims = [None if ax is None else ax % get_aval(x).ndim for x, ax in zip(leaves, leaf_axes)]
        out_tree = api_util.Store()

        def flat_fun(*flat_args: Any) -> list[Any]:
            call_args, call_kwargs = tree_unflatten(in_tree, flat_args)
            out = fun(*call_args, **call_kwargs)
            out_leaves, out_tree.value = tree_flatten(out)
            return [_canonicalize_output(o) for o in out_leaves]

        outs, out_dims = batch_flat(flat_fun, leaves, dims, size)
        out_axes_flat = _flatten_axes("vmap out_axes", tree_unflatten(out_tree.value, outs),
                                      out_axes)
        paths = _leaf_paths(tree_unflatten(out_tree.value, [0] * len(outs)))
        results = []
        for out, src, dst, path in zip(outs, out_dims, out_axes_flat, paths):
            if dst is None and src is not None:
                raise ValueError(f"at vmap out_axes{path}, got axis spec None but output was "
                                 f"batched on axis {src}")
            if dst is not None:
                ndim = get_aval(out).ndim + (1 if src is None else 0)
                if not -ndim <= dst < ndim:
                    raise ValueError(f"axis {dst} is out of bounds for array of dimension "
                                     f"{ndim}")
                dst %= ndim
            results.append(matchaxis(out, src, dst, size))
        return tree_unflatten(out_tree.value, results)

    vmapped.__name__ = f"vmap({api_util.fun_name(fun)})"
    vmapped.__qualname__ = vmapped.__name__
    vmapped.__wrapped__ = fun  # type: ignore[attr-defined]
    vmapped.__doc__ = (f"Vectorized version of {api_util.fun_name(fun)}: takes the same "
                       "arguments but with additional array axes over which it is mapped.")
    return vmapped


def _is_axis(a: Any) -> bool:
    return a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool))


def _canonicalize_input(x: Any, axis: int | None) -> Any:
    """Arrays and scalars become fgrad values; other unmapped leaves pass through (as in JAX)."""
    if is_array_like(x) or hasattr(x, "__array__"):
        return api_util.canonicalize_arg(x, "vmap")
    if axis is None:
        return x
    raise TypeError(f"vmap: argument {x!r} of type {type(x)} is not a valid fgrad array type, "
                    f"so it cannot be mapped along axis {axis}; pass it with in_axes None "
                    "(or make it an array)")


def _canonicalize_output(x: Any) -> Any:
    if isinstance(x, Tracer) or is_array_like(x) or hasattr(x, "__array__"):
        return api_util.canonicalize_arg(x, "vmap")
    raise TypeError(f"Output from batched function {x!r} with type {type(x)} is not a valid "
                    "fgrad array type")


# --- axis specs: pytree prefixes, with JAX's error messages ------------------------------------

def _flatten_axes(name: str, tree: Any, axes: Any,
                  report: tuple[Any, Any] | None = None) -> list[int | None]:
    """One axis (int or None) per leaf of ``tree``, given a pytree prefix ``axes`` of it.

    ``report`` is the ``(tree, axes)`` pair to describe in an error (vmap adds the
    keyword arguments, always mapped at 0, which the user's spec does not mention).
    """
    axes_leaves, axes_tree = tree_flatten(axes, is_leaf=lambda x: x is None)
    try:
        subtrees = flatten_up_to(axes_tree, tree)
    except ValueError:
        bad_tree, bad_axes = report if report is not None else (tree, axes)
        raise ValueError(f"{name} specification must be a tree prefix of the corresponding "
                         f"value; {_prefix_error(name, bad_axes, bad_tree)}") from None
    out: list[int | None] = []
    for ax, sub in zip(axes_leaves, subtrees):
        out.extend([ax] * tree_structure(sub).num_leaves)
    return out


def _prefix_error(name: str, prefix: Any, tree: Any, path: str = "") -> str:
    """Describe the first place where ``prefix`` is not a prefix of ``tree`` (with its key path)."""
    where = f"{name}{path}"
    if prefix is None or _is_axis(prefix):
        return ""
    if type(prefix) is not type(tree):
        return (f"pytree structure error: different types at key path {where}: the prefix has "
                f"a {type(prefix).__name__} where the value has a {type(tree).__name__}.")
    keys_p, children_p = _children(prefix)
    keys_t, children_t = _children(tree)
    if keys_p != keys_t:
        if isinstance(prefix, (tuple, list)):
            return (f"pytree structure error: different lengths of {type(prefix).__name__} at "
                    f"key path {where}: the prefix has length {len(prefix)}, the value "
                    f"{len(tree)}.")
        if not isinstance(prefix, dict):  # a registered custom node
            return (f"pytree structure error: different numbers of children at key path "
                    f"{where}: the prefix has {len(keys_p)}, the value {len(keys_t)}.")
        return (f"pytree structure error: different keys at key path {where}: the prefix has "
                f"keys {_raw_keys(prefix)}, the value {_raw_keys(tree)}.")
    for key, p, t in zip(keys_p, children_p, children_t):
        message = _prefix_error(name, p, t, f"{path}{key}")
        if message:
            return message
    return f"pytree structure error at key path {where}."


def _raw_keys(x: Any) -> tuple[Any, ...]:
    """The keys of a dict as the user wrote them (for error messages)."""
    return tuple(x) if type(x) is collections.OrderedDict else tuple(sorted(x))


def _children(x: Any) -> tuple[list[str], list[Any]]:
    """One level of a container: key strings (``[0]``, ``['a']``, ``.field``) and children."""
    # (exact types: as in core/pytree.py, a subclass of dict or list is a leaf)
    if type(x) in (dict, collections.OrderedDict, collections.defaultdict):
        keys = list(x) if type(x) is collections.OrderedDict else sorted(x)
        return [f"[{k!r}]" for k in keys], [x[k] for k in keys]
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        return [f".{f}" for f in x._fields], list(x)
    if type(x) in (tuple, list):
        return [f"[{i}]" for i in range(len(x))], list(x)
    treedef = tree_structure(x)
    if treedef.num_nodes == 1:
        return [], []
    # A registered custom node: its children by position (enough to name a leaf).
    leaves = tree_flatten(x)[0]
    return [f"[<flat index {i}>]" for i in range(len(leaves))], leaves


def _leaf_paths(tree: Any, prefix: str = "") -> list[str]:
    """JAX-style key paths (``[0]['a'].b``) of the leaves of ``tree``, in flatten order."""
    if tree is None:
        return []
    keys, children = _children(tree)
    if not keys and tree_structure(tree).num_nodes == 1:
        return [prefix] if tree_structure(tree).num_leaves == 1 else []
    out: list[str] = []
    for key, child in zip(keys, children):
        out.extend(_leaf_paths(child, prefix + key))
    return out


def _mapped_axis_size(fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      leaves: Sequence[Any], axes: Sequence[int | None],
                      axis_size: int | None) -> int:
    """The common size of the mapped axes; a ValueError naming every argument if they differ."""
    if not leaves:
        if axis_size is not None:
            return axis_size
        raise ValueError("vmap wrapped function must be passed at least one argument "
                         "containing an array or axis_size must be specified, got empty "
                         f"*args={args} and **kwargs={kwargs}")
    sizes: list[int | None] = []
    for x, ax in zip(leaves, axes):
        if ax is None:
            sizes.append(None)
            continue
        shape = get_aval(x).shape
        if not -len(shape) <= ax < len(shape):
            min_rank = ax + 1 if ax >= 0 else -ax
            raise ValueError(f"vmap was requested to map its argument along axis {ax}, which "
                             f"implies that its rank should be at least {min_rank}, but is "
                             f"only {len(shape)} (its shape is {shape})")
        sizes.append(shape[ax])
    distinct = {s for s in sizes if s is not None} | ({axis_size} if axis_size is not None
                                                      else set())
    if len(distinct) == 1:
        return distinct.pop()
    if not distinct:
        raise ValueError("vmap must have at least one non-None value in in_axes or axis_size "
                         "must be specified")
    names = _argument_names(fun, args, kwargs)
    lines = ["vmap got inconsistent sizes for array axes to be mapped:"]
    if axis_size is not None:
        lines.append(f"  * the `axis_size` argument was {axis_size};")
    counts = collections.Counter(s for s in sizes if s is not None).most_common()
    for rank, (size, count) in enumerate(counts):
        i = sizes.index(size)  # the first argument with this size is the example
        example = f"axis {axes[i]} of {names[i]} of type {_type_str(leaves[i])}"
        if count == 1:
            lines.append(f"  * one axis had size {size}: {example};")
        else:
            many = "most" if rank == 0 else "some"
            lines.append(f"  * {many} axes ({count} of them) had size {size}, e.g. {example};")
    raise ValueError("\n".join(lines)[:-1])


def _argument_names(fun: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> list[str]:
    """For each leaf of ``(args, kwargs)``: ``argument x['w'][0]``, ``args[3]``, ``kwargs['b']``."""
    try:
        inspect.signature(fun).bind(*args, **kwargs)
        params: list[str] | None = list(inspect.signature(fun).parameters)
    except (TypeError, ValueError):
        params = None
    names = []
    for i, arg in enumerate(args):
        # (as in JAX, the first of several *args takes the parameter's name)
        base = f"args[{i}]" if params is None or i >= len(params) else f"argument {params[i]}"
        names.extend(base + sub for sub in _leaf_paths(arg))
    names.extend(f"kwargs{sub}" for sub in _leaf_paths(kwargs))
    return names


def _type_str(x: Any) -> str:
    aval = get_aval(x)
    return f"{aval.dtype.name}[{','.join(map(str, aval.shape))}]"


__all__ = ["vmap", "batch_jaxpr", "batch_flat", "BatchTrace", "BatchTracer", "moveaxis",
           "bdim_at_front", "matchaxis", "batched_aval", "not_mapped"]
