"""Focused tests for the indexing family: ``gather``, the scatters, ``dynamic_slice`` /
``dynamic_update_slice`` (``fgrad.lax``) and numpy indexing (``fgrad/numpy/_indexing.py``).

Beyond the generic op-table suites, this checks:

* hypothesis-generated index expressions (ints, slices with any step, ``None``,
  ``...``, integer arrays, boolean masks, lists) against ``jax.numpy``: values,
  shapes, dtypes, for ``x[idx]``, ``x.at[idx].set/add`` and ``.get(mode="fill")``,
  eagerly and under ``jit`` with traced index arrays; 0-d, size-0, size-1 axes;
* out-of-bounds conventions: clamping reads, dropped or clamped writes, fill
  values per dtype, ``take``'s modes, ``dynamic_slice``'s clamped starts;
* gradients (first and second order, float64) of indexing and of
  ``.at[].set/add/multiply/min/max`` against JAX, with repeated indices and ties,
  and against finite differences where JAX has no (correct) rule;
* transpose rules by the dot-product test; ``typecheck_jaxpr`` on differentiated
  jaxprs; error messages.

``x[idx]`` and ``x.at`` are not installed on arrays by this module's owner, so
the tests call ``getitem(x, idx)`` and ``at(x)[idx]`` directly.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table.indexing import jax_scatter_mul_one_by_one

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.core.ad_util import UndefPrimal
from fgrad.core.errors import FgradTypeError, NonConcreteBooleanIndexError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.numpy._indexing import getitem
from fgrad.numpy._indexing import index_update_helper as at
from fgrad.primitives import indexing as ix
from fgrad.test_util import check_grads

A = np.array


def assert_same(got: Any, want: Any, check_weak: bool = True) -> None:
    """Same shape, dtype, weak type and values (NaN == NaN) as JAX's result."""
    assert isinstance(got, fgrad.Array), f"expected an fgrad Array, got {type(got).__name__}"
    want = jnp.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != JAX's {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != JAX's {want.dtype}"
    if check_weak:
        assert got.weak_type == jax.typeof(want).weak_type, "weak type differs from JAX's"
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def assert_close(got: Any, want: Any, tol: float = 1e-10) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-2, 2, size=shape)


# --- hypothesis: index expressions against jax.numpy ----------------------------------------

@st.composite
def index_expressions(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[Any, ...]]:
    """A shape and an index tuple for it (occasionally an invalid one)."""
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    ndim = len(shape)
    k = draw(st.integers(1, 3))  # the advanced arrays' common length
    use_ellipsis = draw(st.booleans())
    lead = draw(st.integers(0, ndim))
    trail = draw(st.integers(0, ndim - lead)) if use_ellipsis else 0
    axes = list(range(lead)) + list(range(ndim - trail, ndim))

    def item(size: int) -> Any:
        kind = draw(st.sampled_from(["int", "slice", "slice", "array", "list", "mask"]))
        bound = st.integers(-size - 2, size + 2)
        if kind == "int":
            return draw(bound)
        if kind == "slice":
            return slice(draw(st.none() | bound), draw(st.none() | bound),
                         draw(st.sampled_from([None, 1, 2, 3, -1, -2])))
        if kind == "mask":
            return draw(st.lists(st.booleans(), min_size=size, max_size=size).map(
                lambda bits: A(bits, dtype=bool)))
        arr_shape = draw(st.sampled_from([(), (1,), (k,), (2, 1), (2, k)]))
        values = A(draw(st.lists(bound, min_size=int(np.prod(arr_shape)),
                                 max_size=int(np.prod(arr_shape)))), dtype=np.int32)
        arr = values.reshape(arr_shape)
        return arr.tolist() if kind == "list" and arr.ndim else arr

    items: list[Any] = [item(shape[a]) for a in axes]
    if use_ellipsis:
        items.insert(lead, Ellipsis)
    extra = draw(st.sampled_from([None, True]))  # not both: see test_scalar_bool_after_newaxis
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), extra)
    return shape, tuple(items)


