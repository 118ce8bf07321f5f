"""Operators, methods and properties of ``fgrad.Array`` and tracers (``_array.py``).

Each expression runs on an fgrad Array, on the same values under ``jit``
(tracers), and on a JAX array, and must agree in shape, dtype, weak type and
values; derivatives of operator-heavy code are compared with ``jax.grad``.
Also: numpy operands on either side, unsupported operands, iteration,
unhashability, and the conversions that need concrete values.
"""

from __future__ import annotations

import copy
import operator
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp

X = np.array([[1.5, -2.0, 0.5], [3.0, 0.25, -1.0]], np.float32)
I = np.array([[3, -7, 2], [0, 5, -1]], np.int32)  # noqa: E741
B = np.array([[True, False, True], [False, False, True]])


from jax_compare import assert_matches, weak  # noqa: E402,F401


# Expressions of (x float32 (2, 3), i int32 (2, 3), b bool (2, 3)).
EXPRESSIONS: list[tuple[str, Callable[[Any, Any, Any], Any]]] = [
    ("x + 1", lambda x, i, b: x + 1), ("2.5 + x", lambda x, i, b: 2.5 + x),
    ("x - i", lambda x, i, b: x - i), ("1 - x", lambda x, i, b: 1 - x),
    ("x * x", lambda x, i, b: x * x), ("3 * i", lambda x, i, b: 3 * i),
    ("x / 2", lambda x, i, b: x / 2), ("1 / x", lambda x, i, b: 1 / x),
    ("i / 2", lambda x, i, b: i / 2), ("i // 2", lambda x, i, b: i // 2),
    ("7 // i", lambda x, i, b: 7 // (i + 10)), ("x // 0.7", lambda x, i, b: x // 0.7),
    ("i % 3", lambda x, i, b: i % 3), ("-5.5 % x", lambda x, i, b: -5.5 % x),
    ("divmod(i, 4)", lambda x, i, b: divmod(i, 4)),
    ("divmod(9.5, x)", lambda x, i, b: divmod(9.5, x)),
    ("x ** 2", lambda x, i, b: x ** 2), ("x ** -1", lambda x, i, b: x ** -1),
    ("abs(x) ** 0.5", lambda x, i, b: abs(x) ** 0.5), ("2 ** x", lambda x, i, b: 2 ** x),
    ("i ** 2", lambda x, i, b: i ** 2), ("2 ** abs(i)", lambda x, i, b: 2 ** abs(i)),
    ("x @ x.T", lambda x, i, b: x @ x.T), ("x.T @ x", lambda x, i, b: x.T @ x),
    ("-x", lambda x, i, b: -x), ("+i", lambda x, i, b: +i), ("abs(i)", lambda x, i, b: abs(i)),
    ("~i", lambda x, i, b: ~i), ("~b", lambda x, i, b: ~b),
    ("i & 6", lambda x, i, b: i & 6), ("5 | i", lambda x, i, b: 5 | i),
    ("i ^ i", lambda x, i, b: i ^ (i + 1)), ("b & b", lambda x, i, b: b & ~b),
    ("b | True", lambda x, i, b: b | True), ("i << 2", lambda x, i, b: i << 2),
    ("1 << abs(i)", lambda x, i, b: 1 << abs(i)), ("i >> 1", lambda x, i, b: i >> 1),
    ("100 >> abs(i)", lambda x, i, b: 100 >> abs(i)),
    ("x < 1", lambda x, i, b: x < 1), ("x <= i", lambda x, i, b: x <= i),
    ("0 > x", lambda x, i, b: 0 > x), ("x >= x", lambda x, i, b: x >= x),
    ("x == 0.5", lambda x, i, b: x == 0.5), ("i != 0", lambda x, i, b: i != 0),
    ("round(x)", lambda x, i, b: round(x)), ("round(x, 1)", lambda x, i, b: round(x, 1)),
    ("x[0]", lambda x, i, b: x[0]), ("x[:, 1:]", lambda x, i, b: x[:, 1:]),
    ("x[..., -1]", lambda x, i, b: x[..., -1]), ("x[1, None]", lambda x, i, b: x[1, None]),
    ("x.at[0, 1].set(9)", lambda x, i, b: x.at[0, 1].set(9.0)),
    ("x.at[:, 0].add(1)", lambda x, i, b: x.at[:, 0].add(1.0)),
    ("x.T", lambda x, i, b: x.T), ("x.mT", lambda x, i, b: x[None].mT),
    ("x.real", lambda x, i, b: x.real), ("x.imag", lambda x, i, b: x.imag),
    ("x.astype(int)", lambda x, i, b: x.astype(int)),
    ("i.astype(float16)", lambda x, i, b: i.astype(np.float16)),
    ("x.reshape(3, 2)", lambda x, i, b: x.reshape(3, 2)),
    ("x.reshape((-1,))", lambda x, i, b: x.reshape((-1,))),
    ("x.reshape(6)", lambda x, i, b: x.reshape(6)),
    ("x.reshape(3, 2, order='F')", lambda x, i, b: x.reshape(3, 2, order="F")),
    ("x.ravel()", lambda x, i, b: x.ravel()), ("x.flatten()", lambda x, i, b: x.flatten()),
    ("x.transpose()", lambda x, i, b: x.transpose()),
    ("x[None].transpose(2, 0, 1)", lambda x, i, b: x[None].transpose(2, 0, 1)),
    ("x[None].transpose((1, 2, 0))", lambda x, i, b: x[None].transpose((1, 2, 0))),
    ("x.swapaxes(0, 1)", lambda x, i, b: x.swapaxes(0, 1)),
    ("x[None].squeeze()", lambda x, i, b: x[None].squeeze()),
    ("x[None].squeeze(0)", lambda x, i, b: x[None].squeeze(0)),
    ("x.sum()", lambda x, i, b: x.sum()), ("x.sum(axis=1)", lambda x, i, b: x.sum(axis=1)),
    ("i.sum(0, keepdims=True)", lambda x, i, b: i.sum(0, keepdims=True)),
    ("x.mean(0)", lambda x, i, b: x.mean(0)), ("x.var()", lambda x, i, b: x.var()),
    ("x.std(1, ddof=1)", lambda x, i, b: x.std(1, ddof=1)),
    ("x.max()", lambda x, i, b: x.max()), ("x.min(axis=0)", lambda x, i, b: x.min(axis=0)),
    ("x.prod(1)", lambda x, i, b: x.prod(1)), ("x.argmax()", lambda x, i, b: x.argmax()),
    ("x.argmin(1)", lambda x, i, b: x.argmin(1)), ("b.all()", lambda x, i, b: b.all()),
    ("b.any(1)", lambda x, i, b: b.any(1)), ("x.cumsum(1)", lambda x, i, b: x.cumsum(1)),
    ("i.cumprod()", lambda x, i, b: i.cumprod()), ("x.ptp()", lambda x, i, b: x.ptp()),
    ("x.dot(x.T)", lambda x, i, b: x.dot(x.T)), ("x.clip(-1, 1)", lambda x, i, b: x.clip(-1, 1)),
    ("x.clip(max=0)", lambda x, i, b: x.clip(max=0)),
    ("x.round(1)", lambda x, i, b: x.round(1)), ("x.conj()", lambda x, i, b: x.conj()),
    ("x.conjugate()", lambda x, i, b: x.conjugate()), ("x.copy()", lambda x, i, b: x.copy()),
    ("x.diagonal()", lambda x, i, b: x.diagonal()), ("x.trace()", lambda x, i, b: x.trace()),
    ("x.take(2)", lambda x, i, b: x.take(2)), ("x.repeat(2, 0)", lambda x, i, b: x.repeat(2, 0)),
    ("x[0, 0] + x", lambda x, i, b: x[0, 0] + x),
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_expressions_match_jax_eager_and_jit(expr: tuple[str, Callable[..., Any]]) -> None:
    name, f = expr
    want = f(jnp.asarray(X), jnp.asarray(I), jnp.asarray(B))
    assert_matches(f(fnp.asarray(X), fnp.asarray(I), fnp.asarray(B)), want, f"eager {name}")
    assert_matches(fgrad.jit(f)(X, I, B), want, f"jit {name}")


def test_operators_under_grad(x64: None) -> None:
    def f(x: Any) -> Any:
        y = (x @ x.T) / (1.0 + abs(x).sum()) - 2.0 ** x[0, 0] + x[1] @ x[0]
        return ((y - y.mean()) ** 2).sum() + (x.clip(-1, 1) * x.T.T).max() + x.var(axis=1)[0]

    def jf(x: Any) -> Any:
        y = (x @ x.T) / (1.0 + abs(x).sum()) - 2.0 ** x[0, 0] + x[1] @ x[0]
        return ((y - y.mean()) ** 2).sum() + (x.clip(-1, 1) * x.T.T).max() + x.var(axis=1)[0]

    x = X.astype(np.float64)
    np.testing.assert_allclose(np.asarray(fgrad.grad(f)(x)), np.asarray(jax.grad(jf)(x)),
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fgrad.jacfwd(fgrad.grad(f))(x)),
                               np.asarray(jax.jacfwd(jax.grad(jf))(x)), rtol=1e-10)


def test_numpy_operands_on_either_side() -> None:
    x = fnp.asarray(X)
    for op in (operator.add, operator.sub, operator.mul, operator.truediv, operator.pow,
               operator.lt, operator.eq, operator.matmul):
        y = X.T if op is operator.matmul else X
        for left, right in ((y, x), (x, y)):
            out = op(left, right)
            assert isinstance(out, fgrad.Array), (op, type(left), type(out))
            np.testing.assert_allclose(np.asarray(out), op(np.asarray(left), np.asarray(right)),
                                       rtol=1e-6)
    for scalar in (np.float32(2.0), np.int32(3), np.float64(0.5)):
        assert isinstance(scalar * x, fgrad.Array) and isinstance(x - scalar, fgrad.Array)
        assert_matches(scalar * x, scalar * jnp.asarray(X))
    # numpy functions still convert fgrad arrays to numpy, as they do JAX arrays
    assert type(np.sin(x)) is np.ndarray
    traced = []
    fgrad.jit(lambda t: traced.append(type(X * t)) or t)(X)
    assert issubclass(traced[0], fgrad.core.trace.Tracer)


def test_unsupported_operands() -> None:
    x = fnp.asarray(X)
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \+: 'Array' and "
                                        r"'list'"):
        x + [1.0, 2.0, 3.0]
    with pytest.raises(TypeError, match=r"for \*: 'tuple' and 'Array'"):
        (1.0, 2.0, 3.0) * x
    with pytest.raises(TypeError, match="unsupported operand"):
        x + "a"
    with pytest.raises(TypeError, match="unsupported operand"):
        x == [1]  # noqa: B015
    assert (x == None) is False and (x != None) is True  # noqa: E711
    with pytest.raises(TypeError, match="unsupported operand"):
        fgrad.jit(lambda t: t * {1: 2})(X)


def test_arrays_and_tracers_are_unhashable() -> None:
    x = fnp.asarray(X)
    with pytest.raises(TypeError, match="unhashable"):
        hash(x)
    with pytest.raises(TypeError, match="unhashable"):
        {x: 1}  # noqa: B018
    with pytest.raises(TypeError, match="unhashable"):
        fgrad.jit(lambda t: hash(t))(X)


def test_iteration_and_len() -> None:
    x = fnp.asarray(X)
    rows = list(x)
    assert len(rows) == len(x) == 2 and all(isinstance(r, fgrad.Array) for r in rows)
    assert_matches(rows[1], jnp.asarray(X)[1])
    assert [float(v) for v in rows[0]] == X[0].tolist()
    assert_matches(list(fnp.array([1.0, 2.0]))[0], list(jnp.array([1.0, 2.0]))[0])
    assert_matches(next(iter(fnp.full((2,), 1.0))), next(iter(jnp.full((2,), 1.0))))  # weak
    out = fgrad.jit(lambda t: [r.sum() for r in t])(X)
    np.testing.assert_allclose([float(o) for o in out], X.sum(1), rtol=1e-6)
    assert fgrad.grad(lambda t: sum(r[0] * r[1] for r in t))(X).tolist() == [
        [-2.0, 1.5, 0.0], [0.25, 3.0, 0.0]]
    for zero_d in (fnp.array(1.0), fnp.array(True)):
        with pytest.raises(TypeError, match="iteration over a 0-d array"):
            iter(zero_d)
        with pytest.raises(TypeError, match="len"):
            len(zero_d)
    with pytest.raises(TypeError, match="iteration over a 0-d array"):
        fgrad.jit(lambda t: list(t))(1.0)
    assert list(fnp.zeros((0, 3))) == []


def test_contains_round_and_conversions() -> None:
    x = fnp.asarray(X)
    assert 0.5 in x and 7.0 not in x
    assert_matches(round(fnp.array(2.5)), round(jnp.array(2.5)))
    assert_matches(round(fnp.array([1.46, 2.5]), 1), round(jnp.array([1.46, 2.5]), 1))
    assert x[0, 0].item() == 1.5 and x.tolist() == X.tolist() and x.item(1) == -2.0
    assert (x.itemsize, x.nbytes) == (4, 24)
    assert float(x[1, 0]) == 3.0 and int(fnp.asarray(I)[0, 1]) == -7 and bool(x[0, 0] > 1)
    assert fgrad.grad(lambda t: t * t if t > 0 else -t)(2.0) == 4.0  # concrete under grad
    with pytest.raises(fgrad.ConcretizationTypeError, match="item"):
        fgrad.jit(lambda t: t.item())(1.0)
    with pytest.raises(fgrad.TracerBoolConversionError):
        fgrad.jit(lambda t: 1.0 if t > 0 else 0.0)(1.0)
    with pytest.raises(NotImplementedError, match="flat"):
        x.flat  # noqa: B018
    with pytest.raises(ValueError, match="mT needs an array of at least 2 dimensions"):
        fnp.ones(3).mT  # noqa: B018
    assert copy.copy(x) is x and copy.deepcopy(x) is x


def test_at_property_is_functional() -> None:
    x = fnp.asarray(X)
    y = x.at[0].set(0.0)
    assert x.tolist() == X.tolist() and y[0].tolist() == [0.0, 0.0, 0.0]
    g = fgrad.grad(lambda t: (t.at[1, 1].multiply(3.0) ** 2).sum())(X)
    want = jax.grad(lambda t: (t.at[1, 1].multiply(3.0) ** 2).sum())(jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(g), np.asarray(want), rtol=1e-6)
