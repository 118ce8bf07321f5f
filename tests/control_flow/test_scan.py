"""``scan`` and ``map``: every rule against JAX and against an unrolled Python loop.

Each case is written once against a small namespace ``lib`` (``lib.np`` is
``fgrad.numpy`` or ``jax.numpy``, ``lib.scan`` the matching scan), so fgrad
and the oracle run literally the same code. The *unrolled* reference runs
the body in a Python loop with fgrad's own primitives: agreement with it
checks scan's rules (jvp, partial eval, transpose, batching) against the
rules of the primitives in the body, and agreement with JAX checks both.
"""

from __future__ import annotations

import functools
import itertools
import types
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
import jax_compare
from jaxpr_util import count_eqns
from batch_util import batch_args, check_vmap
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.primitives.control_flow.scan import map as scan_map
from fgrad.primitives.control_flow.scan import scan, scan_p
from fgrad.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten

FG = types.SimpleNamespace(np=fnp, scan=scan, map=scan_map, grad=fgrad.grad, vmap=fgrad.vmap)
JX = types.SimpleNamespace(np=jnp, scan=jax.lax.scan, map=jax.lax.map, grad=jax.grad,
                           vmap=jax.vmap)
assert_close = functools.partial(jax_compare.assert_tree_close, rtol=1e-11, atol=1e-11)


def close(got: Any, want: Any, tol: float = 1e-11) -> None:
    """Same tree structure and values (fgrad vs JAX or vs fgrad), shapes included."""
    got_leaves, want_leaves = tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == np.shape(w), (np.shape(g), np.shape(w))
        if np.asarray(w).dtype.kind == "V":  # JAX's float0 tangent of an integer output
            assert not np.asarray(g).any()
            continue
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=tol, atol=tol)


def unrolled_scan(f: Callable[..., Any], init: Any, xs: Any = None, length: int | None = None,
                  reverse: bool = False, unroll: Any = 1) -> Any:
    """The semantics of scan as a plain Python loop over fgrad operations."""
    leaves, tree = tree_flatten(xs)
    n = length if length is not None else leaves[0].shape[0]
    carry, ys = init, []
    for i in (reversed(range(n)) if reverse else range(n)):
        carry, y = f(carry, tree_unflatten(tree, [x[i] for x in leaves]))
        ys.append(y)
    ys = ys[::-1] if reverse else ys
    return carry, tree_map(lambda *y: fnp.stack(y), *ys)


UNROLLED = types.SimpleNamespace(np=fnp, scan=unrolled_scan)




# --- the cases: (lib, *args) -> output pytree ---------------------------------------------------
rng = np.random.RandomState(0)
W, H0, XS = rng.randn(3, 3) * 0.5, rng.randn(3), rng.randn(5, 3)
XS_TREE = {"a": rng.randn(4, 2), "b": (rng.randn(4), None)}


def rnn(lib: Any, w: Any, h0: Any, xs: Any, **kw: Any) -> Any:
    """A tanh RNN; the weights are closed over (consts), ys is a pytree."""
    def cell(h: Any, x: Any) -> Any:
        h = lib.np.tanh(lib.np.dot(w, h) + x)
        return h, {"h": h, "sq": h * h}
    return lib.scan(cell, h0, xs, **kw)


def pytree_carry(lib: Any, s: Any, xs: Any, **kw: Any) -> Any:
    """Tuple/dict carry, dict xs with a None leaf, ys a tuple with None."""
    def body(carry: Any, x: Any) -> Any:
        a, d = carry
        a2 = lib.np.sin(a) * x["b"][0] + d["m"]
        d2 = {"m": d["m"] * 0.9 + lib.np.sum(x["a"]) * a, "v": d["v"] + x["a"]}
        return (a2, d2), (a2 * s, None, d2["v"])
    init = (s, {"m": 0.5 * s, "v": lib.np.ones(2)})
    return lib.scan(body, init, xs, **kw)


def no_xs(lib: Any, a: Any, **kw: Any) -> Any:
    """xs=None with a length; the body receives x=None."""
    def body(c: Any, x: Any) -> Any:
        assert x is None
        return c * a + 1.0, lib.np.cos(c)
    return lib.scan(body, lib.np.ones(2), None, length=4, **kw)


