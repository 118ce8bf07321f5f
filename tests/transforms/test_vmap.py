"""``fgrad.vmap``'s API against ``jax.vmap``: axis specs, outputs, sizes, errors.

* ``in_axes`` as ints (negative too), ``None``, lists, pytree prefixes with
  ``None`` leaves (tuples, lists, dicts, namedtuples); keyword arguments are
  mapped along axis 0; ``out_axes`` the same way, ``None`` for unbatched
  outputs; ``axis_size`` with nothing mapped; empty batches;
* every error message, compared with JAX's text where fgrad mirrors it;
* unbatched arguments stay unbatched in the jaxpr (no needless broadcasts);
* ``batch_jaxpr`` (the helper of higher-order primitives) and the batched
  ``jit`` call primitive (one batched jaxpr per batch layout, cached).

Composition with ``grad``/``jit``/Jacobians and the custom-derivative
primitives lives in ``test_vmap_composition.py``.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.transforms.vmap import batch_jaxpr
from jax_compare import assert_matches

rng = np.random.default_rng(0)


def rand(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def both(make: Callable[[Any], Callable[..., Any]], **vmap_kwargs: Any
         ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``make(lib)`` vmapped by fgrad (with fgrad.numpy) and by JAX (with jax.numpy)."""
    return (fgrad.vmap(make(fnp), **vmap_kwargs), jax.vmap(make(jnp), **vmap_kwargs))


def check_like_jax(make: Callable[[Any], Callable[..., Any]], args: tuple[Any, ...],
                   kwargs: dict[str, Any] | None = None, **vmap_kwargs: Any) -> Any:
    f, jf = both(make, **vmap_kwargs)
    got = f(*args, **(kwargs or {}))
    # (JAX may hand back a numpy input it only moved axes of: make it a jax.Array)
    want = jax.tree_util.tree_map(jnp.asarray, jf(*args, **(kwargs or {})))
    assert fgrad.tree_util.tree_structure(got) == fgrad.tree_util.tree_structure(
        jax.tree_util.tree_map(lambda x: 0, want))
    assert_matches(got, want, str(vmap_kwargs), rtol=1e-5)
    return got


# --- in_axes ---------------------------------------------------------------------------------

X34, Y34, V4 = rand(3, 4), rand(3, 4), rand(4)


@pytest.mark.parametrize("in_axes,args", [
    (0, (X34, Y34)),
    (1, (X34, Y34)),
    (-1, (X34, Y34)),
    (-2, (X34, Y34)),
    ((0, None), (X34, V4)),
    ((None, 1), (V4[:3], X34)),
    ([1, -1], (X34, Y34)),          # a list is a tuple
    ((1, 0), (X34, Y34.T.copy())),
])
def test_in_axes_int_none_negative(in_axes: Any, args: tuple[Any, ...]) -> None:
    check_like_jax(lambda lib: lambda x, y: lib.sin(x) * y + lib.sum(y), args, in_axes=in_axes)


def test_in_axes_pytree_prefix_with_none_leaves() -> None:
    tree = {"w": V4, "b": (X34, X34.T.copy()), "s": np.float32(2.0)}
    make = lambda lib: lambda t, z: lib.tanh(t["w"] * t["b"][0] + t["b"][1].T) * t["s"] + z
    in_axes = ({"w": None, "b": (0, 1), "s": None}, 0)
    check_like_jax(make, (tree, Y34), in_axes=in_axes)
    # a whole subtree mapped with one int (prefix), lists inside the spec
    make2 = lambda lib: lambda t: t[0] * lib.cos(t[1])
    check_like_jax(make2, ([X34, Y34],), in_axes=([0, 0],))
    check_like_jax(make2, ([X34, Y34],), in_axes=(1,))


def test_in_axes_namedtuple() -> None:
    Point = namedtuple("Point", ["x", "y"])
    p = Point(X34, V4)
    make = lambda lib: lambda p: p.x * p.y
    f = fgrad.vmap(make(fnp), in_axes=(Point(0, None),))
    jf = jax.vmap(make(jnp), in_axes=(Point(0, None),))
    assert_matches(f(p), jf(p))


