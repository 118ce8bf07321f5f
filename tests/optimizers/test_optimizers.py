"""Tests for ``fgrad.optimizers`` against ``jax.example_libraries.optimizers`` and optax.

* Trajectories: all nine JAX optimizers (default and non-default hyperparameters) for
  20 steps on fixed gradients (with zeros, for the ``g_sq == 0`` branches), on scalars,
  vectors, matrices and nested tuple/dict/list trees; params after every step and the
  whole final state (treedefs, leaf dtypes, weak types, values) against JAX's; float32
  with a tolerance and float64 under x64 (tight).
* Every schedule (JAX's) as the step size of every optimizer.
* ``fgrad.jit``: ``OptimizerState`` as jit argument and output, a traced step index,
  one trace for twenty steps; a jitted training step converging on quadratics (all
  twelve optimizers); derivatives through an update (fgrad.grad vs jax.grad).
* The decorator: JAX's TypeError messages (grad tree mismatch, inner-state mismatch),
  names and docstrings kept, ``Optimizer``/``OptimizerState`` fields, pytree behaviour.
* ``l2_norm`` and ``clip_grads`` vs JAX; ``unpack``/``pack_optimizer_state`` round trip
  (through pickle too) and structure equal to JAX's.
* ``adamw``, ``lamb``, ``lion`` vs optax (``adamw``/``lamb``/``lion``, schedules too), and
  against their formulas written out here.
"""

from __future__ import annotations

import doctest
import pickle
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.example_libraries import optimizers as jopt

import fgrad
import fgrad.numpy as fnp
from fgrad import optimizers as fopt
from fgrad.core.trace import Tracer
from fgrad.optimizers import base as base_module
from fgrad.optimizers import utils as utils_module
from fgrad.tree_util import tree_leaves, tree_map, tree_structure

# name -> (args builder taking the module, kwargs); the builder lets schedules come from
# the module under test (fgrad's or JAX's).
Spec = tuple[Callable[[Any], tuple[Any, ...]], dict[str, Any]]
DEFAULTS: dict[str, Spec] = {
    "sgd": (lambda m: (0.1,), {}),
    "momentum": (lambda m: (0.1,), {"mass": 0.9}),
    "nesterov": (lambda m: (0.1,), {"mass": 0.9}),
    "adagrad": (lambda m: (0.1,), {}),
    "rmsprop": (lambda m: (0.01,), {}),
    "rmsprop_momentum": (lambda m: (0.01,), {}),
    "adam": (lambda m: (0.05,), {}),
    "adamax": (lambda m: (0.05,), {}),
    "sm3": (lambda m: (0.1,), {}),
}
CUSTOM: dict[str, Spec] = {
    "sgd": (lambda m: (0.3,), {}),
    "momentum": (lambda m: (0.02,), {"mass": 0.5}),
    "nesterov": (lambda m: (0.02,), {"mass": 0.3}),
    "adagrad": (lambda m: (0.5,), {"momentum": 0.3}),
    "rmsprop": (lambda m: (0.1,), {"gamma": 0.7, "eps": 1e-4}),
    "rmsprop_momentum": (lambda m: (0.1,), {"gamma": 0.5, "eps": 1e-3, "momentum": 0.6}),
    "adam": (lambda m: (0.2,), {"b1": 0.5, "b2": 0.9, "eps": 1e-3}),
    "adamax": (lambda m: (0.2,), {"b1": 0.6, "b2": 0.95, "eps": 1e-4}),
    "sm3": (lambda m: (0.4,), {"momentum": 0.2}),
}
JAX_SCHEDULES: dict[str, Callable[[Any], Any]] = {
    "constant": lambda m: m.constant(0.05),
    "exponential_decay": lambda m: m.exponential_decay(0.05, 5, 0.5),
    "inverse_time_decay": lambda m: m.inverse_time_decay(0.05, 4, 0.7),
    "inverse_time_decay_staircase": lambda m: m.inverse_time_decay(0.05, 4, 0.7, True),
    "polynomial_decay": lambda m: m.polynomial_decay(0.05, 10, 0.001, power=2.0),
    "piecewise_constant": lambda m: m.piecewise_constant([3, 8, 15], [0.05, 0.03, 0.01, 1e-3]),
}
F32 = {"rtol": 2e-5, "atol": 2e-6}
F64 = {"rtol": 1e-12, "atol": 1e-14}


