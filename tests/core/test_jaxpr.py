"""Jaxprs: printing, ``typecheck_jaxpr`` (accepting every transform's output and
rejecting corrupted programs), ``eval_jaxpr``, constants, literals and weak types.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import JaxprTypeError
from fgrad.core.jaxpr import (
    ClosedJaxpr, Jaxpr, Literal, Var, eval_closed_jaxpr, eval_jaxpr, typecheck_jaxpr)


def loss(x: Any) -> Any:
    return fnp.sum(fnp.tanh(x) ** 2)


# --- printing ---------------------------------------------------------------------------

def test_grad_jaxpr_is_readable() -> None:
    text = str(fgrad.make_jaxpr(fgrad.grad(loss))(fnp.ones(3)))
    lines = text.splitlines()
    assert lines[0].startswith("{ lambda ") and lines[0].endswith(". let")
    assert "a:f32[3]" in lines[0]
    assert lines[-1].strip().startswith("in (") and text.endswith("}")
    assert "tanh" in text
    assert "integer_pow" in text or "mul" in text
    # every equation line binds typed variables: `name:type = prim ...`
    body = lines[1:-1]
    assert body and all(re.match(r"^    [a-z]+:[a-z0-9]+\[[0-9,]*\]( [a-z]+:\S+)* = \S", line)
                        for line in body), text


def test_simple_jaxpr_text() -> None:
    text = str(fgrad.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0))
    assert text == ("{ lambda ; a:f32[]. let\n"
                    "    b:f32[] = sin a\n"
                    "    c:f32[] = mul b 2.0:f32[]\n"
                    "  in (c,) }")


def test_params_and_multiple_outputs_print() -> None:
    text = str(fgrad.make_jaxpr(lambda x: (fnp.sum(x), x))(fnp.ones((2, 3))))
    assert "reduce_sum[axes=(0, 1)]" in text
    assert text.splitlines()[-1] == "  in (b, a) }"


def test_variable_names_past_z() -> None:
    def many(x: Any) -> Any:
        for _ in range(30):
            x = fnp.sin(x)
        return x

    text = str(fgrad.make_jaxpr(many)(1.0))
    binders = re.findall(r"^    ([a-z]+):", text, flags=re.M)
    assert len(binders) == 30 and len(set(binders)) == 30
    assert binders[:2] == ["b", "c"] and binders[24] == "z" and binders[25] == "ba"


def test_nested_jaxpr_printing() -> None:
    inner = fgrad.jit(lambda y: fnp.cos(y) + 1.0)
    text = str(fgrad.make_jaxpr(lambda x: inner(x) * 2.0)(1.0))
    assert "jit[jaxpr={ lambda ; a:f32[]. let" in text
    assert text.count("{ lambda") == 2 and text.count("}") >= 2


def test_constvars_and_literals() -> None:
    c = fnp.array([1.0, 2.0, 3.0])
    closed = fgrad.make_jaxpr(lambda x: x * c + 2.0)(fnp.ones(3))
    assert len(closed.jaxpr.constvars) == 1 and closed.consts[0] is c
    assert str(closed).startswith("{ lambda a:f32[3]; b:f32[3]. let")
    literals = [a for e in closed.eqns for a in e.invars if isinstance(a, Literal)]
    assert literals and all(lit.aval.shape == () for lit in literals)


def test_no_arguments_and_literal_output() -> None:
    closed = fgrad.make_jaxpr(lambda: 1.0)()
    assert closed.jaxpr.invars == [] and closed.eqns == []
    assert "in (1.0:f32[],)" in str(closed)


# --- weak types ----------------------------------------------------------------------------

def test_weak_types_in_jaxprs() -> None:
    closed = fgrad.make_jaxpr(lambda x: x * 2.0)(1.0)
    (invar,) = closed.jaxpr.invars
    assert invar.aval == ShapedArray((), np.float32, weak_type=True)
    assert closed.out_avals[0].weak_type
    strong = fgrad.make_jaxpr(lambda x: x * 2.0)(np.float32(1.0))
    assert not strong.jaxpr.invars[0].aval.weak_type and not strong.out_avals[0].weak_type
    jax_closed = jax.make_jaxpr(lambda x: x * 2.0)(1.0)
    assert jax_closed.in_avals[0].weak_type == invar.aval.weak_type


def test_python_scalars_need_no_conversion_equation() -> None:
    # JAX converts Python scalars at trace time: `x * 2` is one `mul` with a literal 2.0.
    for f, x in [(lambda x: x * 2, 1.0), (lambda x: x * 2, np.float32(1.0)),
                 (lambda x: 2 - x, np.ones(3, np.float32))]:
        names = [e.primitive.name for e in fgrad.make_jaxpr(f)(x).eqns]
        assert "convert_element_type" not in names, fgrad.make_jaxpr(f)(x)


@pytest.mark.parametrize("case", ["sin_mul", "tanh_sq_sum", "exp_div"])
def test_primitive_sequence_matches_jax(case: str) -> None:
    f, jf = {
        "sin_mul": (lambda x: fnp.sin(x) * x, lambda x: jnp.sin(x) * x),
        "tanh_sq_sum": (loss, lambda x: jnp.sum(jnp.tanh(x) ** 2)),
        "exp_div": (lambda x: fnp.exp(x) / fnp.cos(x), lambda x: jnp.exp(x) / jnp.cos(x)),
    }[case]
    x = np.ones(3, np.float32)
    assert ([e.primitive.name for e in fgrad.make_jaxpr(f)(x).eqns]
            == [e.primitive.name for e in jax.make_jaxpr(jf)(x).eqns])


# --- typecheck_jaxpr accepts what transforms produce ------------------------------------------

TRANSFORMED: dict[str, Callable[[], Any]] = {
    "grad": lambda: fgrad.make_jaxpr(fgrad.grad(loss))(fnp.ones(3)),
    "grad_grad": lambda: fgrad.make_jaxpr(fgrad.grad(fgrad.grad(lambda x: fnp.sin(x) * x)))(1.0),
    "jvp": lambda: fgrad.make_jaxpr(lambda x, t: fgrad.jvp(loss, (x,), (t,)))(
        fnp.ones(3), fnp.ones(3)),
    "jit": lambda: fgrad.make_jaxpr(fgrad.jit(loss))(fnp.ones(3)),
    "grad_jit": lambda: fgrad.make_jaxpr(fgrad.grad(fgrad.jit(loss)))(fnp.ones(3)),
    "linearize": lambda: fgrad.make_jaxpr(lambda x: fgrad.linearize(loss, x)[1](x))(fnp.ones(3)),
    "vjp": lambda: fgrad.make_jaxpr(lambda x: fgrad.vjp(fnp.sin, x)[1](x))(fnp.ones(3)),
    "jacfwd": lambda: fgrad.make_jaxpr(fgrad.jacfwd(fnp.sin))(fnp.ones(3)),
    "jacrev": lambda: fgrad.make_jaxpr(fgrad.jacrev(fnp.sin))(fnp.ones(3)),
    "hessian": lambda: fgrad.make_jaxpr(fgrad.hessian(loss))(fnp.ones(3)),
    "checkpoint": lambda: fgrad.make_jaxpr(fgrad.grad(fgrad.checkpoint(loss)))(fnp.ones(3)),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMED))
def test_typecheck_accepts_transformed_jaxprs(name: str) -> None:
    closed = TRANSFORMED[name]()
    typecheck_jaxpr(closed)
    typecheck_jaxpr(closed.jaxpr)


def test_linearized_jaxpr_typechecks() -> None:
    from fgrad.transforms.partial_eval import linearize_flat
    _, lin = linearize_flat(lambda x: [loss(x)], [fnp.ones(3)])
    typecheck_jaxpr(lin)


# --- typecheck_jaxpr rejects corrupted jaxprs ----------------------------------------------

def fresh() -> ClosedJaxpr:
    """A new jaxpr each time (the corruptions below mutate it)."""
    return fgrad.make_jaxpr(lambda x: fnp.sin(x) * fnp.cos(x))(fnp.ones(3))


def test_typecheck_rejects_wrong_outvar_aval() -> None:
    closed = fresh()
    closed.eqns[0].outvars[0].aval = ShapedArray((4,), np.float32)
    with pytest.raises(JaxprTypeError, match=r"f32|float32"):
        typecheck_jaxpr(closed)


def test_typecheck_rejects_wrong_dtype_and_weak_type() -> None:
    closed = fresh()
    closed.eqns[0].outvars[0].aval = ShapedArray((3,), np.float16)
    with pytest.raises(JaxprTypeError):
        typecheck_jaxpr(closed)
    closed = fresh()
    closed.eqns[-1].outvars[0].aval = ShapedArray((3,), np.float32, weak_type=True)
    with pytest.raises(JaxprTypeError):
        typecheck_jaxpr(closed)


def test_typecheck_rejects_use_before_def() -> None:
    closed = fresh()
    j = closed.jaxpr
    swapped = Jaxpr(j.constvars, j.invars, j.outvars, [j.eqns[-1], *j.eqns[:-1]])
    with pytest.raises(JaxprTypeError, match="before it is defined"):
        typecheck_jaxpr(swapped)


def test_typecheck_rejects_undefined_output_and_double_definition() -> None:
    j = fresh().jaxpr
    with pytest.raises(JaxprTypeError, match="before it is defined"):
        typecheck_jaxpr(Jaxpr(j.constvars, j.invars, [Var(ShapedArray((3,), np.float32))],
                              j.eqns))
    with pytest.raises(JaxprTypeError, match="twice"):
        typecheck_jaxpr(Jaxpr(j.constvars, j.invars, j.outvars, [j.eqns[0], *j.eqns]))


def test_typecheck_rejects_shape_rule_failures() -> None:
    j = fresh().jaxpr
    mul = j.eqns[-1]
    bad_in = Var(ShapedArray((4,), np.float32))
    bad = mul.replace(invars=[mul.invars[0], bad_in])
    with pytest.raises(JaxprTypeError, match="mul"):
        typecheck_jaxpr(Jaxpr(j.constvars, [*j.invars, bad_in], j.outvars, [*j.eqns[:-1], bad]))


def test_typecheck_rejects_wrong_number_of_outputs() -> None:
    j = fresh().jaxpr
    eqn = j.eqns[0]
    extra = eqn.replace(outvars=[eqn.outvars[0], Var(eqn.outvars[0].aval)])
    with pytest.raises(JaxprTypeError, match="outputs"):
        typecheck_jaxpr(Jaxpr(j.constvars, j.invars, j.outvars, [extra, *j.eqns[1:]]))


def test_typecheck_rejects_bad_literal_and_const() -> None:
    j = fresh().jaxpr
    eqn = j.eqns[0]
    lit = Literal(np.ones(2, np.float32), ShapedArray((), np.float32))
    with pytest.raises(JaxprTypeError, match="literal"):
        typecheck_jaxpr(Jaxpr(j.constvars, j.invars, j.outvars,
                              [eqn.replace(invars=[lit]), *j.eqns[1:]]))
    c = fnp.ones(3)
    closed = fgrad.make_jaxpr(lambda x: x * c)(fnp.ones(3))
    with pytest.raises(JaxprTypeError, match="const"):
        typecheck_jaxpr(ClosedJaxpr(closed.jaxpr, [fnp.ones(4)]))


def test_typecheck_rejects_corrupted_nested_jit() -> None:
    closed = fgrad.make_jaxpr(fgrad.jit(lambda x: fnp.sin(x) * 2.0))(fnp.ones(3))
    inner = closed.eqns[0].params["jaxpr"]
    inner.jaxpr.eqns[0].outvars[0].aval = ShapedArray((5,), np.float32)
    with pytest.raises(JaxprTypeError):
        typecheck_jaxpr(closed)


# --- eval_jaxpr ----------------------------------------------------------------------------

@pytest.mark.parametrize("f", [loss, fgrad.grad(loss), fgrad.jit(lambda x: (fnp.sin(x), x * 2.0)),
                               lambda x: fgrad.jvp(loss, (x,), (x,))])
def test_eval_jaxpr_reproduces_function(f: Callable[[Any], Any]) -> None:
    x = fnp.array([0.1, -0.5, 2.0])
    closed = fgrad.make_jaxpr(f)(x)
    want = jax.tree_util.tree_leaves(f(x))
    got = eval_jaxpr(closed.jaxpr, closed.consts, x)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert np.asarray(a).dtype == np.asarray(b).dtype
    y = fnp.array([1.0, 2.0, 3.0])
    got2 = eval_closed_jaxpr(closed, y)
    np.testing.assert_array_equal(np.asarray(got2[0]),
                                  np.asarray(jax.tree_util.tree_leaves(f(y))[0]))


def test_eval_jaxpr_with_consts_and_under_transforms() -> None:
    c = fnp.array([1.0, 2.0])
    closed = fgrad.make_jaxpr(lambda x: fnp.sum(fnp.sin(x) * c))(fnp.ones(2))
    run = lambda x: eval_jaxpr(closed.jaxpr, closed.consts, x)[0]
    x = fnp.array([0.3, 0.4])
    np.testing.assert_allclose(np.asarray(run(x)), np.sum(np.sin([0.3, 0.4]) * [1.0, 2.0]),
                               rtol=1e-6)
    # evaluating a jaxpr inside grad differentiates it
    np.testing.assert_allclose(np.asarray(fgrad.grad(run)(x)), np.cos([0.3, 0.4]) * [1.0, 2.0],
                               rtol=1e-6)


def test_eval_jaxpr_arity_error() -> None:
    closed = fresh()
    with pytest.raises(TypeError, match="expected 1 arguments"):
        eval_jaxpr(closed.jaxpr, closed.consts, fnp.ones(3), fnp.ones(3))


# --- make_jaxpr options and eval_shape --------------------------------------------------------

def test_make_jaxpr_pytrees_static_and_return_shape() -> None:
    f = lambda d, n: {"y": d["a"] ** n, "z": d["b"]}
    closed, shapes = fgrad.make_jaxpr(f, static_argnums=1, return_shape=True)(
        {"a": fnp.ones(2), "b": 1}, 3)
    assert [v.aval.str_short() for v in closed.jaxpr.invars] == ["f32[2]", "i32[]"]
    assert "integer_pow[y=3]" in str(closed)
    assert shapes["y"] == fgrad.ShapeDtypeStruct((2,), np.float32)
    assert shapes["z"].dtype == np.int32 and shapes["z"].weak_type


def test_make_jaxpr_accepts_shape_dtype_structs() -> None:
    closed = fgrad.make_jaxpr(loss)(fgrad.ShapeDtypeStruct((5, 2), np.float32))
    assert closed.jaxpr.invars[0].aval.str_short() == "f32[5,2]"


def test_eval_shape() -> None:
    out = fgrad.eval_shape(lambda x, y: (x * y, fnp.sum(x)), fnp.ones((2, 3)), 2.0)
    assert out[0] == fgrad.ShapeDtypeStruct((2, 3), np.float32)
    assert out[1] == fgrad.ShapeDtypeStruct((), np.float32)
    want = jax.eval_shape(lambda x, y: (x * y, jnp.sum(x)), jnp.ones((2, 3)), 2.0)
    assert [o.shape for o in out] == [w.shape for w in want]