def _with_arrays(idx: tuple[Any, ...], arrays: list[Any]) -> tuple[Any, ...]:
    """``idx`` with its integer arrays replaced, in order, by ``arrays``."""
    it = iter(arrays)
    return tuple(next(it) if isinstance(p, np.ndarray) and p.dtype != bool else p for p in idx)


@settings(max_examples=25, deadline=None)
@given(index_expressions(), st.integers(0, 2**16))
def test_index_expressions_match_jax(case: Any, seed: int) -> None:
    shape, idx = case
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    try:
        want = jnp.asarray(x)[idx]
    except (IndexError, TypeError, ValueError):
        with pytest.raises((IndexError, TypeError, ValueError)):
            getitem(x, idx)
        return
    assert_same(getitem(x, idx), want)
    assert_same(at(x)[idx].get(mode="fill"), jnp.asarray(x).at[idx].get(mode="fill"))
    values = np.random.default_rng(seed).normal(size=want.shape).astype(np.float32)
    assert_same(at(x)[idx].set(values), jnp.asarray(x).at[idx].set(values))
    assert_same(at(x)[idx].add(values), jnp.asarray(x).at[idx].add(values))
    # Under jit, with the integer arrays traced: the same results.
    arrays = [p for p in idx if isinstance(p, np.ndarray) and p.dtype != bool]
    get = fgrad.jit(lambda x, *arrs: getitem(x, _with_arrays(idx, list(arrs))))
    assert_same(get(x, *arrays), want)
    put = fgrad.jit(lambda x, v, *arrs: at(x)[_with_arrays(idx, list(arrs))].set(v))
    assert_same(put(x, values, *arrays), jnp.asarray(x).at[idx].set(values))


@pytest.mark.parametrize("idx", [(None, True), (0, None, True), (None, False, 1),
                                 (slice(None), None, True, A([0, 1]))])
def test_scalar_bool_after_newaxis_follows_numpy(idx: Any) -> None:
    # NOTE: JAX places the new axis of a scalar boolean that follows a None wrongly
    # (x[None, True].shape is (1, 1, 1, 3) for x of shape (2, 3)); fgrad follows numpy.
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(np.asarray(getitem(x, idx)), x[idx])
    y = x.copy()
    y[idx] = -1.0
    np.testing.assert_array_equal(np.asarray(at(x)[idx].set(-1.0)), y)


@pytest.mark.parametrize("idx", [(), (Ellipsis,), (None,), (Ellipsis, None), (True,), (False,),
                                 (True, Ellipsis, None)])
def test_zero_dim_operand(idx: Any) -> None:
    x = np.float32(3.5)
    assert_same(getitem(x, idx), jnp.asarray(x)[idx])
    assert_same(at(x)[idx].set(1.0), jnp.asarray(x).at[idx].set(1.0))
    for bad in (0, A(0), (slice(None),)):
        with pytest.raises(IndexError, match="Too many indices"):
            getitem(x, bad)


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_, np.float16, jnp.bfloat16])
def test_dtypes(dtype: Any) -> None:
    x = (np.arange(12) % 5).reshape(3, 4).astype(dtype)
    i = A([[2, 0], [-1, 1]])
    assert_same(getitem(x, (i, slice(None, None, -1))), jnp.asarray(x)[i, ::-1])
    v = np.ones((2, 2, 4), dtype)
    ops = ("set", "min", "max") if dtype == np.bool_ else ("set", "add", "min", "max", "multiply")
    for op in ops:
        assert_same(getattr(at(x)[i], op)(v), getattr(jnp.asarray(x).at[i], op)(v))


def test_weak_types_follow_the_operand() -> None:
    x = fnp.full((3,), 2.0)  # a weakly typed float32 array
    assert x.weak_type
    assert getitem(x, A([0, 2])).weak_type
    assert at(x)[1].set(np.float32(5)).weak_type
    with pytest.warns(FutureWarning, match="cannot be safely cast"):
        got = at(np.arange(4, dtype=np.int32))[1].add(1.7)  # computed in float, cast back
    with pytest.warns(FutureWarning):
        assert_same(got, jnp.arange(4, dtype=np.int32).at[1].add(1.7))
    assert_same(at(np.arange(4))[1].divide(2), jnp.arange(4).at[1].divide(2))