def make_tree(kind: str, dtype: Any, rng: np.random.Generator) -> Any:
    def a(*shape: int) -> np.ndarray:
        return np.asarray(rng.standard_normal(shape), dtype)

    return {
        "scalar": lambda: a(),
        "vector": lambda: a(5),
        "matrix": lambda: a(3, 4),
        "nested": lambda: {"w": (a(4), [a(2, 3), a()]), "b": a(3), "c": (a(2, 1, 3),)},
    }[kind]()


def grads_like(params: Any, rng: np.random.Generator, steps: int = 20) -> list[Any]:
    """Fixed gradients, with zeros sprinkled in (adagrad's and sm3's ``0`` branches)."""
    def one(x: np.ndarray) -> np.ndarray:
        g = rng.standard_normal(x.shape) * (rng.random(x.shape) > 0.25)
        return np.asarray(g, x.dtype)

    return [tree_map(one, params) for _ in range(steps)]


def to_f(tree: Any) -> Any:
    return tree_map(fnp.asarray, tree)


def to_j(tree: Any) -> Any:
    return jax.tree.map(jnp.asarray, tree)


def weak(x: Any) -> bool:
    return bool(jax.typeof(x).weak_type) if isinstance(x, jax.Array) else bool(x.weak_type)


def assert_leaf(got: Any, want: Any, tol: dict[str, float], what: str) -> None:
    if isinstance(want, int):  # sm3 keeps the parameter's shape (ints) in its state
        assert int(got) == want, what
        return
    assert isinstance(got, fgrad.Array) and isinstance(want, jax.Array), (what, got, want)
    assert (got.shape, got.dtype, weak(got)) == (want.shape, want.dtype, weak(want)), (
        f"{what}: got {got!r}, want {want!r}")
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               err_msg=what, **tol)


def assert_tree(got: Any, want: Any, tol: dict[str, float], what: str) -> None:
    assert repr(tree_structure(got)) == repr(jax.tree.structure(want)), what
    for g, w in zip(tree_leaves(got), jax.tree.leaves(want), strict=True):
        assert_leaf(g, w, tol, what)


def assert_state(got: Any, want: Any, tol: dict[str, float]) -> None:
    """Same treedefs (printed as JAX prints them), containers, dtypes, weak types, values."""
    assert type(got) is fopt.OptimizerState
    assert repr(got.tree_def) == repr(want.tree_def)
    assert [repr(s) for s in got.subtree_defs] == [repr(s) for s in want.subtree_defs]
    assert type(got.packed_state) is type(want.packed_state) is tuple
    for g_flat, w_flat in zip(got.packed_state, want.packed_state, strict=True):
        assert type(g_flat) is type(w_flat) is list
        for g, w in zip(g_flat, w_flat, strict=True):
            assert_leaf(g, w, tol, "final state")


def run_both(name: str, spec: Spec, params: Any, grads: list[Any], tol: dict[str, float],
             jit: bool = False) -> None:  # fmt: skip
    make_args, kwargs = spec
    f_init, f_update, f_get = getattr(fopt, name)(*make_args(fopt), **kwargs)
    j_init, j_update, j_get = getattr(jopt, name)(*make_args(jopt), **kwargs)
    if jit:
        f_update = fgrad.jit(f_update)
    f_state, j_state = f_init(to_f(params)), j_init(to_j(params))
    assert_state(f_state, j_state, F64)
    for i, g in enumerate(grads):
        f_state, j_state = f_update(i, to_f(g), f_state), j_update(i, to_j(g), j_state)
        assert_tree(f_get(f_state), j_get(j_state), tol, f"{name} step {i}")
    assert_state(f_state, j_state, tol)