def int_counter(lib: Any, x0: Any, xs: Any, **kw: Any) -> Any:
    """An integer carry next to a float one; ys mix dtypes."""
    def body(c: Any, x: Any) -> Any:
        i, v = c
        return (i + 1, v * x + i), (i, v)
    return lib.scan(body, (0, x0), xs, **kw)


CASES: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "rnn": (rnn, (W, H0, XS)),
    "pytree": (pytree_carry, (0.7, XS_TREE)),
    "no_xs": (no_xs, (np.array([0.5, -1.2]),)),
    "int_counter": (int_counter, (0.3, rng.randn(4))),
    "length1": (rnn, (W, H0, XS[:1])),
}
KWARGS = [{}, {"reverse": True}, {"unroll": 2}, {"unroll": True, "reverse": True}]


def run(case: str, lib: Any, **kw: Any) -> Any:
    fn, args = CASES[case]
    return fn(lib, *args, **kw)


# --- values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", KWARGS, ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
def test_values_match_jax_and_unrolled(case: str, kw: dict[str, Any], x64: None) -> None:
    got = run(case, FG, **kw)
    want = jax.jit(lambda: run(case, JX, **kw))()  # jitted: eager JAX compiles every op
    jax_compare.assert_matches(got, want, f"{case} {kw}", rtol=1e-12)
    close(got, run(case, UNROLLED, **kw))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32])
def test_dtypes_and_weak_types_match_jax(dtype: Any) -> None:
    xs = (np.arange(12).reshape(4, 3) % 5).astype(dtype)

    def body(c: Any, x: Any) -> Any:
        return c + x[0], (c * 2, x)

    for init in (np.zeros((), dtype), 0, 0.0, np.float32(0)):
        try:
            want = jax.lax.scan(body, init, xs)
        except TypeError:
            with pytest.raises(TypeError, match="carry input and carry output"):
                scan(body, init, xs)
            continue
        got = scan(body, init, xs)
        jax_compare.assert_matches(got, want, f"{np.dtype(dtype).name} init={init!r}")


def test_weak_initial_carry_takes_the_body_type() -> None:
    xs = np.ones((3, 2), np.float32)
    want = jax.lax.scan(lambda c, x: (c + x, c), 0.0, xs[:, 0])
    got = scan(lambda c, x: (c + x, c), 0.0, xs[:, 0])
    jax_compare.assert_matches(got, want, "weak init")
    assert not got[0].weak_type and got[1].weak_type  # carry out strong, ys keep the weak input
    # A weak int carry meeting a float body output is converted first (as in JAX).
    got = scan(lambda c, x: (c * x, c), 1, xs[:, 0])
    want = jax.lax.scan(lambda c, x: (c * x, c), 1, xs[:, 0])
    jax_compare.assert_matches(got, want, "weak int init")


def test_zero_length() -> None:
    for case in (lambda lib: rnn(lib, W, H0, XS[:0]),
                 lambda lib: lib.scan(lambda c, _: (c + 1, c * 2.0), 0, None, length=0)):
        jax_compare.assert_matches(case(FG), case(JX), "length 0")
    _, vjp = fgrad.vjp(lambda h: rnn(FG, W, h, XS[:0])[0], H0)
    np.testing.assert_array_equal(np.asarray(vjp(np.ones(3))[0]), np.ones(3))


@settings(max_examples=15, deadline=None)
@given(length=st.integers(0, 4), n=st.integers(0, 3), reverse=st.booleans(),
       unroll=st.sampled_from([1, 2, 3, True, False]), seed=st.integers(0, 2**31 - 1))
def test_random_shapes_match_unrolled(length: int, n: int, reverse: bool, unroll: Any,
                                      seed: int) -> None:
    r = np.random.RandomState(seed)
    w, h0, xs = r.randn(n, n).astype(np.float32), r.randn(n).astype(np.float32), \
        r.randn(length, n).astype(np.float32)
    got = rnn(FG, w, h0, xs, reverse=reverse, unroll=unroll)
    assert [(a.shape, a.dtype) for a in tree_leaves(got)] == [
        ((n,), np.float32), ((length, n), np.float32), ((length, n), np.float32)]
    if length:
        close(got, rnn(UNROLLED, w, h0, xs, reverse=reverse), tol=1e-5)
        loss = lambda lib: lambda w, h0: fnp.sum(rnn(lib, w, h0, xs, reverse=reverse)[1]["sq"])
        close(fgrad.grad(loss(FG), (0, 1))(w, h0), fgrad.grad(loss(UNROLLED), (0, 1))(w, h0),
              tol=1e-5)