def test_kwargs_are_mapped_along_axis_0() -> None:
    make = lambda lib: lambda x, y, scale=1.0: lib.sin(x) * y * scale
    got = check_like_jax(make, (X34.T.copy(),), {"y": Y34}, in_axes=(1,))
    assert got.shape == (3, 4)
    # a keyword argument cannot be unmapped: it is always mapped at 0
    check_like_jax(make, (X34,), {"y": Y34, "scale": np.ones(3, np.float32)}, in_axes=0)


def test_unmapped_non_array_arguments_pass_through() -> None:
    f = fgrad.vmap(lambda x, how: fnp.sin(x) if how == "sin" else fnp.cos(x),
                   in_axes=(0, None))
    np.testing.assert_allclose(np.asarray(f(X34, "cos")), np.cos(X34), rtol=1e-6)


def test_weak_types_and_python_scalars() -> None:
    make = lambda lib: lambda x, s: x * s + 1.0
    check_like_jax(make, (np.arange(3.0, dtype=np.float32), 2.0), in_axes=(0, None))
    check_like_jax(lambda lib: lambda x: x * 2, (np.arange(3, dtype=np.int32),))


# --- out_axes --------------------------------------------------------------------------------

@pytest.mark.parametrize("out_axes", [0, 1, -1, -2, (1, 0), {"a": -1, "b": 0}])
def test_out_axes(out_axes: Any) -> None:
    if isinstance(out_axes, dict):
        make = lambda lib: lambda x, y: {"a": lib.sin(x) * y, "b": lib.sum(x)}
    elif isinstance(out_axes, tuple):
        make = lambda lib: lambda x, y: (x * y, y)
    else:
        make = lambda lib: lambda x, y: lib.exp(x) - y
    check_like_jax(make, (X34, Y34), in_axes=(1, 1), out_axes=out_axes)


def test_out_axes_none_for_unbatched_outputs_and_broadcast_of_unbatched() -> None:
    make = lambda lib: lambda x, w: (x * w, w * 2.0, {"k": lib.sum(w)})
    got = check_like_jax(make, (X34, V4), in_axes=(0, None), out_axes=(0, None, {"k": None}))
    assert got[1].shape == (4,) and got[2]["k"].shape == ()
    got = check_like_jax(make, (X34, V4), in_axes=(0, None), out_axes=(0, 1, 0))
    assert got[1].shape == (4, 3) and got[2]["k"].shape == (3,)


def test_axis_size_when_nothing_is_mapped() -> None:
    got = check_like_jax(lambda lib: lambda x: lib.sin(x), (V4,), in_axes=None, axis_size=2)
    assert got.shape == (2, 4)
    got = check_like_jax(lambda lib: lambda: lib.ones(3), (), axis_size=5)
    assert got.shape == (5, 3)
    got = check_like_jax(lambda lib: lambda x: x * 2, (X34,), axis_size=3)  # agrees
    assert got.shape == (3, 4)


def test_empty_batch() -> None:
    got = check_like_jax(lambda lib: lambda x: lib.sum(lib.sin(x)), (np.ones((0, 3), np.float32),))
    assert got.shape == (0,)
    got = check_like_jax(lambda lib: lambda x, y: x @ y, (np.ones((0, 3), np.float32),
                                                          np.ones((3, 2), np.float32)),
                         in_axes=(0, None), out_axes=1)
    assert got.shape == (2, 0)
    got = check_like_jax(lambda lib: lambda: lib.zeros(2), (), axis_size=0)
    assert got.shape == (0, 2)