# --- out-of-bounds conventions ----------------------------------------------------------------

def test_out_of_bounds_reads_clamp() -> None:
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    for idx in (5, -7, (0, 9), (A([5, -1, -9]),), (slice(None), A([[4], [-5]]))):
        assert_same(getitem(x, idx), jnp.asarray(x)[idx])
    read = fgrad.jit(lambda x, i: getitem(x, (i, 1)))
    assert_same(read(x, np.int32(-5)), jnp.asarray(x)[0, 1])
    assert_same(read(x, A([7, -1])), jnp.asarray(x)[A([7, -1]), 1])


@pytest.mark.parametrize("dtype, fill", [(np.float32, np.nan), (np.int32, -2**31),
                                         (np.uint8, 255), (np.bool_, True)])
def test_fill_values_by_dtype(dtype: Any, fill: Any) -> None:
    x = np.zeros(3, dtype)
    got = np.asarray(fnp.take(x, A([5, 0])))
    want = jnp.take(x, A([5, 0]))
    assert_same(fnp.take(x, A([5, 0])), want)
    np.testing.assert_array_equal(got[:1], np.asarray([fill], dtype))
    assert_same(at(x)[A([-4])].get(mode="fill", fill_value=1),
                jnp.asarray(x).at[A([-4])].get(mode="fill", fill_value=1))


def test_take_modes() -> None:
    x = rand(2, 5).astype(np.float32)
    i = A([[-7, 6], [2, -1]])
    for mode in (None, "fill", "clip", "wrap"):
        for axis in (None, 1, -1):
            assert_same(fnp.take(x, i, axis=axis, mode=mode), jnp.take(x, i, axis=axis, mode=mode))
    assert_same(fnp.take(x, i, axis=1, fill_value=-1.0), jnp.take(x, i, axis=1, fill_value=-1.0))
    for mode in (None, "clip"):
        j = A([[4, -1, 9]])
        assert_same(fnp.take_along_axis(x, j, 1, mode=mode),
                    jnp.take_along_axis(x, j, 1, mode=mode))
    assert_same(fnp.take_along_axis(x, A([9, 0]), None), jnp.take_along_axis(x, A([9, 0]), None))
    assert_same(fnp.put_along_axis(x, A([[1], [-2]]), 7.0, 1, inplace=False),
                jnp.put_along_axis(x, A([[1], [-2]]), 7.0, 1, inplace=False))


def test_out_of_bounds_writes_drop_or_clip() -> None:
    x = np.zeros((3, 2), np.float32)
    i = A([1, 3, -4, -1])
    v = np.arange(8, dtype=np.float32).reshape(4, 2)
    for mode in (None, "drop", "clip", "promise_in_bounds"):
        for op in ("set", "add", "multiply", "min", "max"):
            assert_same(getattr(at(x)[i], op)(v, mode=mode),
                        getattr(jnp.asarray(x).at[i], op)(v, mode=mode))
    assert_same(at(x)[5].set(1.0), jnp.asarray(x).at[5].set(1.0))  # a static int drops too


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint8])
def test_other_update_ops(dtype: Any) -> None:
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    for v in (2, 1.5, np.array([1, 2, 3], dtype)):
        for op in ("subtract", "divide"):
            unsafe = isinstance(v, float) and dtype != np.float32
            with pytest.warns(FutureWarning) if unsafe else contextlib.nullcontext():
                got = getattr(at(x)[1], op)(v)
            with pytest.warns(FutureWarning) if unsafe else contextlib.nullcontext():
                assert_same(got, getattr(jnp.asarray(x).at[1], op)(v))
    if dtype == np.float32:  # XLA's pow differs from numpy's by an ulp
        got, want = at(x)[1].power(1.5), jnp.asarray(x).at[1].power(1.5)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    # NOTE: JAX wraps this index to int32 (2**40 -> 0) and writes x[0, 0]; fgrad drops it.
    np.testing.assert_array_equal(np.asarray(at(x)[0, 2**40].set(7)), x)