# --- derivatives ----------------------------------------------------------------------------------

def scalar_loss(case: str, lib: Any, **kw: Any) -> Callable[..., Any]:
    """The case as a scalar function of its float arguments (for grad)."""
    fn, args = CASES[case]

    def loss(*a: Any) -> Any:
        out = fn(lib, *a, **kw)
        return sum(lib.np.sum(lib.np.sin(leaf)) for leaf in jax.tree_util.tree_leaves(out)
                   if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating))
    return loss


def float_argnums(case: str) -> tuple[int, ...]:
    return tuple(range(len(CASES[case][1])))


@pytest.mark.parametrize("kw", KWARGS[:2], ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
def test_jvp_and_linearize_match_jax(case: str, kw: dict[str, Any], x64: None) -> None:
    fn, args = CASES[case]
    r = np.random.RandomState(1)
    tangents = jax.tree_util.tree_map(lambda a: r.randn(*np.shape(a)), args)
    f_fg = lambda *a: fn(FG, *a, **kw)
    p, t = fgrad.jvp(f_fg, args, tangents)
    p_jax, t_jax = jax.jit(lambda a, t: jax.jvp(lambda *a: fn(JX, *a, **kw), a, t))(
        args, tangents)
    close(p, p_jax)
    close(t, t_jax)
    close(t, fgrad.jvp(lambda *a: fn(UNROLLED, *a, **kw), args, tangents)[1])
    _, f_lin = fgrad.linearize(f_fg, *args)
    close(f_lin(*tangents), t_jax)
    close(fgrad.jit(lambda a, t: fgrad.jvp(f_fg, a, t))(args, tangents), (p_jax, t_jax))


@pytest.mark.parametrize("case, kw", [(c, {}) for c in sorted(CASES)]
                         + [("rnn", {"reverse": True}), ("pytree", {"reverse": True})], ids=str)
def test_grad_to_second_order_matches_jax(case: str, kw: dict[str, Any], x64: None) -> None:
    args = CASES[case][1]
    nums = float_argnums(case)
    loss_fg, loss_jax = scalar_loss(case, FG, **kw), scalar_loss(case, JX, **kw)
    close(fgrad.grad(loss_fg, nums)(*args), jax.jit(jax.grad(loss_jax, nums))(*args))
    close(fgrad.grad(loss_fg, nums)(*args), fgrad.grad(scalar_loss(case, UNROLLED, **kw),
                                                         nums)(*args))
    # second order: the gradient of the squared gradient norm, in every argument
    def sq(grad: Any, lib: Any, loss: Any) -> Callable[..., Any]:
        return lambda *a: sum(lib.sum(g * g) for g in jax.tree_util.tree_leaves(
            grad(loss, nums)(*a)))
    close(fgrad.grad(sq(fgrad.grad, fnp, loss_fg), nums)(*args),
          jax.jit(jax.grad(sq(jax.grad, jnp, loss_jax), nums))(*args), tol=1e-9)


def test_grad_of_grad_through_nested_scans(x64: None) -> None:
    def nested(lib: Any, w: Any, xs: Any) -> Any:
        def outer(c: Any, x: Any) -> Any:
            c2, ys = lib.scan(lambda cc, xx: (lib.np.sin(cc * w + xx), cc * xx), c, x)
            return c2 * 0.9, lib.np.sum(ys)
        c, ys = lib.scan(outer, lib.np.ones(()), xs)
        return c + lib.np.sum(ys)
    xs = rng.randn(3, 4)
    f, g = (lambda w: nested(FG, w, xs)), (lambda w: nested(JX, w, xs))
    close(fgrad.grad(f)(0.3), jax.jit(jax.grad(g))(0.3))
    close(fgrad.grad(fgrad.grad(f))(0.3), jax.jit(jax.grad(jax.grad(g)))(0.3))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(fgrad.grad(f)))(0.3))