# --- trajectories against JAX ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["scalar", "vector", "matrix", "nested"])
@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_trajectories_match_jax_float32(name: str, kind: str) -> None:
    rng = np.random.default_rng(0)
    params = make_tree(kind, np.float32, rng)
    run_both(name, DEFAULTS[name], params, grads_like(params, rng), F32)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_trajectories_match_jax_float64(name: str, x64: None) -> None:
    rng = np.random.default_rng(1)
    for kind in ("scalar", "nested"):
        params = make_tree(kind, np.float64, rng)
        run_both(name, DEFAULTS[name], params, grads_like(params, rng), F64)


@pytest.mark.parametrize("name", sorted(CUSTOM))
def test_custom_hyperparameters_match_jax(name: str) -> None:
    rng = np.random.default_rng(2)
    params = make_tree("nested", np.float32, rng)
    run_both(name, CUSTOM[name], params, grads_like(params, rng), F32)


@pytest.mark.parametrize("schedule", sorted(JAX_SCHEDULES))
@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_every_schedule_as_step_size(name: str, schedule: str) -> None:
    rng = np.random.default_rng(3)
    params = {"v": make_tree("vector", np.float32, rng), "m": make_tree("matrix", np.float32, rng)}
    _, kwargs = DEFAULTS[name]
    spec = (lambda m: (JAX_SCHEDULES[schedule](m),), kwargs)
    run_both(name, spec, params, grads_like(params, rng), F32)


# --- jit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_jitted_update_matches_jax(name: str) -> None:
    # The step index is traced and the schedule depends on it.
    rng = np.random.default_rng(4)
    params = make_tree("nested", np.float32, rng)
    _, kwargs = DEFAULTS[name]
    spec = (lambda m: (m.exponential_decay(0.05, 3, 0.5),), kwargs)
    run_both(name, spec, params, grads_like(params, rng), F32, jit=True)


def test_jitted_update_traces_once_and_keeps_state_structure() -> None:
    seen_steps: list[Any] = []
    init, update, get_params = fopt.adam(fopt.piecewise_constant([5, 10], [0.1, 0.05, 0.01]))

    def step(i: Any, grads: Any, state: Any) -> Any:
        seen_steps.append(i)
        return update(i, grads, state)

    jitted = fgrad.jit(step)
    rng = np.random.default_rng(5)
    params = make_tree("nested", np.float32, rng)
    state = eager = init(to_f(params))
    for i, g in enumerate(grads_like(params, rng)):
        state, eager = jitted(i, to_f(g), state), update(i, to_f(g), eager)
    assert len(seen_steps) == 1 and isinstance(seen_steps[0], Tracer)
    assert type(state) is fopt.OptimizerState
    assert state.tree_def == eager.tree_def and state.subtree_defs == eager.subtree_defs
    for got, want in zip(tree_leaves(state), tree_leaves(eager), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)


def quadratic_loss(params: Any) -> Any:
    # sum_k c_k * ||x_k - t_k||^2 with different curvatures per leaf
    leaves = tree_leaves(params)
    return sum((k + 1.0) * fnp.sum(fnp.square(x - 0.5 * (k + 1))) for k, x in enumerate(leaves))


CONVERGENCE: dict[str, tuple[Callable[[], Any], float]] = {
    "sgd": (lambda: fopt.sgd(0.05), 1e-6),
    "momentum": (lambda: fopt.momentum(0.02, mass=0.9), 1e-4),
    "nesterov": (lambda: fopt.nesterov(0.02, mass=0.9), 1e-4),
    "adagrad": (lambda: fopt.adagrad(0.5), 1e-3),
    "rmsprop": (lambda: fopt.rmsprop(fopt.exponential_decay(0.1, 20, 0.5)), 1e-3),
    "rmsprop_momentum": (lambda: fopt.rmsprop_momentum(fopt.exponential_decay(0.02, 20, 0.5)),
                         1e-3),
    "adam": (lambda: fopt.adam(0.1), 1e-3),
    "adamax": (lambda: fopt.adamax(0.1), 1e-3),
    "sm3": (lambda: fopt.sm3(0.5), 1e-3),
    "adamw": (lambda: fopt.adamw(0.1, weight_decay=0.0), 1e-3),
    "lamb": (lambda: fopt.lamb(fopt.cosine_decay(0.1, 150)), 1e-3),
    "lion": (lambda: fopt.lion(fopt.cosine_decay(0.1, 150), weight_decay=0.0), 1e-3),
}


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_jitted_training_converges_on_quadratic(name: str) -> None:
    make, tolerance = CONVERGENCE[name]
    init, update, get_params = make()
    params = {"a": fnp.zeros(3), "b": (fnp.array(2.0, np.float32), [fnp.ones((2, 2))])}

    @fgrad.jit
    def train_step(i: Any, state: Any) -> tuple[Any, Any]:
        loss, grads = fgrad.value_and_grad(quadratic_loss)(get_params(state))
        return loss, update(i, grads, state)

    state = init(params)
    initial = float(quadratic_loss(params))
    for i in range(150):
        loss, state = train_step(i, state)
    final = float(quadratic_loss(get_params(state)))
    assert final < tolerance * initial, (name, initial, final)
    assert tree_structure(get_params(state)) == tree_structure(params)