def test_repeated_set_last_wins() -> None:
    x = np.zeros(4, np.float32)
    got = at(x)[A([1, 3, 1, 1])].set(A([5.0, 6.0, 7.0, 8.0], np.float32))
    np.testing.assert_array_equal(np.asarray(got), [0, 8, 0, 6])
    assert_same(got, jnp.asarray(x).at[A([1, 3, 1, 1])].set(A([5.0, 6.0, 7.0, 8.0])))


@settings(max_examples=25, deadline=None)
@given(st.integers(-9, 9), st.integers(-9, 9), st.integers(0, 4), st.integers(0, 5))
def test_dynamic_slice_clamps_like_jax(a: int, b: int, rows: int, cols: int) -> None:
    x = rand(4, 5).astype(np.float32)
    u = rand(rows, cols, seed=1).astype(np.float32)
    starts = (np.int32(a), np.int32(b))
    assert_same(lax.dynamic_slice(x, starts, (rows, cols)),
                jax.lax.dynamic_slice(x, starts, (rows, cols)))
    assert_same(lax.dynamic_update_slice(x, u, starts), jax.lax.dynamic_update_slice(x, u, starts))
    jitted = fgrad.jit(lambda x, a, b: lax.dynamic_slice(x, (a, b), (rows, cols)))
    assert_same(jitted(x, *starts), jax.lax.dynamic_slice(x, starts, (rows, cols)))
    if a >= 0 and b >= 0:
        assert_same(lax.dynamic_slice(x, (a, b), (rows, cols), allow_negative_indices=False),
                    jax.lax.dynamic_slice(x, (a, b), (rows, cols), allow_negative_indices=False))
    else:
        with pytest.raises(ValueError, match="allow_negative_indices=False"):
            lax.dynamic_slice(x, (a, b), (rows, cols), allow_negative_indices=False)


def test_index_helpers() -> None:
    for got, want in [(fnp.diag_indices(3), jnp.diag_indices(3)),
                      (fnp.diag_indices(2, 3), jnp.diag_indices(2, 3)),
                      (fnp.tril_indices(3, 1), jnp.tril_indices(3, 1)),
                      (fnp.triu_indices(3, -1, 4), jnp.triu_indices(3, -1, 4))]:
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    x = rand(3, 3).astype(np.float32)
    assert_same(getitem(x, fnp.tril_indices(3)), jnp.asarray(x)[jnp.tril_indices(3)])


# --- derivatives --------------------------------------------------------------------------

def _compare_grads(f: Callable[..., Any], jf: Callable[..., Any], *args: Any,
                   argnums: tuple[int, ...] = (0,)) -> None:
    """grad, jit(grad), the Hessian-vector product and the grad jaxpr's types, vs JAX."""
    g, jg = fgrad.grad(f, argnums)(*args), jax.grad(jf, argnums)(*args)
    for a, b in zip(g, jg, strict=True):
        assert_close(a, b)
    for a, b in zip(fgrad.jit(fgrad.grad(f, argnums))(*args), jg, strict=True):
        assert_close(a, b)
    tangents = tuple(rand(*np.shape(args[i]), seed=7) for i in argnums)

    def hvp(grad_fn: Any, jvp_fn: Any, fun: Any) -> Any:
        def g_of(*dyn: Any) -> Any:
            full = list(args)
            for i, d in zip(argnums, dyn, strict=True):
                full[i] = d
            return grad_fn(fun, argnums)(*full)
        return jvp_fn(g_of, tuple(args[i] for i in argnums), tangents)[1]

    for a, b in zip(hvp(fgrad.grad, fgrad.jvp, f), hvp(jax.grad, jax.jvp, jf), strict=True):
        assert_close(a, b, 1e-9)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f, argnums))(*args))