def test_vjp_transposes_a_linear_scan(x64: None) -> None:
    # Linear in xs and in the initial carry: a weighted cumulative sum, a weight per step.
    ws = rng.randn(6)

    def f(h0: Any, xs: Any) -> Any:
        return scan(lambda c, wx: (c * wx[0] + wx[1], 2.0 * c), h0, (ws, xs))

    h0, xs = rng.randn(), rng.randn(6)
    cts = (rng.randn(), rng.randn(6))
    out, pullback = fgrad.vjp(f, h0, xs)
    ct_h0, ct_xs = pullback(cts)
    lhs = float(cts[0] * out[0]) + float(np.dot(cts[1], out[1]))
    rhs = float(ct_h0 * h0) + float(np.dot(ct_xs, xs))
    assert abs(lhs - rhs) < 1e-10 * (1 + abs(lhs))
    want = jax.vjp(lambda h, x: jax.lax.scan(lambda c, wx: (c * wx[0] + wx[1], 2.0 * c), h,
                                             (ws, x)), h0, xs)[1](cts)
    close((ct_h0, ct_xs), want)


def test_grad_memory_is_linear_and_invariants_are_hoisted(x64: None) -> None:
    """grad = one forward scan saving per-step residuals + one reverse scan; the closed-over
    weight matrix is not stacked per step, and the program size does not grow with length."""
    def loss(w: Any, xs: Any) -> Any:
        return fnp.sum(rnn(FG, w, H0, xs)[1]["sq"])

    def jaxpr_for(length: int) -> Any:
        return fgrad.make_jaxpr(fgrad.grad(loss))(W, rng.randn(length, 3))

    short, long = jaxpr_for(3), jaxpr_for(40)
    assert len(short.eqns) == len(long.eqns)
    scans = [e for e in long.eqns if e.primitive is scan_p]
    assert len(scans) == 2 and [e.params["reverse"] for e in scans] == [False, True]
    forward_out_shapes = [v.aval.shape for v in scans[0].outvars]
    assert (40, 3, 3) not in forward_out_shapes  # w is a const of the backward scan
    assert all(s[:1] == (40,) for s in forward_out_shapes[1:])  # per-step residuals
    typecheck_jaxpr(long)
    close(fgrad.grad(loss)(W, XS), jax.grad(lambda w, xs: jnp.sum(rnn(JX, w, H0, xs)[1]["sq"])
                                            )(W, XS))


# --- vmap -----------------------------------------------------------------------------------------

def rnn_fn(w: Any, h0: Any, xs: Any, **kw: Any) -> Any:
    return rnn(FG, w, h0, xs, **kw)


@pytest.mark.parametrize("batched", [b for b in itertools.product([False, True], repeat=3)
                                     if any(b)], ids=str)
def test_vmap_every_combination_of_batched_operands(batched: tuple[bool, ...],
                                                    x64: None) -> None:
    """consts (w), carry (h0) and xs each batched or not, at random axes."""
    r = np.random.default_rng(sum(b << i for i, b in enumerate(batched)))
    examples = [(r.normal(size=(3, 3)) * 0.5, r.normal(size=3), r.normal(size=(4, 3)))
                for _ in range(3)]
    for kw in ({}, {"reverse": True}, {"unroll": 2}):
        in_axes = [None if not b else [0, -1, int(r.integers(0, nd + 1))][int(r.integers(3))]
                   for b, nd in zip(batched, (2, 1, 2))]
        args = batch_args(examples, in_axes)
        f = functools.partial(rnn_fn, **kw)
        for out_axes in (0, -1):
            check_vmap(f, args, in_axes, out_axes, rtol=1e-12, what=f"batched={batched} {kw}")
        want = jax.jit(jax.vmap(lambda *a: rnn(JX, *a, **kw), in_axes=tuple(in_axes)))(*args)
        close(fgrad.vmap(f, in_axes=tuple(in_axes))(*args), want)
        close(fgrad.jit(fgrad.vmap(f, in_axes=tuple(in_axes)))(*args), want)


