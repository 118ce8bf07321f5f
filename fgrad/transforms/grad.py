"""The public differentiation API: ``jvp``, ``linearize``, ``vjp``, ``grad``,
``value_and_grad``, ``jacfwd``, ``jacrev``, ``hessian``.

Forward mode is the JVP trace (``jvp.py``). Reverse mode is JAX's recipe:
``linearize`` (JVP + partial evaluation, ``partial_eval.py``) gives a linear
jaxpr for the tangent map, and ``transpose.py`` runs it backwards. So
``vjp = transpose ∘ linearize`` and ``grad`` is ``vjp`` with a cotangent of 1.

``jacfwd``/``jacrev`` are ``vmap`` of ``jvp``/``vjp`` over basis vectors
(``vmap.py``), and ``hessian`` is ``jacfwd(jacrev)``.

Every function here accepts and returns pytrees; the work happens on flat
lists of leaves.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import UndefPrimal, Zero, tangent_aval
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import api_boundary
from fgrad.core.pytree import (
    PyTreeDef, tree_flatten, tree_map, tree_structure, tree_transpose, tree_unflatten)
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
    primals_out, out_tree, lin, aux = _linearize_leaves(fun, p_leaves, p_tree, has_aux, "vjp")
    out_avals = [tangent_aval(get_aval(p)) for p in primals_out]

    def vjp_fun(ct: Any) -> tuple[Any, ...]:
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise TypeError(f"vjp: the cotangent's tree structure {ct_tree} does not match "
                            f"the function output's {out_tree}")
        cts = []
        for c, aval in zip(ct_leaves, out_avals):
            c = api_util.canonicalize_arg(c, "vjp")
            c_aval = get_aval(c)
            if c_aval.shape != aval.shape or (dtypes.is_float(aval.dtype)
                                              and c_aval.dtype != aval.dtype):
                raise TypeError(f"vjp: cotangent of type {c_aval.str_short()} does not match "
                                f"the output's type {aval.str_short()}")
            cts.append(c)
        return tree_unflatten(p_tree, _pullback(lin, p_leaves, cts))

    out = tree_unflatten(out_tree, primals_out)
    return (out, vjp_fun, aux) if has_aux else (out, vjp_fun)


def _linearize_leaves(fun: Callable[..., Any], p_leaves: list[Any], p_tree: PyTreeDef,
                      has_aux: bool, where: str) -> tuple[list[Any], PyTreeDef, Any, Any]:
    """``linearize_flat`` of a function of pytrees, at (canonical) leaves of ``p_tree``.

    Returns the flat outputs, their tree, the linear jaxpr and the aux output (or None).
    """
    aux_box = api_util.Store()
    f = _aux_splitting(fun, aux_box) if has_aux else fun
    flat_fun, out_tree = api_util.flatten_fun(f, p_tree, where)
    primals_out, lin = linearize_flat(flat_fun, p_leaves)
    return primals_out, out_tree.value, lin, aux_box.value


def _pullback(lin: Any, p_leaves: Sequence[Any], cts: Sequence[Any]) -> list[Any]:
    """The cotangents of the primal leaves for the output cotangents ``cts``: the linear
    jaxpr run backwards, zeros instantiated, weakly typed exactly where the primal is."""
    undefined = [UndefPrimal(v.aval) for v in lin.jaxpr.invars]
    cts_in = backward_pass(lin.jaxpr, lin.consts, undefined, cts)
    out = []
    for ct, primal in zip(cts_in, p_leaves):
        aval = get_aval(primal)
        if type(ct) is Zero or not dtypes.is_float(aval.dtype):
            ct = _zero_cotangent(aval)
        out.append(_match_weak_type(ct, aval.weak_type))
    return out


def _match_weak_type(ct: Any, weak: bool) -> Any:
    """A cotangent is weakly typed exactly when its primal is (as in JAX)."""
    aval = get_aval(ct)
    if aval.weak_type == weak:
        return ct
    from fgrad.primitives.elementwise import convert_element_type
    return convert_element_type(ct, aval.dtype, weak)


def _zero_cotangent(aval: ShapedArray) -> Any:
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
        # vjp, inlined: the arguments are flattened and checked once.
        p_leaves, p_tree = tree_flatten(dyn_args)
        p_leaves = api_util.canonicalize_leaves(p_leaves, "grad")
        if not allow_int:
            _check_float_args(p_leaves, dyn_args, nums)
        primals_out, out_tree, lin, aux = _linearize_leaves(f_partial, p_leaves, p_tree,
                                                            has_aux, "vjp")
        value = tree_unflatten(out_tree, primals_out)
        value_aval = get_aval(value) if not isinstance(value, (tuple, list, dict)) else None
        if value_aval is None or value_aval.shape != ():
            shape = value_aval.shape if value_aval is not None else type(value).__name__
            raise TypeError(f"Gradient only defined for scalar-output functions. Output had "
                            f"shape: {shape}. For non-scalar outputs use vjp, jacrev or jacfwd.")
        if not dtypes.is_float(value_aval.dtype):
            raise TypeError(f"grad requires a floating-point output, got "
                            f"{value_aval.str_short()}")
        from fgrad.primitives.shape import full
        grads = tree_unflatten(p_tree, _pullback(lin, p_leaves, [full((), 1, value_aval.dtype)]))
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux), g) if has_aux else (value, g)

    value_and_grad_fun.__name__ = f"value_and_grad({api_util.fun_name(fun)})"
    return value_and_grad_fun


def _check_float_args(leaves: Sequence[Any], dyn_args: Sequence[Any],
                      argnums: Sequence[int]) -> None:
    """grad differentiates float inputs only (without ``allow_int``)."""
    if all(dtypes.is_float(get_aval(leaf).dtype) for leaf in leaves):
        return
    for i, arg in zip(argnums, dyn_args):  # find the argument to name in the message
        for leaf in tree_flatten(arg)[0]:
            dtype = get_aval(api_util.canonicalize_arg(leaf, "grad")).dtype
            if not dtypes.is_float(dtype):
                raise TypeError(
                    f"grad requires real-valued (floating-point) inputs, but argument {i} "
                    f"has dtype {dtype.name}. If you want to use integer or boolean "
                    "inputs, use vjp or set allow_int=True.")


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
# A Jacobian is a JVP (one column) or a VJP (one row) per basis vector, and vmap runs them
# all at once: jacfwd = vmap(jvp) over the input basis, jacrev = vmap(pullback) over the
# output basis. Every leaf of the result has shape ``out_leaf.shape + in_leaf.shape``.

def _std_basis(leaves: Sequence[Any]) -> list[Any]:
    """The standard basis of the flattened ``leaves``, one leaf per input leaf.

    Leaf ``i`` has shape ``(n, *leaves[i].shape)`` (n = total size) and the
    leaf's dtype: row ``k`` of the stack over all leaves is the k-th basis vector.
    """
    from fgrad.core.array import Array
    avals = [get_aval(x) for x in leaves]
    n = sum(a.size for a in avals)
    dtype = np.result_type(*[a.dtype for a in avals]) if avals else np.float32
    eye = np.eye(n, dtype=dtype)
    out, offset = [], 0
    for a in avals:
        part = eye[:, offset:offset + a.size].reshape((n, *a.shape)).astype(a.dtype)
        out.append(Array(part))
        offset += a.size
    return out


def _unravel(arr: Any, axis: int, leaves: Sequence[Any], example: Any | None) -> list[Any]:
    """Split axis ``axis`` of ``arr`` (of size sum of leaf sizes) into one block per leaf.

    Block ``i`` has ``leaves[i].shape`` in place of that axis and the dtype and
    weak type of ``example`` (or of ``leaves[i]`` when ``example`` is None), as in JAX.
    """
    from fgrad.primitives.elementwise import convert_element_type
    from fgrad.primitives.shape import reshape, slice as slice_
    aval = get_aval(arr)
    blocks, offset = [], 0
    for leaf in leaves:
        leaf_aval = get_aval(leaf)
        start = [0] * aval.ndim
        limit = list(aval.shape)
        start[axis], limit[axis] = offset, offset + leaf_aval.size
        offset += leaf_aval.size
        part = arr if (start[axis], limit[axis]) == (0, aval.shape[axis]) else \
            slice_(arr, start, limit)
        shape = (*aval.shape[:axis], *leaf_aval.shape, *aval.shape[axis + 1:])
        part = part if get_aval(part).shape == shape else reshape(part, shape)
        target = leaf_aval if example is None else get_aval(example)
        if (get_aval(part).dtype, get_aval(part).weak_type) != (target.dtype, target.weak_type):
            part = convert_element_type(part, target.dtype, target.weak_type)
        blocks.append(part)
    return blocks


def _check_jac_inputs(name: str, leaves: Sequence[Any], holomorphic: bool,
                      allow_int: bool = False) -> None:
    for x in leaves:
        dtype = get_aval(x).dtype
        if holomorphic:  # fgrad has no complex dtypes, so this always fails (as JAX would)
            raise TypeError(f"{name} with holomorphic=True requires inputs with complex dtype, "
                            f"but got {dtype.name}.")
        if name == "jacfwd" and not dtypes.is_float(dtype):
            raise TypeError(f"jacfwd requires real-valued inputs (input dtype that is a "
                            f"sub-dtype of np.floating), but got {dtype.name}. For holomorphic "
                            "differentiation, pass holomorphic=True. For differentiation of "
                            "non-holomorphic functions involving complex inputs or integer "
                            "inputs, use fgrad.jvp directly.")
        if name == "jacrev" and not dtypes.is_float(dtype) and not allow_int:
            raise TypeError(f"jacrev requires real- or complex-valued inputs (input dtype that "
                            f"is a sub-dtype of np.inexact), but got {dtype.name}. If you want "
                            "to use Boolean- or integer-valued inputs, use vjp or set "
                            "allow_int to True.")


def _jac_args(name: str, fun: Callable[..., Any], argnums: int | Sequence[int],
              args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Callable[..., Any], Any]:
    """``fun`` as a function of the ``argnums`` arguments only, and those arguments."""
    nums = api_util.normalize_argnums(argnums, len(args), name)
    f_partial, dyn = api_util.split_args(lambda *a: fun(*a, **kwargs), args, nums)
    dyn = tuple(tree_map(lambda x: api_util.canonicalize_arg(x, name), d) for d in dyn)
    return f_partial, dyn


def jacfwd(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
           has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """Jacobian of ``fun`` by forward mode: ``vmap`` of ``jvp`` over the input basis.

    Cheap when inputs are few and outputs many. Each leaf of the result has
    shape ``out_leaf.shape + in_leaf.shape`` and the output's dtype; the
    nesting is output tree outside, input tree (the ``argnums`` argument, or
    the tuple of them) inside, as in JAX.

    Args:
      fun: function of arrays (pytrees) returning arrays (a pytree).
      argnums: which positional argument(s) to differentiate (int or tuple).
      has_aux: ``fun`` returns ``(out, aux)``; the result is then ``(jac, aux)``.
      holomorphic: accepted for JAX compatibility; fgrad has no complex dtypes.

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.jacfwd(lambda x: x ** 2)(fnp.array([1.0, 2.0]))
    Array([[2., 0.],
           [0., 4.]], dtype=float32)
    """
    @api_boundary
    def jac_fun(*args: Any, **kwargs: Any) -> Any:
        from fgrad.transforms.vmap import vmap
        f_partial, dyn = _jac_args("jacfwd", fun, argnums, args, kwargs)
        x_leaves = tree_flatten(dyn)[0]
        _check_jac_inputs("jacfwd", x_leaves, holomorphic)
        x_tree = tree_structure(dyn)

        def pushfwd(*basis_leaves: Any) -> Any:
            return jvp(f_partial, dyn, tree_unflatten(x_tree, basis_leaves), has_aux=has_aux)

        out_axes = (None, -1, None) if has_aux else (None, -1)
        res = vmap(pushfwd, out_axes=out_axes)(*_std_basis(x_leaves))
        y, jac = res[0], res[1]
        example = dyn[0] if isinstance(argnums, int) else dyn
        in_leaves, in_tree = tree_flatten(example)
        y_leaves, y_tree = tree_flatten(y)
        jac_leaves = tree_flatten(jac)[0]
        jac_tree = tree_unflatten(y_tree, [
            tree_unflatten(in_tree, _unravel(j, get_aval(j).ndim - 1, in_leaves, yl))
            for yl, j in zip(y_leaves, jac_leaves)])
        return (jac_tree, res[2]) if has_aux else jac_tree

    jac_fun.__name__ = f"jacfwd({api_util.fun_name(fun)})"
    return jac_fun


def jacrev(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
           has_aux: bool = False, holomorphic: bool = False,
           allow_int: bool = False) -> Callable[..., Any]:
    """Jacobian of ``fun`` by reverse mode: ``vmap`` of the VJP over the output basis.

    Cheap when outputs are few and inputs many. Same layout as ``jacfwd``
    (``out_leaf.shape + in_leaf.shape``), with the input's dtype.

    Args:
      fun: function of arrays (pytrees) returning float arrays (a pytree).
      argnums: which positional argument(s) to differentiate (int or tuple).
      has_aux: ``fun`` returns ``(out, aux)``; the result is then ``(jac, aux)``.
      holomorphic: accepted for JAX compatibility; fgrad has no complex dtypes.
      allow_int: allow integer inputs (their Jacobian blocks are zeros).

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.jacrev(lambda x: fnp.sum(x ** 2))(fnp.array([1.0, 2.0]))
    Array([2., 4.], dtype=float32)
    """
    @api_boundary
    def jac_fun(*args: Any, **kwargs: Any) -> Any:
        from fgrad.transforms.vmap import vmap
        f_partial, dyn = _jac_args("jacrev", fun, argnums, args, kwargs)
        _check_jac_inputs("jacrev", tree_flatten(dyn)[0], holomorphic, allow_int)
        res = vjp(f_partial, *dyn, has_aux=has_aux)
        y, pullback = res[0], res[1]
        y_leaves, y_tree = tree_flatten(y)
        for leaf in y_leaves:
            dtype = get_aval(leaf).dtype
            if not dtypes.is_float(dtype):
                raise TypeError(f"jacrev requires real-valued outputs (output dtype that is a "
                                f"sub-dtype of np.floating), but got {dtype.name}. For "
                                "differentiation of functions with integer outputs, use "
                                "fgrad.vjp directly.")
        jac = vmap(lambda *cts: pullback(tree_unflatten(y_tree, cts)))(*_std_basis(y_leaves))
        jac = jac[0] if isinstance(argnums, int) else jac
        example = dyn[0] if isinstance(argnums, int) else dyn
        in_leaves, in_tree = tree_flatten(example)
        # Per input leaf, split the leading (output-basis) axis into output blocks; then
        # turn the input-major nesting into JAX's output-major one.
        per_input = [tree_unflatten(y_tree, _unravel(j, 0, y_leaves, x))
                     for x, j in zip(in_leaves, tree_flatten(jac)[0])]
        jac_tree = tree_transpose(in_tree, y_tree, tree_unflatten(in_tree, per_input))
        return (jac_tree, res[2]) if has_aux else jac_tree

    jac_fun.__name__ = f"jacrev({api_util.fun_name(fun)})"
    return jac_fun


def hessian(fun: Callable[..., Any], argnums: int | Sequence[int] = 0,
            has_aux: bool = False, holomorphic: bool = False) -> Callable[..., Any]:
    """Hessian: ``jacfwd(jacrev(fun))`` (forward over reverse, the cheap order).

    >>> import fgrad, fgrad.numpy as fnp
    >>> fgrad.hessian(lambda x: fnp.sum(x ** 3))(fnp.array([1.0, 2.0]))
    Array([[ 6.,  0.],
           [ 0., 12.]], dtype=float32)
    """
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic), argnums,
                  has_aux=has_aux, holomorphic=holomorphic)


__all__ = ["jvp", "linearize", "vjp", "grad", "value_and_grad", "jacfwd", "jacrev", "hessian",
           "tree_map", "tree_structure"]