IDX = [(A([2, 0, 2]), slice(None, None, -2)), (slice(1, None), A([[1, 1], [3, 0]])),
       (Ellipsis, A([True, False, True, True])), (0, None, A([-1, 2]))]


@pytest.mark.parametrize("idx", IDX)
def test_getitem_grads(idx: Any, x64: None) -> None:
    x = rand(3, 4)
    _compare_grads(lambda x: fnp.sum(fnp.sin(getitem(x, idx)) ** 2),
                   lambda x: jnp.sum(jnp.sin(x[idx]) ** 2), x)


def test_getitem_out_of_bounds_grad_follows_the_clamped_value(x64: None) -> None:
    # NOTE: JAX's x[i] clamps the value but drops out-of-bounds indices from the gradient;
    # fgrad differentiates what it computes, as JAX does for mode="clip".
    x, i = rand(5), A([7, -1, 2, -9])
    f = lambda x: fnp.sum(getitem(x, i) ** 2)
    _compare_grads(f, lambda x: jnp.sum(x.at[i].get(mode="clip") ** 2), x)
    check_grads(f, (x,), order=2)


@pytest.mark.parametrize("op", ["set", "add", "multiply", "min", "max"])
def test_update_grads(op: str, x64: None) -> None:
    x = rand(4, 3)
    v = rand(3, 2, seed=1)
    i = A([2, 0, 3]) if op == "multiply" else A([2, 0, 2])  # repeated, except for multiply
    kw = {"unique_indices": True} if op == "multiply" else {}  # JAX's rule needs unique

    def f(x: Any, v: Any) -> Any:
        return fnp.sum(fnp.sin(getattr(at(x)[i, ::2], op)(v)) * x)

    def jf(x: Any, v: Any) -> Any:
        return jnp.sum(jnp.sin(getattr(x.at[i, ::2], op)(v, **kw)) * x)

    _compare_grads(f, jf, x, v, argnums=(0, 1))
    check_grads(f, (x, v), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("op", ["min", "max"])
def test_extremum_ties_split_the_gradient(op: str, x64: None) -> None:
    x = A([0.0, 2.0, 0.0, 3.0, 1.0])
    v = A([2.0, 2.0, 3.0, 3.0])
    i = A([1, 1, 3, 3]) if op == "max" else A([4, 4, 4, 0])
    f = lambda x, v: fnp.sum(getattr(at(x)[i], op)(v) ** 2)
    jf = lambda x, v: jnp.sum(getattr(x.at[i], op)(v) ** 2)
    for a, b in zip(fgrad.grad(f, (0, 1))(x, v), jax.grad(jf, (0, 1))(x, v), strict=True):
        assert_close(a, b)


def test_scatter_mul_repeated_indices(x64: None) -> None:
    # JAX has no rule here; compare with one-update-at-a-time products, and with
    # finite differences, including zero updates.
    i = A([[1], [1], [1], [0]])
    for u in (A([1.5, -2.0, 3.0, 1.0]), A([0.0, 2.0, 3.0, 1.0]), A([0.0, 0.0, 3.0, 1.0])):
        x = A([1.3, -0.7])
        f = lambda x, u: fnp.sum(lax.scatter_mul(x, i, u, axes=(0,)) ** 2)
        jf = lambda x, u: jnp.sum(jax_scatter_mul_one_by_one(x, i, u, (0,), "drop") ** 2)
        for a, b in zip(fgrad.grad(f, (0, 1))(x, u), jax.grad(jf, (0, 1))(x, u), strict=True):
            assert_close(a, b)
        check_grads(lambda u, x=x: lax.scatter_mul(x, i, u, axes=(0,)), (u,), order=1)
    check_grads(lambda x, u: lax.scatter_mul(x, i, u, axes=(0,)), (A([1.3, -0.7]),
                A([1.5, -2.0, 3.0, 1.0])), order=2)


def test_clip_mode_scatter_grads(x64: None) -> None:
    # JAX's scatter_max JVP is wrong for clipped out-of-bounds indices (it returns inf),
    # so these are checked against finite differences.
    i = A([[0], [7], [-2], [1]])
    x, u = A([0.1, -0.4, 0.9]), A([[0.5], [1.5], [-1.0], [-0.2]])[:, 0]
    for scatter in (lax.scatter, lax.scatter_add, lax.scatter_mul, lax.scatter_min,
                    lax.scatter_max):
        check_grads(lambda x, u, f=scatter: f(x, i, u, axes=(0,), mode="clip"), (x, u), order=2,
                    modes=("fwd", "rev"))


@settings(max_examples=10, deadline=None)
@given(st.integers(-6, 6), st.integers(-6, 6))
def test_dynamic_slice_grads(a: int, b: int) -> None:
    from conftest import enable_x64
    with enable_x64():
        x, u = rand(4, 5), rand(2, 3, seed=1)
        f = lambda x, u: fnp.sum(fnp.sin(lax.dynamic_update_slice(x, u, (a, b))) *
                                 lax.dynamic_slice(x, (b, a), (4, 5)))
        jf = lambda x, u: jnp.sum(jnp.sin(jax.lax.dynamic_update_slice(x, u, (a, b))) *
                                  jax.lax.dynamic_slice(x, (b, a), (4, 5)))
        _compare_grads(f, jf, x, u, argnums=(0, 1))


# --- transposes ---------------------------------------------------------------------------

def _dot_product_test(prim: Any, args: list[Any], linear: list[int], params: dict[str, Any],
                      seed: int = 0) -> None:
    """<ct, f(x)> == <f^T(ct), x>, calling the transpose rule directly."""
    out = prim.bind(*args, **params)
    ct = rand(*out.shape, seed=seed)
    rule_args = [UndefPrimal(fgrad.ShapedArray(np.shape(a), np.float64)) if k in linear else a
                 for k, a in enumerate(args)]
    cts = prim.transpose(ct, *rule_args, **params)
    lhs = float(np.vdot(ct, np.asarray(out)))
    rhs = sum(float(np.vdot(np.asarray(cts[k]), args[k])) for k in linear)
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs)), f"{prim}: {lhs} != {rhs}"