def test_size_one_batch_and_nested_vmaps_with_different_axes() -> None:
    check_like_jax(lambda lib: lambda x: lib.cumsum(x), (rand(1, 5),))
    a, b = rand(2, 3, 4), rand(4, 3)

    def make(lib: Any) -> Callable[..., Any]:
        inner = lambda x, y: lib.sum(x * y)                               # (2,), () -> ()
        return (fgrad if lib is fnp else jax).vmap(inner, in_axes=(1, 0))  # (2,3), (3,) -> (3,)

    # the outer vmap maps axis 2 of a and axis 0 of b (size 4), its batch axis goes last
    got = fgrad.vmap(make(fnp), in_axes=(2, 0), out_axes=-1)(a, b)
    want = jax.vmap(make(jnp), in_axes=(2, 0), out_axes=-1)(a, b)
    assert_matches(got, want, rtol=1e-5)
    assert got.shape == (3, 4)


# --- errors: the same text as JAX's ------------------------------------------------------------

def _messages(fun: Callable[[Any, Any], Any]) -> tuple[str, str]:
    with pytest.raises(Exception) as fgrad_error:
        fun(fgrad, fnp)
    with pytest.raises(Exception) as jax_error:
        fun(jax, jnp)
    assert type(fgrad_error.value).__name__ == type(jax_error.value).__name__
    return str(fgrad_error.value), str(jax_error.value)


X, Y = np.ones((3, 4), np.float32), np.ones((5, 4), np.float32)


def _f(a: Any, b: Any) -> Any:
    return a


def _g(a: Any, *rest: Any) -> Any:
    return a


def _tree_f(t: Any, c: Any) -> Any:
    return c


SAME_TEXT_ERRORS = {
    "two_args": lambda T, np_: T.vmap(_f)(X, Y),
    "pytree_paths_and_counts": lambda T, np_: T.vmap(_tree_f)({"a": X, "b": (Y, Y)}, X),
    "kwarg": lambda T, np_: T.vmap(_f)(X, b=Y),
    "star_args": lambda T, np_: T.vmap(_g)(X, Y),
    "axis_size_disagrees": lambda T, np_: T.vmap(lambda a: a, axis_size=4)(X),
    "negative_axis_named": lambda T, np_: T.vmap(_f, in_axes=(-1, 0))(X, np.ones((3, 3))),
    "rank_too_small": lambda T, np_: T.vmap(_f, in_axes=(2, 0))(X, X),
    "rank_too_small_negative": lambda T, np_: T.vmap(_f, in_axes=(-3, 0))(X, X),
    "scalar_mapped": lambda T, np_: T.vmap(_f)(1.0, X),
    "in_axes_length": lambda T, np_: T.vmap(_f, in_axes=(0,))(X, X),
    "in_axes_leaf_type": lambda T, np_: T.vmap(_f, in_axes=(0.5, 0)),
    "in_axes_top_type": lambda T, np_: T.vmap(_f, in_axes="a"),
    "out_axes_leaf_type": lambda T, np_: T.vmap(_f, out_axes=0.5),
    "out_axes_none_batched": lambda T, np_: T.vmap(lambda a: a, out_axes=None)(X),
    "out_axes_none_nested": lambda T, np_: T.vmap(lambda a: (a, {"k": a}),
                                                  out_axes=(0, {"k": None}))(X),
    "out_axes_out_of_bounds": lambda T, np_: T.vmap(lambda a: a, out_axes=3)(X),
    "nothing_mapped": lambda T, np_: T.vmap(lambda a: a, in_axes=None)(X),
    "no_arguments": lambda T, np_: T.vmap(lambda: 1.0)(),
}


@pytest.mark.parametrize("case", sorted(SAME_TEXT_ERRORS))
def test_error_messages_match_jax(case: str) -> None:
    got, want = _messages(SAME_TEXT_ERRORS[case])
    assert got == want


def test_inconsistent_sizes_message_format() -> None:
    with pytest.raises(ValueError) as e:
        fgrad.vmap(lambda p, b: p)({"w": (X, Y)}, X)
    assert str(e.value) == (
        "vmap got inconsistent sizes for array axes to be mapped:\n"
        "  * most axes (2 of them) had size 3, e.g. axis 0 of argument p['w'][0] of type "
        "float32[3,4];\n"
        "  * one axis had size 5: axis 0 of argument p['w'][1] of type float32[5,4]")


