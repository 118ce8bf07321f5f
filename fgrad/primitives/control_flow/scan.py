"""``scan``, ``fori_loop`` and ``map``: loops with a fixed trip count, as one primitive.

``scan(f, init, xs)`` runs ``carry, y = f(carry, x)`` over the leading axis of
``xs`` and returns the final carry and the stacked ``y``s (``jax.lax.scan``).
``fori_loop`` with static bounds and ``map`` are written on top of it.

The primitive ``scan_p`` holds the loop body as a closed jaxpr and takes its
operands in JAX's layout::

    scan_p.bind(*consts, *carry_init, *xs, jaxpr=body, num_consts=..., num_carry=...,
                length=..., reverse=..., unroll=...)

``body`` maps ``(*consts, *carry, *x) -> (*carry, *y)``; ``consts`` are the
values it closes over (loop-invariant: weights, or tracers of an enclosing
transform), made explicit operands so every transform sees them. ``x`` and
``y`` are one slice of ``xs`` / ``ys`` along axis 0.

Every rule applies a transform to the body and binds ``scan_p`` again
(``scan_rules.py``): the JVP scans primals and tangents together; partial
evaluation splits the loop into a *known* scan (the primal computation, which
also emits the per-step residuals stacked like ``ys``, loop-invariant ones
hoisted out of the loop) and an *unknown* scan that consumes them; the
transpose runs the linear loop backwards; batching adds a batch axis to
consts, carry (axis 0) and xs/ys (axis 1). So ``grad`` of a scan costs memory
linear in the number of steps, and ``grad(grad(...))``, ``vmap`` and ``jit``
compose with it like with any primitive.

Conventions (JAX's): the body's carry output must have exactly the carry
input's shapes and dtypes (a weakly typed initial carry, e.g. ``0.0``, is
first converted to the type the body produces); the output carry has the
type the body returns. ``unroll`` only changes how a compiled backend would
lay out the loop; results are identical (the interpreter ignores it).
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import ConcretizationTypeError, FgradTypeError
from fgrad.core.jaxpr import ClosedJaxpr, eval_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import tree_flatten, tree_unflatten, treedef_children
from fgrad.core.trace import Tracer, eval_trace, set_current_trace
from fgrad.primitives.control_flow.common import describe_type_mismatch, stage

# --- scan ------------------------------------------------------------------------------------

scan_p = Primitive("scan", multiple_results=True)


def scan(f: Callable[[Any, Any], tuple[Any, Any]], init: Any, xs: Any = None,
         length: int | None = None, reverse: bool = False, unroll: int | bool = 1
         ) -> tuple[Any, Any]:
    """Scan ``f`` over the leading axis of ``xs`` while carrying state (``jax.lax.scan``).

    Semantics of this Python loop, staged as one ``scan`` primitive::

        def scan(f, init, xs, length=None):
            carry, ys = init, []
            for x in xs:                    # reversed(xs) when reverse=True
                carry, y = f(carry, x)
                ys.append(y)
            return carry, stack(ys)         # ys in the order of xs

    Args:
      f: ``(carry, x) -> (carry, y)``; carry, x and y are pytrees of arrays
        and the carry keeps its structure, shapes and dtypes.
      init: the initial carry (a pytree).
      xs: a pytree of arrays scanned along axis 0, or None (then ``length``
        gives the number of steps and ``f`` receives ``x=None``).
      length: the number of steps; must agree with the leading axis of ``xs``.
      reverse: run from the last slice to the first (ys stay in xs order).
      unroll: an int >= 0 or a bool; a hint for compiled backends only.

    Returns:
      ``(final_carry, ys)`` with ys stacked along a new leading axis.

    Raises:
      TypeError: the carry output's structure or types differ from the
        input's (the mismatching leaves are named with their paths).
      ValueError: ``length`` disagrees with ``xs``, the leading axes of
        ``xs`` differ, or there is nothing to infer ``length`` from.

    >>> import fgrad.numpy as fnp
    >>> scan(lambda total, x: (total + x, total + x), 0.0, fnp.arange(4.0))  # cumsum
    (Array(6., dtype=float32), Array([0., 1., 3., 6.], dtype=float32))
    """
    from fgrad.transforms import api_util
    if not callable(f):
        raise TypeError("lax.scan: f argument should be a callable.")
    init_flat, init_tree = tree_flatten(init)
    xs_flat = tree_flatten(xs)[0]
    init_flat = api_util.canonicalize_leaves(init_flat, "scan")
    xs_flat = api_util.canonicalize_leaves(xs_flat, "scan")
    length = _infer_length(xs_flat, length)
    unroll = _check_unroll(unroll, length)
    x_avals = [_unstacked(get_aval(x)) for x in xs_flat]
    in_tree = tree_flatten((init, xs))[1]

    def body(carry: Any, x: Any) -> tuple[Any, Any]:
        out = f(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"scan body output must be a pair, got {out}.")
        return out[0], out[1]

    carry_avals = [get_aval(x) for x in init_flat]
    jaxpr, consts, out_tree = stage(body, carry_avals + x_avals, in_tree, "scan")
    carry_tree = treedef_children(out_tree)[0]
    out_avals = jaxpr.out_avals[:len(init_flat)]
    # A weakly typed initial carry (a Python scalar) takes the type the body gives it.
    if carry_tree == init_tree and any(
            a.weak_type and a.shape == b.shape and a.dtype != b.dtype
            for a, b in zip(carry_avals, out_avals)):
        init_flat = [_promote_weak(x, a, b) for x, a, b in zip(init_flat, carry_avals, out_avals)]
        carry_avals = [get_aval(x) for x in init_flat]
        jaxpr, consts, out_tree = stage(body, carry_avals + x_avals, in_tree, "scan")
        carry_tree = treedef_children(out_tree)[0]
    _check_carry(f, init_tree, carry_avals, carry_tree, jaxpr.out_avals[:carry_tree.num_leaves])
    outs = scan_p.bind(*consts, *init_flat, *xs_flat, jaxpr=jaxpr, num_consts=len(consts),
                       num_carry=len(init_flat), length=length, reverse=bool(reverse),
                       unroll=unroll)
    ys_tree = treedef_children(out_tree)[1]
    return (tree_unflatten(init_tree, outs[:len(init_flat)]),
            tree_unflatten(ys_tree, outs[len(init_flat):]))


def _unstacked(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape[1:], aval.dtype, aval.weak_type)


def _stacked(length: int, aval: ShapedArray) -> ShapedArray:
    return ShapedArray((length, *aval.shape), aval.dtype, aval.weak_type)


def _infer_length(xs_flat: Sequence[Any], length: Any) -> int:
    """The number of steps, from ``length`` and the leading axes of ``xs`` (JAX's errors)."""
    shapes = [get_aval(x).shape for x in xs_flat]
    if any(len(s) == 0 for s in shapes):
        raise ValueError("scan got value with no leading axis to scan over: "
                         + ", ".join(get_aval(x).str_short() for x in xs_flat
                                     if not get_aval(x).shape) + ".")
    lengths = [s[0] for s in shapes]
    if length is not None:
        try:
            length = operator.index(length)
        except ConcretizationTypeError:
            raise ConcretizationTypeError(
                "The `length` argument to `scan` expects a concrete `int` value. For "
                "scan-like iteration with a dynamic length, use `while_loop` or "
                "`fori_loop`.") from None
        if any(n != length for n in lengths):
            raise ValueError(f"scan got `length` argument of {length} which disagrees with "
                             f"leading axis sizes {lengths}.")
        return length
    if len(set(lengths)) > 1:
        raise ValueError("scan got values with different leading axis sizes: "
                         + ", ".join(str(n) for n in lengths) + ".")
    if not lengths:
        raise ValueError("scan got no values to scan over and `length` not provided.")
    return lengths[0]


def _check_unroll(unroll: Any, length: int) -> int:
    if isinstance(unroll, Tracer):
        raise ConcretizationTypeError("The `unroll` argument to `scan` expects a concrete "
                                      "`int` or `bool` value.")
    if isinstance(unroll, (bool, np.bool_)):
        return builtins.max(length, 1) if unroll else 1
    unroll = operator.index(unroll)
    if unroll < 0:
        raise ValueError("`unroll` must be a `bool` or a non-negative `int`.")
    return unroll


def _promote_weak(x: Any, a: ShapedArray, b: ShapedArray) -> Any:
    """Convert a weakly typed carry leaf to the dtype it meets in the body's output."""
    from fgrad.primitives.elementwise import convert_element_type
    if not a.weak_type or a.dtype == b.dtype or a.shape != b.shape:
        return x
    dtype, _ = dtypes.result_type((a.dtype, True), (b.dtype, b.weak_type))
    return convert_element_type(x, dtype)


def _check_carry(f: Callable[..., Any], in_tree: Any, in_avals: Sequence[ShapedArray],
                 out_tree: Any, out_avals: Sequence[ShapedArray]) -> None:
    """The body's carry output must match its input leaf for leaf (weak types aside)."""
    name = _first_param_name(f)
    what_in = f"the input carry {name}" if name else "the input carry"
    problem = describe_type_mismatch(what_in, in_tree, in_avals,
                                     "the carry output", out_tree, out_avals)
    if problem is None:
        return
    kind = "the same pytree structure" if in_tree != out_tree else "equal types"
    raise TypeError(f"scan body function carry input and carry output must have {kind}, "
                    f"but they differ:\n{problem}\nRevise the function so that the carry "
                    "output has the same structure, shapes and dtypes as the carry input.")


def _first_param_name(f: Callable[..., Any]) -> str:
    import inspect
    try:
        params = list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        return ""
    return params[0] if params else ""


def _split(xs: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    """``xs`` cut into consecutive pieces of ``sizes`` (and the rest)."""
    out, start = [], 0
    for n in sizes:
        out.append(list(xs[start:start + n]))
        start += n
    out.append(list(xs[start:]))
    return out


def _scan_impl(*args: Any, jaxpr: ClosedJaxpr, num_consts: int, num_carry: int, length: int,
               reverse: bool, unroll: int) -> list[np.ndarray]:
    # The reference semantics: a Python loop evaluating the body eagerly (numpy).
    consts, carry, xs = _split(args, [num_consts, num_carry])
    in_avals = jaxpr.in_avals
    consts = [Array(np.asarray(c), a.weak_type) for c, a in zip(consts, in_avals)]
    carry = [Array(np.asarray(c), a.weak_type)
             for c, a in zip(carry, in_avals[num_consts:])]
    x_avals = in_avals[num_consts + num_carry:]
    ys: list[list[np.ndarray]] = [[] for _ in jaxpr.out_avals[num_carry:]]
    with set_current_trace(eval_trace):
        for step in range(length):
            i = length - 1 - step if reverse else step
            x = [Array(np.asarray(xi[i]), a.weak_type) for xi, a in zip(xs, x_avals)]
            out = eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *consts, *carry, *x)
            carry = out[:num_carry]
            for acc, y in zip(ys, out[num_carry:]):
                acc.append(np.asarray(y))
    y_avals = jaxpr.out_avals[num_carry:]
    stacked = [np.stack(acc[::-1] if reverse else acc).astype(a.dtype, copy=False) if acc
               else np.empty((0, *a.shape), a.dtype) for acc, a in zip(ys, y_avals)]
    carry_out = [np.asarray(c).astype(a.dtype, copy=False)
                 for c, a in zip(carry, jaxpr.out_avals)]
    return carry_out + stacked


def _scan_abstract_eval(*avals: ShapedArray, jaxpr: ClosedJaxpr, num_consts: int,
                        num_carry: int, length: int, reverse: bool, unroll: int
                        ) -> list[ShapedArray]:
    body_in, body_out = jaxpr.in_avals, jaxpr.out_avals
    if len(avals) != len(body_in):
        raise FgradTypeError(f"scan: got {len(avals)} operands but the body takes "
                             f"{len(body_in)} inputs")
    if not 0 <= num_consts + num_carry <= len(avals) or len(body_out) < num_carry:
        raise FgradTypeError(f"scan: num_consts={num_consts}, num_carry={num_carry} do not fit "
                             f"a body with {len(body_in)} inputs and {len(body_out)} outputs")

    def same(a: ShapedArray, b: ShapedArray) -> bool:
        return a.shape == b.shape and a.dtype == b.dtype

    consts, carry, xs = _split(avals, [num_consts, num_carry])
    for i, (a, b) in enumerate(zip(consts + carry, body_in)):
        if not same(a, b):
            kind = "const" if i < num_consts else "carry"
            raise FgradTypeError(f"scan: {kind} operand {i} has type {a.str_short()} but the "
                                 f"body expects {b.str_short()}")
    for i, (a, b) in enumerate(zip(xs, body_in[num_consts + num_carry:])):
        if a.shape[:1] != (length,) or not same(_unstacked(a), b):
            raise FgradTypeError(f"scan: xs operand {i} has type {a.str_short()} but a scan "
                                 f"of length {length} needs {_stacked(length, b).str_short()}")
    for i, (a, b) in enumerate(zip(body_in[num_consts:], body_out[:num_carry])):
        if not same(a, b):
            raise FgradTypeError(f"scan: carry {i} enters the body as {a.str_short()} but "
                                 f"leaves it as {b.str_short()}")
    return list(body_out[:num_carry]) + [_stacked(length, a) for a in body_out[num_carry:]]


def _scan_pretty(params: dict[str, Any]) -> dict[str, Any]:
    order = ("length", "reverse", "unroll", "num_consts", "num_carry", "jaxpr")
    return {k: params[k] for k in order}


scan_p.def_impl(_scan_impl)
scan_p.cache_abstract_eval = False  # params hold a jaxpr, new on every call
scan_p.def_abstract_eval(_scan_abstract_eval)
scan_p.pretty = _scan_pretty
scan_p.linear_args = "when its body is (consts and xs that are UndefPrimal; every carry)"


# --- fori_loop ---------------------------------------------------------------------------------

def fori_loop(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any, *,
              unroll: int | bool | None = None) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)`` (``jax.lax.fori_loop``).

    With concrete bounds (Python ints, or arrays whose value is known) the
    loop is a ``scan`` of ``upper - lower`` steps, so it is reverse-mode
    differentiable; ``i`` is then a weakly typed integer scalar. With traced
    bounds it is a ``while_loop`` (forward-mode differentiable only), and
    ``unroll`` is not allowed.

    >>> fori_loop(0, 4, lambda i, x: x + i, 0)
    Array(6, dtype=int32, weak_type=True)
    """
    if not callable(body_fun):
        raise TypeError("lax.fori_loop: body_fun argument should be callable.")
    dtype = _fori_bounds_dtype(lower, upper)
    bounds = _concrete_int(lower), _concrete_int(upper)
    if bounds[0] is not None and bounds[1] is not None:
        lo, hi = bounds

        def scan_body(carry: tuple[Any, Any], _: Any) -> tuple[tuple[Any, Any], None]:
            from fgrad.primitives.elementwise import add
            i, x = carry
            return (add(i, 1), body_fun(i, x)), None

        (_, result), _ = scan(scan_body, (lo, init_val), None, length=builtins.max(hi - lo, 0),
                              unroll=False if unroll is None else unroll)
        return result
    if unroll is not None and unroll is not False and unroll != 1:
        raise ValueError("Can only use `unroll` in `fori_loop` if the loop bounds are "
                         "statically known.")
    return _fori_while(lower, upper, body_fun, init_val, dtype)


def _fori_bounds_dtype(lower: Any, upper: Any) -> np.dtype:
    """JAX's rule: equal dtypes, or a weak (Python) int bound adopts the other's dtype."""
    (lo_dtype, lo_weak), (hi_dtype, hi_weak) = (
        (a.dtype, a.weak_type) for a in (get_aval(lower), get_aval(upper)))
    if lo_dtype == hi_dtype:
        return lo_dtype
    if dtypes.is_int(lo_dtype) and dtypes.is_int(hi_dtype) and lo_weak != hi_weak:
        return hi_dtype if lo_weak else lo_dtype
    raise TypeError("lower and upper arguments to fori_loop must have equal types, got "
                    f"{lo_dtype.name} and {hi_dtype.name}")


def _concrete_int(x: Any) -> int | None:
    value = x.to_concrete_value() if isinstance(x, Tracer) else x
    if value is None:
        return None
    return int(np.asarray(value._value if isinstance(value, Array) else value))


def _fori_while(lower: Any, upper: Any, body_fun: Callable[[Any, Any], Any], init_val: Any,
                dtype: np.dtype) -> Any:
    # Imported here: loops.py (while_loop) is a sibling module that may import this one.
    from fgrad.primitives.control_flow.loops import while_loop
    from fgrad.primitives.elementwise import add, convert_element_type, lt

    def cast(b: Any) -> Any:
        aval = get_aval(b)
        return b if aval.dtype == dtype and not aval.weak_type else \
            convert_element_type(b, dtype)

    lower, upper = cast(lower), cast(upper)

    def cond_fun(carry: tuple[Any, Any, Any]) -> Any:
        return lt(carry[0], carry[1])

    def while_body(carry: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        i, hi, x = carry
        return add(i, convert_element_type(1, dtype)), hi, body_fun(i, x)

    return while_loop(cond_fun, while_body, (lower, upper, init_val))[2]


# --- map ------------------------------------------------------------------------------------------

def map(f: Callable[[Any], Any], xs: Any, *, batch_size: int | None = None) -> Any:  # noqa: A001
    """``stack([f(x) for x in xs])`` over the leading axis of a pytree ``xs`` (``jax.lax.map``).

    A ``scan`` without carry. With ``batch_size``, each step applies
    ``vmap(f)`` to ``batch_size`` slices (and a final ``vmap`` to the
    remainder); ``batch_size=0`` is one ``vmap`` over everything.

    >>> import fgrad.numpy as fnp
    >>> map(lambda x: x * 2.0, fnp.arange(3.0))
    Array([0., 2., 4.], dtype=float32)
    """
    if batch_size is None:
        return scan(lambda _, x: ((), f(x)), (), xs)[1]
    return _batched_map(f, xs, operator.index(batch_size))


def _batched_map(f: Callable[[Any], Any], xs: Any, batch_size: int) -> Any:
    from fgrad.core.pytree import tree_map
    from fgrad.primitives.shape import concatenate, reshape, slice as slice_
    from fgrad.transforms.vmap import vmap
    leaves, tree = tree_flatten(xs)
    if not leaves:
        return scan(lambda _, x: ((), f(x)), (), xs)[1]
    n = get_aval(leaves[0]).shape[0]
    num_batches, remainder = (0, n) if batch_size == 0 else divmod(n, batch_size)
    used = num_batches * batch_size

    def cut(x: Any, start: int, stop: int) -> Any:
        shape = get_aval(x).shape
        return slice_(x, (start, *[0] * (len(shape) - 1)), (stop, *shape[1:]))

    ys = None
    if num_batches:
        blocks = [reshape(cut(x, 0, used), (num_batches, batch_size, *get_aval(x).shape[1:]))
                  for x in leaves]
        _, ys = scan(lambda _, x: ((), vmap(f)(x)), (), tree_unflatten(tree, blocks))
        ys = tree_map(lambda y: reshape(y, (used, *get_aval(y).shape[2:])), ys)
    if remainder:
        rest = vmap(f)(tree_unflatten(tree, [cut(x, used, n) for x in leaves]))
        ys = rest if ys is None else tree_map(lambda a, b: concatenate([a, b], 0), ys, rest)
    return ys


# The rules that transform the body (jvp, partial eval, transpose, batching) live next door.
from fgrad.primitives.control_flow import scan_rules as _scan_rules  # noqa: E402, F401

__all__ = ["scan", "fori_loop", "map"]