@pytest.mark.parametrize("size", [0, 1])
def test_vmap_batch_of_size_zero_and_one(size: int) -> None:
    ws, xs = rng.randn(size, 3, 3), rng.randn(size, 5, 3)
    out = fgrad.vmap(rnn_fn, in_axes=(0, None, 0))(ws, H0, xs)
    assert [np.shape(o) for o in tree_leaves(out)] == [(size, 3), (size, 5, 3), (size, 5, 3)]
    if size:
        close(out, tree_map(lambda o: o[None], rnn_fn(ws[0], H0, xs[0])))


def test_vmap_keeps_unbatched_xs_unbatched() -> None:
    ws = rng.randn(5, 3, 3)
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(rnn_fn, in_axes=(0, None, None)))(ws, H0, XS)
    (eqn,) = [e for e in jaxpr.eqns if e.primitive is scan_p]
    xs_operand = eqn.invars[eqn.params["num_consts"] + eqn.params["num_carry"]]
    assert xs_operand is jaxpr.jaxpr.invars[2]  # the original xs, neither copied nor broadcast
    assert eqn.outvars[0].aval.shape == (5, 3)  # the carry became batched (fixed point)


def test_vmap_nested_and_of_grad(x64: None) -> None:
    ws = rng.randn(2, 4, 3, 3) * 0.5
    f = fgrad.vmap(fgrad.vmap(rnn_fn, in_axes=(0, None, None)), in_axes=(1, None, 0))
    g = jax.vmap(jax.vmap(lambda *a: rnn(JX, *a), in_axes=(0, None, None)), in_axes=(1, None, 0))
    xs = rng.randn(4, 5, 3)
    close(f(ws, H0, xs), jax.jit(g)(ws, H0, xs))

    def loss(lib: Any) -> Callable[..., Any]:
        return lambda w, xs: lib.np.sum(rnn(lib, w, H0, xs)[1]["sq"])
    want = jax.jit(jax.vmap(jax.grad(loss(JX)), in_axes=(0, None)))(ws[0], XS)
    close(fgrad.vmap(fgrad.grad(loss(FG)), in_axes=(0, None))(ws[0], XS), want)
    close(fgrad.jit(fgrad.vmap(fgrad.grad(loss(FG)), in_axes=(0, None)))(ws[0], XS), want)
    close(fgrad.grad(lambda w: fnp.sum(fgrad.vmap(loss(FG), in_axes=(None, 0))(w, xs)))(W),
          jax.jit(jax.grad(lambda w: jnp.sum(jax.vmap(loss(JX), in_axes=(None, 0))(w, xs))))(W))


def test_scan_of_vmap(x64: None) -> None:
    xs = rng.randn(4, 2, 3)

    def f(lib: Any, w: Any) -> Any:
        def body(c: Any, x: Any) -> Any:
            c = lib.vmap(lambda row: lib.np.tanh(lib.np.dot(w, row)))(c + x)
            return c, lib.np.sum(c)
        return lib.scan(body, lib.np.ones((2, 3)), xs)

    close(f(FG, W), f(JX, W))
    close(fgrad.grad(lambda w: fnp.sum(f(FG, w)[1]))(W),
          jax.grad(lambda w: jnp.sum(f(JX, w)[1]))(W))
    close(fgrad.jit(lambda w: f(FG, w))(W), f(JX, W))


# --- jit, closures, printing ----------------------------------------------------------------------

def test_jit_of_scan_grad_and_vmap(x64: None) -> None:
    loss = scalar_loss("rnn", FG)
    def grad_grad(f: Any) -> Any:
        return fgrad.grad(lambda w, h, x: fnp.sum(fgrad.grad(f, 1)(w, h, x) ** 2), 1)

    for transform in (lambda f: f, fgrad.grad, grad_grad):
        eager = transform(loss)(*CASES["rnn"][1])
        jitted = fgrad.jit(transform(loss))
        close(jitted(*CASES["rnn"][1]), eager, tol=1e-13)
        close(jitted(*CASES["rnn"][1]), eager, tol=1e-13)
        assert jitted.cache_info().misses == 1


