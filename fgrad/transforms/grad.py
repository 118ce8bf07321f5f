"""The public differentiation API: ``jvp``, ``linearize``, ``vjp``, ``grad``,
``value_and_grad``, ``jacfwd``, ``jacrev``, ``hessian``.

Forward mode is the JVP trace (``jvp.py``). Reverse mode is JAX's recipe:
``linearize`` (JVP + partial evaluation, ``partial_eval.py``) gives a linear
jaxpr for the tangent map, and ``transpose.py`` runs it backwards. So
``vjp = transpose ∘ linearize`` and ``grad`` is ``vjp`` with a cotangent of 1.

Every function here accepts and returns pytrees; the work happens on flat
lists of leaves.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import UndefPrimal, Zero, tangent_aval
from fgrad.core.avals import get_aval
from fgrad.core.errors import api_boundary
from fgrad.core.pytree import tree_flatten, tree_map, tree_structure, tree_unflatten
from fgrad.transforms import api_util
from fgrad.core.trace import current_trace
from fgrad.transforms.jvp import JVPTracer, check_tangent, instantiate_zeros, jvp_flat
from fgrad.transforms.partial_eval import linearize_flat
from fgrad.transforms.transpose import backward_pass


@api_boundary
def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> Any:
    """Evaluate ``fun(*primals)`` and its directional derivative along ``tangents``.

    Returns ``(primals_out, tangents_out)`` (and ``aux`` if ``has_aux``).

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.jvp(fnp.sin, (0.0,), (2.0,))
    (Array(0., dtype=float32, weak_type=True), Array(2., dtype=float32, weak_type=True))
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples or lists, got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    p_leaves, p_tree = tree_flatten(tuple(primals))
    t_leaves, t_tree = tree_flatten(tuple(tangents))
    if p_tree != t_tree:
        raise TypeError(f"jvp: primal and tangent arguments must have the same tree "
                        f"structure, got {p_tree} and {t_tree}")
    p_leaves = api_util.canonicalize_leaves(p_leaves, "jvp")
    t_leaves = [check_tangent(p, api_util.canonicalize_arg(t, "jvp"), "jvp")
                for p, t in zip(p_leaves, t_leaves)]
    aux_box = api_util.Store()
    f = _aux_splitting(fun, aux_box) if has_aux else fun
    flat_fun, out_tree = api_util.flatten_fun(f, p_tree, "jvp")
    primals_out, tangents_out = jvp_flat(flat_fun, p_leaves, t_leaves)
    tangents_out = [instantiate_zeros(t) for t in tangents_out]
    result = (tree_unflatten(out_tree.value, primals_out),
              tree_unflatten(out_tree.value, tangents_out))
    return (*result, aux_box.value) if has_aux else result


def _aux_splitting(fun: Callable[..., Any], box: api_util.Store) -> Callable[..., Any]:
    def f(*args: Any) -> Any:
        out = fun(*args)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError("has_aux=True requires the function to return a pair "
                            f"(output, auxiliary data), got {type(out).__name__}")
        # The aux output is not differentiated: keep only its primal values, or the
        # caller would receive tracers of a transform that has already finished.
        trace = current_trace()
        box.value = tree_map(lambda leaf: leaf.primal if isinstance(leaf, JVPTracer)
                             and leaf._trace is trace else leaf, out[1])
        return out[0]
    return f