def test_transposes(x64: None) -> None:
    x, u = rand(4, 3), rand(5, 3, seed=1)
    i = A([[1], [3], [1], [9], [-1]])  # repeated and out of bounds
    for mode in ("clip", "drop"):
        for prim in (ix.scatter_add_p, ix.scatter_p):
            _dot_product_test(prim, [x, i, u], [0, 2], {"axes": (0,), "mode": mode})
        _dot_product_test(ix.scatter_mul_p, [x, i, u], [0], {"axes": (0,), "mode": mode})
    _dot_product_test(ix.gather_p, [x, i], [0], {"axes": (0,), "mode": "clip",
                                                 "fill_value": None})
    _dot_product_test(ix.gather_p, [x, i], [0], {"axes": (0,), "mode": "fill", "fill_value": 0})
    s = (np.int32(-1), np.int32(2))
    _dot_product_test(ix.dynamic_slice_p, [x, *s], [0], {"slice_sizes": (2, 2)})
    _dot_product_test(ix.dynamic_update_slice_p, [x, rand(2, 2), *s], [0, 1], {})


def test_jaxpr_of_grad_typechecks() -> None:
    def f(x: Any, i: Any) -> Any:
        y = at(x)[i, 1:].add(getitem(x, (i, 0))[:, None])
        y = at(y)[::-1].max(lax.dynamic_slice(y, (i[0], 0), (3, 3)))
        return fnp.sum(at(y)[i].multiply(2.0) * getitem(y, (Ellipsis, i[1])))

    x, i = rand(3, 3).astype(np.float32), A([2, -1, 0])
    jaxpr = fgrad.make_jaxpr(fgrad.grad(f))(x, i)
    typecheck_jaxpr(jaxpr)
    assert any(e.primitive is ix.scatter_add_p for e in jaxpr.eqns)
    second = fgrad.grad(lambda x: fnp.sum(fgrad.grad(lambda x: f(x, i))(x) ** 2))
    typecheck_jaxpr(fgrad.make_jaxpr(second)(x))