def test_closure_over_outer_tracers(x64: None) -> None:
    xs = rng.randn(4, 3)

    def f(lib: Any, a: Any) -> Any:  # the body closes over a (a grad / vmap / jvp tracer)
        return lib.np.sum(lib.scan(lambda c, x: (lib.np.sin(c * a + x), c), lib.np.zeros(3),
                                   xs)[1])
    g = functools.partial(f, JX)
    close(fgrad.grad(lambda a: f(FG, a))(0.7), jax.jit(jax.grad(g))(0.7))
    close(fgrad.grad(fgrad.grad(lambda a: f(FG, a)))(0.7), jax.jit(jax.grad(jax.grad(g)))(0.7))
    a_s = rng.randn(5)
    close(fgrad.vmap(lambda a: f(FG, a))(a_s), jax.jit(jax.vmap(g))(a_s))
    close(fgrad.vmap(fgrad.grad(lambda a: f(FG, a)))(a_s), jax.jit(jax.vmap(jax.grad(g)))(a_s))
    close(fgrad.jvp(lambda a: f(FG, a), (0.7,), (1.0,)),
          jax.jit(lambda a: jax.jvp(g, (a,), (1.0,)))(0.7))
    close(fgrad.jit(lambda a: f(FG, a))(0.7), jax.jit(g)(0.7))


def test_jaxpr_prints_the_body_and_typechecks() -> None:
    jaxpr = fgrad.make_jaxpr(rnn_fn)(W, H0, XS)
    text = str(jaxpr)
    assert "scan[length=5 reverse=False unroll=1 num_consts=1 num_carry=1 jaxpr={" in text
    assert "tanh" in text and "dot_general" in text
    body_line = next(line for line in text.splitlines() if "tanh" in line)
    assert body_line.startswith(" " * 8)  # the body is indented under its equation
    batched_args = (np.stack([W] * 2), H0, np.stack([XS] * 2, 1))
    for f, args in [(rnn_fn, (W, H0, XS)),
                    (fgrad.grad(scalar_loss("rnn", FG)), (W, H0, XS)),
                    (fgrad.grad(lambda *a: fnp.sum(fgrad.grad(scalar_loss("rnn", FG), 1)(*a)
                                                   ** 2), 1), (W, H0, XS)),
                    (fgrad.vmap(rnn_fn, in_axes=(0, None, 1)), batched_args),
                    (lambda *a: fgrad.jvp(rnn_fn, a, a), (W, H0, XS)),
                    (lambda *a: fgrad.linearize(rnn_fn, *a)[1](*a), (W, H0, XS))]:
        typecheck_jaxpr(fgrad.make_jaxpr(f)(*args))


def test_abstract_eval_rejects_ill_typed_operands() -> None:
    jaxpr = fgrad.make_jaxpr(rnn_fn)(W, H0, XS)
    eqn = jaxpr.eqns[0]
    with pytest.raises(TypeError, match=r"xs operand 0 has type f32\[4,3\].*needs f32\[5,3\]"):
        scan_p.bind(W, H0, XS[:4].astype(np.float32), **eqn.params)
    with pytest.raises(TypeError, match=r"carry operand 1 has type f32\[2\]"):
        scan_p.bind(W, H0[:2], XS, **eqn.params)
    with pytest.raises(TypeError, match=r"got 2 operands but the body takes 3"):
        scan_p.bind(W, H0, **eqn.params)


# --- errors ---------------------------------------------------------------------------------------

def test_carry_type_mismatch_names_the_leaf() -> None:
    xs = fnp.ones(3)
    with pytest.raises(TypeError, match=r"(?s)carry input and carry output must have equal "
                       r"types.*\[1\]: f32\[3\] vs f32\[2\]"):
        scan(lambda c, x: ((c[0], c[1][:2]), x), (0.0, xs), xs)
    with pytest.raises(TypeError, match=r"(?s)input carry carry.*\['b'\]: f32\[3\] vs i32\[3\]"):
        scan(lambda carry, x: ({"a": carry["a"], "b": carry["b"].astype(np.int32)}, x),
             {"a": 0.0, "b": xs}, xs)
    with pytest.raises(TypeError, match=r"(?s)must have the same pytree structure.*\(\*, \*\).*"
                       r"\(\*,\)"):
        scan(lambda c, x: ((c[0],), x), (0.0, xs), xs)
    with pytest.raises(TypeError, match=r"scan body output must be a pair"):
        scan(lambda c, x: c, 0.0, xs)
    with pytest.raises(TypeError, match=r"f argument should be a callable"):
        scan(3, 0.0, xs)


