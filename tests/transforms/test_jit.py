"""``jit`` against JAX: values, caching and retracing, static arguments, pytrees,
Python scalars, ``disable_jit``, ``lower``, backends and the nested ``jit``
equation in jaxprs.

Tracing is observed through Python side effects: a jitted function's body
runs only when it is (re)traced, so a counter incremented in the body counts
traces exactly.
"""

from __future__ import annotations

import functools
import warnings
from collections import namedtuple
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.core.trace import Tracer
from fgrad.tree_util import tree_leaves
from jit_compare import assert_matches_eager

Pair = namedtuple("Pair", ["a", "b"])


def assert_tree_close(got: Any, want: Any, rtol: float = 1e-6, atol: float = 1e-6,
                      check_weak: bool = True) -> None:
    """Same structure, shapes, dtypes, weak types and (close) values as JAX's result."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert not isinstance(a, Tracer), f"a tracer leaked into the result: {a!r}"
        a_np, b_np = np.asarray(a), np.asarray(b)
        assert a_np.shape == b_np.shape and a_np.dtype == b_np.dtype, (a, b)
        np.testing.assert_allclose(a_np, b_np, rtol=rtol, atol=atol)
        if check_weak:
            assert getattr(a, "weak_type", False) == getattr(b, "weak_type", False), (a, b)


class Counter:
    """Wraps a function and counts how often its Python body runs (= traces under jit)."""

    def __init__(self, body: Any) -> None:
        self._body, self.calls = body, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._body(*args, **kwargs)


FUNS = {
    "sin_mul": (lambda x: fnp.sin(x) * x, lambda x: jnp.sin(x) * x),
    "poly": (lambda x: x ** 3 - 2.0 * x + 1.0, lambda x: x ** 3 - 2.0 * x + 1.0),
    "sum_tanh": (lambda x: fnp.sum(fnp.tanh(x) * 2.0), lambda x: jnp.sum(jnp.tanh(x) * 2.0)),
    "exp_log": (lambda x: fnp.log(1.0 + fnp.exp(x)), lambda x: jnp.log(1.0 + jnp.exp(x))),
    "compare": (lambda x: fnp.maximum(x, 0.0) + (x > 0.5) * 1.0,
                lambda x: jnp.maximum(x, 0.0) + (x > 0.5) * 1.0),
}


@pytest.mark.parametrize("name", sorted(FUNS))
@pytest.mark.parametrize("x", [0.3, np.float32(-1.2), np.linspace(-1, 1, 5, dtype=np.float32),
                               np.ones((2, 0), np.float32)], ids=["py", "f32", "vec", "empty"])
def test_jit_matches_eager_and_jax(name: str, x: Any) -> None:
    f, jf = FUNS[name]
    assert_tree_close(fgrad.jit(f)(x), jax.jit(jf)(x))
    # the interpret backend runs the same impls as eager: bit-identical values
    np.testing.assert_array_equal(np.asarray(fgrad.jit(f, backend="interpret")(x)),
                                  np.asarray(f(fnp.asarray(x))))
    assert_matches_eager(fgrad.jit(f)(x), f(fnp.asarray(x)))


def test_jit_float64(x64: None) -> None:
    x = np.linspace(-1, 1, 4)
    f, jf = FUNS["exp_log"]
    got = fgrad.jit(f)(x)
    assert got.dtype == np.float64
    assert_tree_close(got, jax.jit(jf)(x), rtol=1e-14)


# --- caching ----------------------------------------------------------------------------

def test_cache_hit_does_not_retrace() -> None:
    body = Counter(lambda x: fnp.sin(x) * 2.0)
    f = fgrad.jit(body)
    f(fnp.ones(3))
    f(fnp.zeros(3))
    f(np.full(3, 5.0, np.float32))
    assert body.calls == 1
    info = f.cache_info()
    assert (info.hits, info.misses, info.currsize) == (2, 1, 1)


@pytest.mark.parametrize("first, second", [
    (np.ones(3, np.float32), np.ones(4, np.float32)),          # new shape
    (np.ones(3, np.float32), np.ones((3, 1), np.float32)),     # new rank
    (np.float32(1.0), np.int32(1)),                            # new dtype
    (np.float32(1.0), 1.0),                                    # strong -> weak type
    (1, 1.0),                                                  # weak int -> weak float
    ((1.0, 2.0), [1.0, 2.0]),                                  # new pytree structure
], ids=["shape", "rank", "dtype", "weak", "int-float", "tree"])
def test_retrace_on_new_avals(first: Any, second: Any) -> None:
    body = Counter(lambda x: x)
    f = fgrad.jit(body)
    f(first)
    f(first)
    assert body.calls == 1
    f(second)
    assert body.calls == 2
    f(second)
    assert body.calls == 2
    assert f.cache_info().misses == 2 and f.cache_info().hits == 2


def test_retrace_warning_is_not_raised_for_few_retraces() -> None:
    f = fgrad.jit(lambda x: x + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(np.ones(1, np.float32))
        f(np.ones(2, np.float32))


def _third_compile_warning(f: Any, calls: list[tuple[Any, ...]]) -> str:
    for args in calls[:-1]:
        f(*args)
    with pytest.warns(UserWarning) as record:
        f(*calls[-1])
    assert len(record) == 1
    return str(record[0].message)


def test_retrace_warning_names_the_argument_that_changed() -> None:
    f = fgrad.jit(lambda x, params: x * params["w"])
    w = np.float32(2.0)
    msg = _third_compile_warning(f, [(np.ones(n, np.float32), {"w": w}) for n in (2, 3, 4)])
    assert "3rd time" in msg and "argument 'x' changed from f32[3] to f32[4]" in msg
    msg = _third_compile_warning(fgrad.jit(lambda x, params: x * params["w"]),
                                 [(np.ones(2, np.float32), {"w": w.astype(dt)})
                                  for dt in (np.float32, np.int32, np.float16)])
    assert "argument 'params' changed from i32[] to f16[]" in msg


def test_retrace_warning_names_the_x64_flag() -> None:
    # the same argument types trace again when enable_x64 changes (default dtypes differ)
    f = fgrad.jit(lambda x: x + fnp.zeros(x.shape))
    x = np.ones(2, np.float32)
    before = fgrad.config.enable_x64
    try:
        f(np.ones(3, np.float32))
        f(x)
        fgrad.config.update("enable_x64", not before)
        with pytest.warns(UserWarning, match=f"enable_x64 changed from {before} to {not before}"):
            out = f(x)
        assert out.dtype == (np.float32 if before else np.float64)
    finally:
        fgrad.config.update("enable_x64", before)


def test_retrace_warning_names_leaves_static_args_and_structure() -> None:
    f = fgrad.jit(lambda t: t[0].sum() + t[1].sum())
    msg = _third_compile_warning(f, [((np.ones(2, np.float32), np.ones(n, np.float32)),)
                                     for n in (2, 1, 3)])
    assert "argument 't' (leaf 1) changed from f32[1] to f32[3]" in msg
    g = fgrad.jit(lambda x, k: x * k, static_argnums=1)
    msg = _third_compile_warning(g, [(np.ones(2, np.float32), k) for k in (1, 2, 3)])
    assert "static argument 'k' changed from 2 to 3" in msg
    h = fgrad.jit(lambda t: sum(t))
    msg = _third_compile_warning(h, [(tuple(np.ones(2, np.float32) for _ in range(n)),)
                                     for n in (1, 2, 3)])
    assert "pytree structure changed" in msg


def test_clear_cache() -> None:
    body = Counter(lambda x: x * 2.0)
    f = fgrad.jit(body)
    f(1.0)
    f.clear_cache()
    f(1.0)
    assert body.calls == 2


def test_jit_results_do_not_depend_on_cached_values() -> None:
    f = fgrad.jit(lambda x, y: x * y + 1.0)
    assert float(f(2.0, 3.0)) == 7.0
    assert float(f(4.0, 5.0)) == 21.0


# --- static arguments ---------------------------------------------------------------------

def test_static_argnums() -> None:
    body = Counter(lambda x, n: x * sum(range(n)))   # n must be a Python int
    f = fgrad.jit(body, static_argnums=1)
    assert float(f(2.0, 3)) == 6.0
    assert float(f(5.0, 3)) == 15.0
    assert body.calls == 1
    assert float(f(2.0, 4)) == 12.0
    assert body.calls == 2
    jf = jax.jit(lambda x, n: x * sum(range(n)), static_argnums=1)
    assert_tree_close(f(2.0, 4), jf(2.0, 4))


def test_static_argnums_negative() -> None:
    f = fgrad.jit(lambda x, n: x * n, static_argnums=-1)
    assert float(f(2.0, 3)) == 6.0


def test_static_argnames() -> None:
    body = Counter(lambda x, *, mode="sin": fnp.sin(x) if mode == "sin" else fnp.cos(x))
    f = fgrad.jit(body, static_argnames="mode")
    np.testing.assert_allclose(np.asarray(f(0.5, mode="sin")), np.sin(0.5), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(f(0.5, mode="cos")), np.cos(0.5), rtol=1e-6)
    f(0.7, mode="cos")
    assert body.calls == 2


def test_static_argnums_given_by_keyword() -> None:
    # JAX maps static_argnums to the parameter names (and back) with the signature.
    jf = jax.jit(lambda x, n: x * sum(range(n)), static_argnums=1)
    f = fgrad.jit(lambda x, n: x * sum(range(n)), static_argnums=1)
    assert_tree_close(f(2.0, n=3), jf(2.0, n=3))


def test_static_argnames_given_by_position() -> None:
    jf = jax.jit(lambda x, n: x * sum(range(n)), static_argnames="n")
    f = fgrad.jit(lambda x, n: x * sum(range(n)), static_argnames="n")
    assert_tree_close(f(2.0, 3), jf(2.0, 3))


def test_static_values_equal_but_of_different_types_retrace() -> None:
    # 1 == True == 1.0 hash alike, but JAX keys static arguments on their type too.
    g = lambda x, n: x * 100.0 if isinstance(n, bool) else x * n
    f = fgrad.jit(g, static_argnums=1)
    jf = jax.jit(g, static_argnums=1)
    assert_tree_close(f(2.0, 1), jf(2.0, 1))
    assert_tree_close(f(2.0, True), jf(2.0, True))


def test_static_argument_must_be_hashable() -> None:
    f = fgrad.jit(lambda x, opts: x * len(opts), static_argnums=1)
    with pytest.raises(ValueError, match="hashable"):
        f(1.0, [1, 2])
    g = fgrad.jit(lambda x, opts=None: x, static_argnames="opts")
    with pytest.raises(ValueError, match="hashable"):
        g(1.0, opts={"a": 1})


def test_static_argument_hashable_object() -> None:
    Config = namedtuple("Config", ["scale", "power"])
    f = fgrad.jit(lambda x, c: c.scale * x ** c.power, static_argnums=1)
    assert float(f(2.0, Config(3.0, 2))) == 12.0


def test_jit_of_callable_object_with_a_fun_attribute() -> None:
    # jit must call the object itself, whatever attributes it carries (``fun``,
    # ``backend``, ``_cache`` ... must not leak into the jit wrapper's own state).
    class Model:
        def __init__(self) -> None:
            self.fun = lambda x: x + 100.0
            self.backend = "no-such-backend"

        def __call__(self, x: Any) -> Any:
            return x * 2.0

    assert float(fgrad.jit(Model())(1.0)) == 2.0


def test_jit_decorator_forms() -> None:
    @fgrad.jit
    def f(x: Any) -> Any:
        return x * 2.0

    @functools.partial(fgrad.jit, static_argnums=(1,))
    def g(x: Any, n: int) -> Any:
        return x ** n

    @fgrad.jit(static_argnames="n")
    def h(x: Any, n: int) -> Any:
        return x ** n

    assert float(f(3.0)) == 6.0 and float(g(2.0, 3)) == 8.0 and float(h(2.0, n=2)) == 4.0
    assert f.__name__ == "f" and g.__wrapped__ is not None


# --- arguments and outputs -------------------------------------------------------------------

def test_kwargs_are_dynamic() -> None:
    body = Counter(lambda x, y=1.0: x - y)
    f = fgrad.jit(body)
    assert float(f(y=1.0, x=3.0)) == 2.0
    assert float(f(3.0, y=2.5)) == 0.5
    assert float(f(x=3.0, y=0.5)) == 2.5
    assert body.calls <= 2  # keyword-only calls with equal avals share one trace
    assert_tree_close(f(3.0, y=2.0), jax.jit(lambda x, y=1.0: x - y)(3.0, y=2.0))


def test_pytree_inputs_and_outputs() -> None:
    def f(d: dict[str, Any], p: Pair, none: None) -> Any:
        return {"sum": d["a"] + p.a, "pair": Pair(p.b * 2.0, [d["b"], ()]), "n": None}

    def jf(d: dict[str, Any], p: Pair, none: None) -> Any:
        return {"sum": d["a"] + p.a, "pair": Pair(p.b * 2.0, [d["b"], ()]), "n": None}

    args = ({"a": np.ones(2, np.float32), "b": 3}, Pair(1.0, np.float32(2.0)), None)
    got = fgrad.jit(f)(*args)
    assert_tree_close(got, jax.jit(jf)(*args))
    assert isinstance(got["pair"], Pair)


def test_python_scalars_and_weak_types() -> None:
    for x in [1, 2.5, True, np.float32(2.5), np.int32(3)]:
        assert_tree_close(fgrad.jit(lambda x: x)(x), jax.jit(lambda x: x)(x))
        assert_tree_close(fgrad.jit(lambda x: x * 2)(x), jax.jit(lambda x: x * 2)(x))
    assert_tree_close(fgrad.jit(lambda x: x * 2.0)(1.0), jax.jit(lambda x: x * 2.0)(1.0))
    assert_tree_close(fgrad.jit(lambda x: 3.0)(1.0), jax.jit(lambda x: 3.0)(1.0))


def test_output_is_input_and_constant_outputs() -> None:
    f = fgrad.jit(lambda x, y: (x, y, x, 2.0, fnp.ones(2)))
    got = f(np.float32(1.0), 5)
    assert_tree_close(got, jax.jit(lambda x, y: (x, y, x, 2.0, jnp.ones(2)))(np.float32(1.0), 5))
    assert fgrad.jit(lambda x: ())(1.0) == ()
    assert fgrad.jit(lambda x: None)(1.0) is None


def test_closed_over_arrays_become_constants() -> None:
    c = fnp.array([1.0, 2.0, 3.0])
    f = fgrad.jit(lambda x: x * c)
    np.testing.assert_allclose(np.asarray(f(fnp.ones(3))), [1.0, 2.0, 3.0])
    jaxpr = fgrad.make_jaxpr(lambda x: x * c)(fnp.ones(3))
    assert len(jaxpr.jaxpr.constvars) == 1 and jaxpr.consts[0] is c


def test_invalid_argument_and_output_types() -> None:
    with pytest.raises(TypeError, match="str"):
        fgrad.jit(lambda x: x)("text")
    with pytest.raises(TypeError, match="str"):
        fgrad.jit(lambda x: "text")(1.0)


def test_x64_dtypes_under_jit(x64: None) -> None:
    for x in [1.0, np.float64(1.0), np.float32(1.0), 1, np.int64(1)]:
        assert_tree_close(fgrad.jit(lambda x: x + 1)(x), jax.jit(lambda x: x + 1)(x))


# --- disable_jit, lower, backends, make_jaxpr -------------------------------------------------

def test_disable_jit_runs_python_every_call() -> None:
    body = Counter(lambda x: x * 2.0 if float(x) > 0 else -x)  # concrete control flow
    f = fgrad.jit(body)
    previous = fgrad.config.disable_jit
    fgrad.config.update("disable_jit", True)
    try:
        assert float(f(3.0)) == 6.0
        assert float(f(-3.0)) == 3.0
        assert float(f(3.0)) == 6.0
        assert body.calls == 3
    finally:
        fgrad.config.update("disable_jit", previous)
    with pytest.raises(fgrad.ConcretizationTypeError):
        f(3.0)


def test_disable_jit_via_jax_alias() -> None:
    previous = fgrad.config.read("disable_jit")
    fgrad.config.update("jax_disable_jit", True)
    try:
        assert fgrad.config.disable_jit is True
        assert float(fgrad.jit(lambda x: x if x > 0 else -x)(-2.0)) == 2.0
    finally:
        fgrad.config.update("disable_jit", previous)


def test_lower_as_text_contains_the_jaxpr() -> None:
    f = lambda x: fnp.sum(fnp.tanh(x) * 2.0)
    text = fgrad.jit(f).lower(fnp.ones(3)).as_text()
    assert text == str(fgrad.make_jaxpr(f)(fnp.ones(3)))
    assert text.startswith("{ lambda") and "tanh" in text and "reduce_sum" in text
    assert "f32[3]" in text


def test_lower_does_not_run_the_function() -> None:
    body = Counter(lambda x: x * 2.0)
    f = fgrad.jit(body)
    f.lower(1.0)
    f(1.0)
    assert body.calls == 1  # lower traced and cached; the call reused it


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown backend 'no-such-backend'"):
        fgrad.jit(fnp.sin, backend="no-such-backend")(1.0)


def test_interpret_backend_by_name() -> None:
    assert_tree_close(fgrad.jit(fnp.sin, backend="interpret")(0.5), jax.jit(jnp.sin)(0.5))


def test_make_jaxpr_shows_nested_jit() -> None:
    inner = fgrad.jit(lambda y: fnp.cos(y) * 3.0)
    jaxpr = fgrad.make_jaxpr(lambda x: inner(fnp.sin(x)) + 1.0)(1.0)
    names = [e.primitive.name for e in jaxpr.eqns]
    assert names == ["sin", "jit", "add"]
    jit_eqn = jaxpr.eqns[1]
    inner_names = [e.primitive.name for e in jit_eqn.params["jaxpr"].eqns]
    assert "cos" in inner_names and "mul" in inner_names
    text = str(jaxpr)
    assert "jit[" in text and "cos" in text
    typecheck_jaxpr(jaxpr)


def test_jit_of_jit() -> None:
    body = Counter(lambda x: fnp.sin(x) * x)
    inner = fgrad.jit(body)
    outer = fgrad.jit(lambda x: inner(x) + inner(2.0 * x))
    jf = jax.jit(lambda x: jax.jit(lambda y: jnp.sin(y) * y)(x) + jax.jit(
        lambda y: jnp.sin(y) * y)(2.0 * x))
    assert_tree_close(outer(0.7), jf(0.7))
    assert body.calls == 1   # same avals inside the outer trace: one inner trace
    outer(0.9)
    assert body.calls == 1
    assert_tree_close(fgrad.jit(fgrad.jit(fgrad.jit(fnp.exp)))(0.5), jnp.exp(0.5))


def test_jit_with_matmul() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    f = lambda x: fnp.tanh(a @ x)
    jf = lambda x: jnp.tanh(a @ x)
    x = np.linspace(-1, 1, 3, dtype=np.float32)
    assert_tree_close(fgrad.jit(f)(x), jax.jit(jf)(x))


def test_lower_as_text_prints_the_cuda_source_without_a_gpu() -> None:
    lowered = fgrad.jit(lambda x: fnp.sum(fnp.exp(x), axis=1)).lower(np.ones((3, 4), np.float32))
    source = lowered.as_text("cuda")
    assert "__global__" in source and "#include" not in source
    assert "expf(" in source


def test_default_backend_is_cpu_without_a_gpu_and_follows_the_config(monkeypatch: Any) -> None:
    from fgrad.lowering.cuda.device import gpu_available
    from fgrad.transforms import jit as jit_module
    monkeypatch.setattr(fgrad.config, "default_backend", None)
    assert jit_module.default_backend() == ("cuda" if gpu_available() else "cpu")
    seen = []
    jit_module.register_backend("recording", lambda closed, args: seen.append(closed) or
                                jit_module._backends["interpret"](closed, args))
    try:
        fgrad.config.update("default_backend", "recording")
        assert float(fgrad.jit(lambda x: x * 2.0)(3.0)) == 6.0 and len(seen) == 1
        fgrad.config.update("default_backend", "no-such-backend")
        with pytest.raises(ValueError, match="unknown backend 'no-such-backend'"):
            fgrad.jit(lambda x: x)(1.0)
    finally:
        del jit_module._backends["recording"]


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16", np.int8, np.uint16, np.bool_])
def test_constants_of_every_dtype_survive_compilation(dtype: Any) -> None:
    """Literals folded into compiled code keep their values (bfloat16 is stored as bits)."""
    dtype = fnp.dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    x = np.array([1, 0, 1], dtype)

    def f(x: Any) -> Any:
        return fnp.stack([x, fnp.full_like(x, 2 if dtype != np.bool_ else True), x * x])

    assert_matches_eager(fgrad.jit(f)(x), f(x))


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16"])
def test_half_precision_products_compile_to_a_float32_gemm(dtype: Any) -> None:
    dtype = fnp.dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 9)).astype(dtype), rng.normal(size=(9, 4)).astype(dtype)
    jitted = fgrad.jit(fnp.dot)
    assert_matches_eager(jitted(a, b), fnp.dot(a, b))
    if fgrad.transforms.jit.default_backend() == "cpu":
        assert "gemm" in jitted.lower(a, b).as_text("kernels")


def test_repeated_concrete_calls_take_the_fast_path_with_identical_results() -> None:
    body = Counter(lambda x, p: (x * p["w"] + 1.0, fnp.sum(x)))
    f = fgrad.jit(body)
    x, p = np.arange(3, dtype=np.float32), {"w": np.float32(2.0)}
    first = f(x, p)
    for args in [(x, p), (fnp.asarray(x), {"w": fnp.asarray(p["w"])})]:
        again = f(*args)
        assert all(type(a) is fgrad.Array and a.aval == b.aval for a, b in
                   zip(tree_leaves(again), tree_leaves(first)))
        assert_matches_eager(again, first, backend="interpret")  # same program: same bits
    assert body.calls == 1 and f.cache_info().hits == 2
    # a weak scalar, a float64 array (canonicalized to float32) and a tracer all take the
    # general path and still give the same values
    np.testing.assert_array_equal(f(x, {"w": 2.0})[0], first[0])
    np.testing.assert_array_equal(f(x.astype(np.float64), p)[0], first[0])
    g = fgrad.grad(lambda x: f(x, p)[0].sum())(x)
    np.testing.assert_array_equal(g, np.full(3, 2.0, np.float32))
    f.clear_cache()
    f(x, p)
    assert body.calls == 3  # weak scalar traced once more, then again after clearing