# --- errors -------------------------------------------------------------------------------

def test_primitive_errors() -> None:
    x = np.zeros((3, 4), np.float32)
    i = np.zeros((2, 1), np.int32)
    with pytest.raises(FgradTypeError, match=r"gather: .*f32\[3,4\].*indices must have shape"):
        lax.gather(x, np.zeros((2, 2), np.int32), axes=(0,))
    with pytest.raises(FgradTypeError, match="integer dtype"):
        lax.gather(x, np.zeros((2, 1), np.float32), axes=(0,))
    with pytest.raises(FgradTypeError, match="sorted, distinct"):
        lax.gather(x, np.zeros((2, 2), np.int32), axes=(1, 0))
    with pytest.raises(ValueError, match="unknown mode 'wrap'"):
        lax.gather(x, i, axes=(0,), mode="wrap")
    with pytest.raises(FgradTypeError, match=r"scatter_add: updates must be f32\[2,4\]"):
        lax.scatter_add(x, i, np.zeros((2, 3), np.float32), axes=(0,))
    with pytest.raises(FgradTypeError, match=r"updates must be f32\[2,4\].*got i32\[2,4\]"):
        fgrad.jit(lambda x: lax.scatter(x, i, np.zeros((2, 4), np.int32), axes=(0,)))(x)
    with pytest.raises(FgradTypeError, match="cannot clip indices into an axis of size 0"):
        lax.gather(np.zeros((0, 2)), i, axes=(0,))
    with pytest.raises(FgradTypeError, match="dynamic_slice: slice_sizes"):
        lax.dynamic_slice(x, (0, 0), (4, 1))
    with pytest.raises(FgradTypeError, match="got 1 start indices for an operand of rank 2"):
        lax.dynamic_slice(x, (0,), (1, 1))
    with pytest.raises(FgradTypeError, match="dynamic_update_slice: update f32\\[4,1\\]"):
        lax.dynamic_update_slice(x, np.zeros((4, 1), np.float32), (0, 0))


def test_numpy_indexing_errors() -> None:
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(IndexError, match="Too many indices"):
        getitem(x, (0, 0, 0))
    with pytest.raises(IndexError, match="single ellipsis"):
        getitem(x, (Ellipsis, 0, Ellipsis))
    with pytest.raises(IndexError, match=r"boolean index did not match.*got \(3,\), expected"):
        getitem(x, A([True, False, True]))
    with pytest.raises(TypeError, match="non-tuple sequence"):
        getitem(x, [0, 1])
    with pytest.raises(TypeError, match="integer or boolean type.*float"):
        getitem(x, 1.0)
    with pytest.raises(TypeError, match="integer or boolean type"):
        getitem(x, A([0.5]))
    with pytest.raises(ValueError, match="slice step cannot be zero"):
        getitem(x, slice(None, None, 0))
    with pytest.raises(IndexError, match="Slice entries must be static integers"):
        fgrad.jit(lambda x, i: getitem(x, slice(i, None)))(x, 1)
    with pytest.raises(NonConcreteBooleanIndexError, match="fnp.where"):
        fgrad.jit(lambda x, m: getitem(x, m))(x, np.ones(2, bool))
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 0"):
        getitem(np.zeros((0, 2)), A([0]))
    with pytest.raises(ValueError, match="at\\[\\]: cannot broadcast"):
        at(x)[0].set(np.ones(4))
    with pytest.raises(ValueError, match="inplace=False"):
        fnp.put_along_axis(x, A([[0]]), 1.0, 0)
    with pytest.raises(NotImplementedError, match="raise"):
        fnp.take(x, A([0]), mode="raise")
    with pytest.raises(IndexError, match="empty axis"):
        fnp.take(np.zeros((0,)), A([0]))
    # A concrete mask is fine under grad (its value is known).
    g = fgrad.grad(lambda x: fnp.sum(getitem(x, fnp.greater(x, 0))))(A([1.0, -1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(g), [1.0, 0.0, 1.0])