def test_length_errors() -> None:
    xs = fnp.ones(3)
    with pytest.raises(ValueError, match=r"`length` argument of 4 which disagrees with leading "
                       r"axis sizes \[3\]"):
        scan(lambda c, x: (c, x), 0.0, xs, length=4)
    with pytest.raises(ValueError, match=r"different leading axis sizes: 3, 4"):
        scan(lambda c, x: (c, x), 0.0, (xs, fnp.ones(4)))
    with pytest.raises(ValueError, match=r"no values to scan over and `length` not provided"):
        scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(ValueError, match=r"no leading axis to scan over: f32\[\]"):
        scan(lambda c, x: (c, x), 0.0, fnp.ones(()))
    with pytest.raises(ValueError, match=r"`unroll` must be a `bool` or a non-negative `int`"):
        scan(lambda c, x: (c, x), 0.0, xs, unroll=-1)
    with pytest.raises(fgrad.ConcretizationTypeError, match=r"`length` argument to `scan` "
                       r"expects a concrete `int`"):
        fgrad.jit(lambda n: scan(lambda c, x: (c, x), 0.0, None, length=n))(3)


# --- map ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [None, 0, 1, 2, 3, 7], ids=str)
def test_map_matches_jax(batch_size: Any, x64: None) -> None:
    xs = {"a": rng.randn(5, 2), "b": rng.randn(5)}

    def f(lib: Any) -> Callable[..., Any]:
        return lambda x: (lib.np.sin(x["a"]) * x["b"], lib.np.sum(x["a"]))

    got = scan_map(f(FG), xs, batch_size=batch_size)
    want = jax.jit(lambda xs: jax.lax.map(f(JX), xs, batch_size=batch_size))(xs)
    jax_compare.assert_matches(got, want, "map")
    g_fg = fgrad.grad(lambda xs: fnp.sum(scan_map(f(FG), xs, batch_size=batch_size)[0]))(xs)
    g_jax = jax.jit(jax.grad(lambda xs: jnp.sum(jax.lax.map(f(JX), xs,
                                                            batch_size=batch_size)[0])))(xs)
    close(g_fg, g_jax)
    if batch_size is None:
        assert count_eqns(fgrad.make_jaxpr(lambda xs: scan_map(f(FG), xs))(xs), "scan") == 1


# --- an RNN trains under jit(grad) ----------------------------------------------------------------

def rnn_loss(lib: Any, params: dict[str, Any], xs: Any, targets: Any) -> Any:
    """Sequence regression with a tanh RNN; the parameters are closed over by the cell."""
    def cell(h: Any, x: Any) -> Any:
        h = lib.np.tanh(lib.np.dot(h, params["wh"]) + x * params["wx"] + params["b"])
        return h, lib.np.dot(h, params["wo"])
    _, preds = lib.scan(cell, lib.np.zeros(params["b"].shape), xs)
    return lib.np.mean((preds - targets) ** 2)


def test_rnn_trains_under_jit_grad(x64: None) -> None:
    r = np.random.RandomState(42)
    hidden, steps = 8, 20
    params = {"wh": r.randn(hidden, hidden) * 0.3, "wx": r.randn(hidden) * 0.5,
              "b": np.zeros(hidden), "wo": r.randn(hidden) * 0.3}
    xs = np.sin(np.linspace(0.0, 4 * np.pi, steps)) + 0.1 * r.randn(steps)
    targets = np.concatenate([[0.0], xs[:-1]])  # remember the previous input
    grad_fn = fgrad.jit(fgrad.grad(lambda p: rnn_loss(FG, p, xs, targets)))
    jax_grad = jax.grad(lambda p: rnn_loss(JX, p, xs, targets))
    close(grad_fn(params), jax_grad(params))
    loss0 = float(rnn_loss(FG, params, xs, targets))
    for _ in range(50):
        g = grad_fn(params)
        params = {k: params[k] - 0.5 * np.asarray(g[k]) for k in params}
    loss1 = float(rnn_loss(FG, params, xs, targets))
    assert loss1 < 0.05 * loss0, (loss0, loss1)  # it falls about 150x
    close(grad_fn(params), jax_grad(params))
    assert grad_fn.cache_info().misses == 1