@pytest.mark.parametrize("name", ["momentum", "adam", "rmsprop"])
def test_grad_through_updates_matches_jax(name: str, x64: None) -> None:
    # Meta-gradient: d(loss after three updates) / d(step size), differentiating the
    # optimizer itself (its update is ordinary traceable code).
    x0, targets = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -0.4])
    kwargs = DEFAULTS[name][1]

    def unrolled(module: Any, np_: Any, lr: Any) -> Any:
        init, update, get_params = getattr(module, name)(lr, **kwargs)
        state = init(np_.asarray(x0))
        for i in range(3):
            x = get_params(state)
            state = update(i, 2.0 * (x - np_.asarray(targets)), state)
        return np_.sum(np_.square(get_params(state)))

    got = fgrad.grad(lambda lr: unrolled(fopt, fnp, lr))(0.1)
    want = jax.grad(lambda lr: unrolled(jopt, jnp, lr))(0.1)
    np.testing.assert_allclose(float(got), float(want), rtol=1e-10)


# --- the decorator and the types -------------------------------------------------------------


def test_grad_tree_mismatch_message_matches_jax() -> None:
    params = (np.ones(2, np.float32), {"a": np.ones(3, np.float32)})
    for bad in ([np.ones(2), {"a": np.ones(3)}], (np.ones(2), {"b": np.ones(3)}),
                (np.ones(2),)):
        f_init, f_update, _ = fopt.adam(0.1)
        j_init, j_update, _ = jopt.adam(0.1)
        with pytest.raises(TypeError, match="did not match the parameter tree structure") as got:
            f_update(0, to_f(bad), f_init(to_f(params)))
        with pytest.raises(TypeError) as want:
            j_update(0, to_j(bad), j_init(to_j(params)))
        assert str(got.value) == str(want.value)


def test_inner_structure_change_message_matches_jax() -> None:
    def broken(module: Any) -> Any:
        @module.optimizer
        def grows():
            return (lambda x: (x, x)), (lambda i, g, s: (s[0], s[1], g)), (lambda s: s[0])

        return grows()

    (f_init, f_update, _), (j_init, j_update, _) = broken(fopt), broken(jopt)
    with pytest.raises(TypeError, match="did not match its input structure") as got:
        f_update(0, fnp.ones(2), f_init(fnp.ones(2)))
    with pytest.raises(TypeError) as want:
        j_update(0, jnp.ones(2), j_init(jnp.ones(2)))
    assert str(got.value) == str(want.value)


def test_names_fields_and_docstrings() -> None:
    assert fopt.Optimizer._fields == jopt.Optimizer._fields
    assert fopt.OptimizerState._fields == jopt.OptimizerState._fields
    for name in list(DEFAULTS) + ["adamw", "lamb", "lion"]:
        maker = getattr(fopt, name)
        assert maker.__name__ == name and "Returns" in maker.__doc__
    for name, (make_args, kwargs) in DEFAULTS.items():
        f_opt = getattr(fopt, name)(*make_args(fopt), **kwargs)
        j_opt = getattr(jopt, name)(*make_args(jopt), **kwargs)
        assert isinstance(f_opt, fopt.Optimizer)
        assert [fn.__name__ for fn in f_opt] == [fn.__name__ for fn in j_opt]
    for alias in ("Array", "Params", "State", "Updates", "InitFn", "UpdateFn", "ParamsFn",
                  "Step", "Schedule"):
        assert hasattr(fopt, alias) and alias in fopt.__all__
    assert fopt.Step is int