@pytest.mark.parametrize("in_axes,arg,where", [
    (((0, 0, 0),), (X, X), r"different lengths of tuple at key path vmap in_axes\[0\]"),
    (({"a": 0, "c": 0},), {"a": X, "b": X}, r"different keys at key path vmap in_axes\[0\]"),
    (((0, None),), [X, X], r"different types at key path vmap in_axes\[0\]"),
    (({"a": (0, 0)},), {"a": [X, X]}, r"different types at key path vmap in_axes\[0\]\['a'\]"),
])
def test_in_axes_not_a_tree_prefix(in_axes: Any, arg: Any, where: str) -> None:
    for T in (fgrad, jax):
        with pytest.raises(ValueError, match="vmap in_axes specification must be a tree prefix "
                                             "of the corresponding value"):
            T.vmap(lambda t: 0.0, in_axes=in_axes)(arg)
    with pytest.raises(ValueError, match=where):
        fgrad.vmap(lambda t: 0.0, in_axes=in_axes)(arg)


def test_out_axes_not_a_tree_prefix() -> None:
    with pytest.raises(ValueError, match=r"vmap out_axes specification must be a tree prefix.*"
                                         r"different lengths of tuple at key path vmap out_axes"):
        fgrad.vmap(lambda a: (a, a), out_axes=(0, 0, 0))(X)


def test_non_array_leaves() -> None:
    with pytest.raises(TypeError, match="argument 's' of type <class 'str'> is not a valid "
                                        "fgrad array type.*mapped along axis 0"):
        fgrad.vmap(_f)(X, "s")
    with pytest.raises(TypeError, match="Output from batched function 's' with type "
                                        "<class 'str'> is not a valid"):
        fgrad.vmap(lambda a: "s")(X)
    with pytest.raises(TypeError, match="Expected a callable value"):
        fgrad.vmap(3)
    with pytest.raises(TypeError, match="axis_size must be a non-negative int"):
        fgrad.vmap(_f, axis_size=-1)


def test_missing_batch_rule_names_the_primitive(monkeypatch: pytest.MonkeyPatch) -> None:
    from fgrad.primitives.elementwise import sin_p
    monkeypatch.setattr(sin_p, "batch", None)
    with pytest.raises(NotImplementedError, match="Batching rule for 'sin' not implemented"):
        fgrad.vmap(fnp.sin)(X)
    # all-unbatched operands never reach the (missing) rule
    out = fgrad.vmap(lambda x, w: x * fnp.sin(w), in_axes=(0, None))(X, V4)
    np.testing.assert_allclose(np.asarray(out), X * np.sin(V4), rtol=1e-6)


def test_leaked_tracer_is_reported() -> None:
    leaked = []
    fgrad.vmap(lambda x: leaked.append(x) or x)(X)
    with pytest.raises(fgrad.UnexpectedTracerError, match="vmap"):
        fnp.sin(leaked[0])


# --- unbatched values stay unbatched ------------------------------------------------------------

def _eqns(jaxpr: Any, name: str) -> list[Any]:
    return [e for e in jaxpr.eqns if e.primitive.name == name]


def test_unbatched_argument_is_computed_once_unbatched() -> None:
    f = lambda x, w: fnp.sin(x) * fnp.sum(fnp.exp(w))
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(0, None)))(X34, V4)
    typecheck_jaxpr(jaxpr)
    (exp_eqn,), (sum_eqn,) = _eqns(jaxpr, "exp"), _eqns(jaxpr, "reduce_sum")
    assert exp_eqn.invars[0].aval.shape == (4,)       # w itself, not a broadcast copy
    assert sum_eqn.outvars[0].aval.shape == ()


