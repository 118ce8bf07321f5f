"""The optimizer machinery: ``OptimizerState``, ``Optimizer`` and the ``@optimizer`` decorator.

An optimizer is a triple of pure functions ``(init_fun, update_fun, get_params)``
(``jax.example_libraries.optimizers``' convention):

* ``opt_state = init_fun(params)``
* ``opt_state = update_fun(step, grads, opt_state)`` (``step`` is the 0-based index)
* ``params = get_params(opt_state)``

Writing those for arbitrary pytrees of parameters would repeat the same flattening
in every optimizer, so each optimizer is written for ONE array and lifted to pytrees
by ``@optimizer``. The lifted state has two levels: the *outer* tree is the
parameters' structure, and each parameter leaf owns an *inner* tree (e.g. Adam's
``(x, m, v)``). It is stored partially flattened, as
``OptimizerState(packed_state, tree_def, subtree_defs)``: ``packed_state`` holds one
flat list of inner leaves per parameter, the two treedefs remember the structures.

``OptimizerState`` is registered as a pytree node whose only child is
``packed_state`` and whose treedefs are auxiliary data, so a state passes through
``fgrad.jit`` (and ``vmap``, ``grad``) as a bundle of arrays; the structures become
part of jit's cache key. Read next: ``classic.py`` (JAX's nine optimizers).
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable
from typing import Any, NamedTuple

import fgrad.numpy as fnp
from fgrad.core.pytree import register_pytree_node, tree_flatten, tree_unflatten

__all__ = [
    "Array", "InitFn", "Optimizer", "OptimizerState", "Params", "ParamsFn", "Schedule",
    "State", "Step", "UpdateFn", "Updates", "optimizer", "zero_slots",
]

OptimizerState = namedtuple("OptimizerState", ["packed_state", "tree_def", "subtree_defs"])
# NOTE: registered explicitly (an exact registration wins over fgrad's namedtuple-by-shape
# rule): the treedefs must be aux data, not leaves, or jit would try to trace them.
register_pytree_node(
    OptimizerState,
    lambda state: ((state.packed_state,), (state.tree_def, state.subtree_defs)),
    lambda aux, children: OptimizerState(children[0], aux[0], aux[1]))

# The type aliases of jax.example_libraries.optimizers (documentation only).
Array = Any
Params = Any  # an arbitrary pytree of arrays
State = Any  # one parameter's inner optimizer state
Updates = Params  # gradients have the parameters' structure
InitFn = Callable[[Params], OptimizerState]
Step = int
UpdateFn = Callable[[Step, Updates, OptimizerState], OptimizerState]
ParamsFn = Callable[[OptimizerState], Params]
Schedule = Callable[[Step], float]


class Optimizer(NamedTuple):
    """An optimizer triple; unpacks as ``opt_init, opt_update, get_params``."""

    init_fn: InitFn
    update_fn: UpdateFn
    params_fn: ParamsFn


def _unzip_flatten(trees: list[Any]) -> tuple[tuple[list[Any], ...], tuple[Any, ...]]:
    # One flatten per inner tree, returned as (tuple of leaf lists, tuple of treedefs):
    # the same containers JAX's implementation stores, so states compare structurally.
    flat = [tree_flatten(tree) for tree in trees]
    return tuple(leaves for leaves, _ in flat), tuple(treedef for _, treedef in flat)


def optimizer(opt_maker: Callable[..., tuple[Callable[[Array], State],
                                             Callable[[Step, Array, State], State],
                                             Callable[[State], Array]]]
              ) -> Callable[..., Optimizer]:  # fmt: skip
    """Lift an optimizer written for single arrays to pytrees of parameters.

    Args:
      opt_maker: a function returning ``(init, update, get_params)`` that work on ONE
        array: ``init(x0) -> state``, ``update(i, g, state) -> state`` (same inner
        structure), ``get_params(state) -> x``.

    Returns:
      A function with ``opt_maker``'s signature that returns an :class:`Optimizer`
      whose functions take and return pytrees of parameters and an
      :class:`OptimizerState`.

    Raises (from the lifted ``update_fun``):
      TypeError: if the gradient tree's structure differs from the parameters', or if
        ``update`` changed the structure of a parameter's inner state (messages as
        JAX's).

    >>> import fgrad.numpy as fnp
    >>> @optimizer
    ... def plain_sgd(lr):
    ...     return (lambda x: x), (lambda i, g, x: x - lr * g), (lambda x: x)
    >>> init, update, get_params = plain_sgd(0.5)
    >>> get_params(update(0, {"w": fnp.ones(2)}, init({"w": fnp.ones(2)})))
    {'w': Array([0.5, 0.5], dtype=float32)}
    """

    @functools.wraps(opt_maker)
    def tree_opt_maker(*args: Any, **kwargs: Any) -> Optimizer:
        init, update, get_params = opt_maker(*args, **kwargs)

        @functools.wraps(init)
        def tree_init(x0_tree: Params) -> OptimizerState:
            x0_flat, tree = tree_flatten(x0_tree)
            states_flat, subtrees = _unzip_flatten([init(x0) for x0 in x0_flat])
            return OptimizerState(states_flat, tree, subtrees)

        @functools.wraps(update)
        def tree_update(i: Step, grad_tree: Updates, opt_state: OptimizerState
                        ) -> OptimizerState:  # fmt: skip
            states_flat, tree, subtrees = opt_state
            grad_flat, tree2 = tree_flatten(grad_tree)
            if tree2 != tree:
                raise TypeError(
                    "optimizer update function was passed a gradient tree that did not "
                    "match the parameter tree structure with which it was initialized: "
                    f"parameter tree {tree!r} and grad tree {tree2!r}.")
            states = [tree_unflatten(s, flat)
                      for s, flat in zip(subtrees, states_flat, strict=True)]  # fmt: skip
            new_states = [update(i, g, state) for g, state in zip(grad_flat, states, strict=True)]
            new_states_flat, subtrees2 = _unzip_flatten(new_states)
            for subtree, subtree2 in zip(subtrees, subtrees2, strict=True):
                if subtree2 != subtree:
                    raise TypeError(
                        "optimizer update function produced an output structure that did "
                        f"not match its input structure: input {subtree!r} and output "
                        f"{subtree2!r}.")
            return OptimizerState(new_states_flat, tree, subtrees)

        @functools.wraps(get_params)
        def tree_get_params(opt_state: OptimizerState) -> Params:
            states_flat, tree, subtrees = opt_state
            states = [tree_unflatten(s, flat)
                      for s, flat in zip(subtrees, states_flat, strict=True)]  # fmt: skip
            return tree_unflatten(tree, [get_params(state) for state in states])

        return Optimizer(tree_init, tree_update, tree_get_params)

    return tree_opt_maker


# Most optimizers keep their state per array as ``(x, slot_1, ..., slot_n)``, the
# slots (moments, accumulators) starting at zero.

def zero_slots(n: int) -> tuple[Callable[[Array], State], Callable[[State], Array]]:
    """``(init, get_params)`` for the per-array state ``(x0, zeros_like(x0), ...)``."""

    def init(x0: Array) -> State:
        return (x0,) + tuple(fnp.zeros_like(x0) for _ in range(n))

    def get_params(state: State) -> Array:
        return state[0]

    return init, get_params