def test_optimizer_state_is_a_pytree() -> None:
    init, update, get_params = fopt.momentum(0.1, 0.9)
    state = init({"x": fnp.ones(2), "y": [fnp.zeros(3)]})
    leaves, treedef = fgrad.tree_util.tree_flatten(state)
    # children are only the arrays; the treedefs travel as aux data
    assert len(leaves) == 4 and all(isinstance(x, fgrad.Array) for x in leaves)
    doubled = tree_map(lambda x: 2 * x, state)
    assert type(doubled) is fopt.OptimizerState and doubled.tree_def == state.tree_def
    np.testing.assert_array_equal(np.asarray(get_params(doubled)["x"]), [2.0, 2.0])
    assert treedef == tree_structure(update(0, {"x": fnp.ones(2), "y": [fnp.ones(3)]}, state))
    # vmap over a batch of states: the leaves are batched, the structure is not
    batched = fgrad.vmap(lambda s: tree_leaves(get_params(s)))(
        tree_map(lambda x: fnp.stack([x, x + 1]), state))
    np.testing.assert_array_equal(np.asarray(batched[0]), [[1.0, 1.0], [2.0, 2.0]])


def test_sm3_state_survives_jit_and_restores_shapes() -> None:
    init, update, get_params = fopt.sm3(0.1)
    params = {"s": fnp.asarray(1.5), "m": fnp.ones((2, 3))}
    grads = {"s": fnp.asarray(0.5), "m": fnp.ones((2, 3))}
    state = fgrad.jit(update)(0, grads, init(params))
    assert [int(d) for d in state.packed_state[0][-2:]] == [2, 3]  # m's shape, now arrays
    out = get_params(state)
    assert out["s"].shape == () and out["m"].shape == (2, 3)
    # unlike JAX's, fgrad's sm3 get_params also works inside jit (the shape ints are traced)
    inside = fgrad.jit(get_params)(state)
    assert inside["s"].shape == () and inside["m"].shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(inside["m"]), np.asarray(out["m"]))


# --- utilities ---------------------------------------------------------------------------------


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_l2_norm_and_clip_grads_match_jax(max_norm: float) -> None:
    rng = np.random.default_rng(6)
    tree = make_tree("nested", np.float32, rng)
    assert_leaf(fopt.l2_norm(to_f(tree)), jopt.l2_norm(to_j(tree)), F32, "l2_norm")
    assert_tree(fopt.clip_grads(to_f(tree), max_norm), jopt.clip_grads(to_j(tree), max_norm),
                F32, "clip_grads")
    assert_tree(fgrad.jit(fopt.clip_grads)(to_f(tree), max_norm),
                jopt.clip_grads(to_j(tree), max_norm), F32, "jit(clip_grads)")
    clipped = fopt.clip_grads(to_f(tree), max_norm)
    assert float(fopt.l2_norm(clipped)) <= max_norm * (1 + 1e-6)


def test_l2_norm_edge_cases_match_jax(x64: None) -> None:
    for tree in ({}, [np.zeros(0)], (np.asarray(-3.0), [np.asarray([4.0])])):
        assert_leaf(fopt.l2_norm(to_f(tree)), jopt.l2_norm(to_j(tree)), F64, repr(tree))
    np.testing.assert_allclose(float(fopt.l2_norm((fnp.asarray(-3.0), [fnp.ones(1) * 4]))), 5.0)
    # gradient of the norm (weight decay uses it): x / ||x||
    x = np.array([1.0, 2.0, 2.0])
    np.testing.assert_allclose(np.asarray(fgrad.grad(fopt.l2_norm)(fnp.asarray(x))), x / 3.0)


