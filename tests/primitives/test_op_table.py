"""The generic suites: every op-table record through every check.

For each record (``tests/op_table``), with argument values drawn by
hypothesis from the record's domains:

(a) values against the JAX twin, for every dtype of the record: same shape,
    dtype and weak type, values within the dtype's tolerance;
(b) the shape rule against the impl: ``eval_shape`` agrees with the output;
(c) ``jit`` against eager: bit-identical, and a second call does not retrace;
(d) derivatives in float64: ``check_grads`` (JVP and VJP against finite
    differences, to the record's order), and JVP, VJP and second-order
    values against JAX's;
(e) linear records: the transpose by the dot-product test
    ``<ct, f(x)> == <f^T(ct), x>``, through ``vjp`` and by calling the
    transpose rules directly (``backward_pass`` with ``UndefPrimal`` inputs);
(f) ``typecheck_jaxpr`` on the jaxprs of ``fn``, ``jit(fn)``, ``grad``,
    ``jvp`` and ``linearize``.

JAX is imported unconditionally: it is the oracle, and a missing oracle must
fail the run, not skip it (CI also runs ``tests/check_oracle_ran.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import hypothesis
import jax  # the oracle: a test dependency, never skipped
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fgrad
import op_table
from fgrad.core.ad_util import UndefPrimal, Zero
from fgrad.core.array import Array
from fgrad.core.dtypes import is_float
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, typecheck_jaxpr
from fgrad.primitives.elementwise import add, convert_element_type
from fgrad.primitives.reductions import reduce_sum
from fgrad.test_util import check_grads
from fgrad.transforms.partial_eval import linearize_flat
from fgrad.transforms.transpose import backward_pass
from fgrad.tree_util import tree_flatten, tree_unflatten
from op_table import Rec, args_strategy

RECORDS = op_table.all_records()
DIFF_RECORDS = [r for r in RECORDS if r.diff and r.float_args()]
LINEAR_RECORDS = [r for r in RECORDS if r.linear]
# A handful of examples per record and check (the profile's max_examples / 5: 4 in ci).
EXAMPLES = max(2, hypothesis.settings.default.max_examples // 5)
examples = hypothesis.settings(max_examples=EXAMPLES)

BF16 = np.dtype(ml_dtypes.bfloat16)
# Value tolerance (rtol, also used as atol) against JAX, per dtype: a few ulps, since
# XLA's transcendental functions are not numpy's.
VALUE_TOL = {np.dtype(np.float16): 2e-3, BF16: 1.6e-2, np.dtype(np.float32): 1e-5,
             np.dtype(np.float64): 1e-12}
JAX_GRAD_TOL = 1e-7  # fgrad's vs JAX's derivatives, both exact formulas in float64


def _ids(records: Sequence[Rec]) -> list[str]:
    return [r.name for r in records]


# --- helpers: closing over arguments, flattening outputs ------------------------------------

def _is_const(a: op_table.Arg) -> bool:
    return a.kind == "const"


def _is_float(a: op_table.Arg) -> bool:
    return a.kind == "float"


def dynamic(rec: Rec, values: Sequence[Any]) -> tuple[Callable[..., Any], list[Any]]:
    """``fn`` as a function of its array arguments, with "const" arguments closed over."""
    return _partial(rec.fn, rec, values, lambda a: not _is_const(a))


def float_fn(rec: Rec, values: Sequence[Any]) -> tuple[Callable[..., Any], list[Any]]:
    """``fn`` as a function of its float arguments only (the others held fixed)."""
    return _partial(rec.fn, rec, values, _is_float)


def _partial(fn: Callable[..., Any], rec: Rec, values: Sequence[Any],
             keep: Callable[[op_table.Arg], bool]) -> tuple[Callable[..., Any], list[Any]]:
    positions = [i for i, a in enumerate(rec.args) if keep(a)]

    def f(*dyn: Any) -> Any:
        full = list(values)
        for i, x in zip(positions, dyn):
            full[i] = x
        return fn(*full)

    return f, [values[i] for i in positions]


def leaves(tree: Any) -> list[Any]:
    return tree_flatten(tree)[0]


def jax_leaves(tree: Any) -> list[Any]:
    return jax.tree_util.tree_leaves(tree)


def jax_weak_type(x: Any) -> bool:
    return bool(jax.typeof(x).weak_type)


# --- the JAX oracle, compiled once per record ----------------------------------------------
# Eager JAX compiles every primitive separately for each new shape and dtype, which makes the
# oracle, not fgrad, the cost of this suite. Each record's oracle functions are therefore
# jitted once (cached by record and purpose; jit caches by argument types), falling back to
# eager JAX for twins that need concrete values.

_ORACLES: dict[tuple[str, str], Callable[..., Any]] = {}
_TRACING_ERRORS = (jax.errors.JAXTypeError, jax.errors.JAXIndexError)


def oracle(rec: Rec, purpose: str, build: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    """``build()`` under ``jax.jit``, made once per (record, purpose)."""
    key = (rec.name, purpose)
    if key not in _ORACLES:
        fun = build()
        jitted = jax.jit(fun)
        state = {"eager": False}

        def call(*args: Any) -> Any:
            if not state["eager"]:
                try:
                    return jitted(*args)
                except _TRACING_ERRORS:
                    state["eager"] = True  # the twin needs concrete values: run it eagerly
            return fun(*args)

        _ORACLES[key] = call
    return _ORACLES[key]


def jax_twin(rec: Rec) -> Callable[..., Any]:
    """``rec.jax_fn`` as a function of its non-const arguments (consts filled in)."""
    positions = [i for i, a in enumerate(rec.args) if not _is_const(a)]
    assert rec.jax_fn is not None

    def twin(*dyn: Any) -> Any:
        full = [a.value for a in rec.args]
        for i, x in zip(positions, dyn):
            full[i] = x
        return rec.jax_fn(*full)

    return twin


def jax_derivative_oracles(rec: Rec) -> tuple[Callable[..., Any], ...]:
    """Jitted ``(others, xs, ts) -> jvp``, ``(others, xs, cts) -> vjp`` and their composition
    ``(others, xs, ts, cts) -> jvp of vjp``; ``others`` are the non-float array args and
    ``cts`` the flat list of output cotangents."""
    def with_floats(others: Sequence[Any]) -> Callable[..., Any]:
        twin = jax_twin(rec)
        kinds = [a.kind for a in rec.args if not _is_const(a)]

        def f(*xs: Any) -> Any:
            xs_it, others_it = iter(xs), iter(others)
            return twin(*[next(xs_it) if k == "float" else next(others_it) for k in kinds])
        return f

    def float_tangents(out: Any, tangents: Any) -> list[Any]:
        # Integer outputs have float0 tangents, which we neither return nor compare.
        return [t if jax.numpy.issubdtype(o.dtype, jax.numpy.floating) else None
                for o, t in zip(jax_leaves(out), jax_leaves(tangents))]

    def jvp(others: Any, xs: Any, ts: Any) -> Any:
        out, t = jax.jvp(with_floats(others), tuple(xs), tuple(ts))
        return float_tangents(out, t)

    def vjp(others: Any, xs: Any, ct_leaves: Any) -> Any:
        out, pullback = jax.vjp(with_floats(others), *xs)
        return pullback(jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out),
                                                     ct_leaves))

    def jvp_of_vjp(others: Any, xs: Any, ts: Any, ct: Any) -> Any:
        return jax.jvp(lambda *x: vjp(others, x, ct), tuple(xs), tuple(ts))[1]

    return (oracle(rec, "jvp", lambda: jvp), oracle(rec, "vjp", lambda: vjp),
            oracle(rec, "jvp_of_vjp", lambda: jvp_of_vjp))


def assert_values_close(got: Any, want: Any, tol: float, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if is_float(got.dtype):
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol,
                                   atol=tol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def value_tol(rec: Rec, dtype: np.dtype) -> float:
    tol = VALUE_TOL.get(np.dtype(dtype), 0.0)
    return max(tol, rec.rtol) if rec.rtol is not None else tol


def out_tol(rec: Rec, outs: Sequence[Any]) -> float:
    """The loosest tolerance among the output dtypes (a record may change dtype)."""
    return max([value_tol(rec, np.asarray(o).dtype) for o in outs] + [0.0])


def float_outputs(outs: Sequence[Any]) -> list[int]:
    return [i for i, o in enumerate(outs) if is_float(np.asarray(o).dtype)]


def random_like(rng: np.random.RandomState, xs: Sequence[Any]) -> list[np.ndarray]:
    return [np.asarray(rng.randn(*np.shape(x))).astype(np.asarray(x).dtype) for x in xs]


def inner(xs: Sequence[Any], ys: Sequence[Any]) -> float:
    return float(sum(np.vdot(np.asarray(x, np.float64), np.asarray(y, np.float64))
                     for x, y in zip(xs, ys, strict=True)))


# --- (a) values against JAX ------------------------------------------------------------------

@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
@examples
@given(data=st.data())
def test_values_match_jax(rec: Rec, data: st.DataObject) -> None:
    if rec.jax_fn is None:
        assert rec.no_jax_reason, f"{rec.name}: no jax_fn and no no_jax_reason"
    for dtype in rec.dtypes:
        values = data.draw(args_strategy(rec, dtype, layout=True), label=f"args {dtype}")
        outs = leaves(rec.fn(*values))
        assert outs, f"{rec.name}: no outputs"
        if rec.jax_fn is None:
            continue
        twin = oracle(rec, "values", lambda: jax_twin(rec))
        want = jax_leaves(twin(*[v for v, a in zip(values, rec.args) if not _is_const(a)]))
        assert len(outs) == len(want), f"{rec.name}: {len(outs)} outputs, JAX has {len(want)}"
        for k, (o, w) in enumerate(zip(outs, want)):
            what = f"{rec.name} [{np.dtype(dtype).name}] output {k}"
            assert isinstance(o, Array), f"{what}: eager result is a {type(o).__name__}"
            assert o.shape == w.shape, f"{what}: shape {o.shape}, JAX {w.shape}"
            assert o.dtype == w.dtype, f"{what}: dtype {o.dtype}, JAX {w.dtype}"
            if rec.check_weak_type:
                assert o.weak_type == jax_weak_type(w), (
                    f"{what}: weak_type {o.weak_type}, JAX {jax_weak_type(w)}")
            assert_values_close(o, w, value_tol(rec, o.dtype), what)


# --- (b) the shape rule against the impl -------------------------------------------------------

@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
@examples
@given(data=st.data())
def test_shape_rule_matches_impl(rec: Rec, data: st.DataObject) -> None:
    for dtype in rec.dtypes:
        values = data.draw(args_strategy(rec, dtype), label=f"args {dtype}")
        f, dyn = dynamic(rec, values)
        predicted = leaves(fgrad.eval_shape(f, *dyn))
        actual = leaves(f(*dyn))
        assert len(predicted) == len(actual)
        for k, (p, a) in enumerate(zip(predicted, actual)):
            assert (p.shape, p.dtype, p.weak_type) == (a.shape, a.dtype, a.weak_type), (
                f"{rec.name} output {k}: shape rule says {p}, impl gives {a.aval!r}")
            assert np.asarray(a).dtype == a.dtype  # the impl returned the promised dtype


# --- (c) jit against eager ------------------------------------------------------------------

@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
@examples
@given(data=st.data())
def test_jit_matches_eager(rec: Rec, data: st.DataObject) -> None:
    values = data.draw(args_strategy(rec, rec.dtypes[0]), label="args")
    f, dyn = dynamic(rec, values)
    eager = leaves(f(*dyn))
    jitted = fgrad.jit(f, backend="interpret")  # the CPU backend: tests/lowering
    staged = leaves(jitted(*dyn))
    assert len(eager) == len(staged)
    for k, (e, s) in enumerate(zip(eager, staged)):
        assert s.aval == e.aval, f"{rec.name} output {k}: jit {s.aval!r}, eager {e.aval!r}"
        np.testing.assert_array_equal(np.asarray(s), np.asarray(e),
                                      err_msg=f"{rec.name} output {k}: jit vs eager")
    leaves(jitted(*dyn))
    info = jitted.cache_info()
    assert (info.misses, info.hits) == (1, 1), f"{rec.name}: second call retraced: {info}"


# --- (d) derivatives: finite differences and JAX --------------------------------------------

@pytest.mark.parametrize("rec", DIFF_RECORDS, ids=_ids(DIFF_RECORDS))
@examples
@given(data=st.data())
def test_grads(rec: Rec, data: st.DataObject, x64: None) -> None:
    values = data.draw(args_strategy(rec, np.float64), label="args")
    f, xs = float_fn(rec, values)
    tol = rec.grad_tol
    check_grads(f, xs, order=rec.order, modes=("fwd", "rev"), atol=tol, rtol=tol, eps=rec.eps)
    if rec.jax_fn is None:
        return
    jax_jvp, jax_vjp, jax_jvp_of_vjp = jax_derivative_oracles(rec)
    others = [v for v, a in zip(values, rec.args) if not _is_const(a) and not _is_float(a)]
    rng = np.random.RandomState(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    tangents = random_like(rng, xs)
    tol = max(JAX_GRAD_TOL, rec.grad_tol or 0.0)

    # JVP
    p_out, t_out = fgrad.jvp(f, tuple(xs), tuple(tangents))
    p_out, t_out = leaves(p_out), leaves(t_out)
    jt_out = jax_jvp(others, xs, tangents)
    assert len(jt_out) == len(t_out), f"{rec.name}: {len(t_out)} tangents, JAX {len(jt_out)}"
    floats = float_outputs(p_out)
    for k in floats:
        assert_values_close(t_out[k], jt_out[k], tol, f"{rec.name}: jvp tangent {k} vs JAX")
    for k in set(range(len(p_out))) - set(floats):
        assert not np.asarray(t_out[k]).any(), f"{rec.name}: nonzero tangent of int output"
    if len(floats) != len(p_out) or not floats:
        return  # JAX's cotangents for integer outputs are float0: compare float-only functions

    # VJP
    cts = random_like(rng, p_out)
    out_tree = tree_flatten(f(*xs))[1]
    _, pullback = fgrad.vjp(f, *xs)
    got = leaves(pullback(tree_unflatten(out_tree, cts)))
    want = jax_leaves(jax_vjp(others, xs, cts))
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert_values_close(g, w, tol, f"{rec.name}: vjp cotangent {k} vs JAX")

    # Second order: the JVP of the VJP (a Hessian-vector product for scalar outputs).
    if rec.order >= 2:
        _, hvp = fgrad.jvp(lambda *x: fgrad.vjp(f, *x)[1](tree_unflatten(out_tree, cts)),
                           tuple(xs), tuple(tangents))
        want = jax_leaves(jax_jvp_of_vjp(others, xs, tangents, cts))
        for k, (g, w) in enumerate(zip(leaves(hvp), want, strict=True)):
            assert_values_close(g, w, tol * 10, f"{rec.name}: jvp of vjp {k} vs JAX")


# --- (e) transposes: the dot-product test ------------------------------------------------------

@pytest.mark.parametrize("rec", LINEAR_RECORDS, ids=_ids(LINEAR_RECORDS))
@examples
@given(data=st.data())
def test_transpose_dot_product(rec: Rec, data: st.DataObject, x64: None) -> None:
    values = data.draw(args_strategy(rec, np.float64), label="args")
    f, xs = float_fn(rec, values)
    outs = leaves(f(*xs))
    rng = np.random.RandomState(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    cts = [Array(c) for c in random_like(rng, outs)]
    lhs = inner(cts, outs)  # <ct, f(x)>
    scale = 1.0 + abs(lhs) + np.sqrt(inner(cts, cts) * inner(xs, xs))
    # Exact in float64; a map that rounds to fewer bits (a cast) is linear up to rounding.
    tol = max(1e-10, *(10 * float(ml_dtypes.finfo(np.asarray(o).dtype).eps) for o in outs
                       if is_float(np.asarray(o).dtype)))

    # Through the public API: <f^T(ct), x> with f^T = vjp's pullback.
    out_tree = tree_flatten(f(*xs))[1]
    _, pullback = fgrad.vjp(f, *xs)
    rhs = inner(leaves(pullback(tree_unflatten(out_tree, cts))), xs)
    assert abs(lhs - rhs) <= tol * scale, f"{rec.name}: <ct, f x> = {lhs}, <f^T ct, x> = {rhs}"

    # Directly through the transpose rules: backward_pass over f's own jaxpr.
    closed = fgrad.make_jaxpr(f)(*xs)
    undefined = [UndefPrimal(v.aval) for v in closed.jaxpr.invars]
    cts_in = backward_pass(closed.jaxpr, closed.consts, undefined, cts)
    cts_in = [np.zeros(x.shape) if type(c) is Zero else c for c, x in zip(cts_in, closed.in_avals)]
    for c, aval in zip(cts_in, closed.in_avals):
        assert np.shape(c) == aval.shape, f"{rec.name}: transpose gave shape {np.shape(c)}"
    rhs2 = inner(cts_in, xs)
    assert abs(lhs - rhs2) <= tol * scale, (
        f"{rec.name}: <ct, f x> = {lhs}, backward_pass gives <f^T ct, x> = {rhs2}")


# --- (f) typecheck every jaxpr a transform produces ------------------------------------------

def typecheck_all(jaxpr: ClosedJaxpr | Jaxpr, where: str) -> None:
    """``typecheck_jaxpr`` on ``jaxpr`` and on every sub-jaxpr in its equations' params."""
    try:
        typecheck_jaxpr(jaxpr)
    except Exception as e:
        raise AssertionError(f"{where}: {e}\n{jaxpr}") from e
    inner_jaxpr = jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr
    for eqn in inner_jaxpr.eqns:
        for name, param in eqn.params.items():
            subs = param if isinstance(param, (tuple, list)) else [param]
            for sub in subs:
                if isinstance(sub, (ClosedJaxpr, Jaxpr)):
                    typecheck_all(sub, f"{where} / {eqn.primitive.name}[{name}]")