@api_boundary
def linearize(fun: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., Any]]:
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` evaluates the JVP cheaply.

    The primal computation runs once now; ``f_jvp`` replays only the linear
    tangent map, stored as a jaxpr.
    """
    p_leaves, p_tree = tree_flatten(primals)
    p_leaves = api_util.canonicalize_leaves(p_leaves, "linearize")
    flat_fun, out_tree = api_util.flatten_fun(fun, p_tree, "linearize")
    primals_out, lin = linearize_flat(flat_fun, p_leaves)
    from fgrad.core.jaxpr import eval_closed_jaxpr

    def f_jvp(*tangents: Any) -> Any:
        t_leaves, t_tree = tree_flatten(tangents)
        if t_tree != p_tree:
            raise TypeError(f"linearize: the tangents' tree structure {t_tree} does not "
                            f"match the primals' {p_tree}")
        t_leaves = [instantiate_zeros(check_tangent(p, api_util.canonicalize_arg(t, "linearize"),
                                                    "linearize"))
                    for p, t in zip(p_leaves, t_leaves)]
        return tree_unflatten(out_tree.value, eval_closed_jaxpr(lin, *t_leaves))

    return tree_unflatten(out_tree.value, primals_out), f_jvp


@api_boundary
def vjp(fun: Callable[..., Any], *primals: Any, has_aux: bool = False) -> Any:
    """``(fun(*primals), vjp_fun)`` where ``vjp_fun(ct)`` pulls a cotangent back to the inputs.

    ``vjp_fun`` returns a tuple with one cotangent per primal argument.
    """
    p_leaves, p_tree = tree_flatten(primals)
    p_leaves = api_util.canonicalize_leaves(p_leaves, "vjp")
    aux_box = api_util.Store()
    f = _aux_splitting(fun, aux_box) if has_aux else fun
    flat_fun, out_tree = api_util.flatten_fun(f, p_tree, "vjp")
    primals_out, lin = linearize_flat(flat_fun, p_leaves)
    out_avals = [tangent_aval(get_aval(p)) for p in primals_out]

    def vjp_fun(ct: Any) -> tuple[Any, ...]:
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree.value:
            raise TypeError(f"vjp: the cotangent's tree structure {ct_tree} does not match "
                            f"the function output's {out_tree.value}")
        cts = []
        for c, aval in zip(ct_leaves, out_avals):
            c = api_util.canonicalize_arg(c, "vjp")
            c_aval = get_aval(c)
            if c_aval.shape != aval.shape or (dtypes.is_float(aval.dtype)
                                              and c_aval.dtype != aval.dtype):
                raise TypeError(f"vjp: cotangent of type {c_aval.str_short()} does not match "
                                f"the output's type {aval.str_short()}")
            cts.append(c)
        undefined = [UndefPrimal(v.aval) for v in lin.jaxpr.invars]
        cts_in = backward_pass(lin.jaxpr, lin.consts, undefined, cts)
        cts_in = [_match_weak_type(_zero_cotangent(p) if type(c) is Zero or not dtypes.is_float(
            get_aval(p).dtype) else c, p) for c, p in zip(cts_in, p_leaves)]
        return tree_unflatten(p_tree, cts_in)

    out = tree_unflatten(out_tree.value, primals_out)
    return (out, vjp_fun, aux_box.value) if has_aux else (out, vjp_fun)


def _match_weak_type(ct: Any, primal: Any) -> Any:
    """A cotangent is weakly typed exactly when its primal is (as in JAX)."""
    weak = get_aval(primal).weak_type
    aval = get_aval(ct)
    if aval.weak_type == weak:
        return ct
    from fgrad.primitives.elementwise import convert_element_type
    return convert_element_type(ct, aval.dtype, weak)


def _zero_cotangent(primal: Any) -> Any:
    aval = get_aval(primal)
    if not dtypes.is_float(aval.dtype):
        # JAX uses the float0 dtype here; fgrad returns zeros of the primal's dtype.
        return instantiate_zeros(Zero(aval.strip_weak_type()))
    return instantiate_zeros(Zero(tangent_aval(aval)))


def value_and_grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False, allow_int: bool = False) -> Callable[..., Any]:
    """A function returning ``(fun(*args), gradient)``; ``((value, aux), gradient)`` with aux.

    ``fun`` must return a scalar (shape ``()``) of a float dtype. The gradient
    has the structure of the ``argnums`` arguments (a tuple if ``argnums`` is).
    """
    @api_boundary
    def value_and_grad_fun(*args: Any, **kwargs: Any) -> Any:
        nums = api_util.normalize_argnums(argnums, len(args), "grad")
        f_partial, dyn_args = api_util.split_args(lambda *a: fun(*a, **kwargs), args, nums)
        for i, arg in zip(nums, dyn_args):
            for leaf in tree_flatten(arg)[0]:
                dtype = get_aval(api_util.canonicalize_arg(leaf, "grad")).dtype
                if not dtypes.is_float(dtype) and not allow_int:
                    raise TypeError(
                        f"grad requires real-valued (floating-point) inputs, but argument {i} "
                        f"has dtype {dtype.name}. If you want to use integer or boolean "
                        "inputs, use vjp or set allow_int=True.")
        if has_aux:
            value, vjp_fun, aux = vjp(f_partial, *dyn_args, has_aux=True)
        else:
            value, vjp_fun = vjp(f_partial, *dyn_args)
        value_aval = get_aval(value) if not isinstance(value, (tuple, list, dict)) else None
        if value_aval is None or value_aval.shape != ():
            shape = value_aval.shape if value_aval is not None else type(value).__name__
            raise TypeError(f"Gradient only defined for scalar-output functions. Output had "
                            f"shape: {shape}. For non-scalar outputs use vjp, jacrev or jacfwd.")
        if not dtypes.is_float(value_aval.dtype):
            raise TypeError(f"grad requires a floating-point output, got "
                            f"{value_aval.str_short()}")
        from fgrad.primitives.shape import full
        one = full((), 1, value_aval.dtype)
        grads = vjp_fun(one)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux), g) if has_aux else (value, g)

    value_and_grad_fun.__name__ = f"value_and_grad({api_util.fun_name(fun)})"
    return value_and_grad_fun


def grad(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
         has_aux: bool = False, allow_int: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function with respect to its ``argnums`` arguments.

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.grad(lambda x: fnp.sum(x ** 2))(fnp.array([1.0, 2.0]))
    Array([2., 4.], dtype=float32)
    """
    vg = value_and_grad(fun, argnums, has_aux, allow_int)

    @api_boundary
    def grad_fun(*args: Any, **kwargs: Any) -> Any:
        (value, g) = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    grad_fun.__name__ = f"grad({api_util.fun_name(fun)})"
    return grad_fun


# --- Jacobians -------------------------------------------------------------------------------
# Until vmap exists these loop over basis vectors: one jvp (jacfwd) or one vjp
# pullback (jacrev) per input (output) element, stacked with strict fgrad ops.

def _basis(leaves: Sequence[Any]) -> list[list[Any]]:
    """One list of tangents per element of the flattened ``leaves``: the standard basis."""
    from fgrad.core.array import Array
    avals = [get_aval(x) for x in leaves]
    total = sum(a.size for a in avals)
    basis = []
    for k in range(total):
        vecs, offset = [], 0
        for a in avals:
            e = np.zeros(a.size, dtype=a.dtype)
            if offset <= k < offset + a.size:
                e[k - offset] = 1
            vecs.append(Array(e.reshape(a.shape)))
            offset += a.size
        basis.append(vecs)
    return basis


def _stack_columns(columns: Sequence[Any], out_shape: tuple[int, ...],
                   in_shapes: Sequence[tuple[int, ...]], sizes: Sequence[int],
                   columns_last: bool, dtype: Any) -> list[Any]:
    """Assemble Jacobian blocks ``out_shape + in_shape`` from per-element columns/rows."""
    from fgrad.primitives.shape import concatenate, reshape, transpose
    blocks, offset = [], 0
    for in_shape, size in zip(in_shapes, sizes):
        cols = [reshape(c, (1, *c.shape)) for c in columns[offset:offset + size]]
        offset += size
        if not cols:
            from fgrad.primitives.shape import full
            blocks.append(full((*out_shape, *in_shape), 0, dtype))
            continue
        stacked = concatenate(cols, 0)  # (size, *other_shape)
        if columns_last:  # jacfwd: columns are outputs per input element
            n = len(out_shape)
            moved = transpose(stacked, (*range(1, n + 1), 0))
            blocks.append(reshape(moved, (*out_shape, *in_shape)))
        else:  # jacrev: rows are input-shaped gradients per output element
            blocks.append(reshape(stacked, (*out_shape, *in_shape)))
    return blocks


def jacfwd(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
           has_aux: bool = False) -> Callable[..., Any]:
    """Jacobian by forward mode: one JVP per input element. Leaves: ``out.shape + in.shape``."""
    @api_boundary
    def jac_fun(*args: Any) -> Any:
        nums = api_util.normalize_argnums(argnums, len(args), "jacfwd")
        f_partial, dyn = api_util.split_args(fun, args, nums)
        dyn_arg = dyn[0] if isinstance(argnums, int) else dyn
        x_leaves, x_tree = tree_flatten(dyn_arg)
        x_leaves = api_util.canonicalize_leaves(x_leaves, "jacfwd")
        for x in x_leaves:
            if not dtypes.is_float(get_aval(x).dtype):
                raise TypeError(f"jacfwd requires floating-point inputs, got "
                                f"{get_aval(x).str_short()}")
        g = (lambda x: f_partial(x)) if isinstance(argnums, int) else (
            lambda x: f_partial(*x))
        columns: list[list[Any]] = []
        out = aux = None
        for vecs in _basis(x_leaves):
            res = jvp(g, (tree_unflatten(x_tree, x_leaves),), (tree_unflatten(x_tree, vecs),),
                      has_aux=has_aux)
            out, t_out = res[0], res[1]
            aux = res[2] if has_aux else None
            columns.append(tree_flatten(t_out)[0])
        if out is None:  # no input elements at all
            out = g(tree_unflatten(x_tree, x_leaves))
            if has_aux:
                out, aux = out
        out_leaves, out_tree = tree_flatten(out)
        in_shapes = [get_aval(x).shape for x in x_leaves]
        sizes = [get_aval(x).size for x in x_leaves]
        jac_leaves = []
        for k, o in enumerate(out_leaves):
            blocks = _stack_columns([c[k] for c in columns], get_aval(o).shape, in_shapes,
                                    sizes, columns_last=True, dtype=get_aval(o).dtype)
            jac_leaves.append(tree_unflatten(x_tree, blocks))
        jac = tree_unflatten(out_tree, jac_leaves)
        return (jac, aux) if has_aux else jac

    return jac_fun


def jacrev(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
           has_aux: bool = False) -> Callable[..., Any]:
    """Jacobian by reverse mode: one VJP per output element. Leaves: ``out.shape + in.shape``."""
    @api_boundary
    def jac_fun(*args: Any) -> Any:
        nums = api_util.normalize_argnums(argnums, len(args), "jacrev")
        f_partial, dyn = api_util.split_args(fun, args, nums)
        for x in tree_flatten(dyn)[0]:
            if not dtypes.is_float(get_aval(api_util.canonicalize_arg(x, "jacrev")).dtype):
                raise TypeError(f"jacrev requires floating-point inputs, got "
                                f"{api_util.aval_str(x)}")
        res = vjp(f_partial, *dyn, has_aux=has_aux)
        out, pullback = res[0], res[1]
        out_leaves, out_tree = tree_flatten(out)
        out_leaves = api_util.canonicalize_leaves(out_leaves, "jacrev")
        x_leaves, x_tree = tree_flatten(dyn[0] if isinstance(argnums, int) else dyn)
        x_leaves = api_util.canonicalize_leaves(x_leaves, "jacrev")
        in_shapes = [get_aval(x).shape for x in x_leaves]
        sizes = [get_aval(x).size for x in x_leaves]
        rows: list[list[Any]] = []  # rows[output element][input leaf]
        out_sizes = [get_aval(o).size for o in out_leaves]
        for vecs in _basis(out_leaves):
            cts = pullback(tree_unflatten(out_tree, vecs))
            cts = cts[0] if isinstance(argnums, int) else cts
            rows.append(tree_flatten(cts)[0])
        jac_leaves, offset = [], 0
        for o, n in zip(out_leaves, out_sizes):
            blocks = []
            for j, (shape, size) in enumerate(zip(in_shapes, sizes)):
                block_rows = [r[j] for r in rows[offset:offset + n]]
                blocks.extend(_stack_columns(block_rows, get_aval(o).shape, [shape], [n],
                                             columns_last=False,
                                             dtype=get_aval(x_leaves[j]).dtype))
            offset += n
            jac_leaves.append(tree_unflatten(x_tree, blocks))
        jac = tree_unflatten(out_tree, jac_leaves)
        return (jac, res[2]) if has_aux else jac

    return jac_fun


def hessian(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
            has_aux: bool = False) -> Callable[..., Any]:
    """Hessian: ``jacfwd(jacrev(fun))``."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux), argnums, has_aux=has_aux)


__all__ = ["jvp", "linearize", "vjp", "grad", "value_and_grad", "jacfwd", "jacrev", "hessian",
           "tree_map", "tree_structure"]