def test_unpack_pack_round_trip_and_structure_match_jax() -> None:
    rng = np.random.default_rng(7)
    params = make_tree("nested", np.float32, rng)
    grads = grads_like(params, rng, steps=3)
    for name in ("adam", "sm3"):
        f_init, f_update, f_get = getattr(fopt, name)(0.1)
        j_init, j_update, j_get = getattr(jopt, name)(0.1)
        f_state, j_state = f_init(to_f(params)), j_init(to_j(params))
        for i in range(2):
            f_state, j_state = f_update(i, to_f(grads[i]), f_state), j_update(i, to_j(grads[i]),
                                                                               j_state)
        f_marked = fopt.unpack_optimizer_state(f_state)
        j_marked = jopt.unpack_optimizer_state(j_state)
        f_points, j_points = tree_leaves(f_marked), jax.tree.leaves(j_marked)
        assert all(isinstance(p, fopt.JoinPoint) for p in f_points)
        # the outer structure with JoinPoint leaves, printed as JAX prints it
        assert repr(tree_structure(f_marked)) == repr(jax.tree.structure(j_marked))
        for f_point, j_point in zip(f_points, j_points, strict=True):
            assert_tree(f_point.subtree, j_point.subtree, F32, "inner state")
            assert list(f_point) == [f_point.subtree]
        repacked = fopt.pack_optimizer_state(f_marked)
        assert repacked.tree_def == f_state.tree_def
        assert repacked.subtree_defs == f_state.subtree_defs
        assert all(a is b for a, b in zip(tree_leaves(repacked), tree_leaves(f_state)))
        # serialize, restore, keep training: identical to never having left
        restored = fopt.pack_optimizer_state(pickle.loads(pickle.dumps(f_marked)))
        after_restore = f_get(f_update(2, to_f(grads[2]), restored))
        uninterrupted = f_get(f_update(2, to_f(grads[2]), f_state))
        for a, b in zip(tree_leaves(after_restore), tree_leaves(uninterrupted), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(TypeError, match="must be a JoinPoint"):
        fopt.pack_optimizer_state({"a": fopt.JoinPoint(fnp.ones(1)), "b": fnp.ones(1)})


# --- adamw, lamb, lion against optax and their written-out formulas ----------------------------

ADDITIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "adamw": (lambda lr: fopt.adamw(lr, weight_decay=0.05),
              lambda lr: optax.adamw(lr, weight_decay=0.05)),
    "adamw_defaults": (lambda lr: fopt.adamw(lr), lambda lr: optax.adamw(lr)),
    "adamw_custom": (lambda lr: fopt.adamw(lr, b1=0.5, b2=0.9, eps=1e-4, weight_decay=0.3),
                     lambda lr: optax.adamw(lr, b1=0.5, b2=0.9, eps=1e-4, weight_decay=0.3)),
    "lamb": (lambda lr: fopt.lamb(lr, weight_decay=0.01),
             lambda lr: optax.lamb(lr, weight_decay=0.01)),
    "lamb_defaults": (lambda lr: fopt.lamb(lr), lambda lr: optax.lamb(lr)),
    "lion": (lambda lr: fopt.lion(lr), lambda lr: optax.lion(lr)),
    "lion_custom": (lambda lr: fopt.lion(lr, b1=0.5, b2=0.8, weight_decay=0.2),
                    lambda lr: optax.lion(lr, b1=0.5, b2=0.8, weight_decay=0.2)),
}


def addition_params(dtype: Any, rng: np.random.Generator) -> Any:
    tree = make_tree("nested", dtype, rng)
    tree["z"] = np.zeros(3, dtype)  # lamb's trust ratio falls back to 1 at ||x|| = 0
    return tree


def run_against_optax(name: str, params: Any, grads: list[Any], tol: dict[str, float],
                      f_lr: Any, o_lr: Any) -> None:  # fmt: skip
    f_make, o_make = ADDITIONS[name]
    f_init, f_update, f_get = f_make(f_lr)
    tx = o_make(o_lr)
    f_state, o_params = f_init(to_f(params)), to_j(params)
    o_state = tx.init(o_params)
    for i, g in enumerate(grads):
        f_state = f_update(i, to_f(g), f_state)
        updates, o_state = tx.update(to_j(g), o_state, o_params)
        o_params = optax.apply_updates(o_params, updates)
        assert_tree(f_get(f_state), o_params, tol, f"{name} step {i}")