@pytest.mark.parametrize("in_axes,shapes", [
    ((0, None), ((3, 4), (4, 5))),
    ((1, None), ((4, 3), (4, 5))),
    ((None, 1), ((4,), (4, 3, 5))),
    ((None, 0), ((2, 4), (3, 4, 5))),
    ((None, 2), ((2, 4), (4, 5, 3))),
])
def test_matmul_with_unbatched_operand_does_not_broadcast_it(in_axes: Any, shapes: Any) -> None:
    args = tuple(rand(*s) for s in shapes)
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(lambda x, y: x @ y, in_axes=in_axes))(*args)
    typecheck_jaxpr(jaxpr)
    assert not _eqns(jaxpr, "broadcast_in_dim"), str(jaxpr)
    assert _eqns(jaxpr, "dot_general")
    got = fgrad.vmap(lambda x, y: x @ y, in_axes=in_axes)(*args)
    assert_matches(got, jax.vmap(lambda x, y: x @ y, in_axes=in_axes)(*args), rtol=1e-5)


# --- batch_jaxpr and the jit call primitive ---------------------------------------------------

def test_batch_jaxpr_dims_instantiate_and_wanted_axes() -> None:
    closed = fgrad.make_jaxpr(lambda x, w: (fnp.sin(x) * w, w * 2.0, x.T))(X34, V4)
    batched, out_dims = batch_jaxpr(closed, [None, 0], 5)
    typecheck_jaxpr(batched)
    assert [a.shape for a in batched.in_avals] == [(3, 4), (5, 4)]
    assert out_dims[0] is not None and out_dims[1] is not None and out_dims[2] is None
    # all outputs forced to be batched, at the last axis
    batched, out_dims = batch_jaxpr(closed, [-1, None], 2, out_dims_wanted=-1, instantiate=True)
    typecheck_jaxpr(batched)
    assert [a.shape for a in batched.in_avals] == [(3, 4, 2), (4,)]
    assert out_dims == [2, 1, 2]
    assert [a.shape for a in batched.out_avals] == [(3, 4, 2), (4, 2), (4, 3, 2)]
    xs = rand(3, 4, 2)
    outs = fgrad.core.jaxpr.eval_closed_jaxpr(batched, xs, V4)
    for k in range(2):
        want = fgrad.core.jaxpr.eval_closed_jaxpr(closed, xs[..., k], V4)
        for o, w in zip(outs, want):
            np.testing.assert_allclose(np.asarray(o)[..., k], np.asarray(w), rtol=1e-6)
    # per-output specs
    batched, out_dims = batch_jaxpr(closed, [0, None], 3, out_dims_wanted=[1, 0, None],
                                    instantiate=[False, True, False])
    assert out_dims[:2] == [1, 0] and out_dims[2] is not None  # (x.T: wherever its rule put it)
    assert batched.out_avals[1].shape == (3, 4)  # w * 2.0 broadcast along the batch
    with pytest.raises(ValueError, match="2 batch dims for 2 inputs|batch dims"):
        batch_jaxpr(closed, [0], 3)


def test_vmap_of_jit_is_one_cached_batched_jit() -> None:
    traces = []

    @fgrad.jit
    def f(x, w):
        traces.append(1)
        return fnp.tanh(x) @ w

    w = rand(4, 2)
    vf = fgrad.vmap(f, in_axes=(0, None))
    j1 = fgrad.make_jaxpr(vf)(X34, w)
    j2 = fgrad.make_jaxpr(vf)(X34, w)
    (e1,), (e2,) = _eqns(j1, "jit"), _eqns(j2, "jit")
    assert e1.params["jaxpr"] is e2.params["jaxpr"]    # the batched jaxpr is cached
    assert e1.params["name"] == "vmap(f)" and len(traces) == 1
    typecheck_jaxpr(j1)
    assert_matches(vf(X34, w), jax.vmap(lambda x, w: jnp.tanh(x) @ w, in_axes=(0, None))(X34, w),
                   rtol=1e-5)
    # a different batch layout is a different batched jaxpr
    j3 = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(1, None)))(X34.T.copy(), w)
    assert _eqns(j3, "jit")[0].params["jaxpr"] is not e1.params["jaxpr"]


def test_vmapped_function_metadata() -> None:
    def my_fun(x: Any) -> Any:
        return x

    vf = fgrad.vmap(my_fun)
    assert vf.__name__ == "vmap(my_fun)" and vf.__wrapped__ is my_fun