def scalarize(f: Callable[..., Any]) -> Callable[..., Any]:
    """``x -> sum of all float outputs of f(x)`` with strict ops (so ``grad`` applies)."""
    def scalar_f(*xs: Any) -> Any:
        total = None
        for o in leaves(f(*xs)):
            if not is_float(o.dtype):
                continue
            s = reduce_sum(o, tuple(range(o.ndim)))
            if total is not None and s.dtype != total.dtype:
                s = convert_element_type(s, total.dtype)
            total = s if total is None else add(total, s)
        return total
    return scalar_f


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
@examples
@given(data=st.data())
def test_jaxprs_typecheck(rec: Rec, data: st.DataObject) -> None:
    values = data.draw(args_strategy(rec, rec.dtypes[0]), label="args")
    f, dyn = dynamic(rec, values)
    typecheck_all(fgrad.make_jaxpr(f)(*dyn), f"{rec.name}: make_jaxpr(fn)")
    typecheck_all(fgrad.make_jaxpr(fgrad.jit(f))(*dyn), f"{rec.name}: make_jaxpr(jit(fn))")
    if not (rec.diff and rec.float_args()):
        return
    g, xs = float_fn(rec, values)
    if not float_outputs(leaves(g(*xs))):
        return
    argnums = tuple(range(len(xs)))
    typecheck_all(fgrad.make_jaxpr(fgrad.grad(scalarize(g), argnums))(*xs),
                  f"{rec.name}: make_jaxpr(grad(sum(fn)))")
    typecheck_all(fgrad.make_jaxpr(fgrad.grad(scalarize(fgrad.jit(g)), argnums))(*xs),
                  f"{rec.name}: make_jaxpr(grad(sum(jit(fn))))")
    typecheck_all(fgrad.make_jaxpr(lambda p, t: fgrad.jvp(g, p, t))(tuple(xs), tuple(xs)),
                  f"{rec.name}: make_jaxpr(jvp(fn))")

    def flat_g(*x: Any) -> list[Any]:
        return leaves(g(*x))

    _, lin = linearize_flat(flat_g, [fgrad.numpy.asarray(x) for x in xs])
    typecheck_all(lin, f"{rec.name}: linearize(fn) jaxpr")