@pytest.mark.parametrize("name", sorted(ADDITIONS))
def test_additions_match_optax_float32(name: str) -> None:
    rng = np.random.default_rng(8)
    params = addition_params(np.float32, rng)
    run_against_optax(name, params, grads_like(params, rng), F32, 0.01, 0.01)


@pytest.mark.parametrize("name", ["adamw_custom", "lamb", "lion_custom"])
def test_additions_match_optax_float64(name: str, x64: None) -> None:
    rng = np.random.default_rng(9)
    params = addition_params(np.float64, rng)
    run_against_optax(name, params, grads_like(params, rng), F64, 0.01, 0.01)


@pytest.mark.parametrize("name", ["adamw", "lamb", "lion"])
def test_additions_with_schedules_match_optax(name: str) -> None:
    rng = np.random.default_rng(10)
    params = addition_params(np.float32, rng)
    run_against_optax(name, params, grads_like(params, rng), F32,
                      fopt.warmup_cosine(0.0, 0.02, 5, 20, end_value=0.001),
                      optax.warmup_cosine_decay_schedule(0.0, 0.02, 5, 20, end_value=0.001))


def test_additions_match_written_formulas(x64: None) -> None:
    rng = np.random.default_rng(11)
    x0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(5)]
    lr, b1, b2, eps, wd = 0.05, 0.8, 0.95, 1e-6, 0.1
    states = {name: make(*args)[0](fnp.asarray(x0)) for name, make, args in [
        ("adamw", fopt.adamw, (lr, b1, b2, eps, wd)), ("lamb", fopt.lamb, (lr, b1, b2, eps, wd)),
        ("lion", fopt.lion, (lr, b1, b2, wd))]}
    updates = {"adamw": fopt.adamw(lr, b1, b2, eps, wd)[1],
               "lamb": fopt.lamb(lr, b1, b2, eps, wd)[1], "lion": fopt.lion(lr, b1, b2, wd)[1]}
    x = {k: x0.copy() for k in states}
    m = {k: np.zeros(4) for k in states}
    v = {k: np.zeros(4) for k in states}
    for i, g in enumerate(grads):
        for name in ("adamw", "lamb"):
            m[name] = (1 - b1) * g + b1 * m[name]
            v[name] = (1 - b2) * g**2 + b2 * v[name]
            u = (m[name] / (1 - b1 ** (i + 1))) / (np.sqrt(v[name] / (1 - b2 ** (i + 1))) + eps)
            u = u + wd * x[name]
            ratio = np.linalg.norm(x[name]) / np.linalg.norm(u) if name == "lamb" else 1.0
            x[name] = x[name] - lr * ratio * u
        x["lion"] = x["lion"] - lr * (np.sign((1 - b1) * g + b1 * m["lion"]) + wd * x["lion"])
        m["lion"] = (1 - b2) * g + b2 * m["lion"]
        for name in states:
            states[name] = updates[name](i, fnp.asarray(g), states[name])
            np.testing.assert_allclose(np.asarray(states[name].packed_state[0][0]), x[name],
                                       rtol=1e-12, err_msg=f"{name} step {i}")


def test_adamw_without_decay_is_adam() -> None:
    rng = np.random.default_rng(12)
    params = make_tree("nested", np.float32, rng)
    a_init, a_update, a_get = fopt.adam(0.05)
    w_init, w_update, w_get = fopt.adamw(0.05, weight_decay=0.0)
    a_state, w_state = a_init(to_f(params)), w_init(to_f(params))
    for i, g in enumerate(grads_like(params, rng)):
        a_state, w_state = a_update(i, to_f(g), a_state), w_update(i, to_f(g), w_state)
    for a, w in zip(tree_leaves(a_get(a_state)), tree_leaves(w_get(w_state)), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(w), rtol=1e-6, atol=1e-7)


def test_doctests() -> None:
    for module in (base_module, utils_module):
        result = doctest.testmod(module)
        assert result.attempted >= 1 and result.failed == 0, module.__name__
